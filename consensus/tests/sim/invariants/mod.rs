//! Invariant checkers, each in its own file, checked after every event of a run.

mod agreement;
mod certificates;
mod double_sign;
mod validity;

pub use agreement::Agreement;
pub use certificates::Certificates;
pub use double_sign::NoHonestDoubleSign;
pub use validity::Validity;

/// A broken invariant: which, and what happened.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.invariant, self.detail)
    }
}
