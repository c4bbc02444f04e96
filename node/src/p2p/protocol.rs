//! What nodes send each other: gossip payloads and the request-response protocol, with a borsh
//! codec that refuses anything over the configured size before decoding it.

use std::io;

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{CommitCertificate, Digest, Height, Message};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ledger::{Block, BlockHeader, CertifiedBlock};
use libp2p::StreamProtocol;

/// The request-response protocol (block sync, proposal fetch and direct consensus messages).
pub const REQUEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/stele/request/1");

/// Most blocks one sync response carries (fewer if they exceed the message size limit).
pub const SYNC_BATCH_MAX: u32 = 256;

/// A payload on the consensus gossip topic.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ConsensusGossip {
    /// A consensus message on its own.
    Message(Message),
    /// A proposal (PRE-PREPARE or NEW-VIEW) with the block its digest names, so validators can
    /// execute it; the signed proposal is what makes the block worth forwarding.
    Proposal {
        /// The PRE-PREPARE or NEW-VIEW.
        message: Message,
        /// The block whose header hash the proposal names.
        block: Box<Block>,
    },
}

impl ConsensusGossip {
    /// The encoded form.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding to a Vec cannot fail")
    }
}

/// A payload on the transaction gossip topic: encoded transactions admitted by the sender.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxGossip(pub Vec<Vec<u8>>);

/// A request to one peer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// The peer's head height.
    Status,
    /// Certified blocks from `from` on, at most `count` (and at most [`SYNC_BATCH_MAX`]).
    Blocks {
        /// First height wanted.
        from: Height,
        /// How many.
        count: u32,
    },
    /// A proposed (maybe not yet committed) block, body included, by its header hash.
    Body(Digest),
    /// A consensus message meant for this peer alone.
    Consensus(Box<Message>),
    /// The peer's certified head, and its certified header at `at` (a height both hold), to
    /// compare chains ([`crate::agreement`]).
    CertifiedHeads {
        /// The common height asked for.
        at: Height,
    },
}

/// A block header with the certificate that commits it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CertifiedHeader {
    /// The header (its state root is the certified state after the block).
    pub header: BlockHeader,
    /// The commit certificate naming the header's hash.
    pub certificate: CommitCertificate,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Response {
    /// The responder's head height.
    Status {
        /// Height of its last committed block.
        head: Height,
    },
    /// Consecutive certified blocks from the height asked for (empty if it has none).
    Blocks(Vec<CertifiedBlock>),
    /// The block asked for by [`Request::Body`], if the responder has it.
    Body(Option<Box<Block>>),
    /// The message was received.
    Received,
    /// The answer to [`Request::CertifiedHeads`] (`None`: the responder has no such block).
    CertifiedHeads {
        /// The responder's head.
        head: Option<Box<CertifiedHeader>>,
        /// Its block at the height asked for.
        at: Option<Box<CertifiedHeader>>,
    },
}

/// Borsh over a request-response stream: one value per stream, read to its end with a size cap.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    /// Largest request or response accepted, in bytes.
    pub max_bytes: usize,
}

impl Codec {
    async fn read<T: BorshDeserialize, R: AsyncRead + Unpin + Send>(&self, io: &mut R) -> io::Result<T> {
        let mut bytes = Vec::new();
        io.take(self.max_bytes as u64 + 1).read_to_end(&mut bytes).await?;
        if bytes.len() > self.max_bytes {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("message over {} bytes", self.max_bytes)));
        }
        borsh::from_slice(&bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
    }

    async fn write<T: BorshSerialize, W: AsyncWrite + Unpin + Send>(&self, io: &mut W, value: &T) -> io::Result<()> {
        let bytes = borsh::to_vec(value)?;
        if bytes.len() > self.max_bytes {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("message over {} bytes", self.max_bytes)));
        }
        io.write_all(&bytes).await?;
        io.close().await
    }
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Request> {
        self.read(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response> {
        self.read(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()> {
        self.write(io, &request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()> {
        self.write(io, &response).await
    }
}
