//! What the session knows about one connected peer: the four choke/interest flags, what it has,
//! what we asked of it and what it asked of us, and the bytes waiting to go to it.
//! Holds state only; the session decides.

use std::collections::VecDeque;

use crate::bitfield::Bitfield;
use crate::id::PeerId;
use crate::wire::{BlockRef, Decoder, ExtendedHandshake};

use super::rate::RateMeter;
use super::rewards::PeerReward;

/// What a peer said it has before we knew the torrent's piece count (magnet downloads).
#[derive(Debug, Clone, Default)]
pub(crate) enum EarlyHave {
    #[default]
    Nothing,
    All,
    Bitfield(Vec<u8>),
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub decoder: Decoder,
    pub outbox: Vec<u8>,
    pub handshake_done: bool,
    pub peer_id: Option<PeerId>,
    pub fast: bool,
    pub extended: Option<ExtendedHandshake>,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Valid only once the torrent's metadata is known.
    pub have: Bitfield,
    pub early_have: EarlyHave,
    pub early_haves: Vec<u32>,
    /// Our requests to it, with the time each was sent.
    pub outstanding: Vec<(BlockRef, u64)>,
    /// Its requests to us, served in order by `Session::transmit`.
    pub incoming: VecDeque<BlockRef>,
    pub allowed_fast: Vec<u32>,
    /// Metadata pieces we asked it for.
    pub metadata_requests: Vec<u32>,
    pub download: RateMeter,
    pub upload: RateMeter,
    /// When its last complete frame arrived: bytes alone do not count, so a peer trickling a
    /// message a byte at a time is as idle as a silent one.
    pub last_recv_ms: u64,
    pub last_sent_ms: u64,
    pub hash_failures: u32,
    pub connected_ms: u64,
    /// When it last sent us a block we asked for (snub detection).
    pub last_block_ms: u64,
    pub snubbed: bool,
    /// When we last unchoked it (seed-mode rotation).
    pub unchoked_since_ms: u64,
    /// Smoothed request-to-block time.
    pub rtt_ms: u64,
    /// Receipts owed and received (docs/receipts.md).
    pub reward: PeerReward,
    /// Block requests we ever sent it, and blocks it sent that were not (or no longer)
    /// outstanding: an honest peer's stale blocks (after a cancel or a choke) never outnumber
    /// our requests.
    pub requests_sent: u64,
    pub unrequested_blocks: u64,
}

impl Peer {
    pub fn new(max_message_len: u32, now_ms: u64) -> Peer {
        Peer {
            decoder: Decoder::new(max_message_len),
            outbox: Vec::new(),
            handshake_done: false,
            peer_id: None,
            fast: false,
            extended: None,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            have: Bitfield::new(0),
            early_have: EarlyHave::Nothing,
            early_haves: Vec::new(),
            outstanding: Vec::new(),
            incoming: VecDeque::new(),
            allowed_fast: Vec::new(),
            metadata_requests: Vec::new(),
            download: RateMeter::default(),
            upload: RateMeter::default(),
            last_recv_ms: now_ms,
            last_sent_ms: now_ms,
            hash_failures: 0,
            connected_ms: now_ms,
            last_block_ms: now_ms,
            snubbed: false,
            unchoked_since_ms: 0,
            rtt_ms: 0,
            reward: PeerReward::default(),
            requests_sent: 0,
            unrequested_blocks: 0,
        }
    }

    /// The message id the peer wants for an extension, from its extended handshake.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extended
            .as_ref()?
            .m
            .get(name)
            .copied()
            .filter(|&id| id != 0)
    }

    pub fn has_requested(&self, block: &BlockRef) -> bool {
        self.outstanding.iter().any(|(b, _)| b == block)
    }
}
