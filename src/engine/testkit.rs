//! Fixtures shared by the engine's unit tests: deterministic file contents and torrents made of
//! them. Test-only; nothing here is compiled into the library.

use super::{Config, Session};
use crate::bitfield::Bitfield;
use crate::create::{create_torrent, CreateOptions};
use crate::id::PeerId;
use crate::metainfo::Metainfo;
use crate::store::MemoryStore;

/// `len` bytes that differ with `seed` and never repeat within a piece.
pub(super) fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize * 7) % 251) as u8)
        .collect()
}

/// A torrent named `name` of `files` (path with `/` for folders, length; one entry makes a
/// single-file torrent), and each file's bytes.
pub(super) fn torrent_files(
    name: &str,
    files: &[(&str, usize)],
    piece_length: u32,
) -> (Metainfo, Vec<Vec<u8>>) {
    let contents: Vec<Vec<u8>> = files
        .iter()
        .enumerate()
        .map(|(i, (_, n))| data(*n, i as u8))
        .collect();
    let refs: Vec<(Vec<String>, &[u8])> = files
        .iter()
        .zip(&contents)
        .map(|((p, _), d)| (p.split('/').map(String::from).collect(), d.as_slice()))
        .collect();
    let opts = CreateOptions {
        name: Some(name.into()),
        piece_length: Some(piece_length),
        ..Default::default()
    };
    (create_torrent(&refs, opts).unwrap(), contents)
}

/// A session that holds every piece of `all`, with peer id and RNG seed from `id`.
pub(super) fn seeder(meta: &Metainfo, all: &[u8], id: u8) -> Session {
    let store = MemoryStore::from_bytes(all, meta.info.piece_length);
    let have = Bitfield::full(meta.info.num_pieces() as usize);
    Session::new(
        meta.clone(),
        PeerId([id; 20]),
        Box::new(store),
        have,
        Config::default(),
        id as u64,
    )
}

/// A session that knows the torrent and holds nothing yet.
pub(super) fn leecher(meta: &Metainfo, id: u8) -> Session {
    let store = MemoryStore::new(meta.info.num_pieces(), meta.info.piece_length);
    let have = Bitfield::new(meta.info.num_pieces() as usize);
    Session::new(
        meta.clone(),
        PeerId([id; 20]),
        Box::new(store),
        have,
        Config::default(),
        id as u64,
    )
}
