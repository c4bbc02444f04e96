//! Wire and disk formats: golden bytes (a format change must be deliberate), round trips, and
//! decoding arbitrary bytes never panics.

mod common;

use common::{chain_id, key, tx};
use consensus::{CommitCertificate, Digest};
use ledger::{
    Account, Address, Block, BlockHeader, Failure, Payload, Receipt, Role, Roles, SignedTransaction, TxError,
    ValidatorInfo, ValidatorSchedule,
};
use proptest::prelude::*;

fn sample_header() -> BlockHeader {
    BlockHeader {
        chain_id: chain_id(),
        height: 7,
        previous_hash: Digest([1; 32]),
        timestamp_ms: 1_700_000_000_123,
        proposer: key(1).public_key(),
        tx_root: Digest([2; 32]),
        receipts_root: Digest([3; 32]),
        state_root: Digest([4; 32]),
        validator_set_digest: Digest([5; 32]),
    }
}

/// Hex of the sha3 of the encoding: one line per type pins every byte.
fn fingerprint<T: borsh::BorshSerialize>(value: &T) -> String {
    Digest::of(&borsh::to_vec(value).expect("encode")).to_string()
}

#[test]
fn golden_transaction() {
    let signed = tx(&key(1), 3, Payload::Transfer { to: Address([9; 20]), amount: 1_000 });
    let bytes = signed.encode();
    // chain id (4 + 10), signer 32, nonce 8, payload tag 1 + address 20 + amount 8, signature 64.
    assert_eq!(bytes.len(), 14 + 32 + 8 + 1 + 20 + 8 + 64);
    assert_eq!(&bytes[46..55], &[3, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(signed.hash(), Digest::of(&bytes));
    assert_eq!(fingerprint(&signed), GOLDEN_TRANSACTION);
}

#[test]
fn golden_header_receipt_account_schedule() {
    assert_eq!(sample_header().hash().to_string(), GOLDEN_HEADER);
    let receipt =
        Receipt { tx_hash: Digest([6; 32]), failure: Some(Failure::InsufficientBalance { balance: 1, needed: 2 }) };
    assert_eq!(fingerprint(&receipt), GOLDEN_RECEIPT);
    let account = Account { balance: 5, nonce: 6, roles: Roles::of(&[Role::Transact, Role::Admin]) };
    assert_eq!(hex::encode(borsh::to_vec(&account).expect("encode")), "0500000000000000060000000000000009");
    let schedule = ValidatorSchedule::starting(
        0,
        vec![ValidatorInfo { name: "v0".into(), public_key: key(1).public_key(), peer_id: "peer".into() }],
    );
    assert_eq!(fingerprint(&schedule), GOLDEN_SCHEDULE);
}

const GOLDEN_TRANSACTION: &str = "0x05827d229987c62b21ed4835c6e049e7ce1cbf40ab4ac2d830d07068782a6ec1";
const GOLDEN_HEADER: &str = "0xab00e910cbbf970485ecfb8b5a7bb49a4f3b4791a102148f13cf69ed3148f531";
const GOLDEN_RECEIPT: &str = "0xbb3c13ddfeab5b4d7319d7d9b9b95a837fa35e8ee5a35f399f218421b9dfc709";
const GOLDEN_SCHEDULE: &str = "0xa107ad4f03d462a7f51656e08561d1a6189423fffc1b6dcbe715046384dac533";

#[test]
fn decoding_refuses_oversized_and_trailing_bytes() {
    let signed = tx(&key(1), 0, Payload::DeleteRecord { key: b"k".to_vec() });
    let mut bytes = signed.encode();
    assert_eq!(SignedTransaction::decode(&bytes, bytes.len()), Ok(signed));
    assert_eq!(
        SignedTransaction::decode(&bytes, bytes.len() - 1),
        Err(TxError::TooLarge { size: bytes.len(), max: bytes.len() - 1 })
    );
    bytes.push(0);
    assert!(matches!(SignedTransaction::decode(&bytes, 1 << 20), Err(TxError::Malformed(_))));
}

fn payload_strategy() -> impl Strategy<Value = Payload> {
    let address = any::<[u8; 20]>().prop_map(Address);
    let role = prop::sample::select(Role::ALL.to_vec());
    prop_oneof![
        (address.clone(), any::<u64>()).prop_map(|(to, amount)| Payload::Transfer { to, amount }),
        (address.clone(), any::<u64>()).prop_map(|(to, amount)| Payload::Mint { to, amount }),
        (prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(key, value)| Payload::PutRecord { key, value }),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|key| Payload::DeleteRecord { key }),
        (address.clone(), role.clone()).prop_map(|(account, role)| Payload::GrantRole { account, role }),
        (address, role).prop_map(|(account, role)| Payload::RevokeRole { account, role }),
        (1u64..50).prop_map(|seed| Payload::RemoveValidator { public_key: key(seed).public_key() }),
        (1u64..50, "[a-z0-9]{1,20}").prop_map(|(seed, name)| Payload::AddValidator {
            validator: ValidatorInfo { name: name.clone(), public_key: key(seed).public_key(), peer_id: name },
        }),
    ]
}

proptest! {
    #[test]
    fn transactions_round_trip(payload in payload_strategy(), nonce in any::<u64>(), seed in 1u64..20) {
        let signed = tx(&key(seed), nonce, payload);
        let decoded = SignedTransaction::decode(&signed.encode(), 1 << 20).expect("decodes");
        prop_assert_eq!(&decoded, &signed);
        prop_assert!(decoded.verify_signature().is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedTransaction::decode(&bytes, 1 << 20);
        let _ = borsh::from_slice::<Block>(&bytes);
        let _ = borsh::from_slice::<BlockHeader>(&bytes);
        let _ = borsh::from_slice::<CommitCertificate>(&bytes);
        let _ = borsh::from_slice::<Receipt>(&bytes);
        let _ = borsh::from_slice::<Account>(&bytes);
        let _ = borsh::from_slice::<ValidatorSchedule>(&bytes);
    }

    #[test]
    fn mutated_transactions_never_panic_and_never_verify_as_the_original(
        flip in any::<prop::sample::Index>(), bit in 0u8..8,
    ) {
        let signed = tx(&key(1), 1, Payload::PutRecord { key: b"key".to_vec(), value: b"value".to_vec() });
        let mut bytes = signed.encode();
        let index = flip.index(bytes.len());
        bytes[index] ^= 1 << bit;
        if let Ok(decoded) = SignedTransaction::decode(&bytes, 1 << 20) {
            prop_assert!(decoded.verify_signature().is_err() || decoded == signed);
        }
    }
}
