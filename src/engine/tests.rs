//! Sessions wired to each other in memory: every byte goes through the real wire encoder and
//! decoder, cut at arbitrary points, on a virtual clock.

use super::*;
use crate::create::{create_torrent, CreateOptions};
use crate::store::MemoryStore;

use super::testkit::{data, leecher, seeder, torrent_files};

fn torrent(files: &[(&str, usize)], piece_length: u32) -> (Metainfo, Vec<u8>) {
    let (meta, contents) = torrent_files("t", files, piece_length);
    (meta, contents.concat())
}

fn magnet_leecher(info_hash: InfoHash, id: u8) -> Session {
    Session::from_info_hash(
        info_hash,
        PeerId([id; 20]),
        Box::new(|m: &Metainfo| {
            Box::new(MemoryStore::new(m.info.num_pieces(), m.info.piece_length))
                as Box<dyn PieceStore>
        }),
        Config::default(),
        id as u64,
    )
}

/// Sessions joined by links; `links[i] = (a, b)` means session a knows session b as key i.
struct Net {
    nodes: Vec<Session>,
    links: Vec<(usize, usize)>,
    now: u64,
    rng: Rng,
    events: Vec<Vec<Event>>,
    /// Reward seeds: node i signs receipts with `signers[i]` (None: it ignores requests).
    signers: Vec<Option<[u8; 32]>>,
}

impl Net {
    fn new(nodes: Vec<Session>) -> Net {
        let n = nodes.len();
        Net {
            nodes,
            links: Vec::new(),
            now: 1_000,
            rng: Rng::new(99),
            events: vec![Vec::new(); n],
            signers: vec![None; n],
        }
    }

    /// Node `i` takes part in receipts with the key of `seed`; `sign: false` announces the key
    /// but never signs (a peer that stops paying).
    fn reward(&mut self, i: usize, seed: [u8; 32], sign: bool, require: Option<u64>) {
        let mut cfg = RewardConfig::new(crate::receipt::public_key(&seed), 1_790_000_000_000);
        cfg.require_receipts = require;
        self.nodes[i].set_rewards(Some(cfg));
        self.signers[i] = sign.then_some(seed);
    }

    fn connect(&mut self, a: usize, b: usize) {
        // Key = link index, the same on both sides, so delivery is a simple lookup.
        let key = self.links.len() as PeerKey;
        self.links.push((a, b));
        self.nodes[a].peer_connected(key, self.now);
        self.nodes[b].peer_connected(key, self.now);
    }

    /// Moves bytes until nothing moves; returns whether anything moved at all.
    fn run(&mut self, max_rounds: usize) {
        for _ in 0..max_rounds {
            let mut moved = false;
            for key in 0..self.links.len() {
                let (a, b) = self.links[key];
                for (from, to) in [(a, b), (b, a)] {
                    let max = 1 + self.rng.below(70_000) as usize;
                    if let Some(bytes) = self.nodes[from].transmit(key as PeerKey, max, self.now) {
                        moved = true;
                        // Deliver in random cuts: the receiver must accept any split.
                        let mut rest = &bytes[..];
                        while !rest.is_empty() {
                            let cut = 1 + self.rng.below(rest.len() as u64) as usize;
                            self.nodes[to].peer_data(key as PeerKey, &rest[..cut], self.now);
                            rest = &rest[cut..];
                        }
                    }
                }
            }
            for (i, n) in self.nodes.iter_mut().enumerate() {
                n.fill_all_requests(self.now);
                n.tick(self.now);
                while let Some(e) = n.poll_event() {
                    if let (Event::SignReceipt { key, receipt }, Some(seed)) = (&e, self.signers[i])
                    {
                        let signed = crate::receipt::sign(receipt.clone(), &seed);
                        n.receipt_signed(*key, receipt.clone(), Some(signed.signature), self.now);
                        moved = true;
                    }
                    self.events[i].push(e);
                }
            }
            self.now += 10;
            if !moved {
                return;
            }
        }
        panic!("still moving after {max_rounds} rounds");
    }
}

fn read_all(s: &Session) -> Vec<u8> {
    let total = s.metainfo().unwrap().info.total_length;
    s.read(0, total).expect("complete")
}

#[test]
fn leecher_downloads_everything_from_a_seeder() {
    let (meta, all) = torrent(&[("a.bin", 300_000)], 32 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.connect(0, 1);
    net.run(10_000);
    assert!(net.nodes[1].is_complete());
    assert_eq!(read_all(&net.nodes[1]), all);
    assert!(net.events[1].contains(&Event::Done));
    assert_eq!(net.nodes[0].uploaded(), all.len() as u64);
}

#[test]
fn magnet_only_fetches_metadata_then_pieces() {
    let (meta, all) = torrent(&[("x", 70_000), ("empty", 0), ("y", 123_457)], 16 * 1024);
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        magnet_leecher(meta.info_hash, 2),
    ]);
    net.connect(0, 1);
    net.run(10_000);
    let got = &net.nodes[1];
    assert_eq!(got.metainfo().unwrap().info_bytes, meta.info_bytes);
    assert!(net.events[1].contains(&Event::MetadataReady));
    assert_eq!(read_all(got), all);
}

#[test]
fn three_leechers_share_one_seed() {
    let (meta, all) = torrent(&[("a", 1_000_000)], 64 * 1024);
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        leecher(&meta, 2),
        leecher(&meta, 3),
        magnet_leecher(meta.info_hash, 4),
    ]);
    for b in 1..4 {
        net.connect(0, b);
    }
    net.connect(1, 2);
    net.connect(2, 3);
    net.connect(1, 3);
    net.run(100_000);
    for i in 1..4 {
        assert_eq!(read_all(&net.nodes[i]), all, "node {i}");
    }
}

#[test]
fn wrong_info_hash_and_self_connections_are_dropped() {
    let (meta, all) = torrent(&[("a", 20_000)], 16 * 1024);
    let (other, _) = torrent(&[("b", 20_001)], 16 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&other, 2)]);
    net.connect(0, 1);
    net.run(100);
    // Whoever reads the other's handshake first hangs up.
    let closed = |i: usize| {
        net.events[i]
            .iter()
            .any(|e| matches!(e, Event::ClosePeer { .. }))
    };
    assert!(closed(0) || closed(1));
    let mut s = seeder(&meta, &all, 1);
    s.peer_connected(7, 0);
    let own = Handshake::new(meta.info_hash, PeerId([1; 20])).encode();
    s.peer_data(7, &own, 0);
    assert!(matches!(
        s.poll_event(),
        Some(Event::ClosePeer { key: 7, .. })
    ));
}

#[test]
fn corrupt_blocks_fail_the_hash_and_the_sender_is_dropped() {
    let (meta, all) = torrent(&[("a", 200_000)], 16 * 1024);
    let mut bad = all.clone();
    for b in bad.iter_mut() {
        *b ^= 0x55;
    }
    // The liar claims to have everything but serves garbage.
    let liar = {
        let store = MemoryStore::from_bytes(&bad, meta.info.piece_length);
        let have = Bitfield::full(meta.info.num_pieces() as usize);
        Session::new(
            meta.clone(),
            PeerId([9; 20]),
            Box::new(store),
            have,
            Config::default(),
            9,
        )
    };
    let mut net = Net::new(vec![liar, leecher(&meta, 2), seeder(&meta, &all, 3)]);
    net.connect(0, 1);
    net.run(10_000);
    assert!(net.events[1]
        .iter()
        .any(|e| matches!(e, Event::HashFailed { .. })));
    assert!(net.events[1]
        .iter()
        .any(|e| matches!(e, Event::ClosePeer { key: 0, .. })));
    assert!(!net.nodes[1].have().get(0) || net.nodes[1].have().count() == 0);
    // An honest seeder then completes the download.
    net.connect(2, 1);
    net.run(10_000);
    assert_eq!(read_all(&net.nodes[1]), all);
}

#[test]
fn request_for_a_piece_we_lack_is_rejected_and_oversized_request_drops_peer() {
    let (meta, all) = torrent(&[("a", 64 * 1024)], 16 * 1024);
    let mut s = seeder(&meta, &all, 1);
    s.peer_connected(1, 0);
    let mut bytes = Handshake::new(meta.info_hash, PeerId([2; 20]))
        .encode()
        .to_vec();
    Message::Interested.encode(&mut bytes);
    s.peer_data(1, &bytes, 0);
    s.tick(0);
    let mut req = Vec::new();
    Message::Request(BlockRef {
        index: 0,
        begin: 0,
        length: 256 * 1024,
    })
    .encode(&mut req);
    s.peer_data(1, &req, 0);
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ClosePeer { key: 1, .. })),
        "{events:?}"
    );
}

#[test]
fn too_many_queued_requests_drop_the_peer() {
    let (meta, all) = torrent(&[("a", 64 * 1024)], 16 * 1024);
    let mut s = seeder(&meta, &all, 1);
    s.peer_connected(1, 0);
    let mut bytes = Handshake::new(meta.info_hash, PeerId([2; 20]))
        .encode()
        .to_vec();
    Message::Interested.encode(&mut bytes);
    s.peer_data(1, &bytes, 0);
    let mut flood = Vec::new();
    for _ in 0..Config::default().max_peer_requests + 1 {
        Message::Request(BlockRef {
            index: 0,
            begin: 0,
            length: 16384,
        })
        .encode(&mut flood);
    }
    s.peer_data(1, &flood, 0);
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ClosePeer { key: 1, .. })),
        "{events:?}"
    );
}

#[test]
fn silent_peer_times_out_and_keepalives_are_sent() {
    let (meta, all) = torrent(&[("a", 16 * 1024)], 16 * 1024);
    let mut s = seeder(&meta, &all, 1);
    s.peer_connected(1, 0);
    s.peer_data(
        1,
        &Handshake::new(meta.info_hash, PeerId([2; 20])).encode(),
        0,
    );
    while s.transmit(1, 1 << 20, 0).is_some() {}
    s.tick(60_000);
    assert_eq!(s.transmit(1, 1 << 20, 60_000), Some(vec![0, 0, 0, 0]));
    s.tick(200_000);
    assert!(
        std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, Event::ClosePeer { key: 1, .. }))
    );
}

#[test]
fn default_piece_length_three_files_completes() {
    let (meta, all) = {
        let contents = [data(3_000_000, 1), data(1, 2), data(5_000_000, 3)];
        let refs: Vec<(Vec<String>, &[u8])> = ["a", "b", "c"]
            .iter()
            .zip(&contents)
            .map(|(n, d)| (vec!["dir".to_string(), n.to_string()], d.as_slice()))
            .collect();
        (
            create_torrent(&refs, CreateOptions::default()).unwrap(),
            contents.concat(),
        )
    };
    let t = std::time::Instant::now();
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        magnet_leecher(meta.info_hash, 2),
    ]);
    net.connect(0, 1);
    net.run(100_000);
    assert_eq!(read_all(&net.nodes[1]), all);
    eprintln!(
        "piece length {} pieces {} took {:?}",
        meta.info.piece_length,
        meta.info.num_pieces(),
        t.elapsed()
    );
}

#[test]
fn smart_ban_convicts_the_peer_whose_block_differed() {
    // Two peers share the blocks of each piece; one corrupts only block 1 of piece 0.
    let (meta, all) = torrent(&[("a", 4 * 16384)], 4 * 16384);
    let mut bad = all.clone();
    bad[16384 + 5] ^= 0xFF;
    let liar = {
        let store = MemoryStore::from_bytes(&bad, meta.info.piece_length);
        let have = Bitfield::full(meta.info.num_pieces() as usize);
        Session::new(
            meta.clone(),
            PeerId([9; 20]),
            Box::new(store),
            have,
            Config::default(),
            9,
        )
    };
    let mut net = Net::new(vec![liar, seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.connect(0, 2);
    net.connect(1, 2);
    net.run(10_000);
    assert!(net.events[2]
        .iter()
        .any(|e| matches!(e, Event::HashFailed { piece: 0 })));
    assert!(net.events[2].contains(&Event::PeerBanned {
        peer_id: PeerId([9; 20])
    }));
    assert!(!net.events[2].contains(&Event::PeerBanned {
        peer_id: PeerId([1; 20])
    }));
    assert_eq!(read_all(&net.nodes[2]), all);
    // It may not come back.
    assert!(net.nodes[2].banned().contains(&PeerId([9; 20])));
}

#[test]
fn external_hashing_waits_for_the_driver() {
    let (meta, all) = torrent(&[("a", 40_000)], 16 * 1024);
    let mut leech = {
        let store = MemoryStore::new(meta.info.num_pieces(), meta.info.piece_length);
        let have = Bitfield::new(meta.info.num_pieces() as usize);
        let config = Config {
            external_hashing: true,
            ..Config::default()
        };
        Session::new(
            meta.clone(),
            PeerId([2; 20]),
            Box::new(store),
            have,
            config,
            2,
        )
    };
    let mut seed = seeder(&meta, &all, 1);
    seed.peer_connected(0, 0);
    leech.peer_connected(0, 0);
    let mut hashed = 0;
    for _ in 0..1000 {
        let mut moved = false;
        while let Some(b) = seed.transmit(0, 1 << 16, 0) {
            leech.peer_data(0, &b, 0);
            moved = true;
        }
        while let Some(b) = leech.transmit(0, 1 << 16, 0) {
            seed.peer_data(0, &b, 0);
            moved = true;
        }
        while let Some(e) = leech.poll_event() {
            if let Event::HashPiece { piece } = e {
                assert!(!leech.have().get(piece as usize));
                let d: [u8; 20] = Sha1::digest(leech.piece_buffer(piece).unwrap()).into();
                leech.piece_hashed(piece, d);
                hashed += 1;
                moved = true;
            }
        }
        leech.fill_all_requests(0);
        if !moved {
            break;
        }
    }
    assert_eq!(hashed, meta.info.num_pieces());
    assert_eq!(read_all(&leech), all);
}

/// A driver's storage, for sessions in external-storage mode: answers StorePiece and LoadPiece.
#[derive(Default)]
struct FakeDisk {
    pieces: std::collections::BTreeMap<u32, Vec<u8>>,
    fail_writes: bool,
    loads: usize,
}

impl FakeDisk {
    fn serve(&mut self, s: &mut Session, events: &mut Vec<Event>) {
        while let Some(e) = s.poll_event() {
            match &e {
                Event::StorePiece { piece, data } => {
                    if self.fail_writes {
                        s.piece_stored(*piece, Err("quota exceeded".into()));
                    } else {
                        self.pieces.insert(*piece, data.clone());
                        s.piece_stored(*piece, Ok(()));
                    }
                }
                Event::LoadPiece { piece } => {
                    self.loads += 1;
                    s.piece_loaded(*piece, self.pieces.get(piece).cloned());
                }
                _ => {}
            }
            events.push(e);
        }
    }
}

fn pump(
    a: &mut Session,
    b: &mut Session,
    da: &mut FakeDisk,
    db: &mut FakeDisk,
) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..100_000 {
        a.fill_all_requests(0);
        b.fill_all_requests(0);
        let mut moved = false;
        while let Some(x) = a.transmit(0, 1 << 16, 0) {
            b.peer_data(0, &x, 0);
            moved = true;
        }
        while let Some(x) = b.transmit(0, 1 << 16, 0) {
            a.peer_data(0, &x, 0);
            moved = true;
        }
        let before = (ea.len(), eb.len());
        da.serve(a, &mut ea);
        db.serve(b, &mut eb);
        if !moved && before == (ea.len(), eb.len()) {
            break;
        }
    }
    (ea, eb)
}

#[test]
fn external_storage_stores_before_claiming_and_loads_to_upload() {
    let (meta, all) = torrent(&[("a", 300_000)], 32 * 1024);
    let n = meta.info.num_pieces();
    // The seeder's pieces are on "disk", not in the session.
    let mut seed_disk = FakeDisk::default();
    for i in 0..n {
        let off = i as usize * 32 * 1024;
        seed_disk
            .pieces
            .insert(i, all[off..(off + 32 * 1024).min(all.len())].to_vec());
    }
    let config = Config {
        upload_cache_bytes: 64 * 1024,
        ..Config::default()
    };
    let mut seed = Session::new_external(
        meta.clone(),
        PeerId([1; 20]),
        Bitfield::full(n as usize),
        config,
        1,
    );
    let mut leech =
        Session::from_info_hash_external(meta.info_hash, PeerId([2; 20]), Config::default(), 2);
    let mut leech_disk = FakeDisk::default();
    seed.peer_connected(0, 0);
    leech.peer_connected(0, 0);
    let (_, events) = pump(&mut seed, &mut leech, &mut seed_disk, &mut leech_disk);
    assert!(leech.is_complete());
    assert!(events.contains(&Event::Done));
    let stored: Vec<u8> = leech_disk.pieces.values().flatten().copied().collect();
    assert_eq!(stored, all);
    assert!(seed_disk.loads >= n as usize);
    // The upload cache stays within its bound (one piece may exceed it alone).
    assert!(seed.cache_bytes() <= 64 * 1024);
    assert!(
        leech.read(0, 10).is_none(),
        "external sessions hold no data"
    );
}

#[test]
fn storage_failure_pauses_and_keeps_the_bitfield_honest() {
    let (meta, all) = torrent(&[("a", 200_000)], 16 * 1024);
    let mut seed = seeder(&meta, &all, 1);
    let mut leech = Session::new_external(
        meta.clone(),
        PeerId([2; 20]),
        Bitfield::new(meta.info.num_pieces() as usize),
        Config::default(),
        2,
    );
    let mut disk = FakeDisk {
        fail_writes: true,
        ..FakeDisk::default()
    };
    seed.peer_connected(0, 0);
    leech.peer_connected(0, 0);
    let (_, events) = pump(&mut seed, &mut leech, &mut FakeDisk::default(), &mut disk);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::StorageFailed { .. })));
    assert!(leech.is_paused());
    assert_eq!(leech.have().count(), 0, "nothing unstored may be claimed");
    // Space is freed: resume and finish.
    disk.fail_writes = false;
    leech.set_paused(false);
    let _ = pump(&mut seed, &mut leech, &mut FakeDisk::default(), &mut disk);
    assert!(leech.is_complete());
    let stored: Vec<u8> = disk.pieces.values().flatten().copied().collect();
    assert_eq!(stored, all);
}

/// A store whose disk is full.
struct FullDisk;

impl PieceStore for FullDisk {
    fn put_piece(&mut self, _: u32, _: Vec<u8>) {}
    fn read_block(&self, _: u32, _: u32, _: u32, _: &mut Vec<u8>) -> bool {
        false
    }
    fn has_piece(&self, _: u32) -> bool {
        false
    }
    fn take_write_error(&mut self) -> Option<String> {
        Some("no space left on device".into())
    }
}

#[test]
fn a_sync_store_that_fails_to_write_pauses_the_session() {
    let (meta, all) = torrent(&[("a", 64 * 1024)], 16 * 1024);
    let have = Bitfield::new(meta.info.num_pieces() as usize);
    let leech = Session::new(
        meta.clone(),
        PeerId([2; 20]),
        Box::new(FullDisk),
        have,
        Config::default(),
        2,
    );
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leech]);
    net.connect(0, 1);
    net.run(10_000);
    assert!(net.events[1]
        .iter()
        .any(|e| matches!(e, Event::StorageFailed { .. })));
    assert!(net.nodes[1].is_paused());
    assert_eq!(net.nodes[1].have().count(), 0);
}

#[test]
fn slow_storage_holds_back_new_requests() {
    let (meta, all) = torrent(&[("a", 40 * 16384)], 16 * 1024);
    let mut seed = seeder(&meta, &all, 1);
    let config = Config {
        max_unstored_pieces: 3,
        ..Config::default()
    };
    let mut leech =
        Session::new_external(meta.clone(), PeerId([2; 20]), Bitfield::new(40), config, 2);
    seed.peer_connected(0, 0);
    leech.peer_connected(0, 0);
    let mut waiting = Vec::new();
    for _ in 0..200 {
        leech.fill_all_requests(0);
        while let Some(x) = leech.transmit(0, 1 << 16, 0) {
            seed.peer_data(0, &x, 0);
        }
        while let Some(x) = seed.transmit(0, 1 << 16, 0) {
            leech.peer_data(0, &x, 0);
        }
        while let Some(e) = leech.poll_event() {
            if let Event::StorePiece { piece, .. } = e {
                waiting.push(piece); // the disk never answers
            }
        }
    }
    // Requests already in flight may complete a few more pieces, but not the whole torrent.
    // The limit, plus what was already requested when it was reached (the initial pipeline).
    let limit = 3 + Config::default().min_outstanding_requests;
    assert!(waiting.len() <= limit, "{} pieces waiting", waiting.len());
    for p in waiting.drain(..) {
        leech.piece_stored(p, Ok(()));
    }
    assert!(!leech.is_complete());
}

#[test]
fn restore_from_storage_then_fetch_only_what_is_missing() {
    let (meta, all) = torrent(&[("a", 10 * 16384)], 16 * 1024);
    let mut leech =
        Session::from_info_hash_external(meta.info_hash, PeerId([2; 20]), Config::default(), 2);
    let mut have = Bitfield::new(10);
    let mut disk = FakeDisk::default();
    for i in 0..6u32 {
        have.set(i as usize);
        disk.pieces.insert(
            i,
            all[i as usize * 16384..(i as usize + 1) * 16384].to_vec(),
        );
    }
    let (other, _) = torrent(&[("b", 10 * 16384 + 1)], 16 * 1024);
    assert!(leech.restore(Some(other), have.clone()).is_err());
    leech.restore(Some(meta.clone()), have).unwrap();
    assert_eq!(leech.left(), Some(4 * 16384));
    let mut seed = seeder(&meta, &all, 1);
    seed.peer_connected(0, 0);
    leech.peer_connected(0, 0);
    let _ = pump(&mut seed, &mut leech, &mut FakeDisk::default(), &mut disk);
    assert!(leech.is_complete());
    assert_eq!(
        leech.downloaded(),
        4 * 16384,
        "only the missing pieces move"
    );
    // A re-check that finds piece 2 damaged makes it missing again.
    leech.forget_pieces(&[2]);
    assert_eq!(leech.left(), Some(16384));
    let _ = pump(&mut seed, &mut leech, &mut FakeDisk::default(), &mut disk);
    assert!(leech.is_complete());
}

// --- reward receipts -----------------------------------------------------------------------

const SEED_KEY: [u8; 32] = [0x51; 32];
const A_KEY: [u8; 32] = [0xa1; 32];
const B_KEY: [u8; 32] = [0xb2; 32];

fn held_by(net: &Net, uploader: usize) -> Vec<crate::receipt::SignedReceipt> {
    net.nodes[uploader]
        .receipts_held()
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[test]
fn receipts_attest_every_verified_byte_exactly_once() {
    let (meta, all) = torrent(&[("a", 900_000)], 32 * 1024);
    let total = all.len() as u64;
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        leecher(&meta, 2),
        leecher(&meta, 3),
    ]);
    net.reward(0, SEED_KEY, true, None);
    net.reward(1, A_KEY, true, None);
    net.reward(2, B_KEY, true, None);
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect(1, 2);
    net.run(100_000);
    let pk = crate::receipt::public_key;
    for (node, key) in [(1, A_KEY), (2, B_KEY)] {
        assert_eq!(read_all(&net.nodes[node]), all);
        // Whoever uploaded to this downloader holds its receipts; together they cover the file.
        let mut sum = 0;
        for up in 0..3 {
            for r in held_by(&net, up) {
                r.verify().unwrap();
                assert_eq!(r.receipt.length, total);
                assert_eq!(r.receipt.info_hash, meta.info_hash.0);
                if r.receipt.downloader == pk(&key) {
                    sum += r.receipt.bytes;
                }
            }
        }
        assert_eq!(sum, total, "node {node}");
    }
    // Every receipt names its holder as uploader, and the holder sent at least that much.
    for (up, key) in [(0, SEED_KEY), (1, A_KEY), (2, B_KEY)] {
        let held = held_by(&net, up);
        assert!(held.iter().all(|r| r.receipt.uploader == pk(&key)));
        let attested: u64 = held.iter().map(|r| r.receipt.bytes).sum();
        assert!(attested <= net.nodes[up].uploaded());
    }
    assert!(!held_by(&net, 0).is_empty());
    // The receipts reached the drivers as events too, in rising order per session.
    let got: Vec<&crate::receipt::SignedReceipt> = net.events[0]
        .iter()
        .filter_map(|e| match e {
            Event::ReceiptReceived { receipt, .. } => Some(receipt),
            _ => None,
        })
        .collect();
    assert!(got
        .windows(2)
        .all(|w| w[0].receipt.session != w[1].receipt.session
            || (w[0].receipt.seq < w[1].receipt.seq && w[0].receipt.bytes < w[1].receipt.bytes)));
}

#[test]
fn peers_without_the_extension_are_served_and_sign_nothing() {
    let (meta, all) = torrent(&[("a", 300_000)], 32 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.reward(0, SEED_KEY, true, Some(64 * 1024));
    net.connect(0, 1);
    net.run(10_000);
    assert_eq!(read_all(&net.nodes[1]), all);
    assert!(held_by(&net, 0).is_empty());
    assert!(!net.events[1]
        .iter()
        .any(|e| matches!(e, Event::SignReceipt { .. })));
}

#[test]
fn require_mode_holds_back_a_peer_that_stops_signing() {
    let (meta, all) = torrent(&[("a", 2_000_000)], 32 * 1024);
    let limit = 256 * 1024;
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        leecher(&meta, 2),
        leecher(&meta, 3),
    ]);
    net.reward(0, SEED_KEY, true, Some(limit));
    net.reward(1, A_KEY, false, None); // announces a key, never signs
    net.reward(2, B_KEY, true, None);
    net.connect(0, 1);
    net.connect(0, 2);
    net.run(100_000);
    assert_eq!(read_all(&net.nodes[2]), all);
    assert!(!net.nodes[1].is_complete());
    let got = net.nodes[1].downloaded();
    // At most the limit plus what one transmit call carries past it.
    assert!(got <= limit + 70_000 + 32 * 1024, "the non-payer got {got}");
    assert!(got > 0);
    // The paying peer's receipts cover the whole file.
    let paid: u64 = held_by(&net, 0)
        .iter()
        .filter(|r| r.receipt.downloader == crate::receipt::public_key(&B_KEY))
        .map(|r| r.receipt.bytes)
        .sum();
    assert_eq!(paid, all.len() as u64);
}

/// Two seeds share the upload to one downloader, so each holds receipts for less than the
/// whole file; then the downloader's side sends seed 0 a hostile receipt.
fn hostile_receipt_closes(make: impl Fn(&crate::receipt::SignedReceipt) -> Vec<u8>) -> String {
    let (meta, all) = torrent(&[("a", 600_000)], 16 * 1024);
    let mut net = Net::new(vec![
        seeder(&meta, &all, 1),
        leecher(&meta, 2),
        seeder(&meta, &all, 3),
    ]);
    net.reward(0, SEED_KEY, true, None);
    net.reward(1, A_KEY, true, None);
    net.reward(2, B_KEY, true, None);
    net.connect(0, 1); // key 0
    net.connect(2, 1); // key 1
    net.run(10_000);
    assert_eq!(read_all(&net.nodes[1]), all);
    let latest = held_by(&net, 0).pop().expect("seed 0 holds a receipt");
    assert!(latest.receipt.bytes < all.len() as u64, "both seeds served");
    net.now += 1_000;
    let mut wire = Vec::new();
    Message::Extended {
        id: crate::receipt::ext::LOCAL_ID,
        payload: make(&latest),
    }
    .encode(&mut wire);
    net.nodes[0].peer_data(0, &wire, net.now);
    let mut reason = None;
    while let Some(e) = net.nodes[0].poll_event() {
        if let Event::ClosePeer { key: 0, reason: r } = e {
            reason = Some(r);
        }
    }
    reason.expect("the connection is closed")
}

#[test]
fn forged_replayed_or_inflated_receipts_close_the_connection() {
    let resign = |r: &crate::receipt::SignedReceipt, f: &dyn Fn(&mut crate::receipt::Receipt)| {
        let mut next = r.receipt.clone();
        next.seq += 1;
        next.bytes += 1;
        f(&mut next);
        crate::receipt::sign(next, &A_KEY)
    };
    type Make = Box<dyn Fn(&crate::receipt::SignedReceipt) -> Vec<u8>>;
    let cases: Vec<(&str, Make)> = vec![
        ("does not move forward", Box::new(|r| r.encode())),
        (
            "signature does not verify",
            Box::new(move |r| {
                let mut bad = resign(r, &|_| {});
                bad.signature[5] ^= 1;
                bad.encode()
            }),
        ),
        (
            "signature does not verify",
            Box::new(|r| {
                let mut next = r.receipt.clone();
                next.seq += 1;
                next.bytes += 1;
                crate::receipt::sign(next, &B_KEY).encode() // B signs in A's name
            }),
        ),
        ("malformed", Box::new(|_| b"d3:fooi1ee".to_vec())),
        (
            "another uploader",
            Box::new(move |r| {
                resign(r, &|n| n.uploader = crate::receipt::public_key(&B_KEY)).encode()
            }),
        ),
        (
            "session differs",
            Box::new(move |r| resign(r, &|n| n.session = [0; 16]).encode()),
        ),
        (
            "we sent",
            Box::new(move |r| resign(r, &|n| n.bytes = n.length).encode()),
        ),
        (
            "does not move forward",
            Box::new(move |r| resign(r, &|n| n.bytes -= 2).encode()),
        ),
    ];
    for (why, make) in cases {
        let reason = hostile_receipt_closes(make);
        assert!(reason.contains(why), "{why:?} not in {reason:?}");
    }
}

#[test]
fn receipts_arriving_close_together_are_checked_later_not_lost() {
    let (meta, all) = torrent(&[("a", 700_000)], 16 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.reward(0, SEED_KEY, true, None);
    net.reward(1, A_KEY, true, None);
    // A receipt for every 16 KiB: many arrive within one verification interval.
    let mut cfg = RewardConfig::new(crate::receipt::public_key(&A_KEY), 0);
    cfg.receipt_every_bytes = 16 * 1024;
    net.nodes[1].set_rewards(Some(cfg));
    net.connect(0, 1);
    net.run(10_000);
    let signed = net.events[1]
        .iter()
        .filter(|e| matches!(e, Event::SignReceipt { .. }))
        .count();
    let checked = net.events[0]
        .iter()
        .filter(|e| matches!(e, Event::ReceiptReceived { .. }))
        .count();
    assert!(
        checked < signed,
        "some waited: {checked} checked of {signed}"
    );
    let held = held_by(&net, 0);
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].receipt.bytes,
        all.len() as u64,
        "the last one was kept"
    );
}

#[test]
fn pieces_fetched_twice_never_push_a_receipt_past_the_length() {
    let (meta, all) = torrent(&[("a", 300_000)], 32 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.reward(0, SEED_KEY, true, None);
    net.reward(1, A_KEY, true, None);
    net.connect(0, 1);
    net.run(10_000);
    assert!(net.nodes[1].is_complete());
    // As after a storage failure: the pieces are gone and come again from the same peer.
    let n = meta.info.num_pieces();
    net.nodes[1].forget_pieces(&(0..n).collect::<Vec<u32>>());
    net.run(10_000);
    assert_eq!(read_all(&net.nodes[1]), all);
    let closed = net.events.iter().flatten().find_map(|e| match e {
        Event::ClosePeer { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(closed, None, "the connection stays up");
    let held = held_by(&net, 0);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].receipt.bytes, all.len() as u64);
}

#[test]
fn turning_require_mode_off_releases_a_held_peer() {
    let (meta, all) = torrent(&[("a", 1_000_000)], 32 * 1024);
    let mut net = Net::new(vec![seeder(&meta, &all, 1), leecher(&meta, 2)]);
    net.reward(0, SEED_KEY, true, Some(128 * 1024));
    net.reward(1, A_KEY, false, None); // never signs
    net.connect(0, 1);
    net.run(10_000);
    assert!(!net.nodes[1].is_complete(), "held back");
    net.nodes[0].set_require_receipts(None);
    net.run(10_000);
    assert_eq!(read_all(&net.nodes[1]), all);
}
