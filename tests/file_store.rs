#![cfg(all(feature = "native", not(target_arch = "wasm32")))]
//! The native file store: layout on disk, reads across files, resume from the state file,
//! verification of existing files, refusal of escaping paths, error reporting, and a download
//! that is interrupted and resumed through the engine.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use seedtab::bitfield::Bitfield;
use seedtab::create::{create_torrent, CreateOptions};
use seedtab::engine::{Config, PeerKey, Session};
use seedtab::id::PeerId;
use seedtab::metainfo::Metainfo;
use seedtab::store::{FileStore, PieceStore, STATE_DIR};
use seedtab::testdir::TempDir;

fn bytes(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 31 + seed * 7 + i / 251) % 251) as u8)
        .collect()
}

struct Torrent {
    meta: Metainfo,
    files: Vec<(String, Vec<u8>)>,
    all: Vec<u8>,
}

impl Torrent {
    fn new(files: &[(&str, usize)], piece_length: u32) -> Torrent {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .enumerate()
            .map(|(i, (p, n))| (p.to_string(), bytes(*n, i)))
            .collect();
        let refs: Vec<(Vec<String>, &[u8])> = files
            .iter()
            .map(|(p, d)| (p.split('/').map(String::from).collect(), d.as_slice()))
            .collect();
        let opts = CreateOptions {
            name: Some("t".into()),
            piece_length: Some(piece_length),
            ..Default::default()
        };
        let meta = create_torrent(&refs, opts).unwrap();
        let all = files.iter().flat_map(|(_, d)| d.clone()).collect();
        Torrent { meta, files, all }
    }

    /// Piece length 1024: piece 1 spans `sub/a`, `b` and `c` (with the empty file in between).
    fn spanning() -> Torrent {
        let t = Torrent::new(
            &[
                ("sub/a", 1500),
                ("empty", 0),
                ("b", 300),
                ("c", 1000),
                ("d/e", 5000),
            ],
            1024,
        );
        let files: Vec<usize> = t
            .meta
            .info
            .file_ranges(1024, 1024)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(files, vec![0, 2, 3]);
        t
    }

    fn n(&self) -> u32 {
        self.meta.info.num_pieces()
    }

    fn piece(&self, i: u32) -> Vec<u8> {
        let off = self.meta.info.piece_offset(i) as usize;
        self.all[off..off + self.meta.info.piece_len(i) as usize].to_vec()
    }

    /// Where file `i` lives under a download folder (multi-file: `dir/t/...`).
    fn file_path(&self, dir: &Path, i: usize) -> PathBuf {
        let mut p = dir.join(&self.meta.info.name);
        for c in self.files[i].0.split('/') {
            p.push(c);
        }
        p
    }

    /// Lays the files down directly, as a user with the data already would.
    fn write_files(&self, dir: &Path) {
        for (i, (_, data)) in self.files.iter().enumerate() {
            let p = self.file_path(dir, i);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, data).unwrap();
        }
    }

    fn assert_files(&self, dir: &Path) {
        for (i, (name, data)) in self.files.iter().enumerate() {
            let on_disk = fs::read(self.file_path(dir, i)).unwrap();
            assert!(on_disk == *data, "file {name} differs");
        }
    }
}

fn bits(n: u32, set: impl Fn(u32) -> bool) -> Bitfield {
    let mut b = Bitfield::new(n as usize);
    for i in (0..n).filter(|&i| set(i)) {
        b.set(i as usize);
    }
    b
}

#[test]
fn all_pieces_land_in_their_files() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("all");
    let (mut store, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have.count(), 0);
    // Opening creates nothing.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    // Out of order, as a swarm delivers them.
    let order: Vec<u32> = (0..t.n()).rev().collect();
    for &i in &order {
        store.put_piece(i, t.piece(i));
        assert!(store.take_error().is_none(), "piece {i}");
        assert!(store.has_piece(i));
    }
    assert!(store.have().is_complete());
    t.assert_files(tmp.path());
    assert_eq!(fs::metadata(t.file_path(tmp.path(), 1)).unwrap().len(), 0);
    assert!(store.state_path().starts_with(tmp.path().join(STATE_DIR)));
    assert!(store.state_path().exists());
    assert_eq!(store.recheck().unwrap(), Bitfield::full(t.n() as usize));
}

#[test]
fn single_file_torrent_is_dir_slash_name() {
    let t = Torrent::new(&[("only.bin", 3000)], 1024);
    assert!(!t.meta.info.multi_file);
    let tmp = TempDir::new("single");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    for i in 0..t.n() {
        store.put_piece(i, t.piece(i));
    }
    assert!(store.take_error().is_none());
    assert_eq!(fs::read(tmp.path().join("t")).unwrap(), t.all);
}

#[test]
fn first_write_creates_the_file_sparse_at_full_length() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("sparse");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    let last = t.n() - 1;
    store.put_piece(last, t.piece(last));
    assert!(store.take_error().is_none());
    let e = t.file_path(tmp.path(), 4);
    assert_eq!(fs::metadata(&e).unwrap().len(), 5000);
    // Empty files come with the first write.
    assert!(t.file_path(tmp.path(), 1).is_file());
    assert!(!t.file_path(tmp.path(), 0).exists());
}

#[test]
fn read_block_crosses_file_boundaries() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("read");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    let mut out = Vec::new();
    assert!(!store.read_block(1, 0, 10, &mut out), "absent piece");
    for i in 0..t.n() {
        store.put_piece(i, t.piece(i));
    }
    // Piece 1 is bytes 1024..2048: a ends at 1500, b at 1800, then c.
    let mut out = vec![0xAA];
    assert!(store.read_block(1, 400, 500, &mut out));
    assert_eq!(out[0], 0xAA);
    assert_eq!(out[1..], t.all[1424..1924]);
    for (begin, len) in [(0, 1024), (475, 2), (775, 249), (1023, 1)] {
        let mut out = Vec::new();
        assert!(store.read_block(1, begin, len, &mut out));
        let at = 1024 + begin as usize;
        assert_eq!(out, t.all[at..at + len as usize], "{begin}+{len}");
    }
    let mut out = Vec::new();
    assert!(!store.read_block(1, 1000, 25, &mut out), "past the piece");
    assert!(out.is_empty());
    assert!(!store.read_block(t.n(), 0, 1, &mut out), "past the torrent");
    // The short last piece: 7800 bytes in all.
    assert!(store.read_block(7, 0, 7800 - 7 * 1024, &mut out));
    assert_eq!(out, t.all[7 * 1024..]);
    assert!(store.take_error().is_none());
}

#[test]
fn resume_gives_back_the_same_bitfield() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("resume");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    let even = bits(t.n(), |i| i % 2 == 0);
    for i in even.iter_set() {
        store.put_piece(i as u32, t.piece(i as u32));
    }
    assert!(store.take_error().is_none());
    drop(store);
    let (store, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, even);
    assert_eq!(store.have(), &even);
    for i in 0..t.n() {
        assert_eq!(store.has_piece(i), i % 2 == 0);
    }
    let mut out = Vec::new();
    assert!(store.read_block(2, 0, 1024, &mut out));
    assert_eq!(out, t.piece(2));
    drop(store);

    // A lagging state (written every 3 pieces) still never claims too much, and drop flushes.
    let tmp = TempDir::new("resume-lag");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    store.set_state_interval(3);
    for i in 0..4 {
        store.put_piece(i, t.piece(i));
    }
    let (_, mid) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(mid, bits(t.n(), |i| i < 3));
    drop(store);
    let (_, after) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(after, bits(t.n(), |i| i < 4));
}

#[test]
fn corrupt_or_foreign_state_means_empty_and_verify_rebuilds() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("corrupt");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    let low = bits(t.n(), |i| i < 5);
    for i in low.iter_set() {
        store.put_piece(i as u32, t.piece(i as u32));
    }
    let state = store.state_path().to_path_buf();
    drop(store);

    let mut raw = fs::read(&state).unwrap();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x40;
    fs::write(&state, &raw).unwrap();
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have.count(), 0);
    fs::write(&state, b"").unwrap();
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have.count(), 0);

    let (store, have) = FileStore::open_verify(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, low);
    assert_eq!(store.have(), &low);
    drop(store);
    // Verification rewrote the state.
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, low);

    // Another torrent's state under this torrent's name is ignored.
    let other = Torrent::new(&[("x", 7800)], 1024);
    let (mut o, _) = FileStore::open(tmp.path().join("o"), &other.meta).unwrap();
    o.put_piece(0, other.piece(0));
    let other_state = o.state_path().to_path_buf();
    drop(o);
    fs::copy(&other_state, &state).unwrap();
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have.count(), 0);
}

#[test]
fn existing_files_are_seeded_after_verify() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("seed");
    t.write_files(tmp.path());
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have.count(), 0, "no state yet");
    let (store, have) = FileStore::open_verify(tmp.path(), &t.meta).unwrap();
    assert!(have.is_complete());
    let mut out = Vec::new();
    assert!(store.read_block(3, 10, 1000, &mut out));
    assert_eq!(out, t.all[3082..4082]);
}

#[test]
fn truncated_file_loses_its_pieces() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("trunc");
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    for i in 0..t.n() {
        store.put_piece(i, t.piece(i));
    }
    drop(store);
    // d/e holds stream bytes 2800..7800; cut it to 2000 bytes (stream 2800..4800).
    let e = t.file_path(tmp.path(), 4);
    fs::OpenOptions::new()
        .write(true)
        .open(&e)
        .unwrap()
        .set_len(2000)
        .unwrap();
    let e_start = t.meta.info.files[4].offset;
    let touches_e =
        |i: u32| t.meta.info.piece_offset(i) + u64::from(t.meta.info.piece_len(i)) > e_start;
    let beyond_cut =
        |i: u32| t.meta.info.piece_offset(i) + u64::from(t.meta.info.piece_len(i)) > e_start + 2000;

    // Plain open: the state is intact but the file is short, so every piece in it is dropped.
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, bits(t.n(), |i| !touches_e(i)));
    // Verify keeps the pieces whose bytes are still there.
    let (_, have) = FileStore::open_verify(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, bits(t.n(), |i| !beyond_cut(i)));
    assert!(have.count() > bits(t.n(), |i| !touches_e(i)).count());

    // A deleted file too.
    fs::remove_file(t.file_path(tmp.path(), 2)).unwrap();
    let (store, have) = FileStore::open_verify(tmp.path(), &t.meta).unwrap();
    assert!(!have.get(1), "piece 1 needs b");
    assert_eq!(store.recheck().unwrap(), have);
}

#[test]
fn paths_that_escape_are_refused() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("escape");
    let bad_paths: [&[&str]; 6] = [
        &["..", "x"],
        &["sub", "..", "..", "x"],
        &["/etc/passwd"],
        &["a/../../x"],
        &["."],
        &[],
    ];
    for bad in bad_paths {
        let mut meta = t.meta.clone();
        meta.info.files[0].path = bad.iter().map(|s| s.to_string()).collect();
        let err = FileStore::open(tmp.path(), &meta).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    for name in ["..", "", "a/b", STATE_DIR] {
        let mut meta = t.meta.clone();
        meta.info.name = name.to_string();
        let err = FileStore::open(tmp.path(), &meta).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
    }
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn failed_write_is_reported_and_never_claimed() {
    let t = Torrent::spanning();
    let tmp = TempDir::new("fail");
    // `b` cannot be written: a folder sits where the file belongs.
    fs::create_dir_all(t.file_path(tmp.path(), 2)).unwrap();
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    store.put_piece(0, t.piece(0));
    assert!(store.take_error().is_none());
    store.put_piece(1, t.piece(1));
    let err = store.take_error().expect("the write failed");
    assert_ne!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(store.take_error().is_none(), "taken once");
    assert!(!store.has_piece(1));
    let mut out = Vec::new();
    assert!(!store.read_block(1, 0, 10, &mut out));
    store.put_piece(2, t.piece(2));
    assert!(store.take_error().is_none());
    assert!(store.write_piece(1, &t.piece(1)).is_err());
    drop(store);
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, bits(t.n(), |i| i == 0 || i == 2));

    // A piece that was had and then fails to be rewritten is dropped from the state at once.
    let b = t.file_path(tmp.path(), 2);
    fs::remove_dir(&b).unwrap();
    let (mut store, _) = FileStore::open(tmp.path(), &t.meta).unwrap();
    store.set_max_open_files(1);
    store.put_piece(1, t.piece(1));
    assert!(store.take_error().is_none());
    // Only `d/e` stays open, then `b` turns into a folder behind the store's back.
    store.put_piece(4, t.piece(4));
    fs::remove_file(&b).unwrap();
    fs::create_dir(&b).unwrap();
    store.put_piece(1, t.piece(1));
    assert!(store.take_error().is_some());
    assert!(!store.has_piece(1));
    // With `b` whole again, only the state can say that piece 1 is missing.
    fs::remove_dir(&b).unwrap();
    fs::write(&b, &t.files[2].1).unwrap();
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, bits(t.n(), |i| [0, 2, 4].contains(&i)));
    drop(store);
    let (_, have) = FileStore::open(tmp.path(), &t.meta).unwrap();
    assert_eq!(have, bits(t.n(), |i| [0, 2, 4].contains(&i)));
}

#[test]
fn read_only_files_are_seeded() {
    // Seeding from files we may not write: reads never ask for write access.
    let t = Torrent::new(&[("a", 2000), ("b", 900)], 1024);
    let tmp = TempDir::new("ro");
    t.write_files(tmp.path());
    for i in 0..t.files.len() {
        let p = t.file_path(tmp.path(), i);
        let mut perm = fs::metadata(&p).unwrap().permissions();
        perm.set_readonly(true);
        fs::set_permissions(&p, perm).unwrap();
    }
    let (mut store, have) = FileStore::open_verify(tmp.path(), &t.meta).unwrap();
    assert!(have.is_complete());
    for i in 0..t.n() {
        assert_eq!(store.read_piece(i).unwrap(), t.piece(i));
    }
    assert!(store.take_error().is_none());
}

// ---- End to end: an interrupted download resumed through the engine. ----

const KEY: PeerKey = 7;

fn session(meta: &Metainfo, id: u8, store: Box<dyn PieceStore>, have: Bitfield) -> Session {
    Session::new(
        meta.clone(),
        PeerId([id; 20]),
        store,
        have,
        Config::default(),
        u64::from(id),
    )
}

/// Moves bytes both ways until `stop` holds for the leecher or nothing moves.
fn pump(
    seed: &mut Session,
    leech: &mut Session,
    key: PeerKey,
    now: &mut u64,
    stop: impl Fn(&Session) -> bool,
) {
    for _ in 0..100_000 {
        let mut moved = false;
        for dir in 0..2 {
            let (from, to) = if dir == 0 {
                (&mut *seed, &mut *leech)
            } else {
                (&mut *leech, &mut *seed)
            };
            // Small writes, so stopping half way is not decided by one huge batch.
            if let Some(bytes) = from.transmit(key, 20_000, *now) {
                moved = true;
                to.peer_data(key, &bytes, *now);
            }
        }
        for s in [&mut *seed, &mut *leech] {
            s.fill_all_requests(*now);
            while s.poll_event().is_some() {}
        }
        *now += 10;
        if stop(leech) || !moved {
            return;
        }
    }
    panic!("still moving");
}

#[test]
fn interrupted_download_resumes_from_disk() {
    let t = Torrent::new(
        &[("a", 100_000), ("empty", 0), ("b", 7), ("c", 150_001)],
        16 * 1024,
    );
    let n = t.n();
    let seed_dir = TempDir::new("e2e-seed");
    let leech_dir = TempDir::new("e2e-leech");
    t.write_files(seed_dir.path());
    let (seed_store, seed_have) = FileStore::open_verify(seed_dir.path(), &t.meta).unwrap();
    assert!(seed_have.is_complete());
    let mut seed = session(&t.meta, 1, Box::new(seed_store), seed_have);
    let mut now = 1_000;

    // First run: stop once half the pieces are in.
    let (store, have) = FileStore::open(leech_dir.path(), &t.meta).unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut leech = session(&t.meta, 2, Box::new(store.clone()), have);
    seed.peer_connected(KEY, now);
    leech.peer_connected(KEY, now);
    pump(&mut seed, &mut leech, KEY, &mut now, |l| {
        l.have().count() * 2 >= n as usize
    });
    let had = leech.have().clone();
    assert!(
        had.count() * 2 >= n as usize && !had.is_complete(),
        "{had:?}"
    );
    assert!(store.lock().unwrap().take_error().is_none());
    drop(leech);
    drop(store);
    seed.peer_closed(KEY);

    // Second run: resume from what is on disk.
    let (store, have) = FileStore::open(leech_dir.path(), &t.meta).unwrap();
    assert_eq!(have, had);
    let missing: u64 = (0..n)
        .filter(|&i| !have.get(i as usize))
        .map(|i| u64::from(t.meta.info.piece_len(i)))
        .sum();
    let store = Arc::new(Mutex::new(store));
    let mut leech = session(&t.meta, 3, Box::new(store.clone()), have);
    seed.peer_connected(KEY + 1, now);
    leech.peer_connected(KEY + 1, now);
    pump(
        &mut seed,
        &mut leech,
        KEY + 1,
        &mut now,
        Session::is_complete,
    );
    assert!(leech.is_complete());
    assert!(
        leech.downloaded() <= missing + u64::from(t.meta.info.piece_length),
        "downloaded {} for {missing} missing bytes",
        leech.downloaded()
    );
    assert!(store.lock().unwrap().take_error().is_none());
    t.assert_files(leech_dir.path());
    assert!(store.lock().unwrap().recheck().unwrap().is_complete());
    drop(leech);
    drop(store);
    let (_, have) = FileStore::open(leech_dir.path(), &t.meta).unwrap();
    assert!(have.is_complete());
}
