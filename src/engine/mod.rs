//! The sans-IO torrent session: one torrent, many peers. Bytes from peers go in with
//! `peer_data`, bytes for peers come out of `transmit`, happenings come out of `poll_event`, and
//! time comes in as milliseconds with every call. It verifies every piece's SHA-1 before it is
//! stored, fetches the info dictionary over ut_metadata when only the info-hash is known, and
//! serves what it has. It never touches sockets, clocks or randomness of its own.

mod choker;
mod peer;
mod picker;
mod rate;
mod rewards;
mod webseed;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;

use sha1::{Digest, Sha1};

use crate::bitfield::Bitfield;
use crate::id::{InfoHash, PeerId};
use crate::metainfo::Metainfo;
use crate::receipt::{Receipt, SignedReceipt};
use crate::rng::Rng;
use crate::store::{MemoryStore, PieceStore};
use crate::wire::{
    encode_piece_header, BlockRef, ExtendedHandshake, Frame, Handshake, Message, MetadataAssembler,
    MetadataMsg, MAX_METADATA_SIZE, METADATA_PIECE_SIZE, UT_METADATA_LOCAL_ID,
};

use peer::{EarlyHave, Peer};
use picker::Picker;
pub use rate::RateMeter;
pub use rewards::RewardConfig;
pub use webseed::{
    file_url, is_web_seed_url, piece_requests, web_seed_urls, WebSeedRequest, MAX_WEB_SEEDS,
    MAX_WEB_SEED_URL,
};

/// Pieces read ahead from external storage for one peer's queued requests.
const PREFETCH_PIECES: usize = 4;
/// Piece reads in flight at once, over all peers.
const MAX_LOADING: usize = 16;

/// Stale blocks a peer may send beyond the requests we ever made of it (none should arrive).
const UNREQUESTED_SLACK: u64 = 16;
/// Control messages (rejects, haves, cancels) queued for a peer that is not reading, beyond which
/// it is dropped. Block data is not queued here: `transmit` reads it from storage on demand.
const MAX_CONTROL_BACKLOG: usize = 1 << 20;

/// The driver's name for one connection.
pub type PeerKey = u64;

/// Makes the store for a torrent once its metadata is known.
pub type StoreFactory = Box<dyn FnMut(&Metainfo) -> Box<dyn PieceStore>>;

#[derive(Debug, Clone)]
pub struct Config {
    /// Most block requests in flight to one peer (16 KiB each), whatever its rate.
    pub max_outstanding_requests: usize,
    /// Fewest in flight to an unchoking, non-snubbed peer, before its rate is known.
    pub min_outstanding_requests: usize,
    /// The pipeline holds this much time of the peer's measured rate.
    pub request_queue_time_ms: u64,
    /// Its requests queued at us before we call it abusive and disconnect.
    pub max_peer_requests: usize,
    /// Regular unchoke slots; one optimistic slot comes on top.
    pub unchoke_slots: usize,
    pub rechoke_interval_ms: u64,
    /// The optimistic unchoke moves every this many rechokes.
    pub optimistic_every: u32,
    /// A peer that sends no block for this long while we wait on it is snubbed.
    pub snub_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub keepalive_ms: u64,
    /// A peer silent this long is dropped (keep-alives count).
    pub idle_timeout_ms: u64,
    pub max_message_len: u32,
    /// Hash failures a peer may take part in before it is banned.
    pub max_hash_failures: u32,
    /// Largest single block request we serve; WebTorrent drops peers that ask for more.
    pub max_request_len: u32,
    /// Pieces kept in memory to serve uploads when storage is external (`Event::LoadPiece`).
    pub upload_cache_bytes: usize,
    /// Verified pieces waiting for storage (or for an external hash) beyond which no new
    /// requests go out: memory stays bounded when the disk is slower than the network.
    pub max_unstored_pieces: usize,
    /// When set, complete pieces are not hashed here: the session emits `Event::HashPiece`
    /// and waits for `piece_hashed` (so a browser can use WebCrypto off the main thread).
    pub external_hashing: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_outstanding_requests: 500,
            min_outstanding_requests: 4,
            request_queue_time_ms: 500,
            max_peer_requests: 1_000,
            unchoke_slots: 4,
            rechoke_interval_ms: 10_000,
            optimistic_every: 3,
            snub_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            keepalive_ms: 55_000,
            idle_timeout_ms: 150_000,
            max_message_len: crate::wire::DEFAULT_MAX_MESSAGE_LEN,
            max_hash_failures: 3,
            max_request_len: 128 * 1024,
            external_hashing: false,
            upload_cache_bytes: 16 << 20,
            max_unstored_pieces: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The info dictionary arrived over ut_metadata and matched the info-hash.
    MetadataReady,
    PieceVerified(u32),
    HashFailed {
        piece: u32,
    },
    /// Every piece is verified and stored.
    Done,
    /// The driver must close this connection.
    ClosePeer {
        key: PeerKey,
        reason: String,
    },
    /// The peer finished its handshake.
    PeerReady {
        key: PeerKey,
        peer_id: PeerId,
    },
    /// This peer sent data that failed a hash check: never connect to it again. A
    /// `ClosePeer` for its connection comes with it.
    PeerBanned {
        peer_id: PeerId,
    },
    /// With `Config::external_hashing`: hash `piece_buffer(piece)` and call `piece_hashed`.
    HashPiece {
        piece: u32,
    },
    /// External storage: this verified piece must be written, then `piece_stored` called. Only
    /// after that does the session count it as had and tell peers.
    StorePiece {
        piece: u32,
        data: Vec<u8>,
    },
    /// External storage: peers want blocks of this piece; read it and call `piece_loaded`.
    LoadPiece {
        piece: u32,
    },
    /// External storage failed to keep a piece (quota, I/O): the session is paused.
    StorageFailed {
        piece: u32,
        reason: String,
    },
    /// Rewards: sign `receipt.signing_message()` with our reward key and call
    /// `receipt_signed` (with `None` if signing failed).
    SignReceipt {
        key: PeerKey,
        receipt: Receipt,
    },
    /// Rewards: this peer signed a valid receipt for bytes we uploaded to it. It replaces the
    /// previous one of the same session; the driver keeps it for the ledger.
    ReceiptReceived {
        key: PeerKey,
        receipt: SignedReceipt,
    },
    /// Web seeds (BEP 19): fetch these ranges (in order, each `Range: bytes=start-end`) and
    /// call `web_seed_data` with the bodies concatenated, or the error.
    WebSeedFetch {
        seed: u32,
        piece: u32,
        requests: Vec<WebSeedRequest>,
    },
    /// This web seed is no longer used: its data failed a hash check, or it failed too often.
    WebSeedDropped {
        seed: u32,
        url: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub downloaded: u64,
    pub uploaded: u64,
    pub download_speed: f64,
    pub upload_speed: f64,
    pub num_peers: usize,
    pub verified_bytes: u64,
    pub total_bytes: u64,
    pub progress: f64,
}

pub struct Session {
    info_hash: InfoHash,
    peer_id: PeerId,
    config: Config,
    meta: Option<Metainfo>,
    store: Option<Box<dyn PieceStore>>,
    store_factory: StoreFactory,
    /// The driver keeps the pieces (browser storage): see `Event::StorePiece`/`LoadPiece`.
    external: bool,
    /// Upload cache for external storage: piece -> bytes, least recently used first.
    cache: BTreeMap<u32, Vec<u8>>,
    cache_order: VecDeque<u32>,
    cache_bytes: usize,
    loading: BTreeSet<u32>,
    paused: bool,
    have: Bitfield,
    picker: Picker,
    metadata: Option<MetadataAssembler>,
    peers: BTreeMap<PeerKey, Peer>,
    events: VecDeque<Event>,
    rng: Rng,
    download: RateMeter,
    upload: RateMeter,
    verified_bytes: u64,
    done_reported: bool,
    /// Complete pieces waiting for an external hash.
    hashing: BTreeMap<u32, picker::Partial>,
    /// Blocks of failed pieces: who sent them and their digest, for smart ban.
    suspects: BTreeMap<(u32, u32), (PeerId, [u8; 20])>,
    banned: BTreeSet<PeerId>,
    optimistic: Option<PeerKey>,
    last_rechoke_ms: u64,
    rechoke_round: u32,
    now_ms: u64,
    rewards: Option<RewardConfig>,
    web_seeds: webseed::WebSeeds,
}

impl Session {
    /// A session that knows the torrent; `have` says which pieces `store` already holds.
    pub fn new(
        meta: Metainfo,
        peer_id: PeerId,
        store: Box<dyn PieceStore>,
        have: Bitfield,
        config: Config,
        seed: u64,
    ) -> Session {
        let mut s = Session::empty(meta.info_hash, peer_id, config, seed);
        s.install_metadata(meta, Some(store), have);
        s.done_reported = s.have.is_complete();
        s
    }

    /// A session that knows only the info-hash; it fetches the metadata from peers and then
    /// makes its store with `store_factory`.
    pub fn from_info_hash(
        info_hash: InfoHash,
        peer_id: PeerId,
        store_factory: StoreFactory,
        config: Config,
        seed: u64,
    ) -> Session {
        let mut s = Session::empty(info_hash, peer_id, config, seed);
        s.store_factory = store_factory;
        s
    }

    /// A session whose pieces the driver stores (asynchronous browser storage): verified
    /// pieces come out as `Event::StorePiece`, uploads ask for data with `Event::LoadPiece`.
    /// `have` is what storage already holds.
    pub fn new_external(
        meta: Metainfo,
        peer_id: PeerId,
        have: Bitfield,
        config: Config,
        seed: u64,
    ) -> Session {
        let mut s = Session::empty(meta.info_hash, peer_id, config, seed);
        s.external = true;
        s.install_metadata(meta, None, have);
        s.done_reported = s.have.is_complete();
        s
    }

    /// Knows only the info-hash, fetches the metadata, and leaves storage to the driver.
    pub fn from_info_hash_external(
        info_hash: InfoHash,
        peer_id: PeerId,
        config: Config,
        seed: u64,
    ) -> Session {
        let mut s = Session::empty(info_hash, peer_id, config, seed);
        s.external = true;
        s
    }

    /// What storage already holds, learnt after the session was made (browser storage opens
    /// asynchronously): the metadata if it was stored, and the verified pieces. Call it before
    /// peers connect; it refuses metadata for another torrent or a bitfield of the wrong size.
    pub fn restore(&mut self, meta: Option<Metainfo>, have: Bitfield) -> Result<(), String> {
        if let Some(meta) = meta {
            if meta.info_hash != self.info_hash {
                return Err("stored metadata is for another torrent".into());
            }
            if self.meta.is_none() {
                self.install_metadata(meta, None, Bitfield::new(0));
                self.events.push_back(Event::MetadataReady);
            }
        }
        let Some(meta) = &self.meta else {
            return Ok(());
        };
        if have.len() != meta.info.num_pieces() as usize {
            return Err("stored bitfield does not fit the torrent".into());
        }
        let info = &meta.info;
        self.verified_bytes = have
            .iter_set()
            .map(|i| info.piece_len(i as u32) as u64)
            .sum();
        self.have = have;
        if self.have.is_complete() && !self.done_reported {
            self.done_reported = true;
            self.events.push_back(Event::Done);
            self.reward_complete(self.now_ms);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
        Ok(())
    }

    /// Pieces that a re-check found damaged in storage: no longer had, fetched again.
    pub fn forget_pieces(&mut self, pieces: &[u32]) {
        let Some(meta) = &self.meta else { return };
        for &p in pieces {
            if self.have.get(p as usize) {
                self.have.clear(p as usize);
                self.verified_bytes -= meta.info.piece_len(p) as u64;
                self.cache.remove(&p);
            }
        }
        if !self.have.is_complete() {
            self.done_reported = false;
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
    }

    /// Storage turned out to be unavailable: keep pieces in the session's own memory store.
    /// Only before any piece is had.
    pub fn use_internal_store(&mut self) {
        if !self.external || self.have.count() > 0 {
            return;
        }
        self.external = false;
        if let Some(meta) = &self.meta {
            self.store = Some((self.store_factory)(meta));
        }
    }

    pub fn is_external(&self) -> bool {
        self.external
    }

    /// Stops or restarts all transfer: paused, nobody is unchoked and nothing is requested.
    pub fn set_paused(&mut self, paused: bool) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        if paused {
            for peer in self.peers.values_mut() {
                for (b, _) in peer.outstanding.drain(..) {
                    Message::Cancel(b).encode(&mut peer.outbox);
                    self.picker.cancel_request(&b);
                }
            }
        }
        self.rechoke(true);
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// External storage: the piece from `Event::StorePiece` is written (or not).
    pub fn piece_stored(&mut self, piece: u32, result: Result<(), String>) {
        if !self.picker.verifying.remove(&piece) {
            return;
        }
        match result {
            Ok(()) => {
                let len = self.meta.as_ref().map_or(0, |m| m.info.piece_len(piece));
                self.piece_accepted(piece, len as u64);
            }
            Err(reason) => {
                // What is stored stays as it was; the piece is simply not had.
                self.events
                    .push_back(Event::StorageFailed { piece, reason });
                self.set_paused(true);
            }
        }
    }

    /// External storage: the bytes of a piece asked for with `Event::LoadPiece` (None if the
    /// read failed: the requests for it are refused).
    pub fn piece_loaded(&mut self, piece: u32, data: Option<Vec<u8>>) {
        self.loading.remove(&piece);
        let expected = self.meta.as_ref().map(|m| m.info.piece_len(piece) as usize);
        match data {
            Some(d) if Some(d.len()) == expected && self.have.get(piece as usize) => {
                self.cache_bytes += d.len();
                if let Some(old) = self.cache.insert(piece, d) {
                    self.cache_bytes -= old.len();
                } else {
                    self.cache_order.push_back(piece);
                }
                while self.cache_bytes > self.config.upload_cache_bytes
                    && self.cache_order.len() > 1
                {
                    let Some(old) = self.cache_order.pop_front() else {
                        break;
                    };
                    if let Some(d) = self.cache.remove(&old) {
                        self.cache_bytes -= d.len();
                    }
                }
            }
            _ => {
                for peer in self.peers.values_mut() {
                    let fast = peer.fast;
                    let mut refused = Vec::new();
                    peer.incoming.retain(|r| {
                        let keep = r.index != piece;
                        if !keep {
                            refused.push(*r);
                        }
                        keep
                    });
                    if fast {
                        for r in refused {
                            Message::Reject(r).encode(&mut peer.outbox);
                        }
                    }
                }
            }
        }
    }

    /// Bytes held by the upload cache (external storage).
    /// Bytes the session holds on behalf of peers: their undecoded input, our queued output,
    /// pieces being assembled or hashed, the upload cache. What hostile-peer tests watch stay
    /// bounded.
    pub fn buffered_bytes(&self) -> usize {
        let peers: usize = self
            .peers
            .values()
            .map(|p| p.decoder.buffered() + p.outbox.len() + p.incoming.len() * 12)
            .sum();
        let partials: usize = self.picker.partials.values().map(|p| p.buf.len()).sum();
        let hashing: usize = self.hashing.values().map(|p| p.buf.len()).sum();
        peers + partials + hashing + self.cache_bytes
    }

    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    fn empty(info_hash: InfoHash, peer_id: PeerId, config: Config, seed: u64) -> Session {
        Session {
            info_hash,
            peer_id,
            config,
            meta: None,
            store: None,
            external: false,
            cache: BTreeMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            loading: BTreeSet::new(),
            paused: false,
            store_factory: Box::new(|m: &Metainfo| {
                Box::new(MemoryStore::new(m.info.num_pieces(), m.info.piece_length))
                    as Box<dyn PieceStore>
            }),
            have: Bitfield::new(0),
            picker: Picker::default(),
            metadata: None,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            rng: Rng::new(seed),
            download: RateMeter::default(),
            upload: RateMeter::default(),
            verified_bytes: 0,
            done_reported: false,
            hashing: BTreeMap::new(),
            suspects: BTreeMap::new(),
            banned: BTreeSet::new(),
            optimistic: None,
            last_rechoke_ms: 0,
            rechoke_round: 0,
            now_ms: 0,
            rewards: None,
            web_seeds: webseed::WebSeeds::default(),
        }
    }

    fn install_metadata(
        &mut self,
        meta: Metainfo,
        store: Option<Box<dyn PieceStore>>,
        have: Bitfield,
    ) {
        let n = meta.info.num_pieces();
        let store = if self.external {
            None
        } else {
            Some(store.unwrap_or_else(|| (self.store_factory)(&meta)))
        };
        self.have = if have.len() == n as usize {
            have
        } else {
            Bitfield::new(n as usize)
        };
        self.verified_bytes = self
            .have
            .iter_set()
            .map(|i| meta.info.piece_len(i as u32) as u64)
            .sum();
        self.picker = Picker::new(n);
        self.store = store;
        self.metadata = None;
        self.meta = Some(meta);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.resolve_early_have(key);
        }
    }

    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn metainfo(&self) -> Option<&Metainfo> {
        self.meta.as_ref()
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.meta.is_some() && self.have.is_complete()
    }

    pub fn num_peers(&self) -> usize {
        self.peers.values().filter(|p| p.handshake_done).count()
    }

    /// Bytes still missing, when known.
    pub fn left(&self) -> Option<u64> {
        let meta = self.meta.as_ref()?;
        Some(meta.info.total_length - self.verified_bytes)
    }

    /// Payload bytes sent to peers so far.
    pub fn uploaded(&self) -> u64 {
        self.upload.total()
    }

    /// Payload bytes received from peers so far (including any that later failed a check).
    pub fn downloaded(&self) -> u64 {
        self.download.total()
    }

    /// Refill every peer's request pipeline (after metadata arrives or a piece completes).
    pub fn fill_all_requests(&mut self, now_ms: u64) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(key, now_ms);
        }
        self.fill_web_seeds(now_ms);
    }

    pub fn stats(&mut self, now_ms: u64) -> Stats {
        let total = self.meta.as_ref().map(|m| m.info.total_length).unwrap_or(0);
        Stats {
            downloaded: self.download.total(),
            uploaded: self.upload.total(),
            download_speed: self.download.rate(now_ms),
            upload_speed: self.upload.rate(now_ms),
            num_peers: self.num_peers(),
            verified_bytes: self.verified_bytes,
            total_bytes: total,
            progress: if self.meta.is_none() {
                0.0
            } else if total == 0 {
                1.0
            } else {
                self.verified_bytes as f64 / total as f64
            },
        }
    }

    /// The torrent's bytes in `offset..offset+len`, if all are verified.
    pub fn read(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let meta = self.meta.as_ref()?;
        let store = self.store.as_ref()?;
        let info = &meta.info;
        let end = offset.checked_add(len)?;
        if end > info.total_length {
            return None;
        }
        let mut out = Vec::with_capacity(len as usize);
        let pl = info.piece_length as u64;
        let mut pos = offset;
        while pos < end {
            let index = (pos / pl) as u32;
            let begin = (pos % pl) as u32;
            let take = (end - pos).min(info.piece_len(index) as u64 - begin as u64) as u32;
            if !store.read_block(index, begin, take, &mut out) {
                return None;
            }
            pos += take as u64;
        }
        Some(out)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A connection to a peer of this torrent is open: we speak first with our handshake.
    pub fn peer_connected(&mut self, key: PeerKey, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let mut peer = Peer::new(self.config.max_message_len, now_ms);
        if self.rewards.is_some() {
            // Only then: sessions without rewards keep their random sequence.
            peer.reward.our_session = rewards::new_session_id(&mut self.rng);
        }
        peer.outbox
            .extend_from_slice(&Handshake::new(self.info_hash, self.peer_id).encode());
        self.peers.insert(key, peer);
    }

    pub fn peer_closed(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        for (block, _) in &peer.outstanding {
            self.picker.cancel_request(block);
        }
        if self.meta.is_some() {
            self.picker.remove_bitfield(&peer.have);
        }
        if !peer.am_choking {
            self.rechoke(false);
        }
        if !peer.metadata_requests.is_empty() {
            self.request_metadata_anywhere();
        }
    }

    /// Keys of peers that have bytes waiting for `transmit`.
    pub fn peers_with_output(&self) -> Vec<PeerKey> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.outbox.is_empty() || (!p.incoming.is_empty() && !p.am_choking))
            .map(|(&k, _)| k)
            .collect()
    }

    pub fn peer_keys(&self) -> Vec<PeerKey> {
        self.peers.keys().copied().collect()
    }

    /// Up to about `max` bytes to send to `key` now, or None if nothing is waiting. The data is a
    /// byte stream: one message may be split between two calls.
    pub fn transmit(&mut self, key: PeerKey, max: usize, now_ms: u64) -> Option<Vec<u8>> {
        let peer = self.peers.get_mut(&key)?;
        let mut out = std::mem::take(&mut peer.outbox);
        let mut uploaded = 0u64;
        let mut sent_blocks: Vec<(u32, u32)> = Vec::new();
        if let Some(store) = self.store.as_ref() {
            while out.len() < max && !peer.am_choking {
                let Some(req) = peer.incoming.pop_front() else {
                    break;
                };
                encode_piece_header(req.index, req.begin, req.length, &mut out);
                let header_at = out.len();
                if !store.read_block(req.index, req.begin, req.length, &mut out) {
                    // We advertised the piece, so this is a store failure: undo the header.
                    out.truncate(header_at - 13);
                    continue;
                }
                uploaded += req.length as u64;
                sent_blocks.push((req.index, req.length));
            }
        } else if self.external {
            while out.len() < max && !peer.am_choking {
                let Some(req) = peer.incoming.front().copied() else {
                    break;
                };
                let Some(piece) = self.cache.get(&req.index) else {
                    // Served in order: wait for this piece, and meanwhile load the next few
                    // wanted ones so storage latency overlaps instead of adding up.
                    let mut wanted: Vec<u32> = Vec::new();
                    for r in peer.incoming.iter() {
                        if wanted.len() >= PREFETCH_PIECES {
                            break;
                        }
                        if !self.cache.contains_key(&r.index) && !wanted.contains(&r.index) {
                            wanted.push(r.index);
                        }
                    }
                    for p in wanted {
                        if self.loading.len() < MAX_LOADING && self.loading.insert(p) {
                            self.events.push_back(Event::LoadPiece { piece: p });
                        }
                    }
                    break;
                };
                peer.incoming.pop_front();
                let (b, e) = (req.begin as usize, req.begin as usize + req.length as usize);
                if e > piece.len() {
                    continue;
                }
                encode_piece_header(req.index, req.begin, req.length, &mut out);
                out.extend_from_slice(&piece[b..e]);
                uploaded += req.length as u64;
                sent_blocks.push((req.index, req.length));
            }
        }
        if out.len() > max {
            peer.outbox = out.split_off(max);
        }
        if uploaded > 0 {
            peer.upload.add(uploaded, now_ms);
            self.upload.add(uploaded, now_ms);
        }
        if out.is_empty() {
            return None;
        }
        peer.last_sent_ms = now_ms;
        if uploaded > 0 && self.reward_sent(key, &sent_blocks) {
            if let Some(peer) = self.peers.get_mut(&key) {
                choke(peer); // Goes out with the next transmit, after this data.
            }
        }
        Some(out)
    }

    /// Bytes that arrived from `key`, in any split.
    pub fn peer_data(&mut self, key: PeerKey, data: &[u8], now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.decoder.push(data);
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let frame = match peer.decoder.next_frame() {
                Ok(Some(f)) => {
                    peer.last_recv_ms = now_ms;
                    f
                }
                Ok(None) => break,
                Err(e) => {
                    self.close(key, format!("protocol error: {e}"));
                    return;
                }
            };
            if let Err(reason) = self.on_frame(key, frame, now_ms) {
                self.close(key, reason);
                return;
            }
        }
        self.fill_requests(key, now_ms);
    }

    /// Timers: request time-outs, keep-alives, idle peers. Call about once a second.
    pub fn tick(&mut self, now_ms: u64) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if now_ms.saturating_sub(peer.last_recv_ms) > self.config.idle_timeout_ms {
                self.close(key, "idle timeout".into());
                continue;
            }
            let timeout = self.config.request_timeout_ms;
            let mut expired = Vec::new();
            peer.outstanding.retain(|(b, at)| {
                let keep = now_ms.saturating_sub(*at) < timeout;
                if !keep {
                    expired.push(*b);
                }
                keep
            });
            if now_ms.saturating_sub(peer.last_sent_ms) >= self.config.keepalive_ms
                && peer.outbox.is_empty()
            {
                Message::KeepAlive.encode(&mut peer.outbox);
            }
            for b in &expired {
                self.picker.cancel_request(b);
            }
            let waiting = !peer.outstanding.is_empty() || !expired.is_empty();
            if waiting
                && now_ms.saturating_sub(peer.last_block_ms) > self.config.snub_timeout_ms
                && !peer.snubbed
            {
                // Its requests go back to the pool so faster peers can take them.
                peer.snubbed = true;
                for (b, _) in peer.outstanding.drain(..) {
                    Message::Cancel(b).encode(&mut peer.outbox);
                    expired.push(b);
                }
            }
            for b in &expired {
                self.picker.cancel_request(b);
            }
            if !expired.is_empty() {
                self.fill_requests(key, now_ms);
            }
        }
        self.now_ms = now_ms;
        if now_ms.saturating_sub(self.last_rechoke_ms) >= self.config.rechoke_interval_ms {
            self.last_rechoke_ms = now_ms;
            self.rechoke_round += 1;
            if self.rechoke_round % self.config.optimistic_every.max(1) == 0 {
                self.optimistic = None;
            }
            self.rechoke(true);
        }
        self.reward_tick(now_ms);
        self.fill_web_seeds(now_ms);
    }

    /// Pieces to fetch before all others, most urgent first (a player's read-ahead).
    pub fn set_window(&mut self, window: Vec<Range<u32>>) {
        self.picker.window = window;
    }

    /// Start new pieces in order rather than rarest first.
    pub fn set_sequential(&mut self, on: bool) {
        self.picker.sequential = on;
    }

    /// With `Config::external_hashing`: the bytes of a complete piece awaiting its hash.
    pub fn piece_buffer(&self, piece: u32) -> Option<&[u8]> {
        self.hashing.get(&piece).map(|p| p.buf.as_slice())
    }

    /// With `Config::external_hashing`: the SHA-1 of `piece_buffer(piece)`.
    pub fn piece_hashed(&mut self, piece: u32, digest: [u8; 20]) {
        if let Some(partial) = self.hashing.remove(&piece) {
            self.picker.verifying.remove(&piece);
            self.piece_checked(piece, partial, digest);
        }
    }

    pub fn banned(&self) -> &BTreeSet<PeerId> {
        &self.banned
    }

    fn close(&mut self, key: PeerKey, reason: String) {
        if self.peers.contains_key(&key) {
            self.peer_closed(key);
            self.events.push_back(Event::ClosePeer { key, reason });
        }
    }

    fn send(&mut self, key: PeerKey, msg: &Message) {
        if let Some(p) = self.peers.get_mut(&key) {
            msg.encode(&mut p.outbox);
        }
    }

    fn on_frame(&mut self, key: PeerKey, frame: Frame, now_ms: u64) -> Result<(), String> {
        let peer = self.peers.get_mut(&key).ok_or("gone")?;
        let msg = match frame {
            Frame::Handshake(h) => return self.on_handshake(key, h),
            Frame::Message(m) => m,
        };
        if !peer.handshake_done {
            return Err("message before handshake".into());
        }
        let num_pieces = self.meta.as_ref().map(|m| m.info.num_pieces());
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Suggest(_) => {}
            Message::Choke => {
                peer.peer_choking = true;
                if peer.reward.their_id.is_some() {
                    self.reward_choked(key, now_ms);
                }
                let Some(peer) = self.peers.get_mut(&key) else {
                    return Ok(());
                };
                // Fast-extension peers reject what they drop; others drop silently. Either
                // way, re-asking elsewhere is cheaper than waiting for a time-out.
                let dropped: Vec<BlockRef> = peer.outstanding.drain(..).map(|(b, _)| b).collect();
                for b in &dropped {
                    self.picker.cancel_request(b);
                }
            }
            Message::Unchoke => peer.peer_choking = false,
            Message::Interested => {
                peer.peer_interested = true;
                self.rechoke(false);
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                self.rechoke(false);
            }
            Message::Have(i) => {
                match num_pieces {
                    Some(n) if i >= n => return Err(format!("have for piece {i} of {n}")),
                    Some(_) => {
                        if peer.have.set(i as usize) {
                            self.picker.add_have(i);
                        }
                        if !peer.reward.open.is_empty() {
                            self.reward_have(key, i);
                        }
                    }
                    None => {
                        if peer.early_haves.len() < 1 << 20 {
                            peer.early_haves.push(i);
                        }
                    }
                }
                self.update_interest(key);
            }
            Message::Bitfield(bytes) => {
                match num_pieces {
                    Some(n) => {
                        let mut bf =
                            Bitfield::from_wire(&bytes, n as usize).map_err(|e| e.to_string())?;
                        // A late bitfield (after Have messages) adds to them, never removes.
                        for i in peer.have.iter_set() {
                            bf.set(i);
                        }
                        self.picker.remove_bitfield(&peer.have);
                        self.picker.add_bitfield(&bf);
                        peer.have = bf;
                    }
                    None => peer.early_have = EarlyHave::Bitfield(bytes),
                }
                self.update_interest(key);
            }
            Message::HaveAll | Message::HaveNone => {
                if !peer.fast {
                    return Err("fast-extension message from a peer without it".into());
                }
                let all = msg == Message::HaveAll;
                match num_pieces {
                    Some(n) => {
                        let bf = if all {
                            Bitfield::full(n as usize)
                        } else {
                            Bitfield::new(n as usize)
                        };
                        self.picker.remove_bitfield(&peer.have);
                        self.picker.add_bitfield(&bf);
                        peer.have = bf;
                    }
                    None => {
                        peer.early_have = if all {
                            EarlyHave::All
                        } else {
                            EarlyHave::Nothing
                        }
                    }
                }
                self.update_interest(key);
            }
            Message::Request(req) => self.on_request(key, req)?,
            Message::Cancel(req) => peer.incoming.retain(|r| *r != req),
            Message::Piece { index, begin, data } => {
                self.on_block(key, index, begin, data, now_ms)?
            }
            Message::Reject(req) => {
                if let Some(pos) = peer.outstanding.iter().position(|(b, _)| *b == req) {
                    peer.outstanding.swap_remove(pos);
                    self.picker.cancel_request(&req);
                }
            }
            // Remembered for a later picker; bounded so a peer cannot grow it.
            Message::AllowedFast(i) if peer.allowed_fast.len() < 64 => peer.allowed_fast.push(i),
            Message::AllowedFast(_) => {}
            Message::Extended { id, payload } => self.on_extended(key, id, &payload)?,
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }

    fn on_handshake(&mut self, key: PeerKey, h: Handshake) -> Result<(), String> {
        if h.info_hash != self.info_hash {
            return Err("handshake for another torrent".into());
        }
        if h.peer_id == self.peer_id {
            return Err("connected to ourselves".into());
        }
        if self.banned.contains(&h.peer_id) {
            return Err("banned peer".into());
        }
        let fast = h.supports_fast();
        let extended = h.supports_extended();
        let have_msg = self.have_message(fast);
        let ext = extended.then(|| self.extended_handshake(key));
        let peer = self.peers.get_mut(&key).ok_or("gone")?;
        if peer.handshake_done {
            return Err("second handshake".into());
        }
        peer.handshake_done = true;
        peer.peer_id = Some(h.peer_id);
        peer.fast = fast;
        if let Some(m) = have_msg {
            m.encode(&mut peer.outbox);
        }
        if let Some(payload) = ext {
            Message::Extended { id: 0, payload }.encode(&mut peer.outbox);
        }
        if let Some(meta) = &self.meta {
            peer.have = Bitfield::new(meta.info.num_pieces() as usize);
        }
        self.events.push_back(Event::PeerReady {
            key,
            peer_id: h.peer_id,
        });
        Ok(())
    }

    fn have_message(&self, fast: bool) -> Option<Message> {
        let count = self.have.count();
        if self.meta.is_none() || count == 0 {
            return fast.then_some(Message::HaveNone);
        }
        if fast && self.have.is_complete() {
            return Some(Message::HaveAll);
        }
        Some(Message::Bitfield(self.have.as_wire().to_vec()))
    }

    fn extended_handshake(&self, key: PeerKey) -> Vec<u8> {
        let mut hs = ExtendedHandshake::with_ut_metadata(
            self.meta.as_ref().map(|m| m.info_bytes.len() as u64),
        );
        hs.reqq = Some(self.config.max_peer_requests as u32);
        self.add_reward_fields(key, &mut hs);
        hs.encode()
    }

    /// Once the piece count is known, turn what a peer said early into a bitfield.
    fn resolve_early_have(&mut self, key: PeerKey) {
        let Some(n) = self.meta.as_ref().map(|m| m.info.num_pieces() as usize) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.handshake_done {
            return;
        }
        let mut bf = match std::mem::take(&mut peer.early_have) {
            EarlyHave::All => Bitfield::full(n),
            EarlyHave::Nothing => Bitfield::new(n),
            EarlyHave::Bitfield(bytes) => match Bitfield::from_wire(&bytes, n) {
                Ok(bf) => bf,
                Err(e) => {
                    self.close(key, e.to_string());
                    return;
                }
            },
        };
        for i in std::mem::take(&mut peer.early_haves) {
            bf.set(i as usize);
        }
        self.picker.add_bitfield(&bf);
        peer.have = bf;
        self.update_interest(key);
    }

    fn update_interest(&mut self, key: PeerKey) {
        if self.meta.is_none() {
            return;
        }
        let have = &self.have;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wants = peer.have.iter_set().any(|i| !have.get(i));
        if wants != peer.am_interested {
            peer.am_interested = wants;
            let m = if wants {
                Message::Interested
            } else {
                Message::NotInterested
            };
            m.encode(&mut peer.outbox);
        }
    }

    /// Decides who gets our upload. A full round re-ranks everyone; otherwise only free slots
    /// are filled, so a newly interested peer starts at once instead of at the next round.
    fn rechoke(&mut self, full: bool) {
        let now = self.now_ms;
        let seeding = self.is_complete();
        let cands: Vec<choker::Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.handshake_done && p.peer_interested && !p.reward.held)
            .map(|(&key, p)| choker::Candidate {
                key,
                rate: if seeding {
                    p.upload.rate(now)
                } else {
                    p.download.rate(now)
                },
                snubbed: p.snubbed,
                unchoked: !p.am_choking,
                unchoked_since_ms: p.unchoked_since_ms,
                new: now.saturating_sub(p.connected_ms) < 60_000,
            })
            .collect();
        let slots = self.config.unchoke_slots;
        let unchoke: Vec<PeerKey> = if self.paused {
            Vec::new()
        } else if full {
            let mut keep = choker::regular(&cands, slots, seeding);
            if self
                .optimistic
                .is_some_and(|o| !cands.iter().any(|c| c.key == o))
            {
                self.optimistic = None;
            }
            if self.optimistic.is_none() {
                self.optimistic = choker::optimistic(&cands, &keep, &mut self.rng);
            }
            if let Some(o) = self.optimistic {
                if !keep.contains(&o) {
                    keep.push(o);
                }
            }
            keep
        } else {
            let mut current: Vec<PeerKey> =
                cands.iter().filter(|c| c.unchoked).map(|c| c.key).collect();
            for c in &cands {
                if current.len() > slots {
                    break;
                }
                if !c.unchoked {
                    current.push(c.key);
                }
            }
            current
        };
        for (&key, peer) in self.peers.iter_mut() {
            if !peer.handshake_done {
                continue;
            }
            let should_unchoke = unchoke.contains(&key);
            if should_unchoke != peer.am_choking {
                continue;
            }
            if should_unchoke {
                peer.am_choking = false;
                peer.unchoked_since_ms = now.max(1);
                Message::Unchoke.encode(&mut peer.outbox);
            } else {
                choke(peer);
            }
        }
    }

    fn on_request(&mut self, key: PeerKey, req: BlockRef) -> Result<(), String> {
        let max_len = self.config.max_request_len;
        let max_queue = self.config.max_peer_requests;
        let valid = match &self.meta {
            Some(meta) => {
                req.index < meta.info.num_pieces()
                    && req.length > 0
                    && req.length <= max_len
                    && (req.begin as u64 + req.length as u64)
                        <= meta.info.piece_len(req.index) as u64
            }
            None => false,
        };
        let have = self.have.get(req.index as usize);
        let peer = self.peers.get_mut(&key).ok_or("gone")?;
        if self.meta.is_some() && !valid {
            return Err(format!("bad request {req:?}"));
        }
        if peer.am_choking || !have {
            if peer.fast {
                Message::Reject(req).encode(&mut peer.outbox);
                // Rejects pile up only if it keeps asking while not reading what we send.
                if peer.outbox.len() > MAX_CONTROL_BACKLOG {
                    return Err("floods requests while choked and reads nothing".into());
                }
            }
            return Ok(());
        }
        if peer.incoming.len() >= max_queue {
            return Err(format!("more than {max_queue} requests queued"));
        }
        peer.incoming.push_back(req);
        Ok(())
    }

    fn on_block(
        &mut self,
        key: PeerKey,
        index: u32,
        begin: u32,
        data: Vec<u8>,
        now_ms: u64,
    ) -> Result<(), String> {
        let block = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        let peer = self.peers.get_mut(&key).ok_or("gone")?;
        let Some(pos) = peer.outstanding.iter().position(|(b, _)| *b == block) else {
            // Unrequested or already cancelled (endgame): ignore, but don't count it as progress.
            peer.unrequested_blocks += 1;
            if peer.unrequested_blocks > peer.requests_sent + UNREQUESTED_SLACK {
                return Err(format!(
                    "{} blocks we never asked for",
                    peer.unrequested_blocks
                ));
            }
            return Ok(());
        };
        let (_, sent_at) = peer.outstanding.swap_remove(pos);
        peer.last_block_ms = now_ms;
        peer.snubbed = false;
        peer.rtt_ms = (peer.rtt_ms * 7 + now_ms.saturating_sub(sent_at)) / 8;
        peer.download.add(data.len() as u64, now_ms);
        self.download.add(data.len() as u64, now_ms);
        let Some(partial) = self.picker.partials.get_mut(&index) else {
            return Ok(());
        };
        let b = (begin / crate::metainfo::BLOCK_SIZE) as usize;
        if partial.received[b] {
            return Ok(());
        }
        partial.buf[begin as usize..begin as usize + data.len()].copy_from_slice(&data);
        partial.received[b] = true;
        partial.received_count += 1;
        partial.contributors[b] = Some(key);
        partial.requested[b] = partial.requested[b].saturating_sub(1);
        // Endgame duplicates: tell the others not to bother.
        let others: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(&k, p)| k != key && p.has_requested(&block))
            .map(|(&k, _)| k)
            .collect();
        for k in others {
            if let Some(p) = self.peers.get_mut(&k) {
                p.outstanding.retain(|(b, _)| *b != block);
                Message::Cancel(block).encode(&mut p.outbox);
            }
            if let Some(partial) = self.picker.partials.get_mut(&index) {
                partial.requested[b] = partial.requested[b].saturating_sub(1);
            }
        }
        if self
            .picker
            .partials
            .get(&index)
            .is_some_and(|p| p.is_complete())
        {
            self.finish_piece(index);
        }
        Ok(())
    }

    fn finish_piece(&mut self, index: u32) {
        let Some(partial) = self.picker.partials.remove(&index) else {
            return;
        };
        if self.config.external_hashing {
            self.picker.verifying.insert(index);
            self.hashing.insert(index, partial);
            self.events.push_back(Event::HashPiece { piece: index });
            return;
        }
        let digest: [u8; 20] = Sha1::digest(&partial.buf).into();
        self.piece_checked(index, partial, digest);
    }

    fn piece_checked(&mut self, index: u32, partial: picker::Partial, digest: [u8; 20]) {
        let Some(meta) = &self.meta else { return };
        let ok = meta.info.piece_hash(index) == Some(&digest);
        self.web_seed_checked(index, ok);
        if !ok {
            self.piece_failed(index, &partial);
            return;
        }
        self.clear_suspects(index, &partial.buf);
        let len = partial.buf.len() as u64;
        self.credit_blocks(&partial.contributors, len);
        if self.external {
            // Not had until storage says it is kept: a crash never leaves a claimed hole.
            self.picker.verifying.insert(index);
            self.events.push_back(Event::StorePiece {
                piece: index,
                data: partial.buf,
            });
            return;
        }
        if let Some(store) = self.store.as_mut() {
            store.put_piece(index, partial.buf);
            if let Some(reason) = store.take_write_error() {
                self.events.push_back(Event::StorageFailed {
                    piece: index,
                    reason,
                });
                self.set_paused(true);
                return;
            }
        }
        self.piece_accepted(index, len);
    }

    fn piece_accepted(&mut self, index: u32, len: u64) {
        if !self.have.set(index as usize) {
            return;
        }
        self.verified_bytes += len;
        self.events.push_back(Event::PieceVerified(index));
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in &keys {
            let peer = &self.peers[key];
            if peer.handshake_done {
                self.send(*key, &Message::Have(index));
            }
        }
        for key in keys {
            self.update_interest(key);
        }
        if self.have.is_complete() && !self.done_reported {
            self.done_reported = true;
            self.events.push_back(Event::Done);
            self.reward_complete(self.now_ms);
            // Seeding now: rank by what we give, not what we get.
            self.rechoke(true);
        }
    }

    /// Smart ban, step one: remember who sent each block of the failed piece and what it hashed
    /// to. A peer that sent the whole piece alone is certainly guilty.
    fn piece_failed(&mut self, index: u32, partial: &picker::Partial) {
        self.events.push_back(Event::HashFailed { piece: index });
        let bs = crate::metainfo::BLOCK_SIZE as usize;
        let mut senders: Vec<PeerKey> = partial.contributors.iter().flatten().copied().collect();
        senders.sort_unstable();
        senders.dedup();
        for (b, who) in partial.contributors.iter().enumerate() {
            let Some(id) = who.and_then(|k| self.peers.get(&k)).and_then(|p| p.peer_id) else {
                continue;
            };
            let end = ((b + 1) * bs).min(partial.buf.len());
            let digest: [u8; 20] = Sha1::digest(&partial.buf[b * bs..end]).into();
            if self.suspects.len() < 65_536 {
                self.suspects.insert((index, b as u32), (id, digest));
            }
        }
        for key in senders.iter().copied() {
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            p.hash_failures += 1;
            let failures = p.hash_failures;
            if senders.len() == 1 || failures >= self.config.max_hash_failures {
                self.ban(key, format!("sent data that failed {failures} hash checks"));
            }
        }
    }

    /// Smart ban, step two: the piece passed, so any earlier block that differs from the good
    /// one convicts its sender; the others were innocent.
    fn clear_suspects(&mut self, index: u32, good: &[u8]) {
        let bs = crate::metainfo::BLOCK_SIZE as usize;
        let keys: Vec<(u32, u32)> = self
            .suspects
            .range((index, 0)..=(index, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let Some((id, digest)) = self.suspects.remove(&k) else {
                continue;
            };
            let b = k.1 as usize;
            if b * bs >= good.len() {
                continue;
            }
            let end = ((b + 1) * bs).min(good.len());
            let good_digest: [u8; 20] = Sha1::digest(&good[b * bs..end]).into();
            if good_digest != digest {
                let culprit = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.peer_id == Some(id))
                    .map(|(&k, _)| k);
                match culprit {
                    Some(key) => self.ban(key, "sent a corrupt block (smart ban)".into()),
                    None => {
                        if self.banned.insert(id) {
                            self.events.push_back(Event::PeerBanned { peer_id: id });
                        }
                    }
                }
            }
        }
    }

    fn ban(&mut self, key: PeerKey, reason: String) {
        if let Some(id) = self.peers.get(&key).and_then(|p| p.peer_id) {
            if self.banned.insert(id) {
                self.events.push_back(Event::PeerBanned { peer_id: id });
            }
        }
        self.close(key, reason);
    }

    /// How many requests to keep in flight to a peer: enough for `request_queue_time_ms` of
    /// its measured rate, within the configured bounds and what the peer says it accepts.
    fn queue_target(&self, peer: &Peer) -> usize {
        if peer.snubbed {
            return 1;
        }
        let rate = peer.download.rate(self.now_ms);
        let by_rate = (rate * self.config.request_queue_time_ms as f64
            / 1000.0
            / crate::metainfo::BLOCK_SIZE as f64) as usize;
        let cap = peer
            .extended
            .as_ref()
            .and_then(|e| e.reqq)
            .map(|q| (q as usize).max(1))
            .unwrap_or(250)
            .min(self.config.max_outstanding_requests);
        by_rate.max(self.config.min_outstanding_requests).min(cap)
    }

    /// Keep each unchoked peer's pipeline full.
    pub fn fill_requests(&mut self, key: PeerKey, now_ms: u64) {
        let Some(meta) = &self.meta else { return };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.peer_choking
            || !peer.am_interested
            || self.paused
            || self.picker.verifying.len() >= self.config.max_unstored_pieces
        {
            return;
        }
        let target = {
            let peer = &self.peers[&key];
            self.queue_target(peer)
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while peer.outstanding.len() < target {
            let asked = |b: &BlockRef| peer.outstanding.iter().any(|(o, _)| o == b);
            let Some(block) =
                self.picker
                    .pick(&meta.info, &self.have, &peer.have, asked, &mut self.rng)
            else {
                break;
            };
            Message::Request(block).encode(&mut peer.outbox);
            peer.outstanding.push((block, now_ms));
            peer.requests_sent += 1;
        }
    }

    fn on_extended(&mut self, key: PeerKey, id: u8, payload: &[u8]) -> Result<(), String> {
        if id == 0 {
            let hs = ExtendedHandshake::decode(payload).map_err(|e| e.to_string())?;
            let size = hs.metadata_size;
            if let Some(n) = size.filter(|&n| n == 0 || n > MAX_METADATA_SIZE) {
                return Err(format!(
                    "metadata_size {n} is not a size an info dict can have"
                ));
            }
            self.reward_handshake(key, &hs);
            let peer = self.peers.get_mut(&key).ok_or("gone")?;
            peer.extended = Some(hs);
            if self.meta.is_none() {
                if let Some(size) = size {
                    if self.metadata.is_none() {
                        self.metadata = MetadataAssembler::new(size).ok();
                    }
                    self.request_metadata_from(key);
                }
            }
            return Ok(());
        }
        if id == crate::receipt::ext::LOCAL_ID {
            return self.on_receipt(key, payload);
        }
        if id != UT_METADATA_LOCAL_ID {
            return Ok(());
        }
        let msg = MetadataMsg::decode(payload).map_err(|e| e.to_string())?;
        match msg {
            MetadataMsg::Request { piece } => {
                let reply = match &self.meta {
                    Some(meta) => {
                        let total = meta.info_bytes.len();
                        let start = piece as usize * METADATA_PIECE_SIZE;
                        if start < total {
                            let end = (start + METADATA_PIECE_SIZE).min(total);
                            MetadataMsg::Data {
                                piece,
                                total_size: total as u64,
                                data: meta.info_bytes[start..end].to_vec(),
                            }
                        } else {
                            MetadataMsg::Reject { piece }
                        }
                    }
                    None => MetadataMsg::Reject { piece },
                };
                let peer = self.peers.get_mut(&key).ok_or("gone")?;
                if let Some(their_id) = peer.extension_id("ut_metadata") {
                    Message::Extended {
                        id: their_id,
                        payload: reply.encode(),
                    }
                    .encode(&mut peer.outbox);
                }
            }
            MetadataMsg::Data { piece, data, .. } => {
                let peer = self.peers.get_mut(&key).ok_or("gone")?;
                let Some(pos) = peer.metadata_requests.iter().position(|&p| p == piece) else {
                    return Ok(());
                };
                peer.metadata_requests.swap_remove(pos);
                let their_size = peer.extended.as_ref().and_then(|e| e.metadata_size);
                let Some(asm) = self.metadata.as_mut() else {
                    return Ok(());
                };
                if their_size != Some(asm.total_size()) {
                    // Sized for another peer's claim; asked before a restart. Not its fault.
                    return Ok(());
                }
                asm.insert(piece, &data).map_err(|e| e.to_string())?;
                if asm.is_complete() {
                    self.complete_metadata(key)?;
                }
            }
            MetadataMsg::Reject { piece } => {
                let peer = self.peers.get_mut(&key).ok_or("gone")?;
                peer.metadata_requests.retain(|&p| p != piece);
                self.request_metadata_anywhere();
            }
        }
        Ok(())
    }

    fn complete_metadata(&mut self, from: PeerKey) -> Result<(), String> {
        let Some(asm) = self.metadata.as_mut() else {
            return Ok(());
        };
        match asm.finish(&self.info_hash) {
            Ok(info_bytes) => match Metainfo::from_info_bytes(info_bytes) {
                Ok(meta) => {
                    self.install_metadata(meta, None, Bitfield::new(0));
                    self.events.push_back(Event::MetadataReady);
                    if self.have.is_complete() && !self.done_reported {
                        self.done_reported = true;
                        self.events.push_back(Event::Done);
                    }
                    let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                    for key in keys {
                        self.send_have_after_metadata(key);
                    }
                    Ok(())
                }
                Err(e) => Err(format!("metadata with the right hash but unusable: {e}")),
            },
            Err(e) => {
                // Whoever sent it is dropped. The size we assembled for may have been its lie:
                // start over with the size most of the others announce, and never ask it again.
                if let Some(p) = self.peers.get_mut(&from) {
                    p.metadata_requests.clear();
                    if let Some(ext) = p.extended.as_mut() {
                        ext.metadata_size = None;
                    }
                }
                self.metadata = self
                    .announced_metadata_size()
                    .and_then(|n| MetadataAssembler::new(n).ok());
                self.request_metadata_anywhere();
                Err(format!("metadata failed its check: {e}"))
            }
        }
    }

    fn send_have_after_metadata(&mut self, key: PeerKey) {
        self.update_interest(key);
    }

    fn request_metadata_from(&mut self, key: PeerKey) {
        let Some(asm) = self.metadata.as_ref() else {
            return;
        };
        let in_flight: Vec<u32> = self
            .peers
            .values()
            .flat_map(|p| p.metadata_requests.iter().copied())
            .collect();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(their_id) = peer.extension_id("ut_metadata") else {
            return;
        };
        if peer.extended.as_ref().and_then(|e| e.metadata_size) != Some(asm.total_size()) {
            // Its pieces would not fit what we assemble.
            return;
        }
        for piece in asm.missing_pieces() {
            if in_flight.contains(&piece) || peer.metadata_requests.contains(&piece) {
                continue;
            }
            peer.metadata_requests.push(piece);
            let payload = MetadataMsg::Request { piece }.encode();
            Message::Extended {
                id: their_id,
                payload,
            }
            .encode(&mut peer.outbox);
        }
    }

    /// The metadata size most connected peers announce (ties: the smallest).
    fn announced_metadata_size(&self) -> Option<u64> {
        let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
        for p in self.peers.values() {
            if let Some(n) = p.extended.as_ref().and_then(|e| e.metadata_size) {
                *votes.entry(n).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes.into_iter().find(|&(_, v)| v == best).map(|(n, _)| n)
    }

    fn request_metadata_anywhere(&mut self) {
        if self.meta.is_some() {
            return;
        }
        if self.metadata.is_none() {
            self.metadata = self
                .announced_metadata_size()
                .and_then(|n| MetadataAssembler::new(n).ok());
        }
        let Some(size) = self.metadata.as_ref().map(|a| a.total_size()) else {
            return;
        };
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.extended
                    .as_ref()
                    .is_some_and(|e| e.metadata_size == Some(size))
            })
            .map(|(&k, _)| k)
            .collect();
        for key in keys {
            self.request_metadata_from(key);
        }
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

/// Stops serving a peer: a choke, and its queued requests dropped (rejected if it speaks the
/// fast extension, as BEP 6 asks).
fn choke(peer: &mut Peer) {
    peer.am_choking = true;
    Message::Choke.encode(&mut peer.outbox);
    let dropped: Vec<BlockRef> = peer.incoming.drain(..).collect();
    if peer.fast {
        for r in dropped {
            Message::Reject(r).encode(&mut peer.outbox);
        }
    }
}
