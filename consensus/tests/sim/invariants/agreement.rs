//! Agreement: no two honest replicas decide different digests at one height.

use std::collections::BTreeMap;

use consensus::{Digest, Height};

use super::Violation;

#[derive(Default)]
pub struct Agreement {
    decided: BTreeMap<Height, (usize, Digest)>,
}

impl Agreement {
    pub fn check(&mut self, process: usize, height: Height, digest: Digest) -> Result<(), Violation> {
        match self.decided.get(&height) {
            Some((first, decided)) if *decided != digest => Err(Violation {
                invariant: "agreement",
                detail: format!(
                    "height {height}: process {first} decided {decided}, process {process} decided {digest}"
                ),
            }),
            Some(_) => Ok(()),
            None => {
                self.decided.insert(height, (process, digest));
                Ok(())
            }
        }
    }

    /// What honest replicas decided at a height (what a syncing node fetches).
    pub fn decided(&self, height: Height) -> Option<Digest> {
        self.decided.get(&height).map(|(_, digest)| *digest)
    }
}
