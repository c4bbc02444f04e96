use crate::{CertificateError, KeyError, hex::HexError};

/// Every way this crate's primitives can reject their input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A key or signature could not be parsed or did not verify.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A commit certificate did not verify.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// A hex string was malformed.
    #[error(transparent)]
    Hex(#[from] HexError),
}
