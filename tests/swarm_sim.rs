//! Swarm simulator: many engine sessions joined by simulated links with latency, upload and
//! download capacity and loss, on a virtual clock with a seeded RNG. Every byte goes through the
//! real wire encoder and decoder. Runs are deterministic: the same seed gives the same result.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::VecDeque;

use seedtab::bitfield::Bitfield;
use seedtab::create::{create_torrent, CreateOptions};
use seedtab::engine::{Config, Event, PeerKey, RewardConfig, Session};
use seedtab::id::PeerId;
use seedtab::metainfo::Metainfo;
use seedtab::rng::Rng;
use seedtab::store::{MemoryStore, PieceStore};

/// Virtual time step.
const STEP_MS: u64 = 2;
/// How often each session's timers run.
const TICK_MS: u64 = 250;
/// What one data-channel message carries at most.
const CHUNK: usize = 16 * 1024;
/// A lost packet on a reliable channel shows up as a retransmission delay.
const RETRANSMIT_MS: u64 = 200;

struct Node {
    session: Session,
    /// Bytes per millisecond.
    up: f64,
    down: f64,
    up_credit: f64,
    down_credit: f64,
    online: bool,
    done_at: Option<u64>,
    bad: bool,
    /// Reward seed: the node signs receipts with this key (docs/receipts.md).
    signer: Option<[u8; 32]>,
}

/// One direction of a link: chunks in flight, in order.
#[derive(Default)]
struct Pipe {
    queue: VecDeque<(u64, Vec<u8>)>,
    last_ready: u64,
}

struct Link {
    a: usize,
    b: usize,
    latency_ms: u64,
    open: bool,
    ab: Pipe,
    ba: Pipe,
}

struct Sim {
    nodes: Vec<Node>,
    links: Vec<Link>,
    now: u64,
    rng: Rng,
    loss: f64,
    meta: Metainfo,
    data: Vec<u8>,
    banned_events: usize,
}

#[derive(Clone, Copy)]
struct Shape {
    up: f64,
    down: f64,
}

impl Sim {
    fn new(seed: u64, file_len: usize, piece_length: u32, loss: f64) -> Sim {
        let mut rng = Rng::new(seed);
        let mut data = vec![0u8; file_len];
        rng.fill(&mut data);
        let opts = CreateOptions {
            piece_length: Some(piece_length),
            ..Default::default()
        };
        let meta = create_torrent(&[(vec!["sim.bin".into()], &data[..])], opts).unwrap();
        Sim {
            nodes: Vec::new(),
            links: Vec::new(),
            now: 0,
            rng,
            loss,
            meta,
            data,
            banned_events: 0,
        }
    }

    fn add(&mut self, have_all: bool, bad: bool, shape: Shape) -> usize {
        let i = self.nodes.len();
        let n = self.meta.info.num_pieces();
        let (store, have): (Box<dyn PieceStore>, Bitfield) = if have_all {
            let mut bytes = self.data.clone();
            if bad {
                for b in bytes.iter_mut().step_by(997) {
                    *b ^= 0x5A;
                }
            }
            (
                Box::new(MemoryStore::from_bytes(&bytes, self.meta.info.piece_length)),
                Bitfield::full(n as usize),
            )
        } else {
            (
                Box::new(MemoryStore::new(n, self.meta.info.piece_length)),
                Bitfield::new(n as usize),
            )
        };
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let session = Session::new(
            self.meta.clone(),
            PeerId(id),
            store,
            have,
            Config::default(),
            self.rng.next_u64(),
        );
        let done_at = if have_all && !bad { Some(0) } else { None };
        self.nodes.push(Node {
            session,
            up: shape.up,
            down: shape.down,
            up_credit: 0.0,
            down_credit: 0.0,
            online: true,
            done_at,
            bad,
            signer: None,
        });
        i
    }

    /// Every node takes part in receipts, node i with key seed [i + 1; 32].
    fn enable_rewards(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let seed = [i as u8 + 1; 32];
            let key = seedtab::receipt::public_key(&seed);
            node.session
                .set_rewards(Some(RewardConfig::new(key, 1_790_000_000_000)));
            node.signer = Some(seed);
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        if a == b
            || self
                .links
                .iter()
                .any(|l| l.open && ((l.a, l.b) == (a, b) || (l.a, l.b) == (b, a)))
        {
            return;
        }
        let key = self.links.len() as PeerKey;
        let latency_ms = 10 + self.rng.below(30);
        self.links.push(Link {
            a,
            b,
            latency_ms,
            open: true,
            ab: Pipe::default(),
            ba: Pipe::default(),
        });
        self.nodes[a].session.peer_connected(key, self.now);
        self.nodes[b].session.peer_connected(key, self.now);
    }

    /// Connects `node` to `k` random online others (and to `extra`).
    fn connect_random(&mut self, node: usize, k: usize, extra: &[usize]) {
        for &e in extra {
            self.connect(node, e);
        }
        let online: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| j != node && self.nodes[j].online)
            .collect();
        for _ in 0..k {
            let j = online[self.rng.below(online.len() as u64) as usize];
            self.connect(node, j);
        }
    }

    fn close_link(&mut self, key: usize) {
        let l = &mut self.links[key];
        if !l.open {
            return;
        }
        l.open = false;
        l.ab.queue.clear();
        l.ba.queue.clear();
        let (a, b) = (l.a, l.b);
        self.nodes[a].session.peer_closed(key as PeerKey);
        self.nodes[b].session.peer_closed(key as PeerKey);
    }

    fn leave(&mut self, node: usize) {
        self.nodes[node].online = false;
        for key in 0..self.links.len() {
            if self.links[key].a == node || self.links[key].b == node {
                self.close_link(key);
            }
        }
    }

    fn step(&mut self) {
        self.now += STEP_MS;
        let now = self.now;
        // Senders: each node spends its upload credit round-robin over its links.
        for n in 0..self.nodes.len() {
            if !self.nodes[n].online {
                continue;
            }
            let node = &mut self.nodes[n];
            node.up_credit = (node.up_credit + node.up * STEP_MS as f64).min(node.up * 50.0);
            let mine: Vec<usize> = (0..self.links.len())
                .filter(|&k| self.links[k].open && (self.links[k].a == n || self.links[k].b == n))
                .collect();
            let mut progress = true;
            while progress && self.nodes[n].up_credit >= 1.0 {
                progress = false;
                for &k in &mine {
                    let credit = self.nodes[n].up_credit;
                    if credit < 1.0 {
                        break;
                    }
                    let max = (credit as usize).clamp(1, CHUNK);
                    let Some(bytes) = self.nodes[n].session.transmit(k as PeerKey, max, now) else {
                        continue;
                    };
                    progress = true;
                    self.nodes[n].up_credit -= bytes.len() as f64;
                    let lost =
                        self.loss > 0.0 && (self.rng.below(1_000_000) as f64) < self.loss * 1e6;
                    let link = &mut self.links[k];
                    let pipe = if link.a == n {
                        &mut link.ab
                    } else {
                        &mut link.ba
                    };
                    let mut ready = now + link.latency_ms + if lost { RETRANSMIT_MS } else { 0 };
                    ready = ready.max(pipe.last_ready);
                    pipe.last_ready = ready;
                    pipe.queue.push_back((ready, bytes));
                }
            }
        }
        // Receivers: each node takes what has arrived, within its download credit.
        for n in 0..self.nodes.len() {
            if !self.nodes[n].online {
                continue;
            }
            let node = &mut self.nodes[n];
            node.down_credit =
                (node.down_credit + node.down * STEP_MS as f64).min(node.down * 50.0);
            for k in 0..self.links.len() {
                let link = &mut self.links[k];
                if !link.open || (link.a != n && link.b != n) {
                    continue;
                }
                let pipe = if link.b == n {
                    &mut link.ab
                } else {
                    &mut link.ba
                };
                while let Some((ready, _)) = pipe.queue.front() {
                    let credit = self.nodes[n].down_credit;
                    if *ready > now || credit < 1.0 {
                        break;
                    }
                    let (ready, mut bytes) = pipe.queue.pop_front().unwrap();
                    let take = (credit as usize).min(bytes.len());
                    if take < bytes.len() {
                        let rest = bytes.split_off(take);
                        pipe.queue.push_front((ready, rest));
                    }
                    self.nodes[n].down_credit -= bytes.len() as f64;
                    self.nodes[n].session.peer_data(k as PeerKey, &bytes, now);
                }
            }
        }
        if now % TICK_MS == 0 {
            for node in self.nodes.iter_mut().filter(|n| n.online) {
                node.session.tick(now);
            }
        }
        // Events.
        for n in 0..self.nodes.len() {
            self.nodes[n].session.fill_all_requests(now);
            while let Some(e) = self.nodes[n].session.poll_event() {
                match e {
                    Event::ClosePeer { key, .. } => self.close_link(key as usize),
                    Event::Done => {
                        self.nodes[n].done_at.get_or_insert(now);
                    }
                    Event::PeerBanned { .. } => self.banned_events += 1,
                    Event::SignReceipt { key, receipt } => {
                        if let Some(seed) = self.nodes[n].signer {
                            let signed = seedtab::receipt::sign(receipt.clone(), &seed);
                            self.nodes[n].session.receipt_signed(
                                key,
                                receipt,
                                Some(signed.signature),
                                now,
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Runs until every online node is complete or `limit_ms` passes; returns the finish time.
    fn run_until_done(&mut self, limit_ms: u64) -> u64 {
        while self.now < limit_ms {
            self.step();
            if self
                .nodes
                .iter()
                .all(|n| !n.online || n.bad || n.done_at.is_some())
            {
                break;
            }
        }
        self.now
    }

    fn assert_all_complete(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.online || n.bad {
                continue;
            }
            assert!(
                n.session.is_complete(),
                "node {i} incomplete: {}/{} pieces at {} ms",
                n.session.have().count(),
                self.meta.info.num_pieces(),
                self.now
            );
            let got = n.session.read(0, self.data.len() as u64).unwrap();
            assert!(got == self.data, "node {i} has wrong bytes");
        }
    }
}

const MB_PER_S: f64 = 1000.0; // bytes per ms in 1 MB/s

const SEED_SHAPE: Shape = Shape {
    up: 2.0 * MB_PER_S,
    down: 2.0 * MB_PER_S,
};
const PEER_SHAPE: Shape = Shape {
    up: 4.0 * MB_PER_S,
    down: 4.0 * MB_PER_S,
};

/// A seed (node 0) and `downloaders`, each joined to the seed and `neighbours` random others;
/// with `rewards`, everyone signs and checks receipts.
fn one_seed_swarm(
    seed: u64,
    file: usize,
    downloaders: usize,
    neighbours: usize,
    loss: f64,
    rewards: bool,
) -> Sim {
    let mut sim = Sim::new(seed, file, 32 * 1024, loss);
    let s = sim.add(true, false, SEED_SHAPE);
    for _ in 0..downloaders {
        sim.add(false, false, PEER_SHAPE);
    }
    if rewards {
        sim.enable_rewards();
    }
    for i in 1..=downloaders {
        sim.connect_random(i, neighbours, &[s]);
    }
    sim
}

fn one_seed_many(seed: u64, downloaders: usize, neighbours: usize, loss: f64) -> (u64, f64) {
    let file = 4 << 20;
    let (seed_shape, peer_shape, s) = (SEED_SHAPE, PEER_SHAPE, 0);
    let mut sim = one_seed_swarm(seed, file, downloaders, neighbours, loss, false);
    let done = sim.run_until_done(120_000);
    sim.assert_all_complete();
    let mut times: Vec<u64> = sim.nodes.iter().skip(1).filter_map(|n| n.done_at).collect();
    times.sort_unstable();
    println!(
        "SIM seed uploaded {:.2} copies; finish times p10 {} p50 {} p90 {} max {}",
        sim.nodes[s].session.uploaded() as f64 / file as f64,
        times[times.len() / 10],
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[times.len() - 1]
    );
    // The bound: the seed must send one copy, each downloader must receive one.
    let ideal = (file as f64 / seed_shape.up).max(file as f64 / peer_shape.down);
    (done, ideal)
}

#[test]
fn one_seed_fifty_downloaders_finish_near_the_capacity_bound() {
    let seed: u64 = std::env::var("SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(42);
    let (done, ideal) = one_seed_many(seed, 50, 8, 0.0);
    let ratio = done as f64 / ideal;
    println!("SIM 1 seed + 50: done in {done} ms, bound {ideal:.0} ms, ratio {ratio:.2}");
    assert!(ratio <= 1.5, "took {ratio:.2}x the capacity bound");
}

#[test]
fn lossy_links_still_complete() {
    let (done, ideal) = one_seed_many(7, 20, 6, 0.01);
    println!("SIM 1 seed + 20, 1% loss: done in {done} ms, bound {ideal:.0} ms");
}

#[test]
fn runs_are_deterministic() {
    assert_eq!(
        one_seed_many(9, 12, 4, 0.01).0,
        one_seed_many(9, 12, 4, 0.01).0
    );
}

#[test]
fn bad_peer_is_banned_and_everyone_completes() {
    let mut sim = Sim::new(3, 2 << 20, 32 * 1024, 0.0);
    let shape = Shape {
        up: 2.0 * MB_PER_S,
        down: 4.0 * MB_PER_S,
    };
    let s = sim.add(true, false, shape);
    let liar = sim.add(
        true,
        true,
        Shape {
            up: 8.0 * MB_PER_S,
            down: 8.0 * MB_PER_S,
        },
    );
    for _ in 0..10 {
        sim.add(false, false, shape);
    }
    for i in 2..12 {
        sim.connect_random(i, 3, &[s, liar]);
    }
    sim.run_until_done(120_000);
    sim.assert_all_complete();
    let still_linked = sim
        .links
        .iter()
        .filter(|l| l.open && (l.a == liar || l.b == liar))
        .count();
    assert_eq!(still_linked, 0, "the liar is still connected");
    assert!(
        sim.banned_events >= 10,
        "banned by {} peers",
        sim.banned_events
    );
}

#[test]
fn peers_leaving_and_joining_mid_transfer() {
    let mut sim = Sim::new(5, 2 << 20, 32 * 1024, 0.0);
    let shape = Shape {
        up: 1.0 * MB_PER_S,
        down: 2.0 * MB_PER_S,
    };
    let s = sim.add(true, false, shape);
    for _ in 0..15 {
        sim.add(false, false, shape);
    }
    for i in 1..16 {
        sim.connect_random(i, 4, &[s]);
    }
    while sim.now < 600 {
        sim.step();
    }
    for i in [2, 5, 7, 11, 13] {
        sim.leave(i);
    }
    for _ in 0..5 {
        let n = sim.add(false, false, shape);
        sim.connect_random(n, 4, &[s]);
    }
    sim.run_until_done(120_000);
    sim.assert_all_complete();
}

#[test]
fn downloaders_finish_among_themselves_after_the_seed_leaves() {
    let mut sim = Sim::new(11, 2 << 20, 32 * 1024, 0.0);
    let shape = Shape {
        up: 1.0 * MB_PER_S,
        down: 2.0 * MB_PER_S,
    };
    let s = sim.add(true, false, shape);
    for _ in 0..10 {
        sim.add(false, false, shape);
    }
    for i in 1..11 {
        sim.connect_random(i, 4, &[s]);
    }
    // The seed leaves as soon as the downloaders together hold every piece.
    let n = sim.meta.info.num_pieces() as usize;
    loop {
        sim.step();
        let covered = (0..n).all(|p| (1..11).any(|i| sim.nodes[i].session.have().get(p)));
        if covered {
            break;
        }
        assert!(sim.now < 60_000, "pieces never covered");
    }
    sim.leave(s);
    assert!((1..11).all(|i| !sim.nodes[i].session.is_complete()) || sim.now > 0);
    sim.run_until_done(120_000);
    sim.assert_all_complete();
}

#[test]
fn receipts_in_a_swarm_attest_every_byte_exactly_once() {
    let file = 2 << 20;
    let build = |rewards: bool| one_seed_swarm(11, file, 20, 6, 0.0, rewards);
    let mut plain = build(false);
    let plain_done = plain.run_until_done(120_000);
    let mut sim = build(true);
    let done = sim.run_until_done(120_000);
    sim.assert_all_complete();
    // The last receipts are signed at completion and need a round trip to arrive.
    let until = sim.now + 1_000;
    while sim.now < until {
        sim.step();
    }
    println!("SIM receipts: done in {done} ms with receipts, {plain_done} ms without");
    assert!(
        done as f64 <= plain_done as f64 * 1.25,
        "receipts slowed the swarm"
    );
    let mut attested = vec![0u64; sim.nodes.len()];
    let mut count = 0;
    for (up, node) in sim.nodes.iter().enumerate() {
        let up_key = seedtab::receipt::public_key(&[up as u8 + 1; 32]);
        for (_, r) in node.session.receipts_held() {
            r.verify().expect("kept receipts verify");
            assert_eq!(r.receipt.uploader, up_key);
            let d = (0..sim.nodes.len())
                .find(|&i| seedtab::receipt::public_key(&[i as u8 + 1; 32]) == r.receipt.downloader)
                .expect("the downloader is a node of the swarm");
            attested[d] += r.receipt.bytes;
            count += 1;
        }
    }
    assert_eq!(attested[0], 0, "the seed downloaded nothing");
    for (i, a) in attested.iter().enumerate().skip(1) {
        assert_eq!(*a, file as u64, "receipts for node {i}'s download");
    }
    println!(
        "SIM receipts: {count} sessions attest {} bytes",
        attested.iter().sum::<u64>()
    );
}
