#![cfg(not(target_arch = "wasm32"))]
//! Compatibility with WebTorrent's torrent creator: the `.torrent` files in
//! `tests/vectors/torrents/` were made by create-torrent 6.1.3 (`tests/vectors/make-vectors.mjs`).
//! Each must parse to the values recorded in `expected.json`, and re-creating it from the same
//! content with `create_torrent` must give byte-identical info dicts (so the same info-hash).

use std::path::PathBuf;

use serde_json::Value as Json;
use sha1::{Digest, Sha1};

use seedtab::create::{create_torrent, piece_length_for, CreateOptions};
use seedtab::magnet::Magnet;
use seedtab::metainfo::Metainfo;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/torrents")
}

fn expected() -> Json {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The content every vector uses: byte i of the concatenated stream is (i*31+7) % 251.
fn stream(start: u64, len: u64) -> Vec<u8> {
    (start..start + len)
        .map(|i| ((i * 31 + 7) % 251) as u8)
        .collect()
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn opt_str(v: &Json) -> Option<String> {
    v.as_str().map(String::from)
}

fn vectors() -> Vec<Json> {
    expected()["vectors"].as_array().unwrap().clone()
}

#[test]
fn there_are_vectors_for_every_case() {
    let files: Vec<String> = vectors()
        .iter()
        .map(|v| v["file"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "single.torrent",
        "multi.torrent",
        "small-default.torrent",
        "trackers-private.torrent",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing");
    }
}

#[test]
fn parses_create_torrent_output() {
    for v in vectors() {
        let file = v["file"].as_str().unwrap();
        let bytes = std::fs::read(dir().join(file)).unwrap();
        let m = Metainfo::from_torrent_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let info = &m.info;
        assert_eq!(m.info_hash.to_hex(), v["info_hash"], "{file}");
        assert_eq!(info.name, v["name"], "{file}");
        assert_eq!(
            u64::from(info.piece_length),
            v["piece_length"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            u64::from(info.num_pieces()),
            v["num_pieces"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            info.total_length,
            v["total_length"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(info.private, v["private"].as_bool().unwrap(), "{file}");
        assert_eq!(
            info.multi_file,
            v["multi_file"].as_bool().unwrap(),
            "{file}"
        );
        let last = info.num_pieces() - 1;
        assert_eq!(
            u64::from(info.piece_len(last)),
            v["last_piece_length"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            seedtab::id::to_hex(info.piece_hash(0).unwrap()),
            v["first_piece_hash"],
            "{file}"
        );
        assert_eq!(
            seedtab::id::to_hex(info.piece_hash(last).unwrap()),
            v["last_piece_hash"],
            "{file}"
        );

        let files = v["files"].as_array().unwrap();
        assert_eq!(info.files.len(), files.len(), "{file}");
        for (ours, theirs) in info.files.iter().zip(files) {
            assert_eq!(ours.path, strings(&theirs["path"]), "{file}");
            assert_eq!(ours.length, theirs["length"].as_u64().unwrap(), "{file}");
            assert_eq!(ours.offset, theirs["offset"].as_u64().unwrap(), "{file}");
        }
        assert_eq!(m.trackers(), strings(&v["trackers"]), "{file}");
        assert_eq!(m.url_list, strings(&v["url_list"]), "{file}");
        let opts = &v["options"];
        assert_eq!(m.comment, opt_str(&opts["comment"]), "{file}");
        assert_eq!(m.creation_date, opts["creation_date"].as_i64(), "{file}");
        if let Some(by) = opts["created_by"].as_str() {
            assert_eq!(m.created_by.as_deref(), Some(by), "{file}");
        }

        // What we write back keeps the info dict, and so the hash.
        let again = Metainfo::from_torrent_bytes(&m.to_torrent_bytes()).unwrap();
        assert_eq!(again.info_bytes, m.info_bytes, "{file}");
        assert_eq!(again.trackers(), m.trackers(), "{file}");
        let from_info = Metainfo::from_info_bytes(m.info_bytes.clone()).unwrap();
        assert_eq!(from_info.info_hash, m.info_hash, "{file}");
        let magnet = Magnet::parse(&m.magnet().to_uri()).unwrap();
        assert_eq!(magnet.info_hash, m.info_hash, "{file}");
        assert_eq!(magnet.name.as_deref(), Some(info.name.as_str()), "{file}");
    }
}

#[test]
fn recreating_gives_the_same_info_hash() {
    for v in vectors() {
        let file = v["file"].as_str().unwrap();
        let original =
            Metainfo::from_torrent_bytes(&std::fs::read(dir().join(file)).unwrap()).unwrap();

        let mut offset = 0;
        let mut inputs: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
        for f in v["input_files"].as_array().unwrap() {
            let len = f["length"].as_u64().unwrap();
            inputs.push((strings(&f["path"]), stream(offset, len)));
            offset += len;
        }
        let opts = &v["options"];
        let announce_list: Vec<Vec<String>> = opts["announce_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        let created = create_torrent(
            &inputs
                .iter()
                .map(|(p, d)| (p.clone(), d.as_slice()))
                .collect::<Vec<_>>(),
            CreateOptions {
                name: opt_str(&opts["name"]),
                piece_length: opts["piece_length"].as_u64().map(|p| p as u32),
                announce_list,
                url_list: strings(&opts["url_list"]),
                private: opts["private"].as_bool().unwrap(),
                comment: opt_str(&opts["comment"]),
                created_by: opt_str(&opts["created_by"]),
                creation_date: opts["creation_date"].as_i64(),
            },
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));

        assert_eq!(created.info_hash, original.info_hash, "{file}");
        assert_eq!(created.info_bytes, original.info_bytes, "{file}");
        assert_eq!(created.info, original.info, "{file}");
        assert_eq!(created.trackers(), original.trackers(), "{file}");
        assert_eq!(created.url_list, original.url_list, "{file}");

        // Every piece hash checks against the regenerated content.
        let all: Vec<u8> = inputs.into_iter().flat_map(|(_, d)| d).collect();
        for i in 0..created.info.num_pieces() {
            let start = created.info.piece_offset(i) as usize;
            let end = start + created.info.piece_len(i) as usize;
            let hash: [u8; 20] = Sha1::digest(&all[start..end]).into();
            assert_eq!(created.info.piece_hash(i), Some(&hash), "{file} piece {i}");
        }
    }
}

#[test]
fn default_piece_length_matches_create_torrent() {
    let table = expected()["default_piece_lengths"]
        .as_array()
        .unwrap()
        .clone();
    assert!(table.len() > 100);
    for row in table {
        let total = row[0].as_u64().unwrap();
        let expected = row[1].as_u64().unwrap();
        assert_eq!(
            u64::from(piece_length_for(total)),
            expected,
            "total {total}"
        );
    }
}
