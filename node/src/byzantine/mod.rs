//! A validator that misbehaves on purpose, for the Byzantine tests. Compiled only with the
//! `byzantine` feature, which only test builds enable (node's self dev-dependency): a release
//! build has none of this code.
//!
//! `STELE_BYZANTINE=equivocate,double-vote,garbage,oversized,bad-signature,replay,tamper-body,far-future,lie-sync`
//! (or `all`) chooses the behaviours at start. The driver knows nothing of them: [`Byzantine`]
//! is a [`Network`](crate::driver::Network) wrapped around the real one, so the honest driver
//! and core keep running (the validator still takes part and its lies look like its honest
//! messages) and the lies are added where messages leave the node. Each consensus broadcast
//! reaches the wrapper as the gossip the driver publishes last, after the direct copies to each
//! validator, and each body the node serves as an answer it sends (`outbound`). What the lies
//! need of incoming traffic (messages to replay, leaders' proposals to re-gossip) comes from a
//! tap on the inbound consensus events, which shows the wrapper each event before the driver
//! gets it (`inbound`, [`Byzantine::tap`]); what they need of the chain (head, validator set,
//! state to build blocks on) the wrapper reads from the store itself, and it signs with the key
//! it is given.
//!
//! The behaviours:
//! - `equivocate`: as leader, a second, different block (same transactions, another timestamp)
//!   proposed for the same height and view;
//! - `double-vote`: each PREPARE and COMMIT followed by a second one for another digest;
//! - `garbage`: random bytes on both gossip topics;
//! - `oversized`: gossip and a direct message just under this node's own size limit (run it
//!   with a larger `network.max_message_bytes` than its peers so they must refuse them);
//! - `bad-signature`: its votes with a flipped signature bit, and votes claiming another
//!   validator's index signed by a key outside the set;
//! - `replay`: messages of earlier heights (its own and those it received) sent again;
//! - `tamper-body`: another leader's true header with another body, both when it answers a
//!   body fetch and when it re-gossips that leader's signed proposal (its peers must blame it,
//!   not the proposal);
//! - `far-future`: for views it leads far past the current one (and for views just ahead),
//!   signed PRE-PREPAREs and unjustified NEW-VIEWs carrying blocks, to fill its peers' tables
//!   of proposals and so force fetches that `tamper-body` answers;
//! - `lie-sync`: to block sync, the head `u64::MAX` and an empty answer to every range. Block
//!   sync is served by the network task (`p2p::serve`), which never goes through the driver's
//!   network, so that task acts on it itself ([`lies_in_sync`]).

mod inbound;
mod outbound;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use consensus::{ChainId, Digest, Message, SigningKey, ValidatorSet};
use ledger::{Address, Block, BlockHeader, Payload, StateHistory, StoreError, Transaction};
use libp2p::PeerId;
use tracing::{error, warn};

use crate::driver::{Network, Now};

/// The variable that chooses the behaviours.
pub const ENV: &str = "STELE_BYZANTINE";

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Two proposals for one height and view.
    Equivocate,
    /// Two PREPAREs or COMMITs for one height and view.
    DoubleVote,
    /// Random bytes as gossip.
    Garbage,
    /// Messages over the peers' size limit.
    Oversized,
    /// Wrong signatures, and signatures by a key outside the set.
    BadSignature,
    /// Messages of earlier heights again.
    Replay,
    /// The true header with another body, served and re-gossiped.
    TamperBody,
    /// Proposals for views far ahead (and just ahead), to fill the peers' tables.
    FarFuture,
    /// In block sync, claims the highest possible head and answers every range with nothing
    /// (acted on by the serving task, `p2p::serve`).
    LieSync,
}

impl Behaviour {
    const ALL: [(&'static str, Behaviour); 9] = [
        ("equivocate", Behaviour::Equivocate),
        ("double-vote", Behaviour::DoubleVote),
        ("garbage", Behaviour::Garbage),
        ("oversized", Behaviour::Oversized),
        ("bad-signature", Behaviour::BadSignature),
        ("replay", Behaviour::Replay),
        ("tamper-body", Behaviour::TamperBody),
        ("far-future", Behaviour::FarFuture),
        ("lie-sync", Behaviour::LieSync),
    ];
}

/// [`ENV`] is misconfigured: the node refuses to start rather than behave otherwise than asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name that is no behaviour.
    #[error("{ENV}: unknown behaviour {name:?} (known: all, {known})", known = known_names())]
    UnknownBehaviour {
        /// The name as given.
        name: String,
    },
}

fn known_names() -> String {
    Behaviour::ALL.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// The behaviours [`ENV`] names (`None` when it is unset or names none).
pub fn from_env() -> Result<Option<HashSet<Behaviour>>, Error> {
    let Ok(names) = std::env::var(ENV) else { return Ok(None) };
    let behaviours = parse(&names)?;
    Ok(Some(behaviours).filter(|behaviours| !behaviours.is_empty()))
}

/// Whether [`ENV`] names `lie-sync` (or `all`): the serving task then lies to syncing peers.
/// A misconfigured [`ENV`] lies about nothing here: [`from_env`] stops the node at start.
pub(crate) fn lies_in_sync() -> bool {
    std::env::var(ENV)
        .ok()
        .and_then(|names| parse(&names).ok())
        .is_some_and(|behaviours| behaviours.contains(&Behaviour::LieSync))
}

/// The behaviours a comma-separated list names (`all` for every one).
fn parse(names: &str) -> Result<HashSet<Behaviour>, Error> {
    let mut behaviours = HashSet::new();
    for name in names.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        if name == "all" {
            behaviours.extend(Behaviour::ALL.iter().map(|(_, behaviour)| *behaviour));
            continue;
        }
        match Behaviour::ALL.iter().find(|(known, _)| *known == name) {
            Some((_, behaviour)) => behaviours.insert(*behaviour),
            None => return Err(Error::UnknownBehaviour { name: name.to_string() }),
        };
    }
    Ok(behaviours)
}

/// Logs at start what this build is, loudly: a node that misbehaves must never pass unnoticed.
pub fn announce(behaviours: Option<&HashSet<Behaviour>>) {
    match behaviours {
        Some(behaviours) => {
            let mut names: Vec<&str> = Behaviour::ALL
                .iter()
                .filter(|(_, behaviour)| behaviours.contains(behaviour))
                .map(|(name, _)| *name)
                .collect();
            names.sort_unstable();
            error!(behaviours = %names.join(","), "BYZANTINE TEST BUILD: this validator misbehaves on purpose");
        }
        None => warn!("Byzantine test build (feature `byzantine`): {ENV} is unset, so this node behaves"),
    }
}

/// The same header with another body: the last transaction dropped, or, for an empty block,
/// one signed by `outsider` added. The header hash is unchanged, so only the body check
/// (`tx_root`) can tell.
pub(crate) fn tamper(block: &Block, outsider: &SigningKey) -> Block {
    let mut tampered = block.clone();
    if tampered.transactions.pop().is_none() {
        let payload = Payload::Transfer { to: Address([0; 20]), amount: 1 };
        let transaction =
            Transaction { chain_id: block.header.chain_id.clone(), signer: outsider.public_key(), nonce: 0, payload };
        tampered.transactions.push(transaction.sign(outsider));
    }
    tampered
}

/// Messages kept for replay.
const REPLAY_KEPT: usize = 512;
/// Second blocks (`equivocate`) kept to serve, at most.
const OWN_BLOCKS_MAX: usize = 16;

/// The network of a validator that misbehaves: every request is passed to the real network
/// `N`, and the lies the chosen behaviours call for are added (see the module's comment).
/// Build it with [`Byzantine::new`] and hand the driver's inbound events through
/// [`Byzantine::tap`].
pub struct Byzantine<N, S> {
    inner: N,
    shared: Arc<Shared<S>>,
}

impl<N: Clone, S> Clone for Byzantine<N, S> {
    fn clone(&self) -> Self {
        Byzantine { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

/// What the wrapper on the driver's task and its tap on the inbound events share.
struct Shared<S> {
    behaviours: HashSet<Behaviour>,
    chain_id: ChainId,
    /// This node's consensus key: its lies are signed as its honest messages are.
    key: SigningKey,
    /// A key outside every validator set, for impersonation and tampered bodies.
    outsider: SigningKey,
    /// Feeds the pseudo-random bytes (no RNG dependency for a test feature).
    seed: u64,
    store: Arc<S>,
    state: Mutex<State>,
}

/// What the behaviours remember between messages.
#[derive(Default)]
struct State {
    counter: u64,
    /// Recent messages (sent and received), replayed once their height is past.
    seen: VecDeque<Message>,
    last_oversized: Option<Instant>,
    /// Second blocks it proposed, by hash, served to peers that fetch them: the driver never
    /// saw them, so it could not.
    own_blocks: HashMap<Digest, Block>,
    /// The chain as last read, reread when the head moves.
    chain: Option<Arc<Chain>>,
}

/// What the lies need to know of the chain, read from the store.
struct Chain {
    /// The last committed header: the lies are about `head + 1`.
    head: BlockHeader,
    /// The set that certifies `head + 1`.
    validators: ValidatorSet,
    /// The other validators of `head + 1` on the network (as the driver's broadcast reaches them).
    peers: Vec<PeerId>,
}

impl<N: Network, S: StateHistory + Send + Sync + 'static> Byzantine<N, S> {
    /// Wraps `inner` for a validator signing with `key` on `chain_id` over `store`, misbehaving
    /// as `behaviours` say.
    pub fn new(inner: N, store: Arc<S>, chain_id: ChainId, key: SigningKey, behaviours: HashSet<Behaviour>) -> Self {
        let seed = Now::system().unix_ms;
        let outsider = SigningKey::from_seed(Digest::of(&seed.to_le_bytes()).0);
        let shared = Shared { behaviours, chain_id, key, outsider, seed, store, state: Mutex::default() };
        Byzantine { inner, shared: Arc::new(shared) }
    }

    fn on(&self, behaviour: Behaviour) -> bool {
        self.shared.behaviours.contains(&behaviour)
    }

    /// The state; a panic elsewhere while holding it leaves nothing half-done that matters here.
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chain at the store's head (`None`, and the lies skipped, if the store cannot say).
    fn chain(&self) -> Option<Arc<Chain>> {
        let read = || -> Result<Arc<Chain>, StoreError> {
            let store = self.shared.store.as_ref();
            let head = store.head()?;
            if let Some(chain) = self.state().chain.as_ref().filter(|chain| chain.head.height == head.height) {
                return Ok(chain.clone());
            }
            let next = head.height + 1;
            let validators = store.validator_set_for(next)?;
            let me = self.inner.local_peer_id();
            let peers = store
                .validator_schedule_at(head.height)?
                .validators_at(next)
                .iter()
                .filter_map(|info| info.peer_id.parse::<PeerId>().ok())
                .filter(|peer| *peer != me)
                .collect();
            let chain = Arc::new(Chain { head, validators, peers });
            self.state().chain = Some(chain.clone());
            Ok(chain)
        };
        read().inspect_err(|error| warn!(%error, "byzantine: cannot read the chain; no lies this time")).ok()
    }

    /// Keeps a message for `replay`.
    fn remember(&self, state: &mut State, message: &Message) {
        if self.on(Behaviour::Replay) {
            if state.seen.len() >= REPLAY_KEPT {
                state.seen.pop_front();
            }
            state.seen.push_back(message.clone());
        }
    }
}

impl State {
    /// `len` pseudo-random bytes.
    fn bytes(&mut self, seed: u64, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 32);
        while bytes.len() < len {
            self.counter += 1;
            bytes.extend_from_slice(&Digest::of_parts(&[&seed.to_le_bytes(), &self.counter.to_le_bytes()]).0);
        }
        bytes.truncate(len);
        bytes
    }

    fn digest(&mut self, seed: u64) -> Digest {
        Digest::of(&self.bytes(seed, 32))
    }

    /// Keeps a second block to serve, and none of a height already committed.
    fn keep_own(&mut self, block: Block, head: &BlockHeader) {
        self.own_blocks.retain(|_, kept| kept.header.height > head.height);
        if self.own_blocks.len() >= OWN_BLOCKS_MAX
            && let Some(oldest) = self.own_blocks.values().min_by_key(|kept| kept.header.timestamp_ms).map(Block::hash)
        {
            self.own_blocks.remove(&oldest);
        }
        self.own_blocks.insert(block.hash(), block);
    }
}

#[cfg(test)]
#[path = "byzantine_test.rs"]
mod tests;
