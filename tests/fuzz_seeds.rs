#![cfg(not(target_arch = "wasm32"))]
//! The fuzz targets' properties on stable Rust, in every `cargo test`: each target's check
//! (`seedtab::fuzzing`, the same function its `fuzz/fuzz_targets/NAME.rs` calls) runs over every
//! committed seed in `fuzz/seeds/NAME/` and every crash regression in `fuzz/regressions/NAME/`,
//! then over a bounded, seeded set of mutations of those seeds. The fuzzer searches far longer;
//! this keeps what it has checked checked, without nightly.
//!
//! The seeds are written by `regenerate_seeds` below from the test vectors and hand-written
//! examples. After changing it: `cargo test --test fuzz_seeds -- --ignored regenerate_seeds`.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use seedtab::bencode::{self, Value};
use seedtab::fuzzing::{Check, TARGETS};
use seedtab::id::{InfoHash, PeerId};
use seedtab::metainfo::Metainfo;
use seedtab::receipt;
use seedtab::rng::Rng;
use seedtab::signal::client::{announce_json, answer_json, scrape_json, AnnounceEvent, OfferOut};
use seedtab::signal::{msg, ws_frame};
use seedtab::wire::{
    BlockRef, ExtendedHandshake, Handshake, Message, MetadataMsg, RewardFields, HANDSHAKE_LEN,
};

/// Per target: at most this many seed files, of at most this many bytes together.
const MAX_SEEDS: usize = 50;
const MAX_SEED_BYTES: u64 = 100 * 1024;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of one directory, by name; none if it does not exist.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("readable seed"))
        })
        .collect();
    out.sort();
    out
}

/// Runs `check` on each input, collecting failures instead of stopping at the first.
fn replay(target: &str, check: Check, inputs: &[(String, Vec<u8>)], failures: &mut Vec<String>) {
    for (name, bytes) in inputs {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{target}/{name}: {msg}"));
        }
    }
}

#[test]
fn every_seed_and_regression_passes_its_target() {
    let mut failures = Vec::new();
    for &(target, check) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
        assert!(
            seeds.len() <= MAX_SEEDS,
            "fuzz/seeds/{target}/: {} files",
            seeds.len()
        );
        let size: u64 = seeds.iter().map(|s| s.1.len() as u64).sum();
        assert!(size <= MAX_SEED_BYTES, "fuzz/seeds/{target}/: {size} bytes");
        replay(target, check, &seeds, &mut failures);
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        replay(target, check, &regressions, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mutated_seeds_pass_their_target() {
    // A few cheap mutations per seed (flip, insert, delete, truncate): not a fuzzer, but it keeps
    // the checks exercised beyond the exact seeds on every run.
    let mut rng = Rng::new(0x5eed);
    let mut failures = Vec::new();
    for &(target, check) in TARGETS {
        let mut inputs = Vec::new();
        for (name, seed) in files(&fuzz_dir().join("seeds").join(target)) {
            for i in 0..24 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(m.len() as u64 + 1) as usize;
                    match rng.below(4) {
                        0 if at < m.len() => m[at] ^= 1 << rng.below(8),
                        1 => m.insert(at, rng.below(256) as u8),
                        2 if at < m.len() => {
                            m.remove(at);
                        }
                        _ => m.truncate(at),
                    }
                }
                inputs.push((format!("{name} mutation {i}: {}", hex(&m)), m));
            }
        }
        replay(target, check, &inputs, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn hex(b: &[u8]) -> String {
    if b.len() > 256 {
        return format!("({} bytes)", b.len());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn targets_match_the_fuzz_package() {
    let names: BTreeSet<&str> = TARGETS.iter().map(|t| t.0).collect();
    assert_eq!(names.len(), TARGETS.len(), "duplicate target");
    let on_disk: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        names,
        "fuzz/fuzz_targets/*.rs and seedtab::fuzzing::TARGETS differ"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &names {
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("seedtab::fuzzing::{name}(")),
            "fuzz/fuzz_targets/{name}.rs does not call seedtab::fuzzing::{name}"
        );
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
    for dir in ["seeds", "regressions"] {
        for e in std::fs::read_dir(fuzz_dir().join(dir))
            .into_iter()
            .flatten()
        {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(name.as_str()),
                "fuzz/{dir}/{name}: no such target"
            );
        }
    }
}

// ---- seed generation ----------------------------------------------------------------------------

/// Named inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;
type Generator = fn() -> Seeds;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

const TORRENTS: &[&str] = &[
    "single",
    "multi",
    "no-common-prefix",
    "small-default",
    "trackers-private",
    "medium-default",
];

fn torrent(name: &str) -> Vec<u8> {
    std::fs::read(vectors_dir().join(format!("torrents/{name}.torrent"))).unwrap()
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A copy of `single.torrent` with its info dict changed by `f` (invalid metainfo seeds).
fn single_info_with(f: impl FnOnce(&mut std::collections::BTreeMap<Vec<u8>, Value>)) -> Vec<u8> {
    let Value::Dict(mut root) = bencode::decode(&torrent("single")).unwrap() else {
        unreachable!()
    };
    let Some(Value::Dict(info)) = root.get_mut(&b"info"[..]) else {
        unreachable!()
    };
    f(info);
    Value::Dict(root).encode()
}

fn seeds_bencode() -> Seeds {
    let mut out: Vec<(String, Vec<u8>)> = [
        ("int", "i42e"),
        ("int-negative", "i-42e"),
        ("int-zero", "i0e"),
        ("int-max", "i9223372036854775807e"),
        ("int-min", "i-9223372036854775808e"),
        ("string", "4:spam"),
        ("string-empty", "0:"),
        ("list", "l4:spami1ee"),
        ("dict", "d3:cow3:moo4:spamle1:xdee"),
        ("dict-unsorted", "d1:bi2e1:ai1ee"),
        ("nested-6", "llllllee"),
        ("nested-7", "lllllllee"),
        ("many-tokens", "li1ei2ei3ei4ei5ei6ei7ei8ei9ei10ei11ei12ei13ei14ei15ei16ei17ei18ei19ei20ei21ei22ei23ei24ei25ei26ei27ei28ei29ei30ei31ei32ei33ei34ei35ei36ei37ei38ei39ei40ei41ei42ei43ei44ei45ei46ei47ei48ei49ei50ei51ei52ei53ei54ei55ei56ei57ei58ei59ei60ei61ei62ei63ei64ee"),
        ("bad-int-overflow", "i9223372036854775808e"),
        ("bad-int-empty", "ie"),
        ("bad-int-negative-zero", "i-0e"),
        ("bad-int-leading-zero", "i03e"),
        ("bad-string-leading-zero", "03:abc"),
        ("bad-string-negative", "-3:abc"),
        ("bad-string-short", "5:abc"),
        ("bad-key-not-string", "di1e1:ae"),
        ("bad-key-duplicate", "d1:ai1e1:ai2ee"),
        ("bad-missing-value", "d1:ae"),
        ("bad-trailing", "i1ei2e"),
        ("bad-unclosed", "l4:spam"),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), b(s)))
    .collect();
    out.push(("long-string".into(), [b("300:"), vec![b'x'; 300]].concat()));
    for name in ["single", "multi", "trackers-private"] {
        out.push((format!("torrent-{name}"), torrent(name)));
    }
    out.push((
        "ext-handshake".into(),
        ExtendedHandshake::with_ut_metadata(Some(700)).encode(),
    ));
    out
}

fn seeds_metainfo() -> Seeds {
    let mut out = Vec::new();
    for name in TORRENTS {
        let t = torrent(name);
        let info = bencode::raw_dict_value(&t, b"info", &Default::default())
            .unwrap()
            .unwrap()
            .to_vec();
        out.push((format!("info-{name}"), info));
        out.push((format!("torrent-{name}"), t));
    }
    let m = Metainfo::from_torrent_bytes(&torrent("multi")).unwrap();
    out.push(("torrent-multi-reencoded".into(), m.to_torrent_bytes()));
    let int = |n: i64| Value::Int(n);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (
            "bad-no-pieces",
            single_info_with(|i| {
                i.remove(&b"pieces"[..]);
            }),
        ),
        (
            "bad-piece-count",
            single_info_with(|i| {
                i.insert(b"length".to_vec(), int(1 << 30));
            }),
        ),
        (
            "bad-negative-length",
            single_info_with(|i| {
                i.insert(b"length".to_vec(), int(-1));
            }),
        ),
        (
            "bad-zero-length",
            single_info_with(|i| {
                i.insert(b"length".to_vec(), int(0));
            }),
        ),
        (
            "bad-piece-length-zero",
            single_info_with(|i| {
                i.insert(b"piece length".to_vec(), int(0));
            }),
        ),
        (
            "bad-name-dotdot",
            single_info_with(|i| {
                i.insert(b"name".to_vec(), Value::bytes(".."));
            }),
        ),
        (
            "bad-name-slash",
            single_info_with(|i| {
                i.insert(b"name".to_vec(), Value::bytes("a/b"));
            }),
        ),
        (
            "bad-both-length-and-files",
            single_info_with(|i| {
                i.insert(b"files".to_vec(), Value::list([]));
            }),
        ),
        (
            "name-utf8-variant",
            single_info_with(|i| {
                i.insert(b"name.utf-8".to_vec(), Value::bytes("caf\u{e9}"));
            }),
        ),
        ("bad-info-not-dict", b("d4:infoi1ee")),
        ("bad-root-list", b("l4:infoe")),
        ("bad-no-info", b("d8:announce3:urle")),
    ];
    out.extend(bad.into_iter().map(|(n, v)| (n.to_string(), v)));
    // Multi-file edge cases, built from scratch: a path conflict, padding files, an unsafe path.
    let multi = |files: Vec<(Vec<&str>, i64, Option<&str>)>| {
        let total: i64 = files.iter().map(|f| f.1).sum();
        let list = files.into_iter().map(|(path, len, attr)| {
            Value::dict()
                .int("length", len)
                .insert("path", Value::list(path.into_iter().map(Value::from)))
                .insert_opt("attr", attr)
                .build()
        });
        Value::dict()
            .bytes("name", "dir")
            .int("piece length", 16)
            .bytes("pieces", vec![7u8; (total as usize).div_ceil(16) * 20])
            .insert("files", Value::list(list))
            .build()
            .encode()
    };
    out.push((
        "info-multi-padding".into(),
        multi(vec![
            (vec!["a"], 10, None),
            (vec![".pad", "6"], 6, Some("p")),
            (vec!["b", "c"], 20, None),
            (vec![".pad", "6"], 6, Some("p")),
            (vec!["empty"], 0, None),
        ]),
    ));
    out.push((
        "bad-path-conflict".into(),
        multi(vec![(vec!["a"], 10, None), (vec!["a", "b"], 10, None)]),
    ));
    out.push((
        "bad-path-duplicate".into(),
        multi(vec![(vec!["a"], 10, None), (vec!["a"], 10, None)]),
    ));
    out.push((
        "bad-path-drive".into(),
        multi(vec![(vec!["C:", "x"], 10, None)]),
    ));
    out
}

fn seeds_magnet() -> Seeds {
    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let mut out: Vec<(String, String)> = vec![
        ("webtorrent".into(), format!("magnet:?xt=urn:btih:{HEX}&dn=Big+Buck+Bunny&tr=udp%3A%2F%2Fexplodie.org%3A6969&tr=wss%3A%2F%2Ftracker.btorrent.xyz&ws=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2F")),
        ("base32".into(), "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK".into()),
        ("upper-scheme-xl-as".into(), format!("  MAGNET:?xt=URN:BTIH:{}&xl=12345&as=http://a/&tr=x&tr=x  ", HEX.to_uppercase())),
        ("two-xt".into(), format!("magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:{HEX}&xt=urn:btih:zz")),
        ("reserved-chars".into(), format!("magnet:?xt=urn:btih:{HEX}&dn=a%26b%3Dc%25+%2B%C3%A9%FF&tr=wss%3A%2F%2Fx%3Fa%3D1%26b")),
        ("unknown-params".into(), format!("magnet:?foo&xt=urn:btih:{HEX}&=x&kt=a+b&x.pe=1.2.3.4:5")),
        ("bad-hash-char".into(), "magnet:?xt=urn:btih:g12fe1c06bba254a9dc9f519b335aa7c1367a88a".into()),
        ("bad-hash-multibyte".into(), "magnet:?xt=urn:btih:\u{e9}12fe1c06bba254a9dc9f519b335aa7c1367a88".into()),
        ("bad-hash-length".into(), "magnet:?xt=urn:btih:c12fe1c0".into()),
        ("bad-base32-char".into(), "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1".into()),
        ("bad-escape".into(), format!("magnet:?xt=urn:btih:{HEX}&dn=%G1")),
        ("bad-escape-end".into(), format!("magnet:?xt=urn:btih:{HEX}&tr=%")),
        ("bad-xl".into(), format!("magnet:?xt=urn:btih:{HEX}&xl=-1")),
        ("no-hash".into(), "magnet:?dn=x".into()),
        ("not-magnet".into(), "http://example.com/x.torrent".into()),
    ];
    for name in TORRENTS.iter().take(5) {
        let m = Metainfo::from_torrent_bytes(&torrent(name)).unwrap();
        out.push((format!("from-{name}"), m.magnet().to_uri()));
    }
    out.into_iter().map(|(n, s)| (n, s.into_bytes())).collect()
}

fn stream_handshake() -> Handshake {
    Handshake::new(InfoHash([0x9f; 20]), PeerId(*b"-WW0300-0123456789ab"))
}

fn every_message() -> Vec<Message> {
    let r = BlockRef {
        index: 1,
        begin: 16384,
        length: 16384,
    };
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(7),
        Message::Bitfield(vec![0xff, 0x80]),
        Message::Request(r),
        Message::Piece {
            index: 1,
            begin: 0,
            data: (0..40).collect(),
        },
        Message::Cancel(r),
        Message::Port(6881),
        Message::Suggest(3),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(r),
        Message::AllowedFast(9),
        Message::Extended {
            id: 0,
            payload: b"d1:md11:ut_metadatai3ee13:metadata_sizei700ee".to_vec(),
        },
        Message::Extended {
            id: 1,
            payload: MetadataMsg::Request { piece: 0 }.encode(),
        },
    ]
}

/// `wire_decoder`'s input: limit byte, flags, chunk sizes, stream.
fn decoder_input(limit: u8, after_handshake: bool, sizes: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut v = vec![limit, u8::from(after_handshake), sizes.len() as u8];
    v.extend_from_slice(sizes);
    v.extend_from_slice(stream);
    v
}

fn seeds_wire_decoder() -> Seeds {
    let recorded = std::fs::read(vectors_dir().join("wire/stream1.bin")).unwrap();
    let mut all = stream_handshake().encode().to_vec();
    for m in every_message() {
        m.encode(&mut all);
    }
    let body = &all[HANDSHAKE_LEN..];
    let mut unknown = stream_handshake().encode().to_vec();
    unknown.extend_from_slice(&[0, 0, 0, 4, 0x55, 1, 2, 3, 0, 0, 0, 1, 0x0A]);
    Message::Have(2).encode(&mut unknown);
    let mut bad_len = stream_handshake().encode().to_vec();
    bad_len.extend_from_slice(&[0, 0, 0, 2, 1, 0]);
    let mut too_long = stream_handshake().encode().to_vec();
    too_long.extend_from_slice(&[0, 0, 0, 100, 5]);
    // 16 KiB blocks need a limit of at least 16,393: 128 + 65 is 65 × 256 = 16,640.
    vec![
        (
            "recorded-whole".into(),
            decoder_input(128 + 65, false, &[], &recorded),
        ),
        (
            "recorded-split".into(),
            decoder_input(128 + 65, false, &[1, 19, 47, 200, 3, 255, 0, 90], &recorded),
        ),
        (
            "recorded-small-limit".into(),
            decoder_input(100, false, &[68, 4], &recorded[..2000]),
        ),
        ("every-message".into(), decoder_input(127, false, &[], &all)),
        (
            "every-message-split".into(),
            decoder_input(127, false, &[5, 5, 5, 64, 3, 1, 2, 30, 7], &all),
        ),
        (
            "every-message-after-handshake".into(),
            decoder_input(127, true, &[9, 9], body),
        ),
        (
            "unknown-ids".into(),
            decoder_input(64, false, &[70], &unknown),
        ),
        ("bad-length".into(), decoder_input(64, false, &[], &bad_len)),
        (
            "too-long".into(),
            decoder_input(50, false, &[72], &too_long),
        ),
        (
            "bad-protocol".into(),
            decoder_input(64, false, &[3], b"GET / HTTP/1.1\r\n\r\n"),
        ),
        (
            "partial-handshake".into(),
            decoder_input(0, false, &[10], &all[..40]),
        ),
        (
            "keepalives-limit-0".into(),
            decoder_input(0, true, &[2], &[0; 16]),
        ),
    ]
}

fn seeds_wire_message() -> Seeds {
    let mut out = Vec::new();
    for (i, m) in every_message().into_iter().enumerate() {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        let kind: String = format!("{m:?}")
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let name = format!("{i:02}-{kind}");
        out.push((name, bytes[4..].to_vec()));
    }
    let reward = ExtendedHandshake {
        reward: Some(RewardFields {
            key: [0xee; 32],
            session: [0x5a; 16],
        }),
        ..ExtendedHandshake::with_ut_metadata(Some(31_337))
    };
    let mut ext = vec![20, 0];
    ext.extend_from_slice(&reward.encode());
    out.push(("extended-reward-handshake".into(), ext));
    let mut data = vec![20, 1];
    data.extend_from_slice(
        &MetadataMsg::Data {
            piece: 0,
            total_size: 5,
            data: b"d1:ae".to_vec(),
        }
        .encode(),
    );
    out.push(("extended-metadata-data".into(), data));
    for (name, bytes) in [
        ("bad-have-short", vec![4, 0, 0, 1]),
        ("bad-unchoke-payload", vec![1, 0]),
        ("bad-piece-short", vec![7, 0, 0, 0, 1, 0, 0]),
        ("bad-extended-empty", vec![20]),
        ("bad-port-long", vec![9, 0x1a, 0xe1, 0]),
        ("unknown-id", vec![0x55, 1, 2, 3]),
    ] {
        out.push((name.into(), bytes));
    }
    out.push(("handshake".into(), stream_handshake().encode().to_vec()));
    let mut hs_more = stream_handshake().encode().to_vec();
    hs_more[25] = 0;
    hs_more.extend_from_slice(&[0, 0, 0, 1, 2]);
    out.push(("handshake-plus-message".into(), hs_more));
    let mut bad_hs = stream_handshake().encode().to_vec();
    bad_hs[1] = b'b';
    out.push(("bad-handshake".into(), bad_hs));
    out
}

fn seeds_ext_handshake() -> Seeds {
    let mut full = ExtendedHandshake {
        metadata_size: Some(0),
        v: Some("\u{b5}Torrent 3.5".into()),
        reqq: Some(u32::MAX),
        p: Some(65535),
        reward: Some(RewardFields {
            key: [0xee; 32],
            session: [0x5a; 16],
        }),
        ..Default::default()
    };
    full.m.insert("ut_pex".into(), 2);
    full.m.insert(receipt::ext::EXT_NAME.into(), 7);
    full.m.insert("ut_metadata".into(), 255);
    let mut no_sid = full.clone();
    no_sid.reward = None;
    let no_sid = [
        &no_sid.encode()[..no_sid.encode().len() - 1],
        b"11:seedtab_key32:0123456789abcdef0123456789abcdefe",
    ]
    .concat();
    vec![
        ("ours".into(), ExtendedHandshake::with_ut_metadata(Some(31_337)).encode()),
        ("ours-no-size".into(), ExtendedHandshake::with_ut_metadata(None).encode()),
        ("every-field".into(), full.encode()),
        ("key-without-session".into(), no_sid),
        ("webtorrent".into(), b("d1:md11:ut_metadatai3ee13:metadata_sizei16384ee")),
        ("recorded-peer".into(), b("d1:md11:ut_metadatai3e6:ut_pexi2ee13:metadata_sizei700e1:v14:WebTorrent 3.0e")),
        ("wrong-types".into(), b"d1:md1:ai0e1:bi256e1:ci-1e1:d1:x1:ei9e2:\xff\xfei4ee13:metadata_sizei-5e1:pi70000e4:reqq1:51:vi3ee".to_vec()),
        ("port-zero".into(), b("d1:mde1:pi0ee")),
        ("no-m".into(), b("d4:reqqi5ee")),
        ("trailing-junk".into(), b("d1:mdeeJUNK")),
        ("empty".into(), b("d1:mdee")),
        ("bad-list".into(), b("li1ee")),
        ("bad-truncated".into(), b("d1:m")),
        ("bad-deep".into(), [b("d1:m"), vec![b'l'; 10], vec![b'e'; 11]].concat()),
    ]
}

fn seeds_ut_metadata() -> Seeds {
    let data = |piece, total_size, len: usize| {
        MetadataMsg::Data {
            piece,
            total_size,
            data: vec![b'x'; len],
        }
        .encode()
    };
    // Assembler scripts: 4-byte claimed size, then (op, piece, length mode, [arg], fill) steps.
    let script = |size: u32, ops: &[u8]| [size.to_be_bytes().as_slice(), ops].concat();
    vec![
        ("request".into(), MetadataMsg::Request { piece: 0 }.encode()),
        (
            "request-max".into(),
            MetadataMsg::Request { piece: u32::MAX }.encode(),
        ),
        ("reject".into(), MetadataMsg::Reject { piece: 3 }.encode()),
        ("data".into(), data(1, 20_000, 3616)),
        ("data-full-piece".into(), data(0, 40_000, 16384)),
        ("bad-data-too-long".into(), data(0, 40_000, 16385)),
        ("data-total-huge".into(), data(0, u64::MAX, 10)),
        ("unknown-type".into(), b("d8:msg_typei3e5:piecei0ee")),
        ("bad-no-piece".into(), b("d8:msg_typei0ee")),
        ("bad-negative-piece".into(), b("d8:msg_typei0e5:piecei-1ee")),
        ("bad-data-no-size".into(), b("d8:msg_typei1e5:piecei0eeXYZ")),
        ("bad-not-dict".into(), b("i1e")),
        (
            "extra-keys".into(),
            b("d8:msg_typei1e5:piecei0e10:total_sizei3e1:zi0eeabc"),
        ),
        // One piece of 100 bytes: insert, finish right.
        ("script-one-piece".into(), script(100, &[0, 0, 0, 7, 2, 1])),
        // 40,000 bytes: three pieces, a wrong size, an index past the end, a finish with the
        // wrong hash, then all pieces again and the right one.
        (
            "script-three-pieces".into(),
            script(
                40_000,
                &[
                    0, 0, 0, 1, 0, 1, 0, 2, 0, 2, 200, 3, 0, 255, 0, 4, 1, 2, 0, 5, 2, 0, 0, 0, 6,
                    0, 1, 1, 6, 0, 2, 1, 6, 2, 1,
                ],
            ),
        ),
        (
            "script-reset".into(),
            script(16_385, &[0, 0, 0, 1, 3, 0, 1, 0, 1, 3, 0, 1, 1, 2, 2, 1]),
        ),
        ("script-size-zero".into(), script(0, &[0, 0, 0, 1])),
        (
            "script-size-over-cap".into(),
            script(8 * 1024 * 1024 + 1, &[0, 0, 3, 0x40, 0x00, 9]),
        ),
        (
            "script-size-cap".into(),
            script(8 * 1024 * 1024, &[0, 0, 0, 1]),
        ),
    ]
}

fn seeds_receipt_decode() -> Seeds {
    let mut out = Vec::new();
    for file in ["valid", "invalid"] {
        let text =
            std::fs::read_to_string(vectors_dir().join(format!("receipts/{file}.json"))).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for v in json["vectors"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let bytes = unhex(v["encoded"].as_str().unwrap());
            out.push((format!("{file}-{name}"), bytes));
        }
    }
    // All valid ones, then invalid ones up to the cap (each invalid vector tests one refusal).
    out.truncate(MAX_SEEDS);
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// A peer id with latin-1 bytes JSON must escape or encode as two UTF-8 bytes.
fn pid(n: u8) -> PeerId {
    let mut p = [0x90u8; 20];
    p[0] = n;
    p[1] = b'"';
    p[2] = 0;
    p[3] = b'\\';
    PeerId(p)
}

fn seeds_tracker_client_msg() -> Seeds {
    let offers: Vec<OfferOut> = (0..3)
        .map(|i| OfferOut {
            offer_id: [i; 20],
            sdp: format!(
                "v=0\r\no=- {i} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            ),
        })
        .collect();
    let many: Vec<OfferOut> = (0..12)
        .map(|i| OfferOut {
            offer_id: [i; 20],
            sdp: "v=0".into(),
        })
        .collect();
    let ann = |event, offers: &[OfferOut]| {
        announce_json(&ih(1), &pid(2), event, 10, 20, Some(30), 5, offers)
    };
    let h = ih(1).to_latin1();
    let p = pid(2).to_latin1();
    let mut out: Vec<(String, String)> = vec![
        ("announce-started".into(), ann(AnnounceEvent::Started, &offers)),
        ("announce-update".into(), ann(AnnounceEvent::Update, &[])),
        ("announce-completed".into(), ann(AnnounceEvent::Completed, &[])),
        ("announce-stopped".into(), ann(AnnounceEvent::Stopped, &[])),
        ("announce-12-offers".into(), ann(AnnounceEvent::Started, &many)),
        ("announce-unknown-left".into(), announce_json(&ih(3), &pid(4), AnnounceEvent::Update, u64::MAX, 0, None, 500, &[])),
        ("answer".into(), answer_json(&ih(1), &pid(2), &pid(3), &[9; 20], "v=0\r\nanswer\r\n")),
        ("scrape-none".into(), scrape_json(&[])),
        ("scrape-one".into(), scrape_json(&[ih(1)])),
        ("scrape-two".into(), scrape_json(&[ih(1), ih(2)])),
        ("lenient-counts".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "event": "paused", "uploaded": 1.5, "downloaded": " 7 ", "left": null, "numwant": "1e3", "offers": null}).to_string()),
        ("offer-without-type".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "offers": [{"offer_id": h, "offer": {"sdp": "x"}}]}).to_string()),
        ("bad-offer-type".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "offers": [{"offer_id": h, "offer": {"type": "answer", "sdp": "x"}}]}).to_string()),
        ("bad-offers-not-list".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "offers": {}}).to_string()),
        ("bad-offer-id-short".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "offers": [{"offer_id": "short", "offer": {"sdp": "x"}}]}).to_string()),
        ("bad-answer-no-to".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "offer_id": h, "answer": {"type": "answer", "sdp": "x"}}).to_string()),
        ("bad-event".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": p, "event": "exploded"}).to_string()),
        ("bad-info-hash-wide-char".into(), serde_json::json!({"action": "announce", "info_hash": "\u{100}".repeat(20), "peer_id": p}).to_string()),
        ("bad-scrape-list-types".into(), serde_json::json!({"action": "scrape", "info_hash": [h, 1]}).to_string()),
        ("bad-action".into(), b_str(r#"{"action":"ping"}"#)),
        ("bad-no-action".into(), b_str(r#"{"info_hash":"x"}"#)),
        ("bad-not-object".into(), b_str("[1,2,3]")),
        ("bad-json".into(), b_str(r#"{"action":"announce","#)),
    ];
    let long_sdp = "s".repeat(msg::MAX_SDP_BYTES + 1);
    out.push((
        "bad-sdp-too-long".into(),
        answer_json(&ih(1), &pid(2), &pid(3), &[9; 20], &long_sdp),
    ));
    out.into_iter().map(|(n, s)| (n, s.into_bytes())).collect()
}

fn b_str(s: &str) -> String {
    s.to_string()
}

/// An SDP as the tracker relays it: the JSON literal a client sent.
fn sdp(literal: &str) -> msg::JsonStr<'_> {
    msg::JsonStr::new(literal).expect("not a JSON string literal")
}

fn seeds_tracker_server_msg() -> Seeds {
    let h = ih(1).to_latin1();
    let out: Vec<(String, String)> = vec![
        ("announce-reply".into(), msg::announce_reply_json(&ih(1), 120, 3, 4)),
        ("announce-reply-warning".into(), msg::announce_reply_warning_json(&ih(1), 120, 3, 4, "2 offers ignored")),
        ("offer".into(), msg::offer_relay_json(&ih(1), &pid(2), &[7; 20], sdp(r#""v=0\r\noffer\r\n""#))),
        ("answer".into(), msg::answer_relay_json(&ih(1), &pid(2), &[7; 20], sdp(r#""v=0\r\nanswer\r\n""#))),
        ("scrape".into(), msg::scrape_reply_json(&[(ih(1), 1, 2, 3), (ih(0xe9), 0, 0, 0)], 60)),
        ("failure".into(), msg::failure_json("bad", Some(msg::Action::Announce), Some(&ih(1)))),
        ("failure-bare".into(), msg::failure_json("invalid action", None, None)),
        ("failure-number".into(), b_str(r#"{"failure reason":42}"#)),
        ("warning-bare".into(), b_str(r#"{"warning message":"hello"}"#)),
        ("min-interval".into(), serde_json::json!({"action": "announce", "info_hash": h, "interval": 0, "min interval": 30.5, "complete": "2"}).to_string()),
        ("scrape-empty".into(), b_str(r#"{"action":"scrape","files":{}}"#)),
        ("scrape-null-counts".into(), serde_json::json!({"action": "scrape", "files": {h.clone(): {"complete": null, "downloaded": -1}}}).to_string()),
        ("bad-scrape-key".into(), b_str(r#"{"action":"scrape","files":{"short":{}}}"#)),
        ("bad-offer-no-sdp".into(), serde_json::json!({"action": "announce", "info_hash": h, "peer_id": h, "offer_id": h, "offer": {"type": "offer"}}).to_string()),
        ("bad-action".into(), b_str(r#"{"action":"ping"}"#)),
        ("bad-json".into(), b_str("{")),
    ];
    out.into_iter().map(|(n, s)| (n, s.into_bytes())).collect()
}

fn seeds_tracker_state() -> Seeds {
    // Ops (src/fuzzing.rs `tracker_state`): 0 announce (conn, event, hash, peer, left, numwant,
    // offers), 2 answer (conn, hash, peer, to, offer id), 3 scrape (conn, count), 4 raw text (conn,
    // len, bytes), 5 clock + expire (conn, ×100 ms), 6 disconnect (conn), 7 clock (conn, ms).
    let two_peers_relay = vec![
        1, // rng seed
        0, 0, 0, 0, 0, 1, 5,
        3, // conn 0: started, hash 0, peer 0, left 1, numwant 5, 3 offers
        0, 1, 0, 0, 1, 0, 5, 3, // conn 1: started, same swarm, peer 1, seed: gets the offers
        2, 0, 0, 1, 0, 2, // conn 0 answers as peer 1 to peer 0, offer 2
        3, 2, 3, // conn 2 scrapes 3 hashes
        3, 3, 0, // conn 3 scrapes all
        6, 1, // conn 1 disconnects
        5, 0, 200, // 20 s later: expiry
    ];
    let too_many_swarms: Vec<u8> = [
        vec![7],
        (0..5u8).flat_map(|i| [0, 0, 1, i, 0, 1, 1, 0]).collect(),
    ]
    .concat();
    let stopped = vec![
        3, 0, 2, 0, 0, 0, 1, 1, 0, 0, 2, 3, 0, 0, 1, 1, 0, 0, 2, 2, 0, 0, 1, 1, 0,
    ];
    let raw = [
        vec![0, 4, 1, 30],
        b(r#"{"action":"announce","info_hash""#),
        vec![4, 1, 17],
        b(r#"{"action":"scrape"}"#),
    ]
    .concat();
    let mut rng = Rng::new(99);
    let mut out = vec![
        ("two-peers-relay".to_string(), two_peers_relay),
        ("too-many-swarms".into(), too_many_swarms),
        ("stopped-and-completed".into(), stopped),
        ("raw-text".into(), raw),
    ];
    for i in 0..6 {
        let mut v = vec![0u8; 40 + 60 * i];
        rng.fill(&mut v);
        out.push((format!("random-{i}"), v));
    }
    out
}

fn seeds_ws_frame() -> Seeds {
    // Byte 0 picks the split point (src/fuzzing.rs `ws_frame`); the rest is what a client sends.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        ws_frame::push_raw_frame(&mut f, first, payload, Some([0x37, 0xFA, 0x21, 0x3D]));
        f
    }
    let announce = b(r#"{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#);
    let long_text = "x".repeat(300).into_bytes();
    let mut over_limit = vec![0x81, 0x80 | 127];
    over_limit.extend_from_slice(&(1u64 << 33).to_be_bytes());
    let seeds: Vec<(&str, u8, Vec<u8>)> = vec![
        ("text", 128, frame(0x81, &announce)),
        ("text-16-bit-length", 3, frame(0x81, &long_text)),
        ("binary", 200, frame(0x82, &[0, 1, 2, 0xFF])),
        (
            "fragments-around-ping",
            100,
            [
                frame(0x01, b"hel"),
                frame(0x89, b"ping"),
                frame(0x00, b"lo "),
                frame(0x80, b"world"),
            ]
            .concat(),
        ),
        (
            "close-then-more",
            250,
            [
                frame(0x88, &[3, 232, b'b', b'y', b'e']),
                frame(0x81, b"after"),
            ]
            .concat(),
        ),
        (
            "pong-and-empty-text",
            1,
            [frame(0x8A, b""), frame(0x81, b"")].concat(),
        ),
        ("over-limit-header", 5, over_limit),
        ("unmasked", 0, vec![0x81, 0x02, b'{', b'}']),
        ("reserved-bits", 9, frame(0xC1, b"x")),
        ("not-utf8", 77, frame(0x81, &[0xC3, 0x28])),
        ("continuation-alone", 33, frame(0x80, b"x")),
        ("long-ping", 66, frame(0x89, &[1; 126])),
    ];
    let mut out: Seeds = seeds
        .into_iter()
        .map(|(name, split, bytes)| (name.to_string(), [vec![split], bytes].concat()))
        .collect();
    let mut rng = Rng::new(7);
    for i in 0..4 {
        let mut v = vec![0u8; 20 + 50 * i];
        rng.fill(&mut v);
        out.push((format!("random-{i}"), v));
    }
    out
}

/// Rewrites `fuzz/seeds/` from the generators above (each target's folder is replaced whole).
#[test]
#[ignore = "writes fuzz/seeds/; run deliberately after changing the generators"]
fn regenerate_seeds() {
    let generators: &[(&str, Generator)] = &[
        ("bencode", seeds_bencode),
        ("metainfo", seeds_metainfo),
        ("magnet", seeds_magnet),
        ("wire_decoder", seeds_wire_decoder),
        ("wire_message", seeds_wire_message),
        ("ext_handshake", seeds_ext_handshake),
        ("ut_metadata", seeds_ut_metadata),
        ("receipt_decode", seeds_receipt_decode),
        ("tracker_client_msg", seeds_tracker_client_msg),
        ("tracker_server_msg", seeds_tracker_server_msg),
        ("tracker_state", seeds_tracker_state),
        ("ws_frame", seeds_ws_frame),
    ];
    assert_eq!(generators.len(), TARGETS.len());
    for (target, make) in generators {
        let dir = fuzz_dir().join("seeds").join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let seeds = make();
        let names: BTreeSet<&String> = seeds.iter().map(|s| &s.0).collect();
        assert_eq!(names.len(), seeds.len(), "{target}: duplicate seed name");
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("{target}: {} seeds", seeds.len());
    }
}
