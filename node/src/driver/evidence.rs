//! Evidence of misbehaviour: two conflicting votes one validator signed, as the core reports
//! them. Each distinct piece (one per height, view, vote kind and validator) is saved once in
//! the store, and only the latest [`EVIDENCE_MAX`] are kept, so a validator that equivocates at
//! every height cannot fill the disk; `chain_getEvidence` serves them, also after a restart.
//!
//! The votes are kept as signed, so the evidence proves itself to anyone holding the validator
//! set: no node has to be trusted about what it saw.

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{PublicKey, SignedVote};
use ledger::{
    LocalRecords, StoreError,
    store::{StoredKey, schema},
};
use rpc::EvidenceRecord;

pub use rpc::api::EVIDENCE_MAX;

/// The stored form. An enum, so a later version can add fields and still read these.
#[derive(BorshSerialize, BorshDeserialize)]
enum Stored {
    V1 { public_key: PublicKey, first: SignedVote, second: SignedVote, seen_at_ms: u64, peer: Option<String> },
}

/// The store key of a piece of evidence: one per (height, view, kind, validator).
fn key(record: &EvidenceRecord) -> [u8; 21] {
    let vote = record.first.vote;
    schema::evidence_key(vote.height, vote.view, vote.kind as u8, record.first.validator)
}

/// Saves a piece of evidence unless the store holds one for the same height, view, kind and
/// validator; returns whether it is new.
pub fn save(store: &impl LocalRecords, record: &EvidenceRecord) -> Result<bool, StoreError> {
    let stored = Stored::V1 {
        public_key: record.public_key,
        first: record.first,
        second: record.second,
        seen_at_ms: record.seen_at_ms,
        peer: record.peer.clone(),
    };
    let bytes = borsh::to_vec(&stored).expect("encoding to a Vec cannot fail");
    store.save_evidence(&key(record), &bytes, EVIDENCE_MAX)
}

/// Every saved piece, oldest height first.
pub fn load(store: &impl LocalRecords) -> Result<Vec<EvidenceRecord>, StoreError> {
    store
        .evidence()?
        .iter()
        .map(|bytes| {
            let Stored::V1 { public_key, first, second, seen_at_ms, peer } =
                borsh::from_slice(bytes).map_err(|error| StoreError::Undecodable {
                    column: schema::EVIDENCE,
                    key: StoredKey::Name("evidence"),
                    error: error.into(),
                })?;
            Ok(EvidenceRecord { public_key, first, second, seen_at_ms, peer })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use consensus::{ChainId, Digest, SigningKey, Vote, VoteKind};
    use ledger::{Genesis, Params, RocksStore, StoreOptions, ValidatorInfo};

    use super::*;

    fn store(dir: &std::path::Path) -> RocksStore {
        let key = SigningKey::from_seed([1; 32]);
        let genesis = Genesis {
            chain_id: ChainId::new("evidence").expect("chain id"),
            genesis_time_ms: 1,
            validators: vec![ValidatorInfo { name: "v".into(), public_key: key.public_key(), peer_id: "p".into() }],
            accounts: Vec::new(),
            params: Params::default(),
        };
        RocksStore::open(dir, &genesis, StoreOptions::default()).expect("store")
    }

    fn record(height: u64, kind: VoteKind, digests: (u8, u8)) -> EvidenceRecord {
        let key = SigningKey::from_seed([7; 32]);
        let chain = ChainId::new("evidence").expect("chain id");
        let vote = |digest: u8| {
            let vote = Vote { kind, height, view: 2, digest: Digest([digest; 32]) };
            SignedVote::sign(&chain, vote, 3, &key)
        };
        EvidenceRecord {
            public_key: key.public_key(),
            first: vote(digests.0),
            second: vote(digests.1),
            seen_at_ms: 1_700_000_000_000 + height,
            peer: Some("12D3KooW".into()),
        }
    }

    #[test]
    fn saves_each_distinct_piece_once_and_reads_it_back_after_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(dir.path());
        let prepare = record(5, VoteKind::Prepare, (1, 2));
        assert!(save(&store, &prepare).expect("save"));
        // The same conflict seen again (a third vote, or the same one by another path).
        assert!(!save(&store, &record(5, VoteKind::Prepare, (1, 3))).expect("save"));
        let commit = record(5, VoteKind::Commit, (1, 2));
        assert!(save(&store, &commit).expect("save"));
        let earlier = record(4, VoteKind::PrePrepare, (8, 9));
        assert!(save(&store, &earlier).expect("save"));
        drop(store);
        let store = self::store(dir.path());
        assert_eq!(load(&store).expect("load"), vec![earlier, prepare, commit]);
    }

    #[test]
    fn keeps_only_the_latest_heights() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(dir.path());
        let bytes = |height: u64| borsh::to_vec(&height).expect("encode");
        let save_raw = |height: u64| {
            let key = schema::evidence_key(height, 0, 1, 0);
            store.save_evidence(&key, &bytes(height), 3).expect("save")
        };
        for height in [10, 11, 12, 13] {
            assert!(save_raw(height));
        }
        // Older than everything kept: not stored.
        assert!(!save_raw(9));
        assert!(save_raw(20));
        let kept: Vec<u64> =
            store.evidence().expect("read").iter().map(|bytes| borsh::from_slice(bytes).expect("decode")).collect();
        assert_eq!(kept, vec![12, 13, 20]);
    }
}
