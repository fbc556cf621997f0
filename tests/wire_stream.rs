#![cfg(not(target_arch = "wasm32"))]
//! The wire decoder against a recorded peer stream (`tests/vectors/wire/stream1.bin`): one
//! connection's incoming bytes from handshake to choke, decoded whole, split in two at every
//! byte, fed one byte at a time and in random chunks — always the same frames.
//!
//! The file is the contract: if the encoder changes, `recorded_stream_matches_the_encoder` fails
//! instead of the vector being silently rewritten. Regenerate deliberately with
//! `cargo test --test wire_stream -- --ignored regenerate`.

use std::path::PathBuf;

use seedtab::id::{InfoHash, PeerId};
use seedtab::rng::Rng;
use seedtab::wire::{
    BlockRef, Decoder, ExtendedHandshake, Frame, Handshake, Message, MetadataMsg, WireError,
    BLOCK_SIZE, DEFAULT_MAX_MESSAGE_LEN,
};

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/wire/stream1.bin")
}

fn recorded() -> Vec<u8> {
    std::fs::read(vector_path()).expect("tests/vectors/wire/stream1.bin is missing")
}

/// Deterministic block contents, so the expected frames need no stored copy.
fn block(index: u32, begin: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32 ^ index.wrapping_mul(31) ^ begin >> 8) as u8)
        .collect()
}

/// What a WebTorrent-like seeder sends a downloader on a fast-extension connection.
fn expected_frames() -> Vec<Frame> {
    let req = |index, begin| BlockRef {
        index,
        begin,
        length: BLOCK_SIZE,
    };
    let mut handshake = Handshake::new(
        InfoHash(*b"\x9f\x1c\x00\x00info-hash\xffbytes!"),
        PeerId(*b"-WW0300-0123456789ab"),
    );
    handshake.reserved[7] |= 0x01; // DHT bit, as a libtorrent-style peer sets
    let metadata_data = MetadataMsg::Data {
        piece: 0,
        total_size: 700,
        data: block(99, 0, 700),
    };
    let mut frames = vec![Frame::Handshake(handshake)];
    frames.extend(
        [
            Message::Extended {
                id: 0,
                payload:
                    b"d1:md11:ut_metadatai3e6:ut_pexi2ee13:metadata_sizei700e1:v14:WebTorrent 3.0e"
                        .to_vec(),
            },
            Message::Bitfield(vec![0xFF, 0xE0]),
            Message::AllowedFast(3),
            Message::AllowedFast(7),
            Message::Unchoke,
            Message::Extended {
                id: 1,
                payload: metadata_data.encode(),
            },
            Message::Piece {
                index: 0,
                begin: 0,
                data: block(0, 0, BLOCK_SIZE as usize),
            },
            Message::Piece {
                index: 0,
                begin: BLOCK_SIZE,
                data: block(0, BLOCK_SIZE, 1000),
            },
            Message::Reject(req(1, 0)),
            Message::Have(10),
            Message::Interested,
            Message::Request(req(4, 0)),
            Message::Request(req(4, BLOCK_SIZE)),
            Message::KeepAlive,
            Message::Suggest(5),
            Message::Cancel(req(4, BLOCK_SIZE)),
            Message::Piece {
                index: 10,
                begin: 2 * BLOCK_SIZE,
                data: block(10, 2 * BLOCK_SIZE, 17),
            },
            Message::NotInterested,
            Message::Port(6881),
            Message::Choke,
        ]
        .into_iter()
        .map(Frame::Message),
    );
    frames
}

fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            Frame::Handshake(h) => out.extend_from_slice(&h.encode()),
            Frame::Message(m) => m.encode(&mut out),
        }
    }
    out
}

fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Frame>, WireError> {
    let mut d = Decoder::new(DEFAULT_MAX_MESSAGE_LEN);
    let mut frames = Vec::new();
    for c in chunks {
        d.push(c);
        while let Some(f) = d.next_frame()? {
            frames.push(f);
        }
    }
    assert_eq!(d.buffered(), 0, "bytes left over");
    Ok(frames)
}

#[test]
#[ignore = "rewrites the test vector; run deliberately"]
fn regenerate() {
    let path = vector_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, encode_frames(&expected_frames())).unwrap();
}

#[test]
fn recorded_stream_matches_the_encoder() {
    assert!(
        recorded() == encode_frames(&expected_frames()),
        "encoder output differs from the vector"
    );
}

#[test]
fn recorded_stream_decodes_whole() {
    assert_eq!(
        decode_chunks([recorded().as_slice()]).unwrap(),
        expected_frames()
    );
}

#[test]
fn recorded_stream_split_at_every_point() {
    let bytes = recorded();
    let want = expected_frames();
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        let got = decode_chunks([a, b]).unwrap();
        assert!(got == want, "split at {at}");
    }
}

#[test]
fn recorded_stream_one_byte_at_a_time() {
    let bytes = recorded();
    assert_eq!(decode_chunks(bytes.chunks(1)).unwrap(), expected_frames());
}

#[test]
fn recorded_stream_in_random_chunks() {
    let bytes = recorded();
    let want = expected_frames();
    let mut rng = Rng::new(20240601);
    for _ in 0..300 {
        let mut chunks = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let take = 1 + rng.below(rest.len().min(40_000) as u64) as usize;
            chunks.push(&rest[..take]);
            rest = &rest[take..];
        }
        assert!(decode_chunks(chunks) == Ok(want.clone()));
    }
}

#[test]
fn recorded_extension_payloads_parse() {
    let frames = expected_frames();
    let Frame::Message(Message::Extended { id: 0, payload }) = &frames[1] else {
        panic!()
    };
    let hs = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(hs.ut_metadata_id(), Some(3));
    assert_eq!(hs.m.get("ut_pex"), Some(&2));
    assert_eq!(hs.metadata_size, Some(700));
    assert_eq!(hs.v.as_deref(), Some("WebTorrent 3.0"));
    let Frame::Message(Message::Extended { id: 1, payload }) = &frames[6] else {
        panic!()
    };
    let MetadataMsg::Data {
        piece: 0,
        total_size: 700,
        data,
    } = MetadataMsg::decode(payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(data.len(), 700);
}

#[test]
fn truncated_stream_waits_and_corrupted_stream_fails() {
    let bytes = recorded();
    // Every proper prefix decodes to a prefix of the frames and asks for more, never errors.
    let want = expected_frames();
    for cut in (0..bytes.len()).step_by(97) {
        let mut d = Decoder::new(DEFAULT_MAX_MESSAGE_LEN);
        d.push(&bytes[..cut]);
        let mut got = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
        assert!(
            got.len() < want.len() && got[..] == want[..got.len()],
            "cut at {cut}"
        );
    }
    // Unchoke's length prefix (after handshake and the first four messages) made 2: refused.
    let mut bad = bytes.clone();
    let unchoke_at = encode_frames(&want[..5]).len();
    assert_eq!(&bad[unchoke_at..unchoke_at + 5], &[0, 0, 0, 1, 1]);
    bad[unchoke_at + 3] = 2;
    assert_eq!(
        decode_chunks([bad.as_slice()]),
        Err(WireError::BadLength { id: 1, len: 2 })
    );
}
