//! The property checks of the cargo-fuzz targets (fuzz/README.md), shared with their stable replay
//! test (`tests/fuzz_seeds.rs`): each target in `fuzz/fuzz_targets/` is one call to a function
//! here, and `cargo test` runs the same function over every committed seed and regression input,
//! so the checks cannot drift apart and CI needs no nightly toolchain.
//!
//! Every check takes arbitrary bytes and panics (an `assert!`) when a parser breaks a promise:
//! beyond "no panic", the round trips, canonical forms and limits each module documents. Pure code
//! with no I/O, so it builds for wasm32 too; not part of the public API.

use std::collections::BTreeSet;

use sha1::{Digest, Sha1};

use crate::bencode::{self, DecodeErrorKind, Limits, Value};
use crate::id::{InfoHash, PeerId};
use crate::magnet::{self, Magnet, MAX_URI_LEN};
use crate::metainfo::{self, Metainfo, BLOCK_SIZE, MAX_FILES, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH};
use crate::receipt::{SignedReceipt, MAX_ENCODED_LEN, SIGNING_PREFIX};
use crate::rng::Rng;
use crate::signal::client::{
    announce_json, answer_json, parse_tracker_events, scrape_json, TrackerEvent, UNKNOWN_LEFT,
};
use crate::signal::msg::{
    self, parse_client_message, AnnounceEvent, ClientMessage, JsonStr, OfferIn, OfferOut,
    MAX_FRAME_BYTES, MAX_NUMWANT, MAX_OFFERS, MAX_SCRAPE_HASHES, MAX_SDP_BYTES,
    MAX_TRACKER_FRAME_BYTES,
};
use crate::signal::server::{ConnId, Tracker, TrackerConfig};
use crate::wire::{
    Decoder, ExtendedHandshake, Frame, Handshake, MetadataAssembler, MetadataMsg, WireError,
    EXTENDED_HANDSHAKE_ID, HANDSHAKE_LEN, MAX_METADATA_SIZE, METADATA_PIECE_SIZE, PROTOCOL_STRING,
    UT_METADATA_LOCAL_ID,
};

/// A property check: panics when `data` makes the code under test break a promise.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the file in `fuzz/fuzz_targets/`, the folder in `fuzz/seeds/`)
/// and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("bencode", bencode),
    ("metainfo", metainfo),
    ("magnet", magnet),
    ("wire_decoder", wire_decoder),
    ("wire_message", wire_message),
    ("ext_handshake", ext_handshake),
    ("ut_metadata", ut_metadata),
    ("receipt_decode", receipt_decode),
    ("tracker_client_msg", tracker_client_msg),
    ("tracker_server_msg", tracker_server_msg),
    ("tracker_state", tracker_state),
    ("ws_frame", ws_frame),
];

/// Reads fuzzer-chosen parameters from the front of an input; past the end it yields zeros, so
/// every input is a valid script.
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Script<'a> {
        Script { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

// ---- bencode ----------------------------------------------------------------------------------

/// Tight limits, so the fuzzer reaches every limit with small inputs.
const SMALL_LIMITS: Limits = Limits {
    max_depth: 6,
    max_tokens: 64,
    max_string_len: 256,
};

/// (depth, tokens, longest string) of a value, counted as [`Limits`] counts them.
fn shape(v: &Value) -> (usize, usize, usize) {
    match v {
        Value::Int(_) => (0, 1, 0),
        Value::Bytes(b) => (0, 1, b.len()),
        Value::List(l) => l
            .iter()
            .map(shape)
            .fold((1, 1, 0), |(d, t, s), (d2, t2, s2)| {
                (d.max(d2 + 1), t + t2, s.max(s2))
            }),
        Value::Dict(m) => m.iter().fold((1, 1, 0), |(d, t, s), (k, v)| {
            let (d2, t2, s2) = shape(v);
            (d.max(d2 + 1), t + t2 + 1, s.max(s2).max(k.len()))
        }),
    }
}

/// `bencode::decode_with` (src/bencode.rs) under tight and default limits. What decodes is the
/// canonical encoding up to dict key order: re-encoding gives the same length and a fixed point;
/// limits are respected and only limits separate the two results; a strict prefix is always
/// "unexpected end"; `decode_prefix` and `raw_dict_value` agree with `decode`.
pub fn bencode(data: &[u8]) {
    let small = bencode::decode_with(data, &SMALL_LIMITS);
    let full = bencode::decode(data);
    match (&small, &full) {
        (Ok(s), Ok(f)) => assert_eq!(s, f, "limits changed the value"),
        (Ok(_), Err(e)) => panic!("accepted under tight limits, refused under default: {e}"),
        (Err(e), Ok(_)) => assert!(
            matches!(
                e.kind,
                DecodeErrorKind::TooDeep { .. }
                    | DecodeErrorKind::TooManyTokens { .. }
                    | DecodeErrorKind::StringTooLong { .. }
            ),
            "refused under tight limits for a reason that is not a limit: {e}"
        ),
        (Err(a), Err(b)) => {
            assert!(a.offset <= data.len() && b.offset <= data.len());
            assert!(!a.to_string().is_empty());
        }
    }
    if let Ok(v) = &small {
        let (depth, tokens, longest) = shape(v);
        assert!(depth <= SMALL_LIMITS.max_depth, "depth {depth}");
        assert!(tokens <= SMALL_LIMITS.max_tokens, "tokens {tokens}");
        assert!(longest <= SMALL_LIMITS.max_string_len, "string {longest}");
    }
    let Ok(v) = full else {
        return;
    };
    let enc = bencode::encode(&v);
    // Only key order may differ from the input, so the length is the same.
    assert_eq!(enc.len(), data.len(), "re-encoding changed the length");
    assert_eq!(bencode::decode(&enc).as_ref(), Ok(&v), "round trip");
    assert_eq!(bencode::encode(&bencode::decode(&enc).unwrap()), enc);
    // A strict prefix of a document is never a document.
    for cut in [0, data.len() / 2, data.len() - 1] {
        let e = bencode::decode(&data[..cut]).expect_err("prefix accepted");
        assert_eq!(e.kind, DecodeErrorKind::UnexpectedEof, "prefix of {cut}");
    }
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"i1e");
    let (pv, used) = bencode::decode_prefix(&longer, &Limits::default()).expect("prefix decode");
    assert_eq!((pv, used), (v.clone(), data.len()));
    assert_eq!(
        bencode::decode(&longer).map_err(|e| e.kind),
        Err(DecodeErrorKind::TrailingData)
    );
    let limits = Limits::default();
    match &v {
        Value::Dict(map) => {
            for (k, item) in map.iter().take(8) {
                let raw = bencode::raw_dict_value(data, k, &limits)
                    .expect("raw_dict_value refused a decodable dict")
                    .expect("raw_dict_value lost a key");
                assert_eq!(bencode::decode(raw).as_ref(), Ok(item));
            }
            if !map.contains_key(&b"\xff\xfe"[..]) {
                assert_eq!(
                    bencode::raw_dict_value(data, b"\xff\xfe", &limits),
                    Ok(None)
                );
            }
        }
        _ => assert_eq!(
            bencode::raw_dict_value(data, b"info", &limits).map_err(|e| e.kind),
            Err(DecodeErrorKind::NotADict)
        ),
    }
}

// ---- metainfo ---------------------------------------------------------------------------------

/// `Metainfo::from_torrent_bytes` and `from_info_bytes` (src/metainfo.rs). An accepted torrent is
/// consistent: info-hash = SHA-1 of the info bytes, one hash per piece, pieces and blocks sum to
/// the total, files contiguous with safe paths, every limit respected; the info bytes alone give
/// the same info, and `to_torrent_bytes` parses back to the same value.
pub fn metainfo(data: &[u8]) {
    if let Ok(m) = Metainfo::from_torrent_bytes(data) {
        check_metainfo(&m);
        let alone = Metainfo::from_info_bytes(m.info_bytes.clone()).expect("info bytes refused");
        assert_eq!((&alone.info, alone.info_hash), (&m.info, m.info_hash));
    }
    if let Ok(m) = Metainfo::from_info_bytes(data.to_vec()) {
        assert_eq!(m.info_bytes, data);
        check_metainfo(&m);
    }
}

fn check_metainfo(m: &Metainfo) {
    let info = &m.info;
    assert_eq!(m.info_hash.0, <[u8; 20]>::from(Sha1::digest(&m.info_bytes)));
    assert!((1..=MAX_PIECE_LENGTH).contains(&info.piece_length));
    assert!(info.total_length > 0 && info.total_length <= MAX_TOTAL_LENGTH);
    assert!(!info.files.is_empty() && info.files.len() <= MAX_FILES);
    assert_eq!(metainfo::check_component(&info.name), Ok(()));
    let pl = u64::from(info.piece_length);
    let n = info.num_pieces();
    assert_eq!(u64::from(n), info.total_length.div_ceil(pl), "piece count");
    assert_eq!(info.pieces.len(), n as usize);
    let mut sum = 0u64;
    for i in 0..n {
        let len = info.piece_len(i);
        assert!(len >= 1 && len <= info.piece_length);
        if i + 1 < n {
            assert_eq!(len, info.piece_length, "short piece {i} before the last");
        }
        assert_eq!(info.piece_offset(i), sum);
        assert_eq!(info.piece_at(sum), Some(i));
        assert!(info.piece_hash(i).is_some());
        sum += u64::from(len);
    }
    assert_eq!(sum, info.total_length, "pieces do not cover the total");
    assert_eq!(info.piece_len(n), 0);
    assert_eq!(info.piece_hash(n), None);
    assert_eq!(info.piece_at(info.total_length), None);
    for piece in [0, n - 1] {
        let blocks = info.num_blocks(piece);
        let total: u64 = (0..blocks)
            .map(|b| u64::from(info.block_len(piece, b)))
            .sum();
        assert_eq!(total, u64::from(info.piece_len(piece)));
        assert!((0..blocks).all(|b| info.block_len(piece, b) <= BLOCK_SIZE));
        assert_eq!(info.block_len(piece, blocks), 0);
    }
    let mut offset = 0u64;
    for (i, f) in info.files.iter().enumerate() {
        assert_eq!(f.offset, offset, "file {i} not contiguous");
        offset += f.length;
        assert_eq!(metainfo::unsafe_path_reason(&f.path), None, "{:?}", f.path);
        let pieces = info.file_pieces(i);
        assert!(pieces.end <= n && pieces.start <= pieces.end);
        assert_eq!(pieces.is_empty(), f.length == 0);
    }
    assert_eq!(offset, info.total_length, "files do not cover the total");
    let ranges = info.file_ranges(0, info.total_length);
    let covered: u64 = ranges.iter().map(|r| r.2).sum();
    assert_eq!(covered, info.total_length);
    assert!(ranges.iter().all(|&(i, off, len)| {
        let f = &info.files[i];
        len > 0 && off + len <= f.length
    }));
    if !info.multi_file {
        assert_eq!(info.files.len(), 1);
        assert_eq!(info.files[0].path, std::slice::from_ref(&info.name));
    }
    let again = Metainfo::from_torrent_bytes(&m.to_torrent_bytes()).expect("re-parse refused");
    assert_eq!(&again, m, "to_torrent_bytes does not round-trip");
    let link = m.magnet();
    assert_eq!(link.info_hash, m.info_hash);
}

// ---- magnet -----------------------------------------------------------------------------------

/// `Magnet::parse` (src/magnet.rs) on any UTF-8 text: what parses has no duplicate trackers or web
/// seeds, and `to_uri` (when within the length limit) parses back to the same value and is a
/// fixed point; the base32 form of the hash parses to the same hash.
pub fn magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match Magnet::parse(text) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(text.trim().len() <= MAX_URI_LEN);
    assert_eq!(text.parse::<Magnet>().as_ref(), Ok(&m));
    for list in [&m.trackers, &m.web_seeds] {
        let unique: BTreeSet<&String> = list.iter().collect();
        assert_eq!(unique.len(), list.len(), "duplicates kept");
    }
    let uri = m.to_uri();
    assert_eq!(m.to_string(), uri);
    if uri.len() <= MAX_URI_LEN {
        let back = Magnet::parse(&uri).expect("to_uri output refused");
        assert_eq!(back, m, "to_uri does not round-trip: {uri}");
        assert_eq!(back.to_uri(), uri);
    }
    let b32 = format!(
        "magnet:?xt=urn:btih:{}",
        magnet::base32_encode(&m.info_hash)
    );
    assert_eq!(
        Magnet::parse(&b32).map(|b| b.info_hash),
        Ok(m.info_hash),
        "base32"
    );
}

// ---- wire -------------------------------------------------------------------------------------

/// The incremental `wire::Decoder` (src/wire/decoder.rs). Input: a message length limit (byte 0),
/// flags (byte 1: bit 0 starts after the handshake), a count `k` (byte 2, mod 17) of chunk sizes
/// (the next `k` bytes), then the stream. The stream is decoded whole, in the chosen chunks and one
/// byte at a time: the same frames and the same final error every time; after draining, no more
/// than one incomplete frame is buffered (< limit + 4 bytes, or a partial handshake); without
/// skipped or failed messages, re-encoding the frames gives back exactly the bytes consumed.
pub fn wire_decoder(data: &[u8]) {
    let mut s = Script::new(data);
    // 0..=127 as is (every limit check reachable with tiny inputs), above in steps of 256 up to
    // 32,512 (room for a 16 KiB block).
    let max = match s.u8() {
        b @ 0..=127 => u32::from(b),
        b => u32::from(b - 128) * 256,
    };
    let after_handshake = s.u8() & 1 == 1;
    let k = usize::from(s.u8() % 17);
    let sizes: Vec<usize> = s.take(k).iter().map(|&b| usize::from(b)).collect();
    let stream = s.rest();

    let new = || {
        if after_handshake {
            Decoder::after_handshake(max)
        } else {
            Decoder::new(max)
        }
    };
    let bound = (max as usize + 4).max(HANDSHAKE_LEN);
    let run = |chunks: &mut dyn Iterator<Item = &[u8]>| {
        let mut d = new();
        let mut frames = Vec::new();
        let mut end = Ok(());
        for c in chunks {
            d.push(c);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(d.next_frame(), Err(e.clone()), "error not sticky");
                        assert_eq!(d.buffered(), 0, "a failed decoder keeps bytes");
                        end = Err(e);
                        break;
                    }
                }
            }
            if end.is_err() {
                break;
            }
            assert!(d.buffered() < bound, "{} bytes buffered", d.buffered());
        }
        (frames, end, d)
    };

    let (whole, whole_end, d) = run(&mut std::iter::once(stream));
    let mut rest = stream;
    let mut chosen: Vec<&[u8]> = Vec::new();
    for &n in &sizes {
        let (a, b) = rest.split_at(n.min(rest.len()));
        chosen.push(a);
        rest = b;
    }
    chosen.push(rest);
    let (split, split_end, _) = run(&mut chosen.into_iter());
    assert_eq!(
        (&split, &split_end),
        (&whole, &whole_end),
        "chunking changed the frames"
    );
    let (bytes, bytes_end, _) = run(&mut stream.chunks(1));
    assert_eq!(
        (&bytes, &bytes_end),
        (&whole, &whole_end),
        "byte-wise differs"
    );

    if let Err(e) = &whole_end {
        assert!(
            !matches!(e, WireError::UnknownId(_)),
            "unknown ids must be skipped"
        );
        if let WireError::MessageTooLong { len, max: m } = e {
            assert!(*len > max && *m == max);
        }
        return;
    }
    let mut re = Vec::new();
    for (i, f) in whole.iter().enumerate() {
        match f {
            Frame::Handshake(h) => {
                assert!(i == 0 && !after_handshake, "handshake not first or twice");
                re.extend_from_slice(&h.encode());
            }
            Frame::Message(m) => {
                assert!(m.encoded_len() <= max as usize + 4);
                m.encode(&mut re);
            }
        }
    }
    assert_eq!(d.handshake_done(), after_handshake || !whole.is_empty());
    let consumed = stream.len() - d.buffered();
    if d.skipped_unknown() == 0 {
        assert_eq!(
            re,
            &stream[..consumed],
            "frames do not re-encode to the input"
        );
    } else {
        assert!(re.len() + 5 * d.skipped_unknown() as usize <= consumed);
    }
}

/// `Message::decode` on one message body and `Handshake::decode` on the first 68 bytes
/// (src/wire/message.rs, handshake.rs): what decodes re-encodes to exactly the input; errors name
/// the input's id and length. Extension payloads go on to the extended-handshake and ut_metadata
/// checks, as a peer connection would route them.
pub fn wire_message(data: &[u8]) {
    match crate::wire::Message::decode(data) {
        Ok(m) => {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(out.len(), m.encoded_len());
            assert_eq!(out[..4], (data.len() as u32).to_be_bytes());
            assert_eq!(&out[4..], data, "not canonical");
            assert_eq!(m.id(), data.first().copied());
            if let crate::wire::Message::Extended { id, payload } = &m {
                match *id {
                    EXTENDED_HANDSHAKE_ID => ext_handshake(payload),
                    UT_METADATA_LOCAL_ID => metadata_message(payload),
                    _ => {}
                }
            }
        }
        Err(WireError::UnknownId(id)) => assert_eq!(Some(id), data.first().copied()),
        Err(WireError::BadLength { id, len }) => {
            assert_eq!(Some(id), data.first().copied());
            assert_eq!(len as usize, data.len());
        }
        Err(e) => panic!("unexpected error from Message::decode: {e:?}"),
    }
    if let Some(raw) = data.first_chunk::<HANDSHAKE_LEN>() {
        match Handshake::decode(raw) {
            Ok(h) => assert_eq!(&h.encode(), raw),
            Err(e) => {
                assert_eq!(e, WireError::BadProtocolString);
                assert_ne!(&raw[..20], PROTOCOL_STRING);
            }
        }
    }
}

/// `ExtendedHandshake::decode` (src/wire/extended.rs), which also reads the receipt extension's
/// handshake fields (src/receipt/ext.rs): every listed id is usable (1..=255), the port is never
/// 0, `encode` round-trips, and bytes after the dict change nothing.
pub fn ext_handshake(data: &[u8]) {
    let Ok(h) = ExtendedHandshake::decode(data) else {
        return;
    };
    assert!(h.m.values().all(|&id| id != 0));
    assert_ne!(h.p, Some(0));
    assert_eq!(
        ExtendedHandshake::decode(&h.encode()).as_ref(),
        Ok(&h),
        "round trip"
    );
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"junk");
    assert_eq!(ExtendedHandshake::decode(&longer).as_ref(), Ok(&h));
    match h.reward {
        Some(_) => assert_eq!(
            h.receipt_id(),
            h.m.get(crate::receipt::ext::EXT_NAME).copied()
        ),
        None => assert_eq!(h.receipt_id(), None),
    }
}

fn metadata_message(data: &[u8]) {
    let Ok(m) = MetadataMsg::decode(data) else {
        return;
    };
    if let MetadataMsg::Data { data, .. } = &m {
        assert!(data.len() <= METADATA_PIECE_SIZE);
    }
    assert_eq!(
        MetadataMsg::decode(&m.encode()).as_ref(),
        Ok(&m),
        "round trip"
    );
}

/// BEP 9 (src/wire/ut_metadata.rs): `MetadataMsg::decode` on the whole input (data pieces at most
/// 16 KiB, `encode` round-trips), then the same bytes as a script for a `MetadataAssembler`: a
/// claimed total size (4 bytes; refused iff 0 or above the cap), then operations inserting pieces
/// of right and wrong sizes at any index, finishing with the right or a wrong hash, resetting.
/// The assembler must agree with a plain model of it at every step.
pub fn ut_metadata(data: &[u8]) {
    metadata_message(data);

    let mut s = Script::new(data);
    let claimed = u64::from(s.u32());
    let accepted = MetadataAssembler::new(claimed).is_ok();
    assert_eq!(accepted, (1..=MAX_METADATA_SIZE).contains(&claimed));
    // The script itself works on a small size so every step stays cheap.
    let total = (claimed % (4 * METADATA_PIECE_SIZE as u64 + 1)).max(1) as usize;
    let mut a = MetadataAssembler::new(total as u64).expect("small size refused");
    let pieces = total.div_ceil(METADATA_PIECE_SIZE);
    assert_eq!(a.num_pieces() as usize, pieces);
    assert_eq!(a.total_size(), total as u64);
    let piece_len = |p: u32| {
        let start = p as usize * METADATA_PIECE_SIZE;
        (start < total).then(|| (total - start).min(METADATA_PIECE_SIZE))
    };
    let mut model = vec![0u8; total];
    let mut have = vec![false; pieces];
    let mut steps = 0;
    while !s.is_empty() && steps < 64 {
        steps += 1;
        match s.u8() % 4 {
            0 | 1 => {
                let p = match s.u8() {
                    255 => u32::MAX,
                    b => u32::from(b % 8),
                };
                let want = piece_len(p);
                assert_eq!(a.piece_len(p), want);
                let len = match s.u8() % 4 {
                    0 | 1 => want.unwrap_or(METADATA_PIECE_SIZE),
                    2 => want.unwrap_or(0).wrapping_add(usize::from(s.u8())) % 20_000,
                    _ => usize::from(s.u16()),
                };
                let fill = s.u8();
                let piece = vec![fill; len];
                let ok = a.insert(p, &piece).is_ok();
                assert_eq!(ok, want == Some(len), "insert({p}, {len} bytes)");
                if ok {
                    let start = p as usize * METADATA_PIECE_SIZE;
                    model[start..start + len].copy_from_slice(&piece);
                    have[p as usize] = true;
                }
            }
            2 => {
                let right = s.u8() & 1 == 1;
                let mut hash = InfoHash(Sha1::digest(&model).into());
                if !right {
                    hash.0[0] ^= 1;
                }
                let r = a.finish(&hash);
                if have.iter().all(|&h| h) {
                    if right {
                        assert_eq!(r.as_ref(), Ok(&model));
                    } else {
                        assert_eq!(r, Err(WireError::MetadataHashMismatch));
                    }
                    have.iter_mut().for_each(|h| *h = false);
                } else {
                    assert_eq!(r, Err(WireError::MetadataIncomplete));
                }
            }
            _ => {
                a.reset();
                have.iter_mut().for_each(|h| *h = false);
            }
        }
        assert_eq!(a.is_complete(), have.iter().all(|&h| h));
        assert_eq!(
            a.next_missing(),
            have.iter().position(|h| !h).map(|i| i as u32)
        );
        assert_eq!(
            a.missing_pieces().count(),
            have.iter().filter(|h| !**h).count()
        );
        for (i, &h) in have.iter().enumerate() {
            assert_eq!(a.has_piece(i as u32), h);
        }
        assert!(!a.has_piece(pieces as u32));
    }
}

// ---- receipts ---------------------------------------------------------------------------------

/// `SignedReceipt::decode` and `verify` (src/receipt/mod.rs): whatever decodes is the canonical
/// encoding of what it decoded to (one receipt, one byte string: ledgers key on it), fits the size
/// limit and passes the bounds checks; the signature check runs without panicking on any receipt
/// that decodes, and a receipt that verifies passes `decode_verified` unchanged. The receipt
/// extension's messages on the wire are exactly these bytes; its handshake fields are checked by
/// [`ext_handshake`].
pub fn receipt_decode(data: &[u8]) {
    let Ok(r) = SignedReceipt::decode(data) else {
        return;
    };
    assert_eq!(r.encode(), data, "accepted a non-canonical encoding");
    assert!(data.len() <= MAX_ENCODED_LEN);
    assert_eq!(r.receipt.check_bounds(), Ok(()));
    assert!(r.receipt.signing_message().starts_with(SIGNING_PREFIX));
    // The fuzzer cannot forge a signature; this is here for panics in the key and signature
    // parsing. A verified receipt must survive the full path unchanged.
    if r.verify().is_ok() {
        assert_eq!(SignedReceipt::decode_verified(data).as_ref(), Ok(&r));
    }
}

// ---- tracker protocol -------------------------------------------------------------------------

/// `parse_client_message` (src/signal/msg/), what the tracker reads from clients; the SDP checks
/// (`sdp_of`) are reached through it (seedtab never parses SDP itself). Accepted frames respect
/// every limit (frame size, offers, numwant, SDP size, scrape hashes, no offers with `stopped`);
/// what the client encoders (src/signal/client.rs) write from the parsed value parses back to it;
/// and a refusal becomes a `failure reason` frame that clients read back with the same torrent.
pub fn tracker_client_msg(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_client_message(text);
    let m = match parsed {
        Ok(m) => m,
        Err(f) => {
            let frame = msg::failure_json(&f.error.to_string(), f.action, f.info_hash.as_ref());
            let events = parse_tracker_events(&frame).expect("failure frame refused");
            assert_eq!(
                events,
                [TrackerEvent::Failure {
                    info_hash: f.info_hash,
                    reason: f.error.to_string()
                }]
            );
            return;
        }
    };
    assert!(text.len() <= MAX_FRAME_BYTES);
    fn reparse(frame: &str) -> Option<ClientMessage<'_>> {
        (frame.len() <= MAX_FRAME_BYTES)
            .then(|| parse_client_message(frame).expect("re-encoded frame refused"))
    }
    match m {
        ClientMessage::Announce(a) => {
            assert!(a.offers.len() <= MAX_OFFERS);
            assert!(a.numwant.is_none_or(|n| n <= MAX_NUMWANT));
            assert!(a
                .offers
                .iter()
                .all(|o| o.sdp.decode().len() <= MAX_SDP_BYTES));
            if a.event == AnnounceEvent::Stopped {
                assert!(a.offers.is_empty() && a.offers_ignored == 0);
            }
            let frame = announce_json(
                &a.info_hash,
                &a.peer_id,
                a.event,
                a.uploaded.unwrap_or(0),
                a.downloaded.unwrap_or(0),
                a.left,
                a.numwant.unwrap_or(0),
                &offers_out(&a.offers),
            );
            if let Some(back) = reparse(&frame) {
                let ClientMessage::Announce(b) = back else {
                    panic!("announce re-read as {back:?}");
                };
                assert_eq!(
                    (b.info_hash, b.peer_id, b.event),
                    (a.info_hash, a.peer_id, a.event)
                );
                assert_eq!(
                    b.left,
                    Some(a.left.unwrap_or(UNKNOWN_LEFT).min(UNKNOWN_LEFT))
                );
                assert_eq!(b.numwant, Some(a.numwant.unwrap_or(0)));
                let sends_offers =
                    matches!(a.event, AnnounceEvent::Started | AnnounceEvent::Update);
                if sends_offers {
                    assert_eq!(b.offers, a.offers);
                } else {
                    assert!(b.offers.is_empty());
                }
            }
        }
        ClientMessage::Answer(a) => {
            let sdp = a.sdp.decode();
            assert!(sdp.len() <= MAX_SDP_BYTES);
            let frame = answer_json(&a.info_hash, &a.peer_id, &a.to_peer_id, &a.offer_id, &sdp);
            if let Some(back) = reparse(&frame) {
                assert_eq!(back, ClientMessage::Answer(a));
            }
        }
        ClientMessage::Scrape { info_hashes } => {
            let hashes = info_hashes.clone().unwrap_or_default();
            assert!(hashes.len() <= MAX_SCRAPE_HASHES);
            if let Some(back) = reparse(&scrape_json(&hashes)) {
                let want = (!hashes.is_empty()).then_some(hashes);
                assert_eq!(back, ClientMessage::Scrape { info_hashes: want });
            }
        }
    }
}

/// The client encoders' form of offers the tracker parsed.
fn offers_out(offers: &[OfferIn<'_>]) -> Vec<OfferOut> {
    offers
        .iter()
        .map(|o| OfferOut {
            offer_id: o.offer_id,
            sdp: o.sdp.decode(),
        })
        .collect()
}

/// A literal [`msg::json_string`] wrote, as the tracker's relay encoders take SDPs.
fn literal(text: &str) -> JsonStr<'_> {
    JsonStr::new(text).expect("json_string wrote an invalid literal")
}

/// `parse_tracker_events` (src/signal/client.rs), what clients read from trackers: one or two
/// events (a warning first, then the reply), a failure alone, SDPs within the limit; and what the
/// tracker's own encoders (src/signal/msg/writer.rs) write for the event parses back to it.
pub fn tracker_server_msg(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(events) = parse_tracker_events(text) else {
        return;
    };
    assert!(text.len() <= MAX_TRACKER_FRAME_BYTES);
    assert!(matches!(events.len(), 1 | 2), "{events:?}");
    if events.len() == 2 {
        assert!(matches!(events[0], TrackerEvent::Warning { .. }));
        assert!(!matches!(
            events[1],
            TrackerEvent::Warning { .. } | TrackerEvent::Failure { .. }
        ));
    }
    let last = &events[events.len() - 1];
    let frame = match last {
        TrackerEvent::Offer {
            info_hash,
            peer_id,
            offer_id,
            sdp,
        } => {
            assert!(sdp.len() <= MAX_SDP_BYTES);
            Some(msg::offer_relay_json(
                info_hash,
                peer_id,
                offer_id,
                literal(&msg::json_string(sdp)),
            ))
        }
        TrackerEvent::Answer {
            info_hash,
            peer_id,
            offer_id,
            sdp,
        } => {
            assert!(sdp.len() <= MAX_SDP_BYTES);
            Some(msg::answer_relay_json(
                info_hash,
                peer_id,
                offer_id,
                literal(&msg::json_string(sdp)),
            ))
        }
        TrackerEvent::AnnounceReply {
            info_hash,
            interval: Some(interval),
            complete: Some(complete),
            incomplete: Some(incomplete),
        } if *interval > 0 => Some(msg::announce_reply_json(
            info_hash,
            *interval,
            *complete,
            *incomplete,
        )),
        TrackerEvent::AnnounceReply { .. } => None,
        TrackerEvent::Scrape { files } => Some(msg::scrape_reply_json(files, 60)),
        TrackerEvent::Failure { info_hash, reason } => {
            assert_eq!(events.len(), 1);
            Some(msg::failure_json(reason, None, info_hash.as_ref()))
        }
        TrackerEvent::Warning { .. } => None,
    };
    if let Some(frame) = frame.filter(|f| f.len() <= MAX_TRACKER_FRAME_BYTES) {
        let back = parse_tracker_events(&frame).expect("re-encoded frame refused");
        assert_eq!(
            back.as_slice(),
            std::slice::from_ref(last),
            "round trip: {frame}"
        );
    }
}

/// A stateful run of `signal::server::Tracker` (src/signal/server.rs) with a virtual clock: a
/// script of frames from four fake connections (announces with offers, answers and scrapes built
/// with the client encoders, and raw fuzzer text), clock steps with expiry, and disconnects. Never
/// a panic; every frame the tracker sends goes to an open connection and is one clients can read;
/// peers stay within `connections × max_swarms_per_conn`, no empty swarm is kept, the swarm counts
/// add up to the peers; expiry and disconnects leave nothing behind.
pub fn tracker_state(data: &[u8]) {
    const CONNS: u64 = 4;
    let config = TrackerConfig {
        peer_timeout_ms: 10_000,
        max_swarms_per_conn: 3,
        max_scrape_all: 4,
        ..TrackerConfig::default()
    };
    let mut s = Script::new(data);
    let mut t = Tracker::new(config.clone());
    let mut rng = Rng::new(u64::from(s.u8()));
    let hash = |b: u8| InfoHash([0xA0 | (b % 5); 20]);
    let peer = |b: u8| {
        let mut id = [b'-'; 20];
        id[0] = b'0' + b % 6;
        PeerId(id)
    };
    let mut now: u64 = 1_000;
    let mut open: BTreeSet<u64> = BTreeSet::new();
    let mut steps = 0;
    while !s.is_empty() && steps < 200 {
        steps += 1;
        let op = s.u8();
        let conn = u64::from(s.u8()) % CONNS;
        let text = match op % 8 {
            0 | 1 => {
                let event = [
                    AnnounceEvent::Started,
                    AnnounceEvent::Update,
                    AnnounceEvent::Completed,
                    AnnounceEvent::Stopped,
                ][usize::from(s.u8() % 4)];
                let (ih, pid) = (hash(s.u8()), peer(s.u8()));
                let left = match s.u8() {
                    0 => None,
                    b => Some(u64::from(b % 3)),
                };
                let numwant = u32::from(s.u8());
                let offers: Vec<OfferOut> = (0..s.u8() % 13)
                    .map(|i| OfferOut {
                        offer_id: [i; 20],
                        sdp: format!("v=0 offer {i}"),
                    })
                    .collect();
                Some(announce_json(
                    &ih, &pid, event, 0, 0, left, numwant, &offers,
                ))
            }
            2 => {
                let (ih, pid, to) = (hash(s.u8()), peer(s.u8()), peer(s.u8()));
                Some(answer_json(
                    &ih,
                    &pid,
                    &to,
                    &[s.u8() % 13; 20],
                    "v=0 answer",
                ))
            }
            3 => {
                let hashes: Vec<InfoHash> = (0..s.u8() % 4).map(|i| hash(i * 2)).collect();
                Some(scrape_json(&hashes))
            }
            4 => {
                let n = usize::from(s.u8());
                Some(String::from_utf8_lossy(s.take(n)).into_owned())
            }
            5 => {
                now += u64::from(s.u8()) * 100;
                t.expire(now);
                None
            }
            6 => {
                t.disconnect(ConnId(conn));
                open.remove(&conn);
                None
            }
            _ => {
                now += u64::from(s.u8());
                None
            }
        };
        if let Some(text) = text {
            open.insert(conn);
            let out = t.handle_text(ConnId(conn), &text, now, &mut rng);
            for (to, frame) in &out {
                assert!(open.contains(&to.0), "frame for closed connection {to:?}");
                assert!(frame.len() <= MAX_TRACKER_FRAME_BYTES);
                if let Err(e) = parse_tracker_events(frame) {
                    panic!("tracker sent a frame clients refuse ({e}): {frame}");
                }
            }
        }
        let swarms = t.top_swarms(usize::MAX);
        assert_eq!(swarms.len(), t.swarms());
        assert!(swarms.iter().all(|s| s.1 + s.2 > 0), "empty swarm kept");
        let counted: u64 = swarms.iter().map(|s| s.1 + s.2).sum();
        assert_eq!(
            counted,
            t.peers() as u64,
            "swarm counts disagree with peers"
        );
        assert!(t.connections() <= open.len());
        assert!(t.peers() <= t.connections() * config.max_swarms_per_conn);
    }
    t.expire(now + config.peer_timeout_ms + 1);
    assert_eq!((t.peers(), t.swarms()), (0, 0), "expiry left peers");
    for c in 0..CONNS {
        t.disconnect(ConnId(c));
    }
    assert_eq!((t.peers(), t.swarms(), t.connections()), (0, 0, 0));
}

/// `ws_frame::Decoder::feed` (src/signal/ws_frame.rs), the WebSocket frames the tracker reads:
/// byte 0 picks a split point in the rest. Fed whole and in two parts, the same messages and the
/// same verdict; nothing is read after a close; text is UTF-8 and every message within the limit;
/// fragments never buffer past twice the limit. Then a masked frame carrying the input (text when
/// it is UTF-8) reads back as exactly that payload.
pub fn ws_frame(data: &[u8]) {
    use crate::signal::ws_frame::Decoder;
    const LIMIT: usize = 4096;
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split) * stream.len() / 255;
    let whole = ws_messages(stream, &[stream.len()], LIMIT);
    let parts = ws_messages(stream, &[cut, stream.len()], LIMIT);
    assert_eq!(whole, parts, "split at {cut} changed what was read");

    let payload = &stream[..stream.len().min(LIMIT)];
    let text = std::str::from_utf8(payload).is_ok();
    let mask = [split, split ^ 0x5A, split.wrapping_add(1), 0xC3];
    let mut frame = Vec::new();
    let first = 0x80 | if text { 1 } else { 2 };
    crate::signal::ws_frame::push_raw_frame(&mut frame, first, payload, Some(mask));
    let mut seen = Vec::new();
    let used = Decoder::new(LIMIT)
        .feed(&mut frame, &mut |m| seen.push(format!("{m:?}")))
        .expect("a well-formed frame within the limit");
    assert_eq!(used, frame.len());
    let want = match std::str::from_utf8(payload) {
        Ok(t) => format!("{:?}", crate::signal::ws_frame::Message::Text(t)),
        Err(_) => format!("{:?}", crate::signal::ws_frame::Message::Binary(payload)),
    };
    assert_eq!(seen, [want]);
}

/// Feeds `stream` to a fresh decoder in the parts ending at `cuts`, keeping what each call left
/// unused; the messages seen (as text) and the error, if any.
fn ws_messages(
    stream: &[u8],
    cuts: &[usize],
    limit: usize,
) -> (Vec<String>, Option<crate::signal::ws_frame::WsError>) {
    use crate::signal::ws_frame::{Decoder, Message};
    let mut decoder = Decoder::new(limit);
    let mut pending = Vec::new();
    let mut seen = Vec::new();
    let mut closed = false;
    let mut from = 0;
    for &cut in cuts {
        pending.extend_from_slice(&stream[from..cut]);
        from = cut;
        let result = decoder.feed(&mut pending, &mut |m| {
            match &m {
                Message::Text(t) => assert!(t.len() <= limit),
                Message::Binary(b) => assert!(b.len() <= limit),
                Message::Ping(p) => assert!(p.len() <= 125),
                Message::Pong => {}
                Message::Close(_) => closed = true,
            }
            seen.push(format!("{m:?}"));
        });
        assert!(
            decoder.buffered() <= 2 * limit,
            "fragments over the limit kept"
        );
        match result {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(e) => return (seen, Some(e)),
        }
        if closed {
            break;
        }
    }
    (seen, None)
}
