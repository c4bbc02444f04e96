//! Every decision carries a commit certificate that verifies against the validator set.

use consensus::{ChainId, CommitCertificate, ValidatorSet};

use super::Violation;

pub struct Certificates {
    pub chain_id: ChainId,
    pub validators: ValidatorSet,
}

impl Certificates {
    pub fn check(&self, process: usize, certificate: &CommitCertificate) -> Result<(), Violation> {
        certificate.verify(&self.chain_id, &self.validators, certificate.height, &certificate.digest).map_err(|error| {
            Violation {
                invariant: "certificate",
                detail: format!(
                    "process {process} decided height {} with a bad certificate: {error}",
                    certificate.height
                ),
            }
        })
    }
}
