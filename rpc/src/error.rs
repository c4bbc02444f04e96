//! The one place that maps failures to JSON-RPC error codes. Codes are stable: clients may match
//! on them. The protocol's codes (-32700 parse error, -32600 invalid request, -32601 method not
//! found, -32602 invalid params) and the server's limits (-32006 too many subscriptions, -32007
//! request too large, -32008 response too large, -32009 busy, -32010 batch too large) come from
//! jsonrpsee; Stele's own, one per cause, are positive (1001 and up) so they never collide.

use jsonrpsee::types::ErrorObjectOwned;

use ledger::{AdmitError, TxError};

use crate::SubmitError;

/// Params that do not parse (wrong type, bad hex, out of range).
pub const INVALID_PARAMS: i32 = -32602;
/// A response over `rpc.max_response_bytes`, or over what is left of the request's response
/// budget (jsonrpsee's code for an oversized response).
pub const RESPONSE_TOO_LARGE: i32 = -32008;
/// A transaction that is not hex or not a transaction's encoding.
pub const MALFORMED_TRANSACTION: i32 = 1001;
/// A transaction whose signature does not verify.
pub const BAD_SIGNATURE: i32 = 1002;
/// A transaction for another chain.
pub const WRONG_CHAIN: i32 = 1003;
/// A nonce already used.
pub const NONCE_TOO_LOW: i32 = 1004;
/// A nonce too far ahead of the account's.
pub const NONCE_TOO_HIGH: i32 = 1005;
/// The signer lacks the role the payload needs.
pub const PERMISSION_DENIED: i32 = 1006;
/// Over a size limit.
pub const TOO_LARGE: i32 = 1007;
/// The mempool is full: retry after the next block.
pub const MEMPOOL_FULL: i32 = 1008;
/// The transaction (or another with its nonce) is already pending.
pub const ALREADY_PENDING: i32 = 1009;
/// Another invalid field.
pub const INVALID_TRANSACTION: i32 = 1010;
/// No such block, transaction or height.
pub const NOT_FOUND: i32 = 1011;
/// `tx_submitAndWait` gave up before the transaction was committed (it may still be).
pub const TIMEOUT: i32 = 1012;
/// The node cannot serve this now (shutting down, storage failure, or the stored value is
/// damaged: the store's read checks refuse it rather than serve it).
pub const UNAVAILABLE: i32 = 1013;
/// A submission without the bearer token this node requires (`rpc.submit_token_file`), or with
/// another token.
pub const UNAUTHORIZED: i32 = 1014;

/// An error with a code and a plain message.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// Invalid params, naming what is wrong.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(INVALID_PARAMS, message)
}

/// Not found, naming what.
pub fn not_found(message: impl Into<String>) -> ErrorObjectOwned {
    error(NOT_FOUND, message)
}

/// A storage failure (never the caller's fault).
pub fn unavailable(error: impl std::fmt::Display) -> ErrorObjectOwned {
    self::error(UNAVAILABLE, format!("node unavailable: {error}"))
}

impl From<SubmitError> for ErrorObjectOwned {
    fn from(failure: SubmitError) -> Self {
        let refused = match failure {
            SubmitError::NotHex(_) => return error(MALFORMED_TRANSACTION, failure.to_string()),
            SubmitError::Unavailable(_) => return error(UNAVAILABLE, failure.to_string()),
            SubmitError::Refused(AdmitError::Store(store)) => return unavailable(store),
            SubmitError::Refused(refused) => refused,
        };
        let code = match &refused {
            AdmitError::Invalid(TxError::Malformed(_)) => MALFORMED_TRANSACTION,
            AdmitError::Invalid(TxError::BadSignature) => BAD_SIGNATURE,
            AdmitError::Invalid(TxError::WrongChain { .. }) => WRONG_CHAIN,
            AdmitError::Invalid(TxError::TooLarge { .. } | TxError::KeySize { .. } | TxError::ValueTooLarge { .. }) => {
                TOO_LARGE
            }
            AdmitError::Invalid(TxError::InvalidValidator(_)) => INVALID_TRANSACTION,
            AdmitError::PermissionDenied(_) => PERMISSION_DENIED,
            AdmitError::NonceTooLow { .. } => NONCE_TOO_LOW,
            AdmitError::NonceTooHigh { .. } => NONCE_TOO_HIGH,
            AdmitError::Duplicate(_) | AdmitError::NonceTaken(_) => ALREADY_PENDING,
            AdmitError::Full(_) | AdmitError::QueueFull { .. } => MEMPOOL_FULL,
            AdmitError::Store(_) => UNAVAILABLE,
        };
        error(code, refused.to_string())
    }
}

#[cfg(test)]
mod tests {
    use consensus::Digest;
    use ledger::{QueueLimit, Role, StoreError};

    use super::*;

    fn answer(failure: impl Into<SubmitError>) -> (i32, String) {
        let object = ErrorObjectOwned::from(failure.into());
        (object.code(), object.message().to_string())
    }

    #[test]
    fn each_refusal_has_its_code_and_says_why_once() {
        let cases = [
            (AdmitError::Invalid(TxError::Malformed("short".into())), MALFORMED_TRANSACTION),
            (AdmitError::Invalid(TxError::BadSignature), BAD_SIGNATURE),
            (AdmitError::Invalid(TxError::TooLarge { size: 9, max: 8 }), TOO_LARGE),
            (AdmitError::Invalid(TxError::InvalidValidator("empty name".into())), INVALID_TRANSACTION),
            (AdmitError::PermissionDenied(Role::Transact), PERMISSION_DENIED),
            (AdmitError::NonceTooLow { expected: 3, found: 1 }, NONCE_TOO_LOW),
            (AdmitError::NonceTooHigh { max: 9, found: 90 }, NONCE_TOO_HIGH),
            (AdmitError::Duplicate(Digest([1; 32])), ALREADY_PENDING),
            (AdmitError::NonceTaken(4), ALREADY_PENDING),
            (AdmitError::Full("the pool holds mempool.max_txs transactions"), MEMPOOL_FULL),
            (AdmitError::QueueFull { next: 1, found: 5, limit: QueueLimit::Account }, MEMPOOL_FULL),
        ];
        for (refused, code) in cases {
            let expected = refused.to_string();
            assert_eq!(answer(refused), (code, expected.clone()));
            // (The message was once the refusal's own prefixed again: "permission denied:
            // permission denied: ...", "malformed transaction: malformed transaction: ...".)
            let words: Vec<&str> = expected.split(": ").collect();
            assert!(words.len() < 2 || words[0] != words[1], "{expected}");
        }
        assert_eq!(
            answer(SubmitError::NotHex("odd length".into())),
            (MALFORMED_TRANSACTION, "malformed transaction: odd length".to_string())
        );
        // (A `rocksdb::Error` cannot be built outside RocksDB: any store error gets this code.)
        let (code, message) = answer(AdmitError::Store(StoreError::MissingHead { height: 7 }));
        assert_eq!(
            (code, message.as_str()),
            (UNAVAILABLE, "node unavailable: inconsistent database: the head block 7 is missing")
        );
    }
}
