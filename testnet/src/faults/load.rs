//! A steady load while faults are injected: a few senders, each submitting one transfer at a
//! time to a randomly chosen node with `tx_submitAndWait`, and recording every transfer a node
//! acknowledged as committed. Those acknowledgements are what the checks hold the network to.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use consensus::{ChainId, Digest, Height, SigningKey};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use ledger::{Address, Payload, Role, Transaction};
use rpc::{
    api::SteleApiClient,
    types::{TxState, to_hex},
};
use tokio::{sync::watch, task::JoinHandle};

use crate::Error;

/// A transfer a node said was committed.
#[derive(Clone, Debug)]
pub struct Acknowledged {
    /// Its hash.
    pub hash: Digest,
    /// The height the node reported.
    pub height: Height,
    /// Which node said so.
    pub node: usize,
}

/// What the load did.
#[derive(Clone, Debug, Default)]
pub struct LoadOutcome {
    /// Transfers acknowledged as committed.
    pub acknowledged: Vec<Acknowledged>,
    /// Submissions that failed or timed out (expected while nodes are down or cut off).
    pub failed: u64,
}

/// The running load; [`Load::stop`] ends it and returns what it recorded.
pub struct Load {
    stop: watch::Sender<bool>,
    senders: Vec<JoinHandle<()>>,
    outcome: Arc<Mutex<LoadOutcome>>,
}

fn client(url: &str, timeout: Duration) -> Result<HttpClient, Error> {
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .build(url)
        .map_err(|error| Error::Launch(format!("{url}: {error}")))
}

fn failed(what: impl std::fmt::Display) -> Error {
    Error::Launch(format!("load: {what}"))
}

/// How long one `tx_submitAndWait` may take before the sender moves on.
const WAIT: Duration = Duration::from_secs(5);

impl Load {
    /// Funds `senders` accounts from `funder` through `urls[0]` (waits for it), then starts
    /// them. `seed` makes the choice of node per submission reproducible.
    pub async fn start(urls: &[String], funder: &SigningKey, senders: usize, seed: u64) -> Result<Load, Error> {
        let setup = client(&urls[0], Duration::from_secs(30))?;
        let chain_id = setup.chain_status().await.map_err(failed)?.chain_id;
        let mut nonce = setup.state_get_account(Address::of(&funder.public_key()), None).await.map_err(failed)?.nonce;
        let keys: Vec<SigningKey> =
            (0..senders).map(|_| SigningKey::generate().map_err(failed)).collect::<Result<_, _>>()?;
        for key in &keys {
            let account = Address::of(&key.public_key());
            for payload in [
                Payload::GrantRole { account, role: Role::Transact },
                Payload::Transfer { to: account, amount: 1_000_000_000 },
            ] {
                let signed = Transaction { chain_id: chain_id.clone(), signer: funder.public_key(), nonce, payload }
                    .sign(funder);
                nonce += 1;
                let status =
                    setup.tx_submit_and_wait(to_hex(&borsh::to_vec(&signed).map_err(failed)?), Some(30_000)).await;
                match status {
                    Ok(status) if status.status == TxState::Committed => {}
                    Ok(status) => return Err(failed(format!("funding a sender: {:?}", status.status))),
                    Err(error) => return Err(failed(format!("funding a sender: {error}"))),
                }
            }
        }
        let (stop, stopped) = watch::channel(false);
        let outcome = Arc::new(Mutex::new(LoadOutcome::default()));
        let clients: Vec<HttpClient> = urls.iter().map(|url| client(url, WAIT)).collect::<Result<_, _>>()?;
        let senders = keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                let sender = Sender {
                    chain_id: chain_id.clone(),
                    key,
                    clients: clients.clone(),
                    rng: fastrand::Rng::with_seed(seed.wrapping_add(index as u64)),
                    outcome: outcome.clone(),
                };
                tokio::spawn(sender.run(stopped.clone()))
            })
            .collect();
        Ok(Load { stop, senders, outcome })
    }

    /// Transfers acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.outcome.lock().map(|outcome| outcome.acknowledged.len()).unwrap_or(0)
    }

    /// Stops every sender (each finishes its current submission) and returns the record.
    pub async fn stop(self) -> LoadOutcome {
        let _ = self.stop.send(true);
        for sender in self.senders {
            let _ = sender.await;
        }
        self.outcome.lock().map(|outcome| outcome.clone()).unwrap_or_default()
    }
}

struct Sender {
    chain_id: ChainId,
    key: SigningKey,
    clients: Vec<HttpClient>,
    rng: fastrand::Rng,
    outcome: Arc<Mutex<LoadOutcome>>,
}

impl Sender {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let address = Address::of(&self.key.public_key());
        let recipient = Address::of(&SigningKey::from_seed([0xfa; 32]).public_key());
        let mut nonce = None;
        let mut amount = 0;
        while !*stopped.borrow() {
            let node = self.rng.usize(..self.clients.len());
            let client = &self.clients[node];
            // After a failure the transfer may still commit later: ask the chain for the nonce.
            let current = match nonce {
                Some(nonce) => nonce,
                None => match client.state_get_account(address, None).await {
                    Ok(account) => account.nonce,
                    Err(_) => {
                        self.pause(&mut stopped).await;
                        continue;
                    }
                },
            };
            amount += 1;
            let payload = Payload::Transfer { to: recipient, amount };
            let signed =
                Transaction { chain_id: self.chain_id.clone(), signer: self.key.public_key(), nonce: current, payload }
                    .sign(&self.key);
            let Ok(encoded) = borsh::to_vec(&signed) else { return };
            let result = tokio::select! {
                result = client.tx_submit_and_wait(to_hex(&encoded), Some(WAIT.as_millis() as u64)) => result,
                _ = stopped.changed() => return,
            };
            match result {
                Ok(status) if status.status == TxState::Committed => {
                    nonce = Some(current + 1);
                    if let (Ok(mut outcome), Some(height)) = (self.outcome.lock(), status.height) {
                        outcome.acknowledged.push(Acknowledged { hash: status.hash, height, node });
                    }
                }
                _ => {
                    nonce = None;
                    if let Ok(mut outcome) = self.outcome.lock() {
                        outcome.failed += 1;
                    }
                    self.pause(&mut stopped).await;
                }
            }
        }
    }

    async fn pause(&mut self, stopped: &mut watch::Receiver<bool>) {
        let _ = tokio::time::timeout(Duration::from_millis(200), stopped.changed()).await;
    }
}
