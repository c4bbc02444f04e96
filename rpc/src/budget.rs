//! The response budget: how many bytes of JSON the calls of one request may still build.
//!
//! jsonrpsee checks `max_response_bytes` only when it serialises a result, after the method has
//! built it, and a batch's calls all build theirs before the batch is checked: a batch of 100
//! `chain_getBlocks` would hold 100 pages of 100 blocks in memory first. So the RPC middleware
//! gives each request (a single call, or a whole batch) one budget, and the methods that return
//! large results charge it as they build, stopping when it runs out.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use jsonrpsee::types::{ErrorObjectOwned, Id};
use serde::Serialize;

use crate::error;

/// Bytes reserved per call of a request for what surrounds its result (`{"jsonrpc":"2.0",
/// "id":…,"result":…}`, or an error object such as a refusal from this budget), on top of the
/// size of its id.
pub(crate) const CALL_ENVELOPE_BYTES: usize = 512;

/// What the calls of one request may still build, in bytes of JSON. Clones share the count.
#[derive(Clone, Debug)]
pub struct ResponseBudget {
    remaining: Arc<AtomicUsize>,
    limit: usize,
}

/// A charge the budget cannot cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// Bytes asked for.
    pub wanted: usize,
    /// Bytes that were left (none are left afterwards).
    pub remaining: usize,
}

impl ResponseBudget {
    /// A budget of `bytes` (the request's share of `rpc.max_response_bytes`).
    pub fn new(bytes: usize) -> Self {
        ResponseBudget { remaining: Arc::new(AtomicUsize::new(bytes)), limit: bytes }
    }

    /// The budget of a request whose calls have these ids, out of `max_response_bytes`: each
    /// call's envelope is set aside first, so the results that fit make a response that fits.
    pub(crate) fn for_calls<'a, 'b: 'a>(max_response_bytes: usize, ids: impl Iterator<Item = &'a Id<'b>>) -> Self {
        let reserved = ids.map(|id| json_size(id).saturating_add(CALL_ENVELOPE_BYTES)).fold(2, usize::saturating_add);
        ResponseBudget::new(max_response_bytes.saturating_sub(reserved))
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.remaining.load(Ordering::Acquire)
    }

    /// Whether nothing is left: a method should not even start building.
    pub fn is_exhausted(&self) -> bool {
        self.remaining() == 0
    }

    /// Refuses (-32008) when nothing is left, before a method reads anything.
    pub fn check_left(&self) -> Result<(), ErrorObjectOwned> {
        if !self.is_exhausted() {
            return Ok(());
        }
        Err(error::error(
            error::RESPONSE_TOO_LARGE,
            format!(
                "response too large: nothing is left of this request's {}-byte budget (rpc.max_response_bytes, \
                 shared by the calls of a batch); ask in separate requests",
                self.limit
            ),
        ))
    }

    /// Takes `bytes`. When fewer are left, takes everything that is left (so the request's
    /// other calls stop too instead of each building one more item to find out) and refuses.
    pub fn take(&self, bytes: usize) -> Result<(), Exhausted> {
        let mut remaining = self.remaining.load(Ordering::Acquire);
        loop {
            let (next, result) = match remaining.checked_sub(bytes) {
                Some(next) => (next, Ok(())),
                None => (0, Err(Exhausted { wanted: bytes, remaining })),
            };
            match self.remaining.compare_exchange_weak(remaining, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return result,
                Err(current) => remaining = current,
            }
        }
    }

    /// Takes the JSON size of `value`, or refuses with the JSON-RPC error (-32008) naming `what`.
    pub fn charge(&self, value: &impl Serialize, what: impl FnOnce() -> String) -> Result<(), ErrorObjectOwned> {
        self.take(json_size(value)).map_err(|exhausted| self.refusal(&what(), exhausted))
    }

    /// The error for a charge this budget could not cover.
    pub fn refusal(&self, what: &str, exhausted: Exhausted) -> ErrorObjectOwned {
        let Exhausted { wanted, remaining } = exhausted;
        error::error(
            error::RESPONSE_TOO_LARGE,
            format!(
                "response too large: {what} is {wanted} bytes of JSON, and only {remaining} of this request's \
                 {limit}-byte budget (rpc.max_response_bytes, shared by the calls of a batch) are left; ask for \
                 less, or in separate requests",
                limit = self.limit
            ),
        )
    }
}

/// The size of `value` as JSON, counted without building it.
pub fn json_size(value: &(impl Serialize + ?Sized)) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and the API's types always serialise.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_those_of_the_json() {
        let value = serde_json::json!({"a": [1, 2, 3], "b": "0xff"});
        assert_eq!(json_size(&value), serde_json::to_vec(&value).expect("json").len());
    }

    #[test]
    fn a_charge_over_what_is_left_takes_the_rest_and_fails() {
        let budget = ResponseBudget::new(100);
        let shared = budget.clone();
        assert_eq!(budget.take(60), Ok(()));
        assert_eq!(shared.remaining(), 40);
        assert_eq!(shared.take(41), Err(Exhausted { wanted: 41, remaining: 40 }));
        assert!(budget.is_exhausted());
        assert_eq!(budget.take(0), Ok(()));
        assert_eq!(budget.take(1), Err(Exhausted { wanted: 1, remaining: 0 }));
    }

    #[test]
    fn a_batch_sets_aside_each_call_envelope() {
        let ids = [Id::Number(1), Id::Str("abc".into())];
        let budget = ResponseBudget::for_calls(10_000, ids.iter());
        assert_eq!(budget.remaining(), 10_000 - 2 - (1 + CALL_ENVELOPE_BYTES) - (5 + CALL_ENVELOPE_BYTES));
        assert!(ResponseBudget::for_calls(10, ids.iter()).is_exhausted());
    }
}
