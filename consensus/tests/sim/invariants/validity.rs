//! Validity: a decided digest was proposed by some leader (honest or not).

use std::collections::HashSet;

use consensus::{Digest, Height};

use super::Violation;

#[derive(Default)]
pub struct Validity {
    proposed: HashSet<Digest>,
}

impl Validity {
    pub fn proposed(&mut self, digest: Digest) {
        self.proposed.insert(digest);
    }

    pub fn is_proposed(&self, digest: &Digest) -> bool {
        self.proposed.contains(digest)
    }

    pub fn check(&self, process: usize, height: Height, digest: Digest) -> Result<(), Violation> {
        if self.proposed.contains(&digest) {
            return Ok(());
        }
        Err(Violation {
            invariant: "validity",
            detail: format!("process {process} decided {digest} at height {height}, which nobody proposed"),
        })
    }
}
