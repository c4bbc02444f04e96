//! `consensus_message`: bytes as a `consensus::Message` (`Message::decode`, what a peer sends
//! directly). Verified the way the driver does (node/src/driver/gossip.rs `verify`: heights above
//! head + 1 ignored, older ones checked against their own set), and a verified message is fed to
//! replicas of the next height, which must neither panic nor decide on a certificate that does
//! not verify.

use consensus::{Config, Input, Message, Output, Replica, SafetyState, Verified};
use ledger::StateHistory;

use super::{
    Depth,
    fixture::{COMMITTED, Fixture},
};

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let Ok(message) = Message::decode(data) else { return Depth::Undecodable };
    assert_eq!(message.encode(), data, "a decoded message re-encodes to other bytes");
    match check(message) {
        Some(_) => Depth::Accepted,
        None => Depth::Rejected,
    }
}

/// Verifies a decoded message like the driver and, if it is for the next height, hands it to a
/// replica of each validator of that height. Shared with the p2p target.
pub fn check(message: Message) -> Option<Verified<Message>> {
    let fixture = Fixture::get();
    let height = message.height();
    let _ = message.sender();
    if height > COMMITTED + 1 {
        return None;
    }
    let validators = fixture.store.validator_set_for(height.max(1)).expect("the fixture knows every set");
    let verified = message.verify(&fixture.chain_id, &validators).ok()?;
    if height != COMMITTED + 1 {
        return Some(verified);
    }
    let previous = fixture.blocks.last().map(|block| block.certificate.clone());
    for member in validators.members() {
        let mut replica = Replica::new(Config {
            chain_id: fixture.chain_id.clone(),
            key: fixture.signing_key(member).clone(),
            view_timeout_ms: 1_000,
            view_timeout_max_ms: 8_000,
        });
        let _ = replica.handle(Input::Restore(SafetyState::new(height)));
        let _ =
            replica.handle(Input::StartHeight { height, validators: validators.clone(), previous: previous.clone() });
        for output in replica.handle(Input::Message(verified.clone())) {
            if let Output::Decide(certificate) = output {
                certificate
                    .verify(&fixture.chain_id, &validators, height, &certificate.digest)
                    .expect("a replica decides only with a certificate that verifies");
            }
        }
    }
    Some(verified)
}
