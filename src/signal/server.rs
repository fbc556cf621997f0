//! The WebSocket tracker's logic, sans-IO: in-memory swarms keyed by info-hash, offer and answer
//! relaying, complete/incomplete counts, scrape, expiry of silent peers. The driver feeds it text
//! frames with the connection they came from, the time and a random source, and sends the frames
//! it returns.
//!
//! Never touches a socket, a clock or an entropy source; never panics on peer input. Iteration
//! that reaches the output goes through ordered maps so a seeded run repeats exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::msg::{
    self, Action, Announce, AnnounceEvent, Answer, ClientMessage, DEFAULT_INTERVAL_S, MAX_OFFERS,
};
use crate::id::{InfoHash, PeerId};
use crate::rng::Rng;

/// A connection as the driver numbers them; the tracker only compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

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
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval_s: DEFAULT_INTERVAL_S,
            peer_timeout_ms: 2 * DEFAULT_INTERVAL_S * 1000,
            max_swarms_per_conn: 1000,
            max_scrape_all: 1000,
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
    conn: ConnId,
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

    fn mark_complete(&mut self, id: &PeerId) {
        if let Some(p) = self.get_mut(id) {
            if !p.complete {
                p.complete = true;
                self.complete += 1;
                self.incomplete -= 1;
                self.downloaded += 1;
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
    /// What each connection has registered, so a close removes exactly its peers.
    conns: HashMap<ConnId, BTreeSet<(InfoHash, PeerId)>>,
    counters: Counters,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker {
            config,
            swarms: BTreeMap::new(),
            conns: HashMap::new(),
            counters: Counters::default(),
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
        let mut out = Vec::new();
        match msg::parse_client_message(text) {
            Err(f) => {
                self.counters.failures += 1;
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
        let Some(keys) = self.conns.remove(&conn) else {
            return;
        };
        for (ih, pid) in keys {
            self.remove_peer_if_owned(ih, pid, conn);
        }
    }

    /// Drops peers not heard from within `peer_timeout_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let timeout = self.config.peer_timeout_ms;
        let mut stale = Vec::new();
        for (ih, swarm) in &self.swarms {
            for p in &swarm.peers {
                if now_ms.saturating_sub(p.last_seen_ms) > timeout {
                    stale.push((*ih, p.peer_id, p.conn));
                }
            }
        }
        for &(ih, pid, conn) in &stale {
            self.remove_peer_if_owned(ih, pid, conn);
            self.forget_registration(conn, ih, pid);
        }
        self.counters.expired += stale.len() as u64;
        stale.len()
    }

    /// Swarms with at least one peer.
    pub fn swarms(&self) -> usize {
        self.swarms.len()
    }

    /// Peers over all swarms (a peer in two swarms counts twice).
    pub fn peers(&self) -> usize {
        self.swarms.values().map(|s| s.peers.len()).sum()
    }

    /// Connections that currently hold at least one peer.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn counters(&self) -> Counters {
        self.counters
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
        a: Announce,
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
            self.remove_peer_if_owned(ih, pid, conn);
            self.forget_registration(conn, ih, pid);
            let (complete, incomplete, _) = self.swarm_counts(&ih);
            out.push((
                conn,
                msg::announce_reply_json(&ih, interval, complete, incomplete),
            ));
            return;
        }

        let key = (ih, pid);
        let registered = self.conns.get(&conn).is_some_and(|set| set.contains(&key));
        let held = self.conns.get(&conn).map_or(0, |set| set.len());
        if !registered && held >= self.config.max_swarms_per_conn {
            self.counters.failures += 1;
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
                if p.conn != conn {
                    // Same peer id from a new socket: the client reconnected; the old socket is
                    // dead or about to be, so offers and answers must go to the new one.
                    moved_from = Some(p.conn);
                    p.conn = conn;
                }
                p.last_seen_ms = now_ms;
                if now_complete {
                    swarm.mark_complete(&pid);
                }
            }
            None => {
                swarm.insert(PeerEntry {
                    peer_id: pid,
                    conn,
                    complete: now_complete,
                    last_seen_ms: now_ms,
                });
                if a.event == AnnounceEvent::Completed {
                    swarm.downloaded += 1;
                }
            }
        }
        out.push((
            conn,
            msg::announce_reply_json(&ih, interval, swarm.complete, swarm.incomplete),
        ));

        let wanted = a
            .offers
            .len()
            .min(MAX_OFFERS)
            .min(a.numwant.map_or(usize::MAX, |n| n as usize));
        if wanted > 0 {
            let me = swarm.index.get(&pid).copied().unwrap_or(usize::MAX);
            let targets = swarm.sample_others(me, wanted, rng);
            for (offer, t) in a.offers.iter().zip(targets) {
                let to = swarm.peers[t].conn;
                out.push((
                    to,
                    msg::offer_relay_json(&ih, &pid, &offer.offer_id, &offer.sdp),
                ));
                self.counters.offers_relayed += 1;
            }
        }

        if let Some(old) = moved_from {
            self.forget_registration(old, ih, pid);
        }
        self.conns.entry(conn).or_default().insert(key);
    }

    fn answer(&mut self, conn: ConnId, a: Answer, now_ms: u64, out: &mut Vec<(ConnId, String)>) {
        let Some(swarm) = self.swarms.get_mut(&a.info_hash) else {
            self.counters.answers_dropped += 1;
            return;
        };
        // An answer proves the answerer is alive, as bittorrent-tracker's implied update does.
        if let Some(p) = swarm.get_mut(&a.peer_id).filter(|p| p.conn == conn) {
            p.last_seen_ms = now_ms;
        }
        match swarm.get(&a.to_peer_id) {
            Some(target) => {
                let frame = msg::answer_relay_json(&a.info_hash, &a.peer_id, &a.offer_id, &a.sdp);
                out.push((target.conn, frame));
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
    fn remove_peer_if_owned(&mut self, ih: InfoHash, pid: PeerId, conn: ConnId) {
        let Some(swarm) = self.swarms.get_mut(&ih) else {
            return;
        };
        if swarm.get(&pid).is_some_and(|p| p.conn == conn) {
            swarm.remove(&pid);
            if swarm.peers.is_empty() {
                self.swarms.remove(&ih);
            }
        }
    }

    fn forget_registration(&mut self, conn: ConnId, ih: InfoHash, pid: PeerId) {
        if let Some(set) = self.conns.get_mut(&conn) {
            set.remove(&(ih, pid));
            if set.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }

    /// Test aid: the counters agree with the peers and the registrations with the swarms.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut registered = 0;
        for (ih, s) in &self.swarms {
            assert!(!s.peers.is_empty(), "empty swarm kept");
            let c = s.peers.iter().filter(|p| p.complete).count() as u64;
            assert_eq!((s.complete, s.incomplete), (c, s.peers.len() as u64 - c));
            assert_eq!(s.index.len(), s.peers.len());
            for (i, p) in s.peers.iter().enumerate() {
                assert_eq!(s.index[&p.peer_id], i);
                assert!(
                    self.conns[&p.conn].contains(&(*ih, p.peer_id)),
                    "unregistered peer"
                );
                registered += 1;
            }
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
                conn: ConnId(n as u64),
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
}
