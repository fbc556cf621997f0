//! The native peer's driver for one torrent: the engine session, its WebRTC connections
//! (`rtc`), its trackers (`tracker_client`), its files on disk (`FileStore`) and, when given one,
//! its reward key. Everything runs on one tokio task that owns the session; connections,
//! trackers and disk I/O report back to it through one channel.
//!
//! It moves bytes and events and decides nothing the engine can decide. It must never block on
//! a peer or on the disk: disk I/O runs on blocking threads, writes to peers queue in their own
//! tasks, and every wait has a deadline.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::report::{About, Report, Reporter, Snapshot};
use super::rtc::{self, Channel, ConnEvent, RtcConfig, HIGH_WATER};
use super::tracker_client::{TrackerConn, TrackerInput};
use crate::bitfield::Bitfield;
use crate::engine::{Config, Event, PeerKey, RewardConfig, Session};
use crate::id::{InfoHash, PeerId};
use crate::metainfo::Metainfo;
use crate::receipt::{self, SignedReceipt};
use crate::rng::Rng;
use crate::signal::client::{announce_json, answer_json, AnnounceEvent, OfferOut, TrackerEvent};
use crate::store::{FileStore, STATE_DIR};

/// Bytes taken from the session per write: WebTorrent's assumption for peers that do not
/// advertise a message size.
const SEND_CHUNK: usize = 64 * 1024;
/// How long an answerer waits for the offerer's first bytes before speaking (see the browser
/// driver: WebTorrent offerers can lose what arrives before their side is ready).
const ANSWERER_WAIT_MS: u64 = 2_000;
const OFFERS_PER_ANNOUNCE: usize = 5;
/// An offer nobody answered in this long is withdrawn.
const OFFER_TIMEOUT_MS: u64 = 50_000;
const MAX_PEERS: usize = 40;
const DEFAULT_INTERVAL_MS: u64 = 120_000;
/// While we have no peers and lack pieces, ask again sooner than the tracker's interval.
const LONELY_INTERVAL_MS: u64 = 10_000;
/// The driver's housekeeping beat: engine timers, answerer waits, offer expiry, announces.
const BEAT: Duration = Duration::from_millis(250);
const PROGRESS_EVERY_MS: u64 = 1_000;
/// Pieces stored between two rewrites of the resume state: a kill loses at most these.
const STATE_EVERY: u32 = 8;
/// After the download completes (and we are not staying to seed), how long the last bytes to
/// peers (receipts) may take to leave.
const LINGER: Duration = Duration::from_secs(1);

/// Where the torrent starts from.
#[allow(clippy::large_enum_variant)] // made once per run
pub enum Start {
    /// The metadata is known; `store` already holds the pieces in `have`.
    Torrent {
        meta: Metainfo,
        store: FileStore,
        have: Bitfield,
    },
    /// Only the info-hash: the metadata comes from peers, then the files go under `dir`.
    Magnet { info_hash: InfoHash, dir: PathBuf },
}

/// The receipts side of a native peer: its Ed25519 seed, and where received receipts are kept.
#[derive(Clone)]
pub struct NativeRewards {
    pub seed: [u8; 32],
    /// JSON lines, one per receipt received (the newest per session wins when read back).
    pub receipts_file: Option<PathBuf>,
}

pub struct Options {
    /// ws:// or wss:// tracker URLs.
    pub trackers: Vec<String>,
    pub rtc: RtcConfig,
    /// Keep running after the download completes, until `shutdown` resolves.
    pub keep_seeding: bool,
    pub rewards: Option<NativeRewards>,
    pub engine: Config,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece is verified and on disk (and we did not stay to seed); `downloaded` counts
    /// the bytes received from peers in this run.
    Complete {
        downloaded: u64,
    },
    /// `shutdown` resolved first.
    Stopped,
    Failed(String),
}

/// The metadata a magnet download saved next to its resume state, if any: a resumed magnet
/// download starts like a `.torrent` one.
pub fn saved_metainfo(dir: &Path, info_hash: &InfoHash) -> Option<Metainfo> {
    let bytes = fs::read(saved_metainfo_path(dir, info_hash)).ok()?;
    Metainfo::from_torrent_bytes(&bytes)
        .ok()
        .filter(|m| m.info_hash == *info_hash)
}

fn saved_metainfo_path(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(STATE_DIR)
        .join(format!("{}.torrent", info_hash.to_hex()))
}

/// Runs the torrent until it completes (unless `keep_seeding`), `shutdown` resolves, or
/// something fatal (storage) happens. Announces `stopped` to the trackers on the way out.
pub async fn run(
    start: Start,
    opts: Options,
    reporter: &mut Reporter,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut d = Driver::new(start, opts, tx, reporter);
    tokio::pin!(shutdown);
    let mut beat = tokio::time::interval(BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    d.announce_due();
    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Outcome::Stopped,
            input = rx.recv() => {
                let Some(input) = input else { break Outcome::Failed("driver channel closed".into()) };
                d.input(input);
                // Take whatever else is waiting before the (costlier) drive.
                while let Ok(more) = rx.try_recv() {
                    d.input(more);
                }
            }
            _ = beat.tick() => d.beat(),
        }
        d.drive();
        if let Some(reason) = d.failed.take() {
            break Outcome::Failed(reason);
        }
        if d.finished && !d.opts.keep_seeding {
            d.linger(&mut rx).await;
            break Outcome::Complete {
                downloaded: d.session.downloaded(),
            };
        }
    };
    d.shut_down().await;
    outcome
}

/// A connection made for an offer or an answer, with its SDP.
type Made = Result<(rtc::Conn, String), String>;

enum Input {
    Conn(PeerKey, ConnEvent),
    Tracker(usize, TrackerInput),
    Offers {
        tracker: usize,
        made: Vec<(PeerKey, Made)>,
    },
    Answered {
        tracker: usize,
        key: PeerKey,
        from: PeerId,
        offer_id: [u8; 20],
        result: Made,
    },
    Stored {
        piece: u32,
        result: Result<(), String>,
    },
    Loaded {
        piece: u32,
        data: Option<Vec<u8>>,
    },
}

struct Slot {
    conn: Arc<rtc::Conn>,
    channel: Option<Channel>,
    remote: Option<PeerId>,
    ready: bool,
    /// We answered this connection's offer: say nothing until the offerer spoke (or
    /// `ANSWERER_WAIT_MS` passed).
    wait_to_speak: bool,
    opened_ms: u64,
}

struct TrackerSlot {
    conn: TrackerConn,
    connected: bool,
    started: bool,
    completed_sent: bool,
    making_offers: bool,
    next_ms: u64,
    last_ms: u64,
    interval_ms: u64,
}

struct Driver<'r> {
    session: Session,
    store: Option<Arc<Mutex<FileStore>>>,
    /// Magnet downloads: where the files go once the metadata is known.
    dir: Option<PathBuf>,
    opts: Options,
    tx: mpsc::UnboundedSender<Input>,
    peers: HashMap<PeerKey, Slot>,
    offers: HashMap<[u8; 20], (PeerKey, u64)>,
    /// Offers being made or answers being gathered: counted against `MAX_PEERS`.
    pending: usize,
    trackers: Vec<TrackerSlot>,
    rng: Rng,
    next_key: PeerKey,
    t0: Instant,
    last_progress_ms: u64,
    reporter: &'r mut Reporter,
    /// The download completed during this run (or the torrent was complete from the start).
    finished: bool,
    failed: Option<String>,
}

impl<'r> Driver<'r> {
    fn new(
        start: Start,
        opts: Options,
        tx: mpsc::UnboundedSender<Input>,
        reporter: &'r mut Reporter,
    ) -> Driver<'r> {
        let seed = super::entropy_seed();
        let mut rng = Rng::new(seed);
        let peer_id = PeerId::generate(random_bytes(&mut rng));
        let (session, store, dir) = match start {
            Start::Torrent { meta, store, have } if have.is_complete() => {
                // Seeding only reads, and a read of a block from the page cache costs less than
                // handing a whole piece over from a blocking thread: the session reads itself.
                let s = Session::new(
                    meta,
                    peer_id,
                    Box::new(store),
                    have,
                    opts.engine.clone(),
                    seed,
                );
                (s, None, None)
            }
            Start::Torrent {
                meta,
                mut store,
                have,
            } => {
                store.set_state_interval(STATE_EVERY);
                let s = Session::new_external(meta, peer_id, have, opts.engine.clone(), seed);
                (s, Some(Arc::new(Mutex::new(store))), None)
            }
            Start::Magnet { info_hash, dir } => {
                let s =
                    Session::from_info_hash_external(info_hash, peer_id, opts.engine.clone(), seed);
                (s, None, Some(dir))
            }
        };
        let mut session = session;
        if let Some(r) = &opts.rewards {
            let unix_ms_now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            session.set_rewards(Some(RewardConfig::new(
                receipt::public_key(&r.seed),
                unix_ms_now,
            )));
        }
        let trackers = opts
            .trackers
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let tx = tx.clone();
                TrackerSlot {
                    conn: TrackerConn::start(
                        url.clone(),
                        Arc::new(move |ev| {
                            let _ = tx.send(Input::Tracker(i, ev));
                        }),
                    ),
                    connected: false,
                    started: false,
                    completed_sent: false,
                    making_offers: false,
                    next_ms: 0,
                    last_ms: 0,
                    interval_ms: DEFAULT_INTERVAL_MS,
                }
            })
            .collect();
        let mut d = Driver {
            session,
            store,
            dir,
            opts,
            tx,
            peers: HashMap::new(),
            offers: HashMap::new(),
            pending: 0,
            trackers,
            rng,
            next_key: 1,
            t0: Instant::now(),
            last_progress_ms: 0,
            reporter,
            finished: false,
            failed: None,
        };
        if let Some(meta) = d.session.metainfo() {
            let about = d.about(meta);
            d.finished = d.session.is_complete();
            if d.finished && d.opts.keep_seeding {
                d.reporter.report(&Report::Ready(about));
            } else {
                d.reporter.report(&Report::Metadata(about));
            }
            if d.finished && !d.opts.keep_seeding {
                // Nothing to fetch: the engine will not say Done again.
                d.reporter.report(&Report::Done {
                    info_hash: d.session.info_hash().to_hex(),
                    length: meta_length(&d.session),
                    downloaded: 0,
                    seconds: 0.0,
                });
            }
        }
        d
    }

    fn now(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn about(&self, meta: &Metainfo) -> About {
        About {
            info_hash: meta.info_hash.to_hex(),
            name: meta.info.name.clone(),
            length: meta.info.total_length,
            pieces: meta.info.num_pieces(),
            have: self.session.have().count() as u32,
            magnet: self.magnet(meta),
        }
    }

    /// The magnet link to share: the torrent's own trackers and the ones we announce to, so
    /// whoever gets it finds us.
    fn magnet(&self, meta: &Metainfo) -> String {
        let mut m = meta.magnet();
        for t in &self.opts.trackers {
            if !m.trackers.contains(t) {
                m.trackers.push(t.clone());
            }
        }
        m.to_uri()
    }

    fn sink(&self, key: PeerKey) -> rtc::EventSink {
        let tx = self.tx.clone();
        Arc::new(move |ev| {
            let _ = tx.send(Input::Conn(key, ev));
        })
    }

    fn wants_peers(&self) -> bool {
        self.peers.len() + self.offers.len() + self.pending < MAX_PEERS
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Conn(key, ev) => self.conn_event(key, ev, now),
            Input::Tracker(i, ev) => self.tracker_input(i, ev),
            Input::Offers { tracker, made } => self.offers_made(tracker, made, now),
            Input::Answered {
                tracker,
                key,
                from,
                offer_id,
                result,
            } => {
                self.pending = self.pending.saturating_sub(1);
                match result {
                    Ok((conn, sdp)) => {
                        let duplicate = self.peers.values().any(|p| p.remote == Some(from));
                        if duplicate {
                            spawn_close(Arc::new(conn));
                            return;
                        }
                        self.peers.insert(
                            key,
                            Slot {
                                conn: Arc::new(conn),
                                channel: None,
                                remote: Some(from),
                                ready: false,
                                wait_to_speak: true,
                                opened_ms: 0,
                            },
                        );
                        let text = answer_json(
                            &self.session.info_hash(),
                            &self.session.peer_id(),
                            &from,
                            &offer_id,
                            &sdp,
                        );
                        if let Some(t) = self.trackers.get(tracker) {
                            t.conn.send(text);
                        }
                    }
                    Err(e) => tracing::debug!("answering {from} failed: {e}"),
                }
            }
            Input::Stored { piece, result } => {
                self.session.piece_stored(piece, result);
            }
            Input::Loaded { piece, data } => self.session.piece_loaded(piece, data),
        }
    }

    fn conn_event(&mut self, key: PeerKey, ev: ConnEvent, now: u64) {
        match ev {
            ConnEvent::Open(channel) => {
                let Some(slot) = self.peers.get_mut(&key) else {
                    return;
                };
                if slot.channel.is_some() {
                    return;
                }
                slot.channel = Some(channel);
                slot.opened_ms = now;
                self.offers.retain(|_, (k, _)| *k != key);
                self.session.peer_connected(key, now);
            }
            ConnEvent::Message(bytes) => {
                if let Some(slot) = self.peers.get_mut(&key) {
                    slot.wait_to_speak = false;
                    self.session.peer_data(key, &bytes, now);
                }
            }
            // `drive` writes to every channel with room; nothing to do here.
            ConnEvent::Writable => {}
            ConnEvent::Closed(reason) => {
                tracing::debug!("peer {key} closed: {reason}");
                self.close_peer(key);
            }
        }
    }

    fn close_peer(&mut self, key: PeerKey) {
        self.offers.retain(|_, (k, _)| *k != key);
        let Some(slot) = self.peers.remove(&key) else {
            return;
        };
        if slot.channel.is_some() {
            self.session.peer_closed(key);
        }
        if slot.ready {
            if let Some(id) = slot.remote {
                self.reporter.report(&Report::Peer {
                    connected: false,
                    peer_id: id.to_hex(),
                });
            }
        }
        spawn_close(slot.conn);
    }

    fn tracker_input(&mut self, i: usize, ev: TrackerInput) {
        let url = self.opts.trackers.get(i).cloned().unwrap_or_default();
        match ev {
            TrackerInput::Connected => {
                if let Some(t) = self.trackers.get_mut(i) {
                    t.connected = true;
                    t.started = false;
                    t.next_ms = 0;
                }
                self.announce_due();
            }
            TrackerInput::Disconnected(reason) => {
                if let Some(t) = self.trackers.get_mut(i) {
                    if t.connected {
                        self.reporter.report(&Report::Warning(format!(
                            "tracker {url} disconnected: {reason}"
                        )));
                    }
                    t.connected = false;
                }
            }
            TrackerInput::BadFrame(e) => tracing::debug!("tracker {url}: {e}"),
            TrackerInput::Event(ev) => self.tracker_event(i, ev),
        }
    }

    fn tracker_event(&mut self, i: usize, ev: TrackerEvent) {
        let ours = self.session.info_hash();
        let me = self.session.peer_id();
        match ev {
            TrackerEvent::AnnounceReply {
                info_hash,
                interval,
                ..
            } if info_hash == ours => {
                if let (Some(t), Some(s)) = (self.trackers.get_mut(i), interval) {
                    let ms = s.clamp(10, 3600) * 1000;
                    t.interval_ms = ms;
                    t.next_ms = t.last_ms + ms;
                }
            }
            TrackerEvent::Offer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
            } if info_hash == ours && peer_id != me => {
                if !self.wants_peers()
                    || self.peers.values().any(|p| p.remote == Some(peer_id))
                    || self.session.banned().contains(&peer_id)
                {
                    return;
                }
                let key = self.alloc_key();
                self.pending += 1;
                let (config, sink, tx) = (self.opts.rtc.clone(), self.sink(key), self.tx.clone());
                tokio::spawn(async move {
                    let result = rtc::answer(&config, sdp, sink).await;
                    let _ = tx.send(Input::Answered {
                        tracker: i,
                        key,
                        from: peer_id,
                        offer_id,
                        result,
                    });
                });
            }
            TrackerEvent::Answer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
            } if info_hash == ours && peer_id != me => {
                let Some((key, _)) = self.offers.remove(&offer_id) else {
                    return;
                };
                let duplicate = self.peers.values().any(|p| p.remote == Some(peer_id))
                    || self.session.banned().contains(&peer_id);
                if duplicate {
                    self.close_peer(key);
                    return;
                }
                let Some(slot) = self.peers.get_mut(&key) else {
                    return;
                };
                slot.remote = Some(peer_id);
                let conn = slot.conn.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = conn.accept_answer(sdp).await {
                        tracing::debug!("answer from {peer_id}: {e}");
                        let _ = tx.send(Input::Conn(key, ConnEvent::Closed(e)));
                    }
                });
            }
            TrackerEvent::Failure { reason, .. } => {
                let url = self.opts.trackers.get(i).cloned().unwrap_or_default();
                self.reporter
                    .report(&Report::Warning(format!("tracker {url} refused: {reason}")));
            }
            TrackerEvent::Warning { message } => tracing::debug!("tracker warning: {message}"),
            _ => {}
        }
    }

    fn alloc_key(&mut self) -> PeerKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn tracker_due(&self, t: &TrackerSlot, now: u64) -> bool {
        if !t.connected || t.making_offers {
            return false;
        }
        let lonely = self.peers.is_empty() && !self.session.is_complete();
        let due = if lonely {
            t.next_ms.min(t.last_ms + LONELY_INTERVAL_MS)
        } else {
            t.next_ms
        };
        now >= due
    }

    /// Announces to every connected tracker that is due, making offers first while we want
    /// peers (they go with the announce: WebTorrent does not trickle).
    fn announce_due(&mut self) {
        if self.finished && !self.opts.keep_seeding {
            // About to leave: `stopped` goes out on the way.
            return;
        }
        let now = self.now();
        for i in 0..self.trackers.len() {
            if !self.tracker_due(&self.trackers[i], now) {
                continue;
            }
            let want = self.wants_peers();
            let t = &mut self.trackers[i];
            t.next_ms = now + t.interval_ms;
            t.last_ms = now;
            if !want {
                self.send_announce(i, &[]);
                continue;
            }
            t.making_offers = true;
            let n = OFFERS_PER_ANNOUNCE.min(MAX_PEERS - self.peers.len() - self.offers.len());
            self.pending += n;
            let keys: Vec<PeerKey> = (0..n).map(|_| self.alloc_key()).collect();
            let jobs: Vec<_> = keys
                .iter()
                .map(|&key| {
                    let (config, sink) = (self.opts.rtc.clone(), self.sink(key));
                    async move { (key, rtc::offer(&config, sink).await) }
                })
                .collect();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let made = futures_util::future::join_all(jobs).await;
                let _ = tx.send(Input::Offers { tracker: i, made });
            });
        }
    }

    fn offers_made(&mut self, tracker: usize, made: Vec<(PeerKey, Made)>, now: u64) {
        self.pending = self.pending.saturating_sub(made.len());
        if let Some(t) = self.trackers.get_mut(tracker) {
            t.making_offers = false;
        }
        let mut out = Vec::new();
        for (key, result) in made {
            match result {
                Ok((conn, sdp)) => {
                    let offer_id: [u8; 20] = random_bytes(&mut self.rng);
                    self.peers.insert(
                        key,
                        Slot {
                            conn: Arc::new(conn),
                            channel: None,
                            remote: None,
                            ready: false,
                            wait_to_speak: false,
                            opened_ms: 0,
                        },
                    );
                    self.offers.insert(offer_id, (key, now));
                    out.push(OfferOut { offer_id, sdp });
                }
                Err(e) => tracing::debug!("making an offer failed: {e}"),
            }
        }
        let sent = self.send_announce(tracker, &out);
        if !sent {
            // The protocol forbids offers with `completed`, or the tracker went away.
            for o in out {
                if let Some((key, _)) = self.offers.remove(&o.offer_id) {
                    self.close_peer(key);
                }
            }
        }
    }

    /// Sends the announce this tracker needs now; false if the offers did not go with it.
    fn send_announce(&mut self, i: usize, offers: &[OfferOut]) -> bool {
        let complete = self.session.is_complete();
        let Some(t) = self.trackers.get_mut(i) else {
            return false;
        };
        if !t.connected {
            return false;
        }
        let event = if !t.started {
            t.started = true;
            t.completed_sent = complete;
            AnnounceEvent::Started
        } else if complete && !t.completed_sent {
            t.completed_sent = true;
            AnnounceEvent::Completed
        } else {
            AnnounceEvent::Update
        };
        let offers = if event == AnnounceEvent::Completed {
            &[][..]
        } else {
            offers
        };
        let text = announce_json(
            &self.session.info_hash(),
            &self.session.peer_id(),
            event,
            self.session.uploaded(),
            self.session.downloaded(),
            self.session.left(),
            offers.len().max(1) as u32,
            offers,
        );
        self.trackers[i].conn.send(text);
        !offers.is_empty() || event != AnnounceEvent::Completed
    }

    /// The housekeeping beat.
    fn beat(&mut self) {
        let now = self.now();
        self.session.tick(now);
        let expired: Vec<PeerKey> = self
            .offers
            .values()
            .filter(|(_, made)| now.saturating_sub(*made) > OFFER_TIMEOUT_MS)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.close_peer(key);
        }
        self.announce_due();
        if now.saturating_sub(self.last_progress_ms) >= PROGRESS_EVERY_MS {
            self.last_progress_ms = now;
            if self.session.metainfo().is_some() {
                let s = self.snapshot(now);
                self.reporter.report(&Report::Progress(s));
            }
        }
    }

    fn snapshot(&mut self, now: u64) -> Snapshot {
        let s = self.session.stats(now);
        Snapshot {
            have: self.session.have().count() as u32,
            pieces: self.session.have().len() as u32,
            verified: s.verified_bytes,
            length: s.total_bytes,
            downloaded: s.downloaded,
            uploaded: s.uploaded,
            download_speed: s.download_speed,
            upload_speed: s.upload_speed,
            peers: s.num_peers,
        }
    }

    /// One turn: write what the session has for open channels, then act on its events.
    fn drive(&mut self) {
        let now = self.now();
        self.session.fill_all_requests(now);
        for key in self.session.peers_with_output() {
            let Some(slot) = self.peers.get(&key) else {
                continue;
            };
            if slot.wait_to_speak && now.saturating_sub(slot.opened_ms) < ANSWERER_WAIT_MS {
                continue;
            }
            let Some(ch) = slot.channel.clone() else {
                continue;
            };
            while ch.queued() < HIGH_WATER {
                let Some(bytes) = self.session.transmit(key, SEND_CHUNK, now) else {
                    break;
                };
                if !ch.send(bytes) {
                    break;
                }
            }
        }
        while let Some(ev) = self.session.poll_event() {
            self.engine_event(ev, now);
        }
    }

    fn engine_event(&mut self, ev: Event, now: u64) {
        match ev {
            Event::ClosePeer { key, reason } => {
                tracing::debug!("dropping peer {key}: {reason}");
                self.close_peer(key);
            }
            Event::PeerReady { key, peer_id } => {
                if let Some(slot) = self.peers.get_mut(&key) {
                    slot.remote.get_or_insert(peer_id);
                    slot.ready = true;
                    self.reporter.report(&Report::Peer {
                        connected: true,
                        peer_id: peer_id.to_hex(),
                    });
                }
            }
            Event::PeerBanned { peer_id } => {
                self.reporter.report(&Report::Warning(format!(
                    "banned peer {peer_id}: it sent data that failed a hash check"
                )));
            }
            Event::MetadataReady => self.metadata_ready(),
            Event::PieceVerified(_) => {}
            Event::HashFailed { piece } => tracing::debug!("piece {piece} failed its hash check"),
            Event::Done => {
                let s = self.snapshot(now);
                self.reporter.report(&Report::Progress(s.clone()));
                self.reporter.report(&Report::Done {
                    info_hash: self.session.info_hash().to_hex(),
                    length: s.length,
                    downloaded: s.downloaded,
                    seconds: now as f64 / 1000.0,
                });
                self.finished = true;
                if let Some(store) = &self.store {
                    if let Err(e) = lock(store).flush() {
                        self.reporter
                            .report(&Report::Warning(format!("saving resume state: {e}")));
                    }
                }
                // Tell the trackers at once: `completed` turns us into a seed in their counts.
                for t in &mut self.trackers {
                    if t.started && !t.completed_sent {
                        t.next_ms = 0;
                    }
                }
                self.announce_due();
            }
            Event::HashPiece { piece } => {
                // Only with Config::external_hashing, which this driver does not set.
                use sha1::Digest;
                if let Some(d) = self.session.piece_buffer(piece).map(sha1::Sha1::digest) {
                    self.session.piece_hashed(piece, d.into());
                }
            }
            Event::StorePiece { piece, data } => self.store_piece(piece, data),
            Event::LoadPiece { piece } => self.load_piece(piece),
            Event::StorageFailed { piece, reason } => {
                self.failed = Some(format!("cannot store piece {piece}: {reason}"));
            }
            Event::SignReceipt { key, receipt } => {
                let signed = self
                    .opts
                    .rewards
                    .as_ref()
                    .map(|r| receipt::sign(receipt.clone(), &r.seed).signature);
                self.session.receipt_signed(key, receipt, signed, now);
            }
            Event::ReceiptReceived { receipt, .. } => self.keep_receipt(&receipt),
            // Web seeds need an HTTP client this driver does not have; it never adds any.
            Event::WebSeedFetch { .. } | Event::WebSeedDropped { .. } => {}
        }
    }

    fn metadata_ready(&mut self) {
        let (Some(dir), Some(meta)) = (self.dir.clone(), self.session.metainfo().cloned()) else {
            return;
        };
        match FileStore::open(&dir, &meta) {
            Ok((mut store, _)) => {
                store.set_state_interval(STATE_EVERY);
                self.store = Some(Arc::new(Mutex::new(store)));
            }
            Err(e) => {
                self.failed = Some(format!(
                    "cannot keep {} in {}: {e}",
                    meta.info.name,
                    dir.display()
                ));
                return;
            }
        }
        let path = saved_metainfo_path(&dir, &meta.info_hash);
        if let Err(e) = write_file(&path, &meta.to_torrent_bytes()) {
            self.reporter.report(&Report::Warning(format!(
                "cannot save the metadata for resuming ({}): {e}",
                path.display()
            )));
        }
        let about = self.about(&meta);
        self.reporter.report(&Report::Metadata(about));
    }

    fn store_piece(&mut self, piece: u32, data: Vec<u8>) {
        let Some(store) = self.store.clone() else {
            self.session
                .piece_stored(piece, Err("no storage before the metadata".into()));
            return;
        };
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = lock(&store)
                .write_piece(piece, &data)
                .map_err(|e| e.to_string());
            let _ = tx.send(Input::Stored { piece, result });
        });
    }

    fn load_piece(&mut self, piece: u32) {
        let Some(store) = self.store.clone() else {
            self.session.piece_loaded(piece, None);
            return;
        };
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let data = lock(&store).read_piece(piece).ok();
            let _ = tx.send(Input::Loaded { piece, data });
        });
    }

    fn keep_receipt(&mut self, r: &SignedReceipt) {
        let Some(path) = self
            .opts
            .rewards
            .as_ref()
            .and_then(|r| r.receipts_file.clone())
        else {
            return;
        };
        let line = serde_json::json!({
            "receipt": receipt::hex(&r.encode()),
            "downloader": receipt::hex(&r.receipt.downloader),
            "infoHash": receipt::hex(&r.receipt.info_hash),
            "bytes": r.receipt.bytes,
            "seq": r.receipt.seq,
        });
        let written = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            self.reporter.report(&Report::Warning(format!(
                "cannot keep a receipt in {}: {e}",
                path.display()
            )));
        }
    }

    /// Gives the last bytes (final receipts) a moment to leave before the connections close.
    async fn linger(&mut self, rx: &mut mpsc::UnboundedReceiver<Input>) {
        let deadline = tokio::time::Instant::now() + LINGER;
        loop {
            self.drive();
            let idle = self
                .peers
                .values()
                .all(|p| p.channel.as_ref().is_none_or(|c| c.queued() == 0));
            if idle || tokio::time::Instant::now() >= deadline {
                return;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(input)) => self.input(input),
                _ => return,
            }
        }
    }

    async fn shut_down(mut self) {
        let mut closing = Vec::new();
        for t in std::mem::take(&mut self.trackers) {
            if t.started && t.connected {
                t.conn.send(announce_json(
                    &self.session.info_hash(),
                    &self.session.peer_id(),
                    AnnounceEvent::Stopped,
                    self.session.uploaded(),
                    self.session.downloaded(),
                    self.session.left(),
                    0,
                    &[],
                ));
            }
            closing.push(t.conn.close());
        }
        let conns: Vec<Arc<rtc::Conn>> = self.peers.drain().map(|(_, s)| s.conn).collect();
        let peers_closed = futures_util::future::join_all(conns.iter().map(|c| c.close()));
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            futures_util::future::join(futures_util::future::join_all(closing), peers_closed),
        )
        .await;
        if let Some(store) = self.store.take() {
            if let Err(e) = lock(&store).flush() {
                self.reporter
                    .report(&Report::Warning(format!("saving resume state: {e}")));
            }
        }
    }
}

fn meta_length(session: &Session) -> u64 {
    session.metainfo().map_or(0, |m| m.info.total_length)
}

fn spawn_close(conn: Arc<rtc::Conn>) {
    tokio::spawn(async move { conn.close().await });
}

fn lock(store: &Mutex<FileStore>) -> std::sync::MutexGuard<'_, FileStore> {
    // A panic while holding the lock leaves the store as consistent as any crash would.
    store.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_bytes<const N: usize>(rng: &mut Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}

/// Writes a small file atomically enough for resume metadata (temp file, then rename).
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}
