//! Fixtures shared by the engine's integration tests (`wire_behaviour`, `hostile_peers`):
//! deterministic file bytes, a torrent of them, and seeder, leecher and magnet-link sessions with
//! memory stores. Test support only: nothing here may decide what a test checks.
#![allow(dead_code)] // each test file uses its own subset

pub mod http;

use seedtab::bitfield::Bitfield;
use seedtab::create::{create_torrent, CreateOptions};
use seedtab::engine::{Config, Session};
use seedtab::id::{InfoHash, PeerId};
use seedtab::metainfo::Metainfo;
use seedtab::store::{MemoryStore, PieceStore};

pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

pub fn torrent(len: usize, piece_length: u32) -> (Metainfo, Vec<u8>) {
    let all = data(len);
    let meta = create_torrent(
        &[(vec!["wire.bin".to_string()], all.as_slice())],
        CreateOptions {
            piece_length: Some(piece_length),
            ..Default::default()
        },
    )
    .unwrap();
    (meta, all)
}

pub fn seeder(meta: &Metainfo, all: &[u8]) -> Session {
    Session::new(
        meta.clone(),
        PeerId([1; 20]),
        Box::new(MemoryStore::from_bytes(all, meta.info.piece_length)),
        Bitfield::full(meta.info.num_pieces() as usize),
        Config::default(),
        1,
    )
}

pub fn leecher(meta: &Metainfo) -> Session {
    Session::new(
        meta.clone(),
        PeerId([2; 20]),
        Box::new(MemoryStore::new(
            meta.info.num_pieces(),
            meta.info.piece_length,
        )),
        Bitfield::new(meta.info.num_pieces() as usize),
        Config::default(),
        2,
    )
}

pub fn magnet_leecher(info_hash: InfoHash) -> Session {
    Session::from_info_hash(
        info_hash,
        PeerId([2; 20]),
        Box::new(|m: &Metainfo| {
            Box::new(MemoryStore::new(m.info.num_pieces(), m.info.piece_length))
                as Box<dyn PieceStore>
        }),
        Config::default(),
        2,
    )
}
