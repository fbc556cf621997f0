#![cfg(not(target_arch = "wasm32"))]
//! Hostile peers against the sans-IO engine, on a virtual clock: one scripted attacker beside
//! honest sessions. For every attack the attacker is disconnected (or banned), the memory the
//! victim holds stays bounded, and the honest transfer completes with the right bytes.
//!
//! Attacks: bad block data, blocks never requested, a 4 GiB length prefix, a request flood from
//! a peer that reads nothing, requests over 128 KiB, ut_metadata with a huge or a lying
//! `metadata_size`, metadata that does not hash to the info-hash, a handshake for another
//! torrent, a peer that never answers, and one that trickles a block a byte per second.

mod common;

use common::{leecher, magnet_leecher, seeder, torrent};
use seedtab::engine::{Event, PeerKey, Session};
use seedtab::id::{InfoHash, PeerId};
use seedtab::metainfo::Metainfo;
use seedtab::wire::{
    BlockRef, Decoder, ExtendedHandshake, Frame, Handshake, Message, MetadataMsg,
    DEFAULT_MAX_MESSAGE_LEN, UT_METADATA_LOCAL_ID,
};

/// The victim's names for its connections.
const HONEST: PeerKey = 1;
const ATTACKER: PeerKey = 2;
/// The honest session's name for the victim.
const VICTIM: PeerKey = 100;
const ATTACKER_ID: PeerId = PeerId(*b"-XX0001-attacker0001");
/// The attacker's ut_metadata id in its extended handshake.
const ITS_UT_METADATA: u8 = 9;
/// Virtual time steps and the whole run's bound.
const STEP_MS: u64 = 100;
const LIMIT_MS: u64 = 20 * 60 * 1000;

/// What the attacker does: bytes it sends when connected, in answer to each frame the victim
/// sends, and once a (virtual) second.
trait Attack {
    fn open(&mut self, info_hash: InfoHash) -> Vec<u8>;
    fn frame(&mut self, _f: &Frame) -> Vec<u8> {
        Vec::new()
    }
    fn second(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// False: it never reads what the victim sends (its queue at the victim only grows).
    fn reads(&self) -> bool {
        true
    }
}

struct Net {
    victim: Session,
    honest: Option<Session>,
    attack: Box<dyn Attack>,
    attacker_decoder: Decoder,
    attacker_open: bool,
    now: u64,
    events: Vec<Event>,
    max_buffered: usize,
}

impl Net {
    fn new(victim: Session, honest: Session, attack: Box<dyn Attack>) -> Net {
        Net {
            victim,
            honest: Some(honest),
            attack,
            attacker_decoder: Decoder::new(DEFAULT_MAX_MESSAGE_LEN),
            attacker_open: true,
            now: 1_000,
            events: Vec::new(),
            max_buffered: 0,
        }
    }

    /// Connects the attacker first (so it gets the first say), then the honest peer after
    /// `honest_after_ms`, and runs until `done` or the time limit.
    fn run(&mut self, honest_after_ms: u64, done: &dyn Fn(&Net) -> bool) {
        self.victim.peer_connected(ATTACKER, self.now);
        let hello = self.attack.open(self.victim.info_hash());
        self.victim.peer_data(ATTACKER, &hello, self.now);
        let honest_at = self.now + honest_after_ms;
        let mut honest_connected = false;
        let mut next_second = self.now + 1000;
        while self.now < LIMIT_MS {
            if !honest_connected && self.now >= honest_at {
                honest_connected = true;
                self.victim.peer_connected(HONEST, self.now);
                if let Some(h) = self.honest.as_mut() {
                    h.peer_connected(VICTIM, self.now);
                }
            }
            for _ in 0..1000 {
                if !self.pump() {
                    break;
                }
            }
            if done(self) {
                return;
            }
            self.now += STEP_MS;
            if self.now >= next_second {
                next_second += 1000;
                self.victim.tick(self.now);
                if let Some(h) = self.honest.as_mut() {
                    h.tick(self.now);
                }
                if self.attacker_open {
                    let bytes = self.attack.second();
                    if !bytes.is_empty() {
                        self.victim.peer_data(ATTACKER, &bytes, self.now);
                    }
                }
            }
        }
        panic!(
            "not done after {} virtual s; attacker open: {}; events: {:?}",
            LIMIT_MS / 1000,
            self.attacker_open,
            self.events.iter().rev().take(5).collect::<Vec<_>>()
        );
    }

    /// Moves bytes one round; true if anything moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        self.victim.fill_all_requests(now);
        if let Some(h) = self.honest.as_mut() {
            h.fill_all_requests(now);
            while let Some(b) = self.victim.transmit(HONEST, 64 * 1024, now) {
                h.peer_data(VICTIM, &b, now);
                moved = true;
            }
            while let Some(b) = h.transmit(VICTIM, 64 * 1024, now) {
                self.victim.peer_data(HONEST, &b, now);
                moved = true;
            }
            while h.poll_event().is_some() {}
        }
        if self.attacker_open && self.attack.reads() {
            while let Some(b) = self.victim.transmit(ATTACKER, 64 * 1024, now) {
                self.attacker_decoder.push(&b);
                moved = true;
                while let Ok(Some(f)) = self.attacker_decoder.next_frame() {
                    let reply = self.attack.frame(&f);
                    if !reply.is_empty() {
                        self.victim.peer_data(ATTACKER, &reply, now);
                    }
                }
            }
        }
        while let Some(e) = self.victim.poll_event() {
            if let Event::ClosePeer { key, .. } = &e {
                // As a driver does: the connection goes, and the session hears it.
                if *key == ATTACKER {
                    self.attacker_open = false;
                }
                self.victim.peer_closed(*key);
            }
            self.events.push(e);
            moved = true;
        }
        self.max_buffered = self.max_buffered.max(self.victim.buffered_bytes());
        moved
    }

    fn attacker_closed_because(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::ClosePeer { key, reason } if *key == ATTACKER => Some(reason.as_str()),
            _ => None,
        })
    }

    fn honest_closed(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::ClosePeer { key, reason } if *key == HONEST => Some(reason.as_str()),
            _ => None,
        })
    }

    fn banned_attacker(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { peer_id } if *peer_id == ATTACKER_ID))
    }
}

fn handshake(info_hash: InfoHash) -> Vec<u8> {
    Handshake::new(info_hash, ATTACKER_ID).encode().to_vec()
}

fn msgs(list: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in list {
        m.encode(&mut out);
    }
    out
}

fn ext_handshake(metadata_size: Option<u64>) -> Message {
    let mut hs = ExtendedHandshake::default();
    hs.m.insert("ut_metadata".into(), ITS_UT_METADATA);
    hs.metadata_size = metadata_size;
    Message::Extended {
        id: 0,
        payload: hs.encode(),
    }
}

/// A downloader victim with an honest seeder; the attacker claims every piece.
fn downloader_case(attack: Box<dyn Attack>, len: usize) -> (Net, Vec<u8>) {
    let (meta, all) = torrent(len, 16 * 1024);
    let net = Net::new(leecher(&meta), seeder(&meta, &all), attack);
    (net, all)
}

fn download_done(n: &Net) -> bool {
    n.victim.is_complete() && !n.attacker_open
}

/// The common ending: attacker gone (for `why`), memory bounded, the bytes right.
fn check(net: &Net, all: &[u8], why: &str) {
    let reason = net
        .attacker_closed_because()
        .expect("the attacker is disconnected");
    assert!(
        reason.contains(why),
        "closed for {reason:?}, expected {why:?}"
    );
    assert_eq!(net.honest_closed(), None, "the honest peer was disturbed");
    assert_eq!(
        net.victim.read(0, all.len() as u64).as_deref(),
        Some(all),
        "the download completed from the honest peer with the right bytes"
    );
    let bound = all.len() + 2 * DEFAULT_MAX_MESSAGE_LEN as usize;
    assert!(
        net.max_buffered <= bound,
        "victim held {} bytes for peers (bound {bound})",
        net.max_buffered
    );
}

/// Looks like a seed: handshake, have-all, unchoke; answers requests with `answer`.
struct FakeSeed<F: FnMut(&BlockRef) -> Vec<u8>> {
    answer: F,
}

impl<F: FnMut(&BlockRef) -> Vec<u8>> Attack for FakeSeed<F> {
    fn open(&mut self, ih: InfoHash) -> Vec<u8> {
        let mut out = handshake(ih);
        out.extend(msgs(&[Message::HaveAll, Message::Unchoke]));
        out
    }
    fn frame(&mut self, f: &Frame) -> Vec<u8> {
        match f {
            Frame::Message(Message::Request(r)) => (self.answer)(r),
            _ => Vec::new(),
        }
    }
}

#[test]
fn bad_block_data_gets_the_sender_banned() {
    let attack = FakeSeed {
        answer: |r: &BlockRef| {
            msgs(&[Message::Piece {
                index: r.index,
                begin: r.begin,
                data: vec![0xAB; r.length as usize],
            }])
        },
    };
    let (mut net, all) = downloader_case(Box::new(attack), 1 << 20);
    net.run(0, &download_done);
    assert!(net.banned_attacker(), "the sender of bad data is banned");
    check(&net, &all, "");
}

#[test]
fn blocks_never_requested_get_the_sender_dropped() {
    struct Spray;
    impl Attack for Spray {
        fn open(&mut self, ih: InfoHash) -> Vec<u8> {
            let mut out = handshake(ih);
            out.extend(msgs(&[Message::HaveAll, Message::Unchoke]));
            // Blocks of the last piece, over and over, before anything was asked of it.
            for _ in 0..200 {
                out.extend(msgs(&[Message::Piece {
                    index: 63,
                    begin: 0,
                    data: vec![1; 16 * 1024],
                }]));
            }
            out
        }
        fn frame(&mut self, _f: &Frame) -> Vec<u8> {
            Vec::new()
        }
    }
    let (mut net, all) = downloader_case(Box::new(Spray), 1 << 20);
    net.run(0, &download_done);
    check(&net, &all, "never asked for");
}

#[test]
fn a_4_gib_length_prefix_is_refused_before_allocating() {
    struct Huge;
    impl Attack for Huge {
        fn open(&mut self, ih: InfoHash) -> Vec<u8> {
            let mut out = handshake(ih);
            out.extend([0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0, 0]);
            out
        }
    }
    let (mut net, all) = downloader_case(Box::new(Huge), 256 * 1024);
    net.run(0, &download_done);
    check(&net, &all, "protocol error");
    assert!(net.max_buffered < all.len() + 64 * 1024);
}

struct Flood {
    interested: bool,
    sent: u32,
}

impl Attack for Flood {
    fn open(&mut self, ih: InfoHash) -> Vec<u8> {
        let mut out = handshake(ih);
        out.extend(msgs(&[Message::HaveNone]));
        if self.interested {
            out.extend(msgs(&[Message::Interested]));
        }
        out
    }
    fn second(&mut self) -> Vec<u8> {
        // 200,000 requests a second; choked, each one earns a Reject it never reads.
        let mut out = Vec::new();
        for _ in 0..200_000 {
            if self.sent >= 2_000_000 {
                break;
            }
            self.sent += 1;
            Message::Request(BlockRef {
                index: self.sent % 64,
                begin: 0,
                length: 16 * 1024,
            })
            .encode(&mut out);
        }
        out
    }
    fn reads(&self) -> bool {
        false
    }
}

/// The victim seeds; an honest downloader is served meanwhile.
fn flood_case(interested: bool, why: &str) {
    let (meta, all) = torrent(1 << 20, 16 * 1024);
    let mut net = Net::new(
        seeder(&meta, &all),
        leecher(&meta),
        Box::new(Flood {
            interested,
            sent: 0,
        }),
    );
    net.run(0, &|n: &Net| {
        n.honest.as_ref().is_some_and(Session::is_complete) && !n.attacker_open
    });
    let reason = net.attacker_closed_because().unwrap();
    assert!(reason.contains(why), "{reason}");
    assert_eq!(net.honest_closed(), None);
    assert!(
        net.max_buffered <= 2 << 20,
        "victim held {} bytes",
        net.max_buffered
    );
    assert_eq!(
        net.honest.as_ref().unwrap().read(0, all.len() as u64),
        Some(all)
    );
}

#[test]
fn a_request_flood_while_unchoked_is_cut_off_at_the_queue_limit() {
    flood_case(true, "requests queued");
}

#[test]
fn a_request_flood_while_choked_from_a_peer_that_reads_nothing_is_cut_off() {
    flood_case(false, "floods requests");
}

#[test]
fn a_request_over_128_kib_is_refused() {
    struct Greedy;
    impl Attack for Greedy {
        fn open(&mut self, ih: InfoHash) -> Vec<u8> {
            let mut out = handshake(ih);
            out.extend(msgs(&[
                Message::HaveNone,
                Message::Interested,
                Message::Request(BlockRef {
                    index: 0,
                    begin: 0,
                    length: 256 * 1024,
                }),
            ]));
            out
        }
    }
    let (meta, all) = torrent(1 << 20, 256 * 1024);
    let mut net = Net::new(seeder(&meta, &all), leecher(&meta), Box::new(Greedy));
    net.run(0, &|n: &Net| {
        n.honest.as_ref().is_some_and(Session::is_complete) && !n.attacker_open
    });
    let reason = net.attacker_closed_because().unwrap();
    assert!(reason.contains("bad request"), "{reason}");
}

/// A magnet-link victim: the attacker speaks first about the metadata; an honest seeder
/// connects a little later.
fn magnet_case(attack: Box<dyn Attack>) -> (Net, Vec<u8>, Metainfo) {
    let (meta, all) = torrent(512 * 1024, 16 * 1024);
    let net = Net::new(magnet_leecher(meta.info_hash), seeder(&meta, &all), attack);
    (net, all, meta)
}

#[test]
fn a_huge_metadata_size_is_refused() {
    struct Huge;
    impl Attack for Huge {
        fn open(&mut self, ih: InfoHash) -> Vec<u8> {
            let mut out = handshake(ih);
            out.extend(msgs(&[ext_handshake(Some(1 << 40))]));
            out
        }
    }
    let (mut net, all, _) = magnet_case(Box::new(Huge));
    net.run(2_000, &download_done);
    check(&net, &all, "metadata_size");
}

/// Announces `size` and answers metadata requests with `bytes` (cut into 16 KiB pieces).
struct MetadataLiar {
    size: u64,
    bytes: Vec<u8>,
}

impl Attack for MetadataLiar {
    fn open(&mut self, ih: InfoHash) -> Vec<u8> {
        let mut out = handshake(ih);
        out.extend(msgs(&[ext_handshake(Some(self.size)), Message::HaveAll]));
        out
    }
    fn frame(&mut self, f: &Frame) -> Vec<u8> {
        let Frame::Message(Message::Extended { id, payload }) = f else {
            return Vec::new();
        };
        if *id != ITS_UT_METADATA {
            return Vec::new();
        }
        let Ok(MetadataMsg::Request { piece }) = MetadataMsg::decode(payload) else {
            return Vec::new();
        };
        let start = piece as usize * 16 * 1024;
        let end = (start + 16 * 1024).min(self.bytes.len());
        msgs(&[Message::Extended {
            id: UT_METADATA_LOCAL_ID,
            payload: MetadataMsg::Data {
                piece,
                total_size: self.size,
                data: self.bytes[start.min(end)..end].to_vec(),
            }
            .encode(),
        }])
    }
}

#[test]
fn a_lying_metadata_size_does_not_poison_the_honest_peers_metadata() {
    let (meta, all) = torrent(512 * 1024, 16 * 1024);
    // Twice the real size, filled with junk: what the victim assembles from it cannot hash right,
    // and the honest seeder's pieces must not be judged against its size.
    let size = meta.info_bytes.len() as u64 * 2;
    let liar = MetadataLiar {
        size,
        bytes: vec![b'x'; size as usize],
    };
    let mut net = Net::new(
        magnet_leecher(meta.info_hash),
        seeder(&meta, &all),
        Box::new(liar),
    );
    net.run(2_000, &download_done);
    check(&net, &all, "metadata failed its check");
}

#[test]
fn metadata_that_does_not_hash_to_the_info_hash_is_refused() {
    let (meta, all) = torrent(512 * 1024, 16 * 1024);
    // The right size, the wrong bytes (another torrent's info dict would do the same).
    let mut bytes = meta.info_bytes.clone();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    let liar = MetadataLiar {
        size: bytes.len() as u64,
        bytes,
    };
    let mut net = Net::new(
        magnet_leecher(meta.info_hash),
        seeder(&meta, &all),
        Box::new(liar),
    );
    net.run(2_000, &download_done);
    check(&net, &all, "metadata failed its check");
}

#[test]
fn a_handshake_for_another_torrent_is_refused() {
    struct Lost;
    impl Attack for Lost {
        fn open(&mut self, _ih: InfoHash) -> Vec<u8> {
            handshake(InfoHash([0x5A; 20]))
        }
    }
    let (mut net, all) = downloader_case(Box::new(Lost), 256 * 1024);
    net.run(0, &download_done);
    check(&net, &all, "another torrent");
}

#[test]
fn a_peer_that_never_answers_is_dropped_and_others_finish() {
    // Claims everything, unchokes, then never says another word.
    let attack = FakeSeed {
        answer: |_: &BlockRef| Vec::new(),
    };
    let (mut net, all) = downloader_case(Box::new(attack), 1 << 20);
    net.run(0, &download_done);
    check(&net, &all, "idle timeout");
}

#[test]
fn a_peer_trickling_a_block_a_byte_a_second_is_dropped() {
    struct Trickle {
        pending: Vec<u8>,
    }
    impl Attack for Trickle {
        fn open(&mut self, ih: InfoHash) -> Vec<u8> {
            let mut out = handshake(ih);
            out.extend(msgs(&[Message::HaveAll, Message::Unchoke]));
            out
        }
        fn frame(&mut self, f: &Frame) -> Vec<u8> {
            if let (Frame::Message(Message::Request(r)), true) = (f, self.pending.is_empty()) {
                self.pending = msgs(&[Message::Piece {
                    index: r.index,
                    begin: r.begin,
                    data: vec![0; r.length as usize],
                }]);
                self.pending.reverse();
            }
            Vec::new()
        }
        fn second(&mut self) -> Vec<u8> {
            self.pending.pop().map(|b| vec![b]).unwrap_or_default()
        }
    }
    let (mut net, all) = downloader_case(
        Box::new(Trickle {
            pending: Vec::new(),
        }),
        1 << 20,
    );
    net.run(0, &download_done);
    check(&net, &all, "idle timeout");
}
