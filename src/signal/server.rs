//! The WebSocket tracker's logic, sans-IO: in-memory swarms keyed by info-hash, offer and answer
//! relaying, complete/incomplete counts, scrape, expiry of silent peers, and the per-message limits
//! (offers and numwant caps, a per-connection token bucket, torrents per connection) with a count
//! of what each rejected. The driver feeds it text frames with the connection they came from, the
//! time and a random source, and sends the frames it returns.
//!
//! Several instances can share swarms (docs/scaling.md): when clustered, the tracker also lists
//! peers whose sockets are on other instances ([`PeerAt::Remote`], learnt through
//! [`Tracker::remote_up`]) and queues what the others must hear ([`ClusterOut`]: local peers
//! arriving and leaving, frames for their peers); how that travels is the driver's business.
//!
//! Never touches a socket, a clock or an entropy source; never panics on peer input. Iteration
//! that reaches the output goes through ordered maps so a seeded run repeats exactly.

use std::collections::{BTreeMap, HashMap};

use super::msg::{
    self, Action, Announce, AnnounceEvent, Answer, ClientMessage, SignalError, DEFAULT_INTERVAL_S,
    MAX_NUMWANT, MAX_OFFERS,
};
use crate::id::{InfoHash, PeerId};
use crate::rng::Rng;

/// A connection as the driver numbers them; the tracker only compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Another tracker instance of a cluster, as the driver numbers them; the tracker only compares
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

/// Where a peer's socket is: on one of this instance's connections, or on another instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAt {
    Conn(ConnId),
    Remote(InstanceId),
}

/// What the other instances of a cluster must hear, in the order it happened; queued only while
/// [`Tracker::set_clustered`] is on and taken with [`Tracker::take_cluster_out`]. The order
/// matters: a peer's `Up` precedes any frame its announce caused, so the instance that receives
/// an offer already knows where to send the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOut {
    /// A peer on this instance announced (first time or again: it also refreshes expiry there).
    Up {
        info_hash: InfoHash,
        peer_id: PeerId,
        complete: bool,
    },
    /// A peer on this instance left: `stopped`, its socket closed, or it expired.
    Down {
        info_hash: InfoHash,
        peer_id: PeerId,
    },
    /// A tracker frame (relayed offer or answer) for `peer_id`, whose socket is on `to`.
    Relay {
        to: InstanceId,
        info_hash: InfoHash,
        peer_id: PeerId,
        frame: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Re-announce interval told to clients, seconds.
    pub interval_s: u64,
    /// A peer not heard from for this long is dropped even if its socket looks open (half-open
    /// TCP, a frozen tab). Twice the interval tolerates one lost or late re-announce.
    pub peer_timeout_ms: u64,
    /// How many (torrent, peer id) registrations one connection may hold; a tab seeding many
    /// torrents announces all of them over one socket, but a socket must not fill the tracker.
    pub max_swarms_per_conn: usize,
    /// Entries in a scrape that names no info-hash ("all swarms").
    pub max_scrape_all: usize,
    /// Offers relayed from one announce (capped again at [`MAX_OFFERS`], beyond which the parser
    /// does not even read them). Extra offers are not an error: the announce is served and its
    /// reply carries a `warning message`, because failing it would unlist a working client.
    pub max_offers_per_announce: usize,
    /// Peers one announce may ask for (capped again at [`MAX_NUMWANT`]); larger `numwant`s are
    /// clamped silently, as bittorrent-tracker does: asking for many is normal, not abuse.
    pub max_numwant: u32,
    /// Token bucket per connection: messages (announces, answers, scrapes, and malformed frames,
    /// which cost parsing too) refilled per second. `0` turns the limit off. Every message past it
    /// gets a `failure reason` and is otherwise ignored; the connection stays open.
    pub messages_per_s: u32,
    /// The bucket's size: how many messages may arrive at once. A tab seeding many torrents
    /// announces all of them when its socket opens, so this must cover a start-up burst.
    pub message_burst: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval_s: DEFAULT_INTERVAL_S,
            peer_timeout_ms: 2 * DEFAULT_INTERVAL_S * 1000,
            max_swarms_per_conn: 1000,
            max_scrape_all: 1000,
            max_offers_per_announce: MAX_OFFERS,
            max_numwant: MAX_NUMWANT,
            // 1000 torrents (the per-connection limit) re-announced every 120 s is ~8/s; answers
            // to relayed offers come on top. 20/s sustained and 200 at once leaves room for that
            // while bounding what one socket can make the tracker relay.
            messages_per_s: 20,
            message_burst: 200,
        }
    }
}

/// Why the tracker refused (or cut short) a message: counted per reason for `/stats` and
/// `/metrics`. A fixed struct, not a map, so the set of reasons is documented in one place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    /// Not a valid tracker message (bad JSON, wrong field types, ids that are not 20 latin-1
    /// characters, oversized SDP, unknown action or event): answered with a `failure reason`.
    pub malformed: u64,
    /// A frame over [`msg::MAX_FRAME_BYTES`] that reached the parser (the native driver stops
    /// these earlier, at the WebSocket layer).
    pub frame_too_big: u64,
    /// Over the per-connection message rate.
    pub rate_limited: u64,
    /// An announce for one torrent more than `max_swarms_per_conn`.
    pub too_many_swarms: u64,
    /// Announces served with some offers dropped over `max_offers_per_announce` (warned, not
    /// failed).
    pub offers_truncated: u64,
}

impl Rejections {
    /// `(reason, count)` pairs with the names `/stats` and `/metrics` use.
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("malformed", self.malformed),
            ("frame_too_big", self.frame_too_big),
            ("rate_limited", self.rate_limited),
            ("too_many_swarms", self.too_many_swarms),
            ("offers_truncated", self.offers_truncated),
        ]
    }
}

/// A token bucket in thousandths of a message, so refill is exact integer arithmetic on
/// milliseconds (1 ms at `r` messages/s adds `r` thousandths).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    last_ms: u64,
}

impl Bucket {
    fn full(burst: u32, now_ms: u64) -> Bucket {
        Bucket {
            milli: u64::from(burst) * 1000,
            last_ms: now_ms,
        }
    }

    /// Refills for the time since the last call, then takes one message if there is one.
    fn take(&mut self, rate_per_s: u32, burst: u32, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        // A clock that goes backwards (it should not) refills nothing instead of underflowing.
        self.last_ms = self.last_ms.max(now_ms);
        let cap = u64::from(burst) * 1000;
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(u64::from(rate_per_s)))
            .min(cap);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// Running totals since start, for `/stats` and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub announces: u64,
    pub offers_relayed: u64,
    pub answers_forwarded: u64,
    /// Answers whose `to_peer_id` had already left the swarm (a normal race, not an error).
    pub answers_dropped: u64,
    pub scrapes: u64,
    pub failures: u64,
    pub expired: u64,
}

#[derive(Debug, Clone)]
struct PeerEntry {
    peer_id: PeerId,
    at: PeerAt,
    complete: bool,
    last_seen_ms: u64,
}

/// Peers in a vector (uniform random picks by index) plus an index by peer id.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<PeerEntry>,
    index: HashMap<PeerId, usize>,
    complete: u64,
    incomplete: u64,
    /// Transitions to complete seen here; bittorrent-tracker reports `complete` instead.
    downloaded: u64,
}

impl Swarm {
    fn get_mut(&mut self, id: &PeerId) -> Option<&mut PeerEntry> {
        let i = *self.index.get(id)?;
        self.peers.get_mut(i)
    }

    fn get(&self, id: &PeerId) -> Option<&PeerEntry> {
        self.peers.get(*self.index.get(id)?)
    }

    fn insert(&mut self, entry: PeerEntry) {
        if entry.complete {
            self.complete += 1;
        } else {
            self.incomplete += 1;
        }
        self.index.insert(entry.peer_id, self.peers.len());
        self.peers.push(entry);
    }

    fn remove(&mut self, id: &PeerId) -> Option<PeerEntry> {
        let i = self.index.remove(id)?;
        let entry = self.peers.swap_remove(i);
        if let Some(moved) = self.peers.get(i) {
            self.index.insert(moved.peer_id, i);
        }
        if entry.complete {
            self.complete -= 1;
        } else {
            self.incomplete -= 1;
        }
        Some(entry)
    }

    /// `seen_here`: the transition happened on this instance (counted in `downloaded`); another
    /// instance's peer completing is counted there.
    fn mark_complete(&mut self, id: &PeerId, seen_here: bool) {
        if let Some(p) = self.get_mut(id) {
            if !p.complete {
                p.complete = true;
                self.complete += 1;
                self.incomplete -= 1;
                if seen_here {
                    self.downloaded += 1;
                }
            }
        }
    }

    /// Up to `k` distinct peer indices chosen uniformly, never `exclude`. Floyd's sampling: O(k)
    /// draws whatever the swarm size, so a big swarm costs no more per announce than a small one.
    fn sample_others(&self, exclude: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
        let m = self.peers.len().saturating_sub(1);
        let k = k.min(m);
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        for j in (m - k)..m {
            let t = rng.below(j as u64 + 1) as usize;
            chosen.push(if chosen.contains(&t) { j } else { t });
        }
        // Positions are over the m peers other than `exclude`.
        chosen
            .iter()
            .map(|&p| if p >= exclude { p + 1 } else { p })
            .collect()
    }
}

/// The tracker state machine. See the module docs.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    swarms: BTreeMap<InfoHash, Swarm>,
    /// What each connection has registered, so a close removes exactly its peers. A vector, not a
    /// set: most connections hold one or two, a B-tree node would cost ~500 bytes each, and
    /// `max_swarms_per_conn` bounds the linear searches. Unordered; sorted where order reaches
    /// the output.
    conns: HashMap<ConnId, Vec<(InfoHash, PeerId)>>,
    /// Rate-limit state of every connection that has sent anything; removed on disconnect.
    buckets: HashMap<ConnId, Bucket>,
    counters: Counters,
    rejections: Rejections,
    /// Entries whose socket is on another instance, over all swarms.
    remote: usize,
    /// Whether [`ClusterOut`]s are queued at all: a lone tracker must not grow a queue nobody
    /// takes.
    clustered: bool,
    cluster_out: Vec<ClusterOut>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker {
            config,
            swarms: BTreeMap::new(),
            conns: HashMap::new(),
            buckets: HashMap::new(),
            counters: Counters::default(),
            rejections: Rejections::default(),
            remote: 0,
            clustered: false,
            cluster_out: Vec::new(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Handles one text frame from `conn` and returns the frames to send: first any reply to
    /// `conn`, then relays to other connections (possibly `conn` itself when it carries several
    /// peer ids, as when two WebTorrent clients in one page share a socket).
    pub fn handle_text(
        &mut self,
        conn: ConnId,
        text: &str,
        now_ms: u64,
        rng: &mut Rng,
    ) -> Vec<(ConnId, String)> {
        // Parsed before the rate check so that even a refusal names its request and torrent:
        // WebTorrent treats a failure with `action` as a warning for that torrent, one without
        // as a broken socket. The parse is bounded by the frame size limit either way.
        let parsed = msg::parse_client_message(text);
        let mut out = Vec::with_capacity(match &parsed {
            Ok(ClientMessage::Announce(a)) => 1 + a.offers.len(),
            _ => 1,
        });
        if !self.take_token(conn, now_ms) {
            self.counters.failures += 1;
            self.rejections.rate_limited += 1;
            let (action, ih) = match &parsed {
                Ok(ClientMessage::Announce(a)) => (Some(Action::Announce), Some(a.info_hash)),
                Ok(ClientMessage::Answer(a)) => (Some(Action::Announce), Some(a.info_hash)),
                Ok(ClientMessage::Scrape { .. }) => (Some(Action::Scrape), None),
                Err(f) => (f.action, f.info_hash),
            };
            let reason = format!(
                "rate limit exceeded: at most {} messages per second per connection (burst {})",
                self.config.messages_per_s, self.config.message_burst
            );
            out.push((conn, msg::failure_json(&reason, action, ih.as_ref())));
            return out;
        }
        match parsed {
            Err(f) => {
                self.counters.failures += 1;
                if matches!(f.error, SignalError::TooLarge { .. }) {
                    self.rejections.frame_too_big += 1;
                } else {
                    self.rejections.malformed += 1;
                }
                let reason = f.error.to_string();
                out.push((
                    conn,
                    msg::failure_json(&reason, f.action, f.info_hash.as_ref()),
                ));
            }
            Ok(ClientMessage::Announce(a)) => self.announce(conn, a, now_ms, rng, &mut out),
            Ok(ClientMessage::Answer(a)) => self.answer(conn, a, now_ms, &mut out),
            Ok(ClientMessage::Scrape { info_hashes }) => self.scrape(conn, info_hashes, &mut out),
        }
        out
    }

    /// The connection is gone: every peer it registered leaves its swarms.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.buckets.remove(&conn);
        let Some(mut keys) = self.conns.remove(&conn) else {
            return;
        };
        // The order the `Down`s are queued in.
        keys.sort_unstable();
        for (ih, pid) in keys {
            if self.remove_peer_if_owned(ih, pid, conn) {
                self.queue_down(ih, pid);
            }
        }
    }

    /// Drops peers not heard from within `peer_timeout_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let timeout = self.config.peer_timeout_ms;
        let mut stale = Vec::new();
        for (ih, swarm) in &self.swarms {
            for p in &swarm.peers {
                if now_ms.saturating_sub(p.last_seen_ms) > timeout {
                    stale.push((*ih, p.peer_id, p.at));
                }
            }
        }
        for &(ih, pid, at) in &stale {
            match at {
                PeerAt::Conn(conn) => {
                    if self.remove_peer_if_owned(ih, pid, conn) {
                        self.queue_down(ih, pid);
                    }
                    self.forget_registration(conn, ih, pid);
                }
                // Its instance stopped refreshing it: that instance or the link to it is gone,
                // or the peer left without a `Down` reaching us.
                PeerAt::Remote(inst) => {
                    self.remove_remote_if_from(ih, pid, inst);
                }
            }
        }
        self.counters.expired += stale.len() as u64;
        stale.len()
    }

    /// Turns the [`ClusterOut`] queue on (the driver joined a cluster) or off (it left, or lost
    /// its link): off also empties it. Off is the default.
    pub fn set_clustered(&mut self, on: bool) {
        self.clustered = on;
        if !on {
            self.cluster_out.clear();
        }
    }

    /// What the other instances must hear since the last call, oldest first.
    pub fn take_cluster_out(&mut self) -> Vec<ClusterOut> {
        std::mem::take(&mut self.cluster_out)
    }

    /// Instance `from` says its peer `peer_id` announced in `info_hash`: listed (or refreshed)
    /// here so this instance's announces can pick it and answers can reach it. A peer id held by
    /// one of this instance's connections moves to `from`, as on a reconnect: the peer's newest
    /// socket is the one that counts. Ignored while not clustered.
    pub fn remote_up(
        &mut self,
        from: InstanceId,
        info_hash: InfoHash,
        peer_id: PeerId,
        complete: bool,
        now_ms: u64,
    ) {
        if !self.clustered {
            return;
        }
        let swarm = self.swarms.entry(info_hash).or_default();
        let mut moved_from = None;
        match swarm.get_mut(&peer_id) {
            Some(p) => {
                match p.at {
                    PeerAt::Conn(old) => {
                        moved_from = Some(old);
                        self.remote += 1;
                    }
                    PeerAt::Remote(_) => {}
                }
                p.at = PeerAt::Remote(from);
                p.last_seen_ms = now_ms;
                if complete {
                    swarm.mark_complete(&peer_id, false);
                }
            }
            None => {
                swarm.insert(PeerEntry {
                    peer_id,
                    at: PeerAt::Remote(from),
                    complete,
                    last_seen_ms: now_ms,
                });
                self.remote += 1;
            }
        }
        if let Some(old) = moved_from {
            self.forget_registration(old, info_hash, peer_id);
        }
    }

    /// Instance `from` says its peer left; only `from`'s entry is removed (the peer may have
    /// moved on to another instance, or here, since). `true` if one was.
    pub fn remote_down(&mut self, from: InstanceId, info_hash: InfoHash, peer_id: PeerId) -> bool {
        self.remove_remote_if_from(info_hash, peer_id, from)
    }

    /// Drops every peer listed as being on `inst` (it said goodbye, or is known to be gone);
    /// returns how many.
    pub fn forget_instance(&mut self, inst: InstanceId) -> usize {
        self.forget_remote_where(|i| i == inst)
    }

    /// Drops every peer of every other instance: with the link to the others gone, offers to
    /// them would go nowhere, so announces must pick only local peers. Returns how many.
    pub fn forget_remote(&mut self) -> usize {
        self.forget_remote_where(|_| true)
    }

    fn forget_remote_where(&mut self, matches: impl Fn(InstanceId) -> bool) -> usize {
        if self.remote == 0 {
            return 0;
        }
        let mut gone = Vec::new();
        for (ih, swarm) in &self.swarms {
            for p in &swarm.peers {
                if let PeerAt::Remote(inst) = p.at {
                    if matches(inst) {
                        gone.push((*ih, p.peer_id, inst));
                    }
                }
            }
        }
        for &(ih, pid, inst) in &gone {
            self.remove_remote_if_from(ih, pid, inst);
        }
        gone.len()
    }

    /// The connection of this instance's peer `peer_id` in `info_hash`, for a frame another
    /// instance relayed to it; `None` when it is not (or no longer) here, and the frame is
    /// dropped as a local relay to a departed peer would be.
    pub fn local_conn(&self, info_hash: &InfoHash, peer_id: &PeerId) -> Option<ConnId> {
        match self.swarms.get(info_hash)?.get(peer_id)?.at {
            PeerAt::Conn(conn) => Some(conn),
            PeerAt::Remote(_) => None,
        }
    }

    /// Every peer on this instance as `(info_hash, peer_id, complete)`, for an instance that
    /// just joined (or rejoined) the cluster and needs to learn them without waiting a whole
    /// announce interval.
    pub fn local_peers(&self) -> Vec<(InfoHash, PeerId, bool)> {
        let mut all = Vec::new();
        for (ih, swarm) in &self.swarms {
            for p in &swarm.peers {
                if let PeerAt::Conn(_) = p.at {
                    all.push((*ih, p.peer_id, p.complete));
                }
            }
        }
        all
    }

    /// Swarms with at least one peer.
    pub fn swarms(&self) -> usize {
        self.swarms.len()
    }

    /// Peers connected to this instance, over all swarms (a peer in two swarms counts twice).
    pub fn peers(&self) -> usize {
        self.swarms.values().map(|s| s.peers.len()).sum::<usize>() - self.remote
    }

    /// Peers listed here whose sockets are on other instances (see [`Tracker::remote_up`]).
    pub fn remote_peers(&self) -> usize {
        self.remote
    }

    /// Connections that currently hold at least one peer.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn rejections(&self) -> Rejections {
        self.rejections
    }

    /// The `limit` swarms with the most peers, largest first (ties by info-hash), as
    /// `(info_hash, complete, incomplete, downloaded)`: for a status page, not the protocol.
    pub fn top_swarms(&self, limit: usize) -> Vec<(InfoHash, u64, u64, u64)> {
        let mut all: Vec<(InfoHash, u64, u64, u64)> = self
            .swarms
            .iter()
            .map(|(ih, s)| (*ih, s.complete, s.incomplete, s.downloaded))
            .collect();
        all.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        all.truncate(limit);
        all
    }

    /// Takes one message from `conn`'s bucket; `false` when it is empty.
    fn take_token(&mut self, conn: ConnId, now_ms: u64) -> bool {
        // A burst below one would refuse everything; the rate alone says "off".
        let (rate, burst) = (self.config.messages_per_s, self.config.message_burst.max(1));
        if rate == 0 {
            return true;
        }
        self.buckets
            .entry(conn)
            .or_insert_with(|| Bucket::full(burst, now_ms))
            .take(rate, burst, now_ms)
    }

    /// `(complete, incomplete, downloaded)` of one swarm; zeros when unknown.
    pub fn swarm_counts(&self, info_hash: &InfoHash) -> (u64, u64, u64) {
        self.swarms
            .get(info_hash)
            .map_or((0, 0, 0), |s| (s.complete, s.incomplete, s.downloaded))
    }

    fn announce(
        &mut self,
        conn: ConnId,
        a: Announce<'_>,
        now_ms: u64,
        rng: &mut Rng,
        out: &mut Vec<(ConnId, String)>,
    ) {
        self.counters.announces += 1;
        let (ih, pid) = (a.info_hash, a.peer_id);
        let interval = self.config.interval_s;

        if a.event == AnnounceEvent::Stopped {
            // Only the connection that holds the registration may end it: peer ids are public
            // (every relayed offer carries one), so anyone could otherwise kick a peer out.
            if self.remove_peer_if_owned(ih, pid, conn) {
                self.queue_down(ih, pid);
            }
            self.forget_registration(conn, ih, pid);
            let (complete, incomplete, _) = self.swarm_counts(&ih);
            out.push((
                conn,
                msg::announce_reply_json(&ih, interval, complete, incomplete),
            ));
            return;
        }

        let key = (ih, pid);
        let held = self.conns.get(&conn).map_or(&[][..], Vec::as_slice);
        let registered = held.contains(&key);
        let held = held.len();
        if !registered && held >= self.config.max_swarms_per_conn {
            self.counters.failures += 1;
            self.rejections.too_many_swarms += 1;
            let reason = format!(
                "too many torrents on one connection (limit {})",
                self.config.max_swarms_per_conn
            );
            out.push((
                conn,
                msg::failure_json(&reason, Some(Action::Announce), Some(&ih)),
            ));
            return;
        }

        let now_complete = a.event == AnnounceEvent::Completed || a.left == Some(0);
        let swarm = self.swarms.entry(ih).or_default();
        let mut moved_from = None;
        match swarm.get_mut(&pid) {
            Some(p) => {
                if p.at != PeerAt::Conn(conn) {
                    // Same peer id from a new socket: the client reconnected (here, or here
                    // instead of on another instance); the old socket is dead or about to be, so
                    // offers and answers must go to the new one.
                    match p.at {
                        PeerAt::Conn(old) => moved_from = Some(old),
                        PeerAt::Remote(_) => self.remote -= 1,
                    }
                    p.at = PeerAt::Conn(conn);
                }
                p.last_seen_ms = now_ms;
                if now_complete {
                    swarm.mark_complete(&pid, true);
                }
            }
            None => {
                swarm.insert(PeerEntry {
                    peer_id: pid,
                    at: PeerAt::Conn(conn),
                    complete: now_complete,
                    last_seen_ms: now_ms,
                });
                if a.event == AnnounceEvent::Completed {
                    swarm.downloaded += 1;
                }
            }
        }
        let offer_cap = self.config.max_offers_per_announce.min(MAX_OFFERS);
        let offers_over = a.offers.len().saturating_sub(offer_cap) + a.offers_ignored;
        let reply = if offers_over > 0 {
            self.rejections.offers_truncated += 1;
            let warning = format!(
                "{offers_over} offers ignored: at most {offer_cap} are relayed per announce"
            );
            msg::announce_reply_warning_json(
                &ih,
                interval,
                swarm.complete,
                swarm.incomplete,
                &warning,
            )
        } else {
            msg::announce_reply_json(&ih, interval, swarm.complete, swarm.incomplete)
        };
        out.push((conn, reply));
        if self.clustered {
            // Before any relay below: see [`ClusterOut`].
            let complete = swarm.get(&pid).is_some_and(|p| p.complete);
            self.cluster_out.push(ClusterOut::Up {
                info_hash: ih,
                peer_id: pid,
                complete,
            });
        }

        let numwant_cap = self.config.max_numwant.min(MAX_NUMWANT) as usize;
        let wanted = a.offers.len().min(offer_cap).min(
            a.numwant
                .map_or(numwant_cap, |n| (n as usize).min(numwant_cap)),
        );
        if wanted > 0 {
            let me = swarm.index.get(&pid).copied().unwrap_or(usize::MAX);
            let targets = swarm.sample_others(me, wanted, rng);
            for (offer, t) in a.offers.iter().zip(targets) {
                let target = &swarm.peers[t];
                let frame = msg::offer_relay_json(&ih, &pid, &offer.offer_id, offer.sdp);
                Self::route(
                    &mut self.cluster_out,
                    out,
                    (target.at, ih, target.peer_id),
                    frame,
                );
                self.counters.offers_relayed += 1;
            }
        }

        if let Some(old) = moved_from {
            self.forget_registration(old, ih, pid);
        }
        if !registered {
            // Capacity for one: the common case, and growth doubles from there.
            self.conns
                .entry(conn)
                .or_insert_with(|| Vec::with_capacity(1))
                .push(key);
        }
    }

    fn answer(
        &mut self,
        conn: ConnId,
        a: Answer<'_>,
        now_ms: u64,
        out: &mut Vec<(ConnId, String)>,
    ) {
        let Some(swarm) = self.swarms.get_mut(&a.info_hash) else {
            self.counters.answers_dropped += 1;
            return;
        };
        // An answer proves the answerer is alive, as bittorrent-tracker's implied update does.
        if let Some(p) = swarm
            .get_mut(&a.peer_id)
            .filter(|p| p.at == PeerAt::Conn(conn))
        {
            p.last_seen_ms = now_ms;
        }
        match swarm.get(&a.to_peer_id) {
            Some(target) => {
                let frame = msg::answer_relay_json(&a.info_hash, &a.peer_id, &a.offer_id, a.sdp);
                Self::route(
                    &mut self.cluster_out,
                    out,
                    (target.at, a.info_hash, target.peer_id),
                    frame,
                );
                self.counters.answers_forwarded += 1;
            }
            // bittorrent-tracker replies nothing here either: the offerer simply left.
            None => self.counters.answers_dropped += 1,
        }
    }

    fn scrape(
        &mut self,
        conn: ConnId,
        info_hashes: Option<Vec<InfoHash>>,
        out: &mut Vec<(ConnId, String)>,
    ) {
        self.counters.scrapes += 1;
        let hashes: Vec<InfoHash> = match info_hashes {
            Some(v) => v,
            None => self
                .swarms
                .keys()
                .take(self.config.max_scrape_all)
                .copied()
                .collect(),
        };
        let files: Vec<(InfoHash, u64, u64, u64)> = hashes
            .iter()
            .map(|ih| {
                let (c, i, d) = self.swarm_counts(ih);
                (*ih, c, i, d)
            })
            .collect();
        out.push((conn, msg::scrape_reply_json(&files, self.config.interval_s)));
    }

    /// Removes `pid` from swarm `ih` if `conn` still holds it; drops the swarm when it empties.
    /// `true` if it was removed.
    fn remove_peer_if_owned(&mut self, ih: InfoHash, pid: PeerId, conn: ConnId) -> bool {
        self.remove_if_at(ih, pid, PeerAt::Conn(conn))
    }

    /// Removes `pid` from swarm `ih` if its socket is on instance `inst`; `true` if it was.
    fn remove_remote_if_from(&mut self, ih: InfoHash, pid: PeerId, inst: InstanceId) -> bool {
        let removed = self.remove_if_at(ih, pid, PeerAt::Remote(inst));
        if removed {
            self.remote -= 1;
        }
        removed
    }

    fn remove_if_at(&mut self, ih: InfoHash, pid: PeerId, at: PeerAt) -> bool {
        let Some(swarm) = self.swarms.get_mut(&ih) else {
            return false;
        };
        if !swarm.get(&pid).is_some_and(|p| p.at == at) {
            return false;
        }
        swarm.remove(&pid);
        if swarm.peers.is_empty() {
            self.swarms.remove(&ih);
        }
        true
    }

    fn queue_down(&mut self, info_hash: InfoHash, peer_id: PeerId) {
        if self.clustered {
            self.cluster_out
                .push(ClusterOut::Down { info_hash, peer_id });
        }
    }

    /// Sends `frame` to a peer: into `out` when its socket is here, into the cluster queue when
    /// it is on another instance. (An associated function so callers can hold a swarm borrow.)
    fn route(
        cluster_out: &mut Vec<ClusterOut>,
        out: &mut Vec<(ConnId, String)>,
        (at, info_hash, peer_id): (PeerAt, InfoHash, PeerId),
        frame: String,
    ) {
        match at {
            PeerAt::Conn(conn) => out.push((conn, frame)),
            // Remote entries exist only while clustered, so this queue is being taken.
            PeerAt::Remote(to) => cluster_out.push(ClusterOut::Relay {
                to,
                info_hash,
                peer_id,
                frame,
            }),
        }
    }

    fn forget_registration(&mut self, conn: ConnId, ih: InfoHash, pid: PeerId) {
        if let Some(keys) = self.conns.get_mut(&conn) {
            if let Some(i) = keys.iter().position(|k| *k == (ih, pid)) {
                keys.swap_remove(i);
            }
            if keys.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }

    /// Test aid: the counters agree with the peers and the registrations with the swarms.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut registered = 0;
        let mut remote = 0;
        for (ih, s) in &self.swarms {
            assert!(!s.peers.is_empty(), "empty swarm kept");
            let c = s.peers.iter().filter(|p| p.complete).count() as u64;
            assert_eq!((s.complete, s.incomplete), (c, s.peers.len() as u64 - c));
            assert_eq!(s.index.len(), s.peers.len());
            for (i, p) in s.peers.iter().enumerate() {
                assert_eq!(s.index[&p.peer_id], i);
                match p.at {
                    PeerAt::Conn(conn) => {
                        assert!(
                            self.conns[&conn].contains(&(*ih, p.peer_id)),
                            "unregistered peer"
                        );
                        registered += 1;
                    }
                    PeerAt::Remote(_) => remote += 1,
                }
            }
        }
        assert_eq!(self.remote, remote, "remote count");
        if !self.clustered {
            assert!(self.cluster_out.is_empty(), "queued with nobody taking");
        }
        assert_eq!(
            self.conns.values().map(|s| s.len()).sum::<usize>(),
            registered
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::msg::latin1;
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    const IH: InfoHash = InfoHash([0xE1; 20]);
    const IH2: InfoHash = InfoHash([0x02; 20]);

    fn pid(n: u8) -> PeerId {
        let mut b = [0x90u8; 20];
        b[0] = n;
        PeerId(b)
    }

    fn announce(
        ih: &InfoHash,
        p: &PeerId,
        event: Option<&str>,
        left: u64,
        offers: &[(u8, &str)],
    ) -> String {
        let mut v = json!({
            "action": "announce", "info_hash": ih.to_latin1(), "peer_id": p.to_latin1(),
            "uploaded": 0, "downloaded": 0, "left": left, "numwant": offers.len(),
            "offers": offers.iter().map(|(id, sdp)| json!({
                "offer_id": latin1(&[*id; 20]), "offer": {"type": "offer", "sdp": sdp}
            })).collect::<Vec<_>>(),
        });
        if let Some(e) = event {
            v["event"] = e.into();
        }
        v.to_string()
    }

    fn parse(frame: &str) -> Value {
        serde_json::from_str(frame).unwrap()
    }

    struct Fixture {
        t: Tracker,
        rng: Rng,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                t: Tracker::new(TrackerConfig::default()),
                rng: Rng::new(42),
            }
        }
        fn send(&mut self, conn: u64, text: &str, now: u64) -> Vec<(ConnId, Value)> {
            let out = self.t.handle_text(ConnId(conn), text, now, &mut self.rng);
            self.t.check_invariants();
            out.into_iter().map(|(c, f)| (c, parse(&f))).collect()
        }
    }

    #[test]
    fn offer_is_relayed_to_the_other_peer_and_answer_comes_back() {
        let mut f = Fixture::new();
        let out = f.send(1, &announce(&IH, &pid(1), Some("started"), 0, &[]), 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, ConnId(1));
        assert_eq!(out[0].1["complete"], 1);
        assert_eq!(out[0].1["interval"], 120);

        let out = f.send(
            2,
            &announce(&IH, &pid(2), Some("started"), 50, &[(0xF7, "sdp-offer")]),
            10,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, ConnId(2));
        assert_eq!(
            (
                out[0].1["complete"].as_u64(),
                out[0].1["incomplete"].as_u64()
            ),
            (Some(1), Some(1))
        );
        let (to, relay) = &out[1];
        assert_eq!(*to, ConnId(1));
        assert_eq!(relay["action"], "announce");
        assert_eq!(relay["info_hash"], IH.to_latin1());
        assert_eq!(relay["peer_id"], pid(2).to_latin1());
        assert_eq!(relay["offer_id"], latin1(&[0xF7; 20]));
        assert_eq!(relay["offer"]["sdp"], "sdp-offer");
        assert_eq!(relay["offer"]["type"], "offer");

        let answer = json!({
            "action": "announce", "info_hash": IH.to_latin1(), "peer_id": pid(1).to_latin1(),
            "to_peer_id": pid(2).to_latin1(), "offer_id": latin1(&[0xF7; 20]),
            "answer": {"type": "answer", "sdp": "sdp-answer"}
        });
        let out = f.send(1, &answer.to_string(), 20);
        assert_eq!(
            out.len(),
            1,
            "no reply to the answerer, one frame to the offerer"
        );
        let (to, fwd) = &out[0];
        assert_eq!(*to, ConnId(2));
        assert_eq!(fwd["peer_id"], pid(1).to_latin1());
        assert_eq!(fwd["offer_id"], latin1(&[0xF7; 20]));
        assert_eq!(fwd["answer"]["sdp"], "sdp-answer");
        assert_eq!(fwd["info_hash"], IH.to_latin1());
        assert!(fwd.get("to_peer_id").is_none());
        let c = f.t.counters();
        assert_eq!((c.offers_relayed, c.answers_forwarded), (1, 1));
    }

    #[test]
    fn lone_peer_offers_go_nowhere_and_answers_to_strangers_are_dropped() {
        let mut f = Fixture::new();
        let out = f.send(
            1,
            &announce(&IH, &pid(1), Some("started"), 9, &[(1, "a"), (2, "b")]),
            0,
        );
        assert_eq!(out.len(), 1, "never relayed back to the announcer");
        let answer = json!({
            "action": "announce", "info_hash": IH.to_latin1(), "peer_id": pid(1).to_latin1(),
            "to_peer_id": pid(77).to_latin1(), "offer_id": latin1(&[1; 20]),
            "answer": {"type": "answer", "sdp": "x"}
        });
        assert!(f.send(1, &answer.to_string(), 1).is_empty());
        assert_eq!(f.t.counters().answers_dropped, 1);
    }

    #[test]
    fn offers_spread_over_distinct_peers_bounded_by_numwant_and_peers() {
        let mut f = Fixture::new();
        for n in 1..=6 {
            f.send(
                n as u64,
                &announce(&IH, &pid(n), Some("started"), 1, &[]),
                0,
            );
        }
        let offers: Vec<(u8, &str)> = (0..8).map(|i| (i, "s")).collect();
        let out = f.send(9, &announce(&IH, &pid(9), None, 1, &offers), 1);
        let targets: BTreeSet<ConnId> = out[1..].iter().map(|(c, _)| *c).collect();
        assert_eq!(out.len() - 1, 6, "one offer per other peer, no more");
        assert_eq!(targets.len(), 6);
        assert!(!targets.contains(&ConnId(9)));
        let ids: BTreeSet<String> = out[1..]
            .iter()
            .map(|(_, v)| v["offer_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 6, "each offer used once");

        let mut v = parse(&announce(&IH, &pid(9), None, 1, &offers));
        v["numwant"] = 2.into();
        let out = f.send(9, &v.to_string(), 2);
        assert_eq!(out.len(), 3, "numwant 2 bounds the relays");
        v["numwant"] = 0.into();
        assert_eq!(f.send(9, &v.to_string(), 3).len(), 1);
    }

    #[test]
    fn sampling_is_uniform_enough_and_never_picks_self() {
        let mut s = Swarm::default();
        for n in 0..10 {
            s.insert(PeerEntry {
                peer_id: pid(n),
                at: PeerAt::Conn(ConnId(n as u64)),
                complete: false,
                last_seen_ms: 0,
            });
        }
        let mut rng = Rng::new(1);
        let mut hits = [0u32; 10];
        for _ in 0..2000 {
            let picks = s.sample_others(4, 3, &mut rng);
            assert_eq!(picks.len(), 3);
            assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 3);
            for p in picks {
                assert_ne!(p, 4);
                hits[p] += 1;
            }
        }
        // 6000 picks over 9 peers: ~667 each.
        for (i, h) in hits.iter().enumerate() {
            if i != 4 {
                assert!((500..850).contains(h), "peer {i} picked {h} times");
            }
        }
        assert_eq!(s.sample_others(0, 50, &mut rng).len(), 9);
    }

    #[test]
    fn counts_follow_started_completed_update_and_stopped() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 10, &[]), 0);
        f.send(2, &announce(&IH, &pid(2), Some("started"), 0, &[]), 0);
        assert_eq!(f.t.swarm_counts(&IH), (1, 1, 0));
        let out = f.send(1, &announce(&IH, &pid(1), Some("completed"), 0, &[]), 1);
        assert_eq!(
            (
                out[0].1["complete"].as_u64(),
                out[0].1["incomplete"].as_u64()
            ),
            (Some(2), Some(0))
        );
        assert_eq!(f.t.swarm_counts(&IH), (2, 0, 1));
        // A repeated `completed` is not a second download.
        f.send(1, &announce(&IH, &pid(1), Some("completed"), 0, &[]), 2);
        assert_eq!(f.t.swarm_counts(&IH), (2, 0, 1));
        // An update with left 0 completes a leecher, as in bittorrent-tracker.
        f.send(3, &announce(&IH, &pid(3), None, 5, &[]), 3);
        f.send(3, &announce(&IH, &pid(3), None, 0, &[]), 4);
        assert_eq!(f.t.swarm_counts(&IH), (3, 0, 2));

        let out = f.send(2, &announce(&IH, &pid(2), Some("stopped"), 0, &[]), 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1["complete"], 2);
        assert_eq!(f.t.peers(), 2);
        f.send(1, &announce(&IH, &pid(1), Some("stopped"), 0, &[]), 6);
        f.send(3, &announce(&IH, &pid(3), Some("stopped"), 0, &[]), 6);
        assert_eq!((f.t.swarms(), f.t.peers(), f.t.connections()), (0, 0, 0));
        // Stopping what is not there is harmless and still answered.
        let out = f.send(3, &announce(&IH, &pid(3), Some("stopped"), 0, &[]), 7);
        assert_eq!(out[0].1["complete"], 0);
    }

    #[test]
    fn null_left_counts_as_incomplete() {
        let mut f = Fixture::new();
        let mut v = parse(&announce(&IH, &pid(1), Some("started"), 0, &[]));
        v["left"] = Value::Null;
        f.send(1, &v.to_string(), 0);
        assert_eq!(f.t.swarm_counts(&IH), (0, 1, 0));
    }

    #[test]
    fn stopped_from_another_connection_is_ignored() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 1, &[]), 0);
        f.send(2, &announce(&IH, &pid(1), Some("stopped"), 1, &[]), 1);
        assert_eq!(f.t.peers(), 1);
    }

    #[test]
    fn expiry_drops_silent_peers_only() {
        let mut f = Fixture::new();
        let timeout = f.t.config().peer_timeout_ms;
        f.send(1, &announce(&IH, &pid(1), Some("started"), 1, &[]), 0);
        f.send(2, &announce(&IH, &pid(2), Some("started"), 1, &[]), 0);
        f.send(2, &announce(&IH2, &pid(2), Some("started"), 1, &[]), 0);
        f.send(1, &announce(&IH, &pid(1), None, 1, &[]), timeout);
        assert_eq!(
            f.t.expire(timeout),
            0,
            "exactly at the timeout is still alive"
        );
        assert_eq!(f.t.expire(timeout + 1), 2);
        f.t.check_invariants();
        assert_eq!((f.t.swarms(), f.t.peers(), f.t.connections()), (1, 1, 1));
        assert_eq!(f.t.counters().expired, 2);
    }

    #[test]
    fn disconnect_removes_the_connection_from_every_swarm() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 1, &[]), 0);
        f.send(1, &announce(&IH2, &pid(1), Some("started"), 0, &[]), 0);
        f.send(2, &announce(&IH, &pid(2), Some("started"), 1, &[]), 0);
        assert_eq!((f.t.swarms(), f.t.peers()), (2, 3));
        f.t.disconnect(ConnId(1));
        f.t.check_invariants();
        assert_eq!((f.t.swarms(), f.t.peers(), f.t.connections()), (1, 1, 1));
        f.t.disconnect(ConnId(1));
        f.t.disconnect(ConnId(99));
        assert_eq!(f.t.peers(), 1);
    }

    #[test]
    fn second_connection_takes_over_a_peer_id() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 1, &[]), 0);
        f.send(5, &announce(&IH, &pid(1), Some("started"), 1, &[]), 1);
        assert_eq!((f.t.peers(), f.t.connections()), (1, 1));
        // The old socket closing must not remove the peer now held by the new one.
        f.t.disconnect(ConnId(1));
        assert_eq!(f.t.peers(), 1);
        let out = f.send(2, &announce(&IH, &pid(2), None, 1, &[(3, "o")]), 2);
        assert_eq!(out[1].0, ConnId(5));
    }

    #[test]
    fn one_connection_many_peer_ids_and_swarms() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 1, &[]), 0);
        let out = f.send(
            1,
            &announce(&IH, &pid(2), Some("started"), 1, &[(4, "o")]),
            0,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].0,
            ConnId(1),
            "relayed to the other peer id on the same socket"
        );
        assert_eq!(out[1].1["peer_id"], pid(2).to_latin1());
    }

    #[test]
    fn per_connection_swarm_limit() {
        let mut f = Fixture::new();
        f.t.config.max_swarms_per_conn = 2;
        f.send(
            1,
            &announce(&InfoHash([1; 20]), &pid(1), Some("started"), 1, &[]),
            0,
        );
        f.send(
            1,
            &announce(&InfoHash([2; 20]), &pid(1), Some("started"), 1, &[]),
            0,
        );
        let out = f.send(
            1,
            &announce(&InfoHash([3; 20]), &pid(1), Some("started"), 1, &[]),
            0,
        );
        assert!(out[0].1["failure reason"]
            .as_str()
            .unwrap()
            .contains("too many"));
        assert_eq!(out[0].1["info_hash"], InfoHash([3; 20]).to_latin1());
        // Re-announcing a held one still works.
        let out = f.send(1, &announce(&InfoHash([2; 20]), &pid(1), None, 1, &[]), 1);
        assert!(out[0].1.get("failure reason").is_none());
        assert_eq!(f.t.swarms(), 2);
    }

    #[test]
    fn scrape_single_list_and_all() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), Some("started"), 0, &[]), 0);
        f.send(2, &announce(&IH, &pid(2), Some("started"), 7, &[]), 0);
        f.send(2, &announce(&IH2, &pid(2), Some("started"), 7, &[]), 0);

        let one = json!({"action": "scrape", "info_hash": IH.to_latin1()}).to_string();
        let out = f.send(3, &one, 1);
        assert_eq!(out[0].0, ConnId(3));
        let files = out[0].1["files"].as_object().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[&IH.to_latin1()],
            json!({"complete": 1, "incomplete": 1, "downloaded": 0})
        );
        assert_eq!(out[0].1["action"], "scrape");

        let unknown = InfoHash([0xAB; 20]);
        let list = json!({"action": "scrape", "info_hash": [IH2.to_latin1(), unknown.to_latin1()]});
        let out = f.send(3, &list.to_string(), 1);
        let files = out[0].1["files"].as_object().unwrap();
        assert_eq!(files[&IH2.to_latin1()]["incomplete"], 1);
        assert_eq!(files[&unknown.to_latin1()]["complete"], 0);

        let out = f.send(3, r#"{"action":"scrape"}"#, 1);
        assert_eq!(out[0].1["files"].as_object().unwrap().len(), 2);
        assert_eq!(f.t.swarms(), 2, "scraping creates no swarms");
    }

    #[test]
    fn garbage_gets_a_failure_reason_and_changes_nothing() {
        let mut f = Fixture::new();
        for junk in [
            "",
            "{",
            "null",
            "[]",
            r#"{"action":5}"#,
            "\u{0}\u{1}",
            r#"{"action":"announce","info_hash":"x"}"#,
        ] {
            let out = f.send(1, junk, 0);
            assert_eq!(out.len(), 1, "{junk:?}");
            assert_eq!(out[0].0, ConnId(1));
            assert!(out[0].1["failure reason"].is_string(), "{junk:?}");
        }
        let out = f.send(1, &"x".repeat(msg::MAX_FRAME_BYTES + 1), 0);
        assert!(out[0].1["failure reason"]
            .as_str()
            .unwrap()
            .contains("exceeds"));
        assert_eq!((f.t.swarms(), f.t.connections()), (0, 0));
        assert_eq!(f.t.counters().failures, 8);
    }

    fn with_config(config: TrackerConfig) -> Fixture {
        Fixture {
            t: Tracker::new(config),
            rng: Rng::new(7),
        }
    }

    fn is_failure(frame: &Value) -> bool {
        frame.get("failure reason").is_some()
    }

    #[test]
    fn rate_limit_follows_a_token_bucket_on_the_virtual_clock() {
        let mut f = with_config(TrackerConfig {
            messages_per_s: 2,
            message_burst: 3,
            ..TrackerConfig::default()
        });
        let ann = |n: u8| announce(&IH, &pid(n), None, 1, &[]);
        // The bucket starts full: a burst of 3 passes, the 4th is refused.
        for _ in 0..3 {
            assert!(!is_failure(&f.send(1, &ann(1), 1_000)[0].1));
        }
        let out = f.send(1, &ann(1), 1_000);
        assert_eq!(out.len(), 1);
        let reason = out[0].1["failure reason"].as_str().unwrap();
        assert!(reason.contains("rate limit"), "{reason}");
        // Labelled with the request, so WebTorrent sees a per-torrent warning, not a dead socket.
        assert_eq!(out[0].1["action"], "announce");
        assert_eq!(out[0].1["info_hash"], IH.to_latin1());
        // Another connection has its own bucket.
        assert!(!is_failure(&f.send(2, &ann(2), 1_000)[0].1));
        // 2/s: one message every 500 ms, not a millisecond sooner.
        assert!(is_failure(&f.send(1, &ann(1), 1_499)[0].1));
        assert!(!is_failure(&f.send(1, &ann(1), 1_500)[0].1));
        assert!(is_failure(&f.send(1, &ann(1), 1_500)[0].1));
        // A long silence refills only up to the burst.
        for _ in 0..3 {
            assert!(!is_failure(&f.send(1, &ann(1), 60_000)[0].1));
        }
        assert!(is_failure(&f.send(1, &ann(1), 60_000)[0].1));
        // Garbage costs a token too (parsing it is work), and scrapes are labelled as scrapes.
        assert!(!is_failure(&f.send(1, &ann(1), 61_000)[0].1));
        let out = f.send(1, "not json", 61_000);
        assert!(out[0].1["failure reason"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"));
        let out = f.send(1, r#"{"action":"scrape"}"#, 61_000);
        assert_eq!(out[0].1["action"], "scrape");
        assert!(out[0].1["failure reason"]
            .as_str()
            .unwrap()
            .contains("rate limit"));
        let r = f.t.rejections();
        assert_eq!((r.rate_limited, r.malformed), (5, 1));
        assert_eq!(f.t.counters().failures, 6);
        // A clock that steps back refills nothing and breaks nothing.
        assert!(is_failure(&f.send(1, &ann(1), 0)[0].1));
        f.t.disconnect(ConnId(1));
        f.t.disconnect(ConnId(2));
        assert!(
            f.t.buckets.is_empty(),
            "rate state freed with the connection"
        );
    }

    #[test]
    fn rate_limit_zero_means_off() {
        let mut f = with_config(TrackerConfig {
            messages_per_s: 0,
            message_burst: 0,
            ..TrackerConfig::default()
        });
        for _ in 0..1000 {
            assert!(!is_failure(
                &f.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0)[0].1
            ));
        }
        assert!(f.t.buckets.is_empty());
    }

    #[test]
    fn offers_over_the_cap_are_dropped_with_a_warning() {
        let mut f = with_config(TrackerConfig {
            max_offers_per_announce: 2,
            ..TrackerConfig::default()
        });
        for n in 1..=5 {
            f.send(n as u64, &announce(&IH, &pid(n), None, 1, &[]), 0);
        }
        let offers: Vec<(u8, &str)> = (0..4).map(|i| (i, "s")).collect();
        let out = f.send(9, &announce(&IH, &pid(9), None, 1, &offers), 1);
        assert_eq!(out.len(), 3, "reply plus 2 relays");
        assert!(!is_failure(&out[0].1), "the announce itself is served");
        assert_eq!(out[0].1["incomplete"], 6);
        assert_eq!(
            out[0].1["warning message"],
            "2 offers ignored: at most 2 are relayed per announce"
        );
        assert_eq!(f.t.rejections().offers_truncated, 1);
        // Within the cap: no warning.
        let out = f.send(9, &announce(&IH, &pid(9), None, 1, &offers[..2]), 2);
        assert!(out[0].1.get("warning message").is_none());
        assert_eq!(f.t.rejections().offers_truncated, 1);

        // Offers the parser never read (over MAX_OFFERS) count too.
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        let many: Vec<(u8, &str)> = (0..MAX_OFFERS as u8 + 3).map(|i| (i, "s")).collect();
        let out = f.send(2, &announce(&IH, &pid(2), None, 1, &many), 1);
        assert_eq!(out.len(), 2, "one other peer: one relay");
        assert_eq!(
            out[0].1["warning message"],
            format!("3 offers ignored: at most {MAX_OFFERS} are relayed per announce")
        );
    }

    #[test]
    fn numwant_is_clamped_to_the_configured_cap() {
        let mut f = with_config(TrackerConfig {
            max_numwant: 1,
            ..TrackerConfig::default()
        });
        for n in 1..=4 {
            f.send(n as u64, &announce(&IH, &pid(n), None, 1, &[]), 0);
        }
        let offers: Vec<(u8, &str)> = (0..3).map(|i| (i, "s")).collect();
        let mut v = parse(&announce(&IH, &pid(9), None, 1, &offers));
        v["numwant"] = 50.into();
        let out = f.send(9, &v.to_string(), 1);
        assert_eq!(out.len(), 2, "numwant 50 clamped to 1 relay");
        assert!(out[0].1.get("warning message").is_none(), "silently");
        // Absent numwant is bounded by the cap too.
        v.as_object_mut().unwrap().remove("numwant");
        assert_eq!(f.send(9, &v.to_string(), 2).len(), 2);
        assert_eq!(f.t.rejections(), Rejections::default());
    }

    #[test]
    fn rejections_are_counted_by_reason() {
        let mut f = Fixture::new();
        f.t.config.max_swarms_per_conn = 1;
        f.send(1, "{", 0);
        f.send(1, &"x".repeat(msg::MAX_FRAME_BYTES + 1), 0);
        f.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        f.send(1, &announce(&IH2, &pid(1), None, 1, &[]), 0);
        let r = f.t.rejections();
        assert_eq!(
            r.by_reason(),
            [
                ("malformed", 1),
                ("frame_too_big", 1),
                ("rate_limited", 0),
                ("too_many_swarms", 1),
                ("offers_truncated", 0),
            ]
        );
    }

    #[test]
    fn hostile_frames_are_refused_and_leave_no_state() {
        let mut f = Fixture::new();
        let ok_id = latin1(&[7; 20]);
        let id = |s: &str| Value::from(s);
        let base = || {
            json!({"action": "announce", "info_hash": ok_id.clone(), "peer_id": ok_id.clone(),
                   "left": 1, "event": "started"})
        };
        let mut frames: Vec<String> = vec![
            // Nesting far past serde_json's recursion limit (128), within the frame size.
            "[".repeat(50_000),
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
            // Numbers out of every range.
            r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa","left":1e400}"#.into(),
            r#"{"action":"scrape","info_hash":-1e308}"#.into(),
            "\u{FEFF}{}".into(),
            "\"\\ud800\"".into(),
        ];
        // Every 20-byte field, too short, too long, and with a char above U+00FF.
        for field in ["info_hash", "peer_id"] {
            for bad in [
                "",
                "x",
                &"x".repeat(21),
                &"\u{100}".repeat(20),
                &"é".repeat(19),
            ] {
                let mut v = base();
                v[field] = id(bad);
                frames.push(v.to_string());
            }
            let mut v = base();
            v[field] = json!(12345678901234567890u64);
            frames.push(v.to_string());
        }
        for bad in ["", &"y".repeat(19), &"y".repeat(40)] {
            let mut v = base();
            v["offers"] = json!([{"offer_id": bad, "offer": {"type": "offer", "sdp": "v=0"}}]);
            frames.push(v.to_string());
            let mut v = base();
            v["answer"] = json!({"type": "answer", "sdp": "v=0"});
            v["to_peer_id"] = ok_id.clone().into();
            v["offer_id"] = bad.into();
            frames.push(v.to_string());
            let mut v = base();
            v["answer"] = json!({"type": "answer", "sdp": "v=0"});
            v["offer_id"] = ok_id.clone().into();
            v["to_peer_id"] = bad.into();
            frames.push(v.to_string());
        }
        for (i, frame) in frames.iter().enumerate() {
            let out = f.send(100 + i as u64, frame, 0);
            assert_eq!(out.len(), 1, "{frame:.80}");
            assert!(is_failure(&out[0].1), "{frame:.80} -> {}", out[0].1);
        }
        assert_eq!(
            f.t.rejections().malformed,
            frames.len() as u64,
            "all counted"
        );
        // Huge but valid numbers are read leniently, not refused.
        let mut v = base();
        v["numwant"] = json!(1e300);
        v["uploaded"] = json!(u64::MAX);
        v["downloaded"] = json!("99999999999999999999999");
        let out = f.send(1, &v.to_string(), 0);
        assert!(!is_failure(&out[0].1), "{}", out[0].1);
        assert_eq!((f.t.swarms(), f.t.peers()), (1, 1));
        for i in 0..frames.len() as u64 {
            f.t.disconnect(ConnId(100 + i));
        }
        f.t.disconnect(ConnId(1));
        assert_eq!(
            (f.t.swarms(), f.t.connections(), f.t.buckets.len()),
            (0, 0, 0)
        );
    }

    #[test]
    fn top_swarms_lists_the_biggest_first() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH2, &pid(1), None, 0, &[]), 0);
        for n in 1..=3 {
            f.send(n as u64, &announce(&IH, &pid(n), None, 1, &[]), 0);
        }
        assert_eq!(f.t.top_swarms(10), vec![(IH, 0, 3, 0), (IH2, 1, 0, 0)]);
        assert_eq!(f.t.top_swarms(1).len(), 1);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = || {
            let mut f = Fixture::new();
            for n in 1..=20 {
                f.send(
                    n as u64,
                    &announce(&IH, &pid(n), Some("started"), 1, &[]),
                    0,
                );
            }
            let offers: Vec<(u8, &str)> = (0..5).map(|i| (i, "s")).collect();
            f.send(99, &announce(&IH, &pid(99), None, 1, &offers), 1)
                .into_iter()
                .map(|(c, _)| c)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
    /// Two clustered trackers and the bus between them: what one queues, the other applies, as
    /// the Redis driver does (instance 1 is `InstanceId(1)` to the other and vice versa).
    struct Pair {
        a: Fixture,
        b: Fixture,
    }

    impl Pair {
        fn new() -> Pair {
            let (mut a, mut b) = (Fixture::new(), Fixture::new());
            a.t.set_clustered(true);
            b.t.set_clustered(true);
            Pair { a, b }
        }

        /// Moves queued messages both ways until quiet; returns the relayed frames delivered,
        /// as (receiving side 'a' or 'b', connection, frame).
        fn pump(&mut self, now: u64) -> Vec<(char, ConnId, Value)> {
            let mut delivered = Vec::new();
            loop {
                let from_a = self.a.t.take_cluster_out();
                let from_b = self.b.t.take_cluster_out();
                if from_a.is_empty() && from_b.is_empty() {
                    return delivered;
                }
                for (msgs, to, side, from) in [
                    (from_a, &mut self.b, 'b', InstanceId(1)),
                    (from_b, &mut self.a, 'a', InstanceId(2)),
                ] {
                    for m in msgs {
                        match m {
                            ClusterOut::Up {
                                info_hash,
                                peer_id,
                                complete,
                            } => to.t.remote_up(from, info_hash, peer_id, complete, now),
                            ClusterOut::Down { info_hash, peer_id } => {
                                to.t.remote_down(from, info_hash, peer_id);
                            }
                            ClusterOut::Relay {
                                info_hash,
                                peer_id,
                                frame,
                                ..
                            } => {
                                if let Some(c) = to.t.local_conn(&info_hash, &peer_id) {
                                    delivered.push((side, c, parse(&frame)));
                                }
                            }
                        }
                        to.t.check_invariants();
                    }
                }
            }
        }
    }

    #[test]
    fn clustered_trackers_relay_offers_and_answers_across() {
        let mut p = Pair::new();
        // Peer 1 on instance a, peer 2 on instance b.
        p.a.send(1, &announce(&IH, &pid(1), Some("started"), 0, &[]), 0);
        assert!(p.pump(0).is_empty());
        assert_eq!((p.b.t.peers(), p.b.t.remote_peers()), (0, 1));
        let out = p.b.send(
            7,
            &announce(&IH, &pid(2), Some("started"), 9, &[(5, "o")]),
            1,
        );
        assert_eq!(
            out.len(),
            1,
            "the offer went to the other instance, not a local socket"
        );
        assert_eq!(
            (
                out[0].1["complete"].as_u64(),
                out[0].1["incomplete"].as_u64()
            ),
            (Some(1), Some(1)),
            "counts include the remote seed"
        );
        let got = p.pump(1);
        assert_eq!(got.len(), 1);
        let (side, conn, offer) = &got[0];
        assert_eq!((*side, *conn), ('a', ConnId(1)));
        assert_eq!(offer["peer_id"], pid(2).to_latin1());
        assert_eq!(offer["offer"]["sdp"], "o");
        assert_eq!(
            p.a.t.remote_peers(),
            1,
            "a learnt b's peer before the offer"
        );

        let answer = json!({
            "action": "announce", "info_hash": IH.to_latin1(), "peer_id": pid(1).to_latin1(),
            "to_peer_id": pid(2).to_latin1(), "offer_id": latin1(&[5; 20]),
            "answer": {"type": "answer", "sdp": "ans"}
        });
        assert!(p.a.send(1, &answer.to_string(), 2).is_empty());
        let got = p.pump(2);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1), ('b', ConnId(7)));
        assert_eq!(got[0].2["answer"]["sdp"], "ans");
        assert_eq!(p.a.t.counters().answers_forwarded, 1);

        // Stopped on b: a forgets the peer. The socket closing on a: b forgets it.
        p.b.send(7, &announce(&IH, &pid(2), Some("stopped"), 9, &[]), 3);
        p.pump(3);
        assert_eq!((p.a.t.peers(), p.a.t.remote_peers()), (1, 0));
        assert_eq!(p.a.t.swarm_counts(&IH), (1, 0, 0));
        p.a.t.disconnect(ConnId(1));
        p.pump(4);
        assert_eq!((p.b.t.swarms(), p.b.t.remote_peers()), (0, 0));
    }

    #[test]
    fn remote_peers_expire_and_instances_can_be_forgotten() {
        let mut p = Pair::new();
        p.a.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        p.a.send(1, &announce(&IH2, &pid(1), None, 1, &[]), 0);
        p.pump(0);
        assert_eq!(p.b.t.remote_peers(), 2);
        // Refreshed by every announce relayed as `Up`, expired like a local peer otherwise.
        p.a.send(1, &announce(&IH, &pid(1), None, 1, &[]), 200_000);
        p.pump(200_000);
        assert_eq!(p.b.t.expire(300_000), 1);
        assert_eq!(p.b.t.remote_peers(), 1);
        assert!(
            p.b.t.take_cluster_out().is_empty(),
            "remote expiry tells no one"
        );
        assert_eq!(p.b.t.forget_instance(InstanceId(9)), 0);
        assert_eq!(p.b.t.forget_instance(InstanceId(1)), 1);
        assert_eq!((p.b.t.swarms(), p.b.t.remote_peers()), (0, 0));
        p.a.send(1, &announce(&IH, &pid(1), None, 1, &[]), 300_001);
        p.pump(300_001);
        assert_eq!(p.b.t.forget_remote(), 1);
        p.b.t.check_invariants();
        // Local expiry is told: a peer silent on a is dropped on b too.
        p.a.send(2, &announce(&IH2, &pid(3), None, 1, &[]), 300_001);
        p.pump(300_001);
        assert_eq!(p.b.t.remote_peers(), 1);
        assert!(p.a.t.expire(900_000) >= 1);
        p.pump(900_000);
        assert_eq!(p.b.t.remote_peers(), 0);
    }

    #[test]
    fn a_peer_moving_between_instances_is_routed_to_its_newest_socket() {
        let mut p = Pair::new();
        p.a.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        p.pump(0);
        // The same peer id reconnects through b (a load balancer sent it there).
        p.b.send(5, &announce(&IH, &pid(1), None, 1, &[]), 1);
        p.pump(1);
        assert_eq!(
            (p.a.t.peers(), p.a.t.remote_peers(), p.a.t.connections()),
            (0, 1, 0)
        );
        assert_eq!((p.b.t.peers(), p.b.t.remote_peers()), (1, 0));
        // The old socket closing on a removes nothing, and tells b nothing.
        p.a.t.disconnect(ConnId(1));
        p.pump(2);
        assert_eq!(p.b.t.peers(), 1);
        // An offer from a new peer on a reaches it on b.
        p.a.send(2, &announce(&IH, &pid(2), None, 1, &[(1, "x")]), 3);
        let got = p.pump(3);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1), ('b', ConnId(5)));
        // A `Down` from an instance that no longer holds the peer removes nothing.
        assert!(!p.b.t.remote_down(InstanceId(1), IH, pid(1)));
        assert!(
            p.b.t.local_conn(&IH, &pid(2)).is_none(),
            "remote, not local"
        );
        // Remote completion counts as a seed but not as a download seen here.
        p.b.send(5, &announce(&IH, &pid(1), Some("completed"), 0, &[]), 4);
        p.pump(4);
        assert_eq!(p.a.t.swarm_counts(&IH), (1, 1, 0));
        assert_eq!(p.b.t.swarm_counts(&IH), (1, 1, 1));
    }

    #[test]
    fn a_lone_tracker_queues_nothing_and_ignores_remote_news() {
        let mut f = Fixture::new();
        f.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        f.t.remote_up(InstanceId(1), IH, pid(2), true, 0);
        assert_eq!((f.t.remote_peers(), f.t.take_cluster_out()), (0, vec![]));
        let mut p = Pair::new();
        p.a.send(1, &announce(&IH, &pid(1), None, 1, &[]), 0);
        p.a.t.set_clustered(false);
        assert!(
            p.a.t.take_cluster_out().is_empty(),
            "leaving empties the queue"
        );
        assert_eq!(p.a.t.local_peers(), vec![(IH, pid(1), false)]);
    }

    /// Hand-run timing, no assertion: `cargo test --release --features native --lib
    /// announce_cost -- --ignored --nocapture`. 2000 peers in one swarm, each announce carries 5
    /// offers with ~600-byte SDPs, each relayed offer is answered.
    #[test]
    #[ignore]
    fn announce_cost() {
        use crate::signal::client::{announce_json, answer_json, OfferOut};
        use std::time::Instant;
        let sdp: String = (0..20)
            .map(|i| format!("a=candidate:{i} 1 udp 2122260223 192.168.1.{i} 5{i:04} typ host\r\n"))
            .collect::<String>()[..600]
            .to_string();
        let peers: Vec<PeerId> = (0..2000u32)
            .map(|i| {
                let mut b = [0u8; 20];
                b[..4].copy_from_slice(&i.to_le_bytes());
                b[10] = 0xE9;
                PeerId(b)
            })
            .collect();
        let ih = InfoHash([0x05; 20]);
        let mut t = Tracker::new(TrackerConfig {
            messages_per_s: 0,
            ..TrackerConfig::default()
        });
        let mut rng = Rng::new(7);
        let offers: Vec<OfferOut> = (0..5u8)
            .map(|i| OfferOut {
                offer_id: [i.wrapping_mul(37).wrapping_add(3); 20],
                sdp: sdp.clone(),
            })
            .collect();
        let texts: Vec<String> = peers
            .iter()
            .map(|p| announce_json(&ih, p, AnnounceEvent::Update, 0, 0, Some(10), 5, &offers))
            .collect();
        let answers: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| answer_json(&ih, p, &peers[(i + 1) % peers.len()], &[3; 20], &sdp))
            .collect();
        for (i, text) in texts.iter().enumerate() {
            t.handle_text(ConnId(i as u64), text, 0, &mut rng);
        }
        let rounds = 5;
        let start = Instant::now();
        let mut bytes = 0usize;
        for r in 0..rounds {
            for (i, text) in texts.iter().enumerate() {
                for (_, f) in t.handle_text(ConnId(i as u64), text, r, &mut rng) {
                    bytes += f.len();
                }
            }
        }
        let per_announce = start.elapsed() / (rounds as u32 * texts.len() as u32);
        let start = Instant::now();
        for r in 0..rounds {
            for (i, text) in answers.iter().enumerate() {
                for (_, f) in t.handle_text(ConnId(i as u64), text, r, &mut rng) {
                    bytes += f.len();
                }
            }
        }
        let per_answer = start.elapsed() / (rounds as u32 * answers.len() as u32);
        println!(
            "announce frame {} B: {per_announce:?} per announce (5 offers relayed); answer frame {} B: {per_answer:?} per answer; {bytes} B out",
            texts[0].len(),
            answers[0].len()
        );
    }
}
