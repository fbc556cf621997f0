//! The receipt code against test vectors made without it: `tests/vectors/receipts/*.json` come from
//! `make.mjs` (Node's Ed25519 and its own bencoder). Valid receipts must decode, verify, re-encode
//! byte-identical and be re-signed to the same signature; each invalid one must be refused with
//! exactly its error code. A bounded, seeded mutation run then checks what no list of vectors can:
//! nothing panics, whatever decodes is canonical, and nothing altered in a signed field verifies.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value as Json;

use seedtab::receipt::{
    self, from_hex, Receipt, SignedReceipt, DOMAIN, MAX_ENCODED_LEN, MAX_INT, SIGNING_PREFIX,
    VERSION,
};
use seedtab::rng::Rng;

fn load(file: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/receipts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Hex of any length (`receipt::from_hex` wants a fixed one).
fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex: {s}")))
        .collect()
}

fn hex_field<const N: usize>(v: &Json, key: &str) -> [u8; N] {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    from_hex::<N>(s).unwrap_or_else(|| panic!("{key} is not {N} bytes of hex: {s}"))
}

fn uint(v: &Json, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}

struct Valid {
    name: String,
    seed: [u8; 32],
    receipt: Receipt,
    message: Vec<u8>,
    signature: [u8; 64],
    encoded: Vec<u8>,
}

fn valid_vectors() -> Vec<Valid> {
    let doc = load("valid.json");
    doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            let f = &v["fields"];
            assert_eq!(f["dom"].as_str(), Some(DOMAIN));
            assert_eq!(f["v"].as_i64(), Some(VERSION));
            Valid {
                name: v["name"].as_str().expect("name").to_string(),
                seed: hex_field(v, "downloader_seed"),
                receipt: Receipt {
                    downloader: hex_field(f, "dl"),
                    uploader: hex_field(f, "ul"),
                    info_hash: hex_field(f, "ih"),
                    length: uint(f, "len"),
                    session: hex_field(f, "sid"),
                    seq: uint(f, "seq"),
                    bytes: uint(f, "bytes"),
                    timestamp_ms: uint(f, "ts"),
                },
                message: unhex(v["message"].as_str().expect("message")),
                signature: hex_field(v, "signature"),
                encoded: unhex(v["encoded"].as_str().expect("encoded")),
            }
        })
        .collect()
}

/// (name, expected code, description, encoded bytes)
fn invalid_vectors() -> Vec<(String, String, String, Vec<u8>)> {
    load("invalid.json")["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {v}"))
                    .to_string()
            };
            (s("name"), s("expect"), s("why"), unhex(&s("encoded")))
        })
        .collect()
}

#[test]
fn the_generator_used_our_constants_and_keys() {
    for file in ["valid.json", "invalid.json"] {
        let doc = load(file);
        assert_eq!(doc["domain"].as_str(), Some(DOMAIN), "{file}");
        assert_eq!(doc["version"].as_i64(), Some(VERSION), "{file}");
        assert_eq!(
            unhex(doc["signing_prefix"].as_str().unwrap()),
            SIGNING_PREFIX
        );
        assert_eq!(doc["max_int"].as_u64(), Some(MAX_INT), "{file}");
        assert_eq!(
            doc["max_encoded_len"].as_u64(),
            Some(MAX_ENCODED_LEN as u64)
        );
        // Node derived these public keys from the seeds; ed25519-dalek must derive the same.
        for (name, k) in doc["keys"].as_object().expect("keys") {
            let seed: [u8; 32] = hex_field(k, "seed");
            let public: [u8; 32] = hex_field(k, "public");
            assert_eq!(receipt::public_key(&seed), public, "key {name} in {file}");
        }
    }
}

#[test]
fn valid_vectors_decode_verify_re_encode_and_re_sign() {
    let vectors = valid_vectors();
    assert!(vectors.len() >= 5, "too few valid vectors");
    // Collect every mismatch before failing: one run shows all that is wrong.
    let mut failures = Vec::new();
    for v in &vectors {
        let n = &v.name;
        match SignedReceipt::decode_verified(&v.encoded) {
            Ok(r) => {
                if r.receipt != v.receipt {
                    failures.push(format!(
                        "{n}: decoded {:?}, vector says {:?}",
                        r.receipt, v.receipt
                    ));
                }
                if r.signature != v.signature {
                    failures.push(format!("{n}: decoded signature differs"));
                }
                if r.encode() != v.encoded {
                    failures.push(format!("{n}: re-encoding is not byte-identical"));
                }
            }
            Err(e) => failures.push(format!("{n}: refused with {} ({e})", e.code())),
        }
        if receipt::public_key(&v.seed) != v.receipt.downloader {
            failures.push(format!("{n}: dl is not the public key of downloader_seed"));
        }
        if v.receipt.signing_message() != v.message {
            failures.push(format!(
                "{n}: signing_message() is\n  {}\nvector's message is\n  {}",
                receipt::hex(&v.receipt.signing_message()),
                receipt::hex(&v.message)
            ));
        }
        // Ed25519 is deterministic: the same seed and message give the same signature anywhere.
        let ours = receipt::sign(v.receipt.clone(), &v.seed);
        if ours.signature != v.signature {
            failures.push(format!("{n}: receipt::sign gives another signature"));
        }
        if ours.encode() != v.encoded {
            failures.push(format!("{n}: encode() of our own signed receipt differs"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_vectors_get_exactly_their_error_code() {
    let vectors = invalid_vectors();
    let mut failures = Vec::new();
    for (name, expect, why, encoded) in &vectors {
        match SignedReceipt::decode_verified(encoded) {
            Ok(_) => failures.push(format!("{name} ({why}): ACCEPTED, expected {expect}")),
            Err(e) if e.code() != expect => failures.push(format!(
                "{name} ({why}): got {} ({e}), expected {expect}",
                e.code()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_vectors_cover_every_error_code_and_listed_case() {
    let vectors = invalid_vectors();
    let codes: HashSet<&str> = vectors.iter().map(|v| v.1.as_str()).collect();
    for code in [
        "malformed",
        "wrong_domain",
        "unsupported_version",
        "bad_signature",
        "exceeds_length",
        "self_receipt",
    ] {
        assert!(codes.contains(code), "no invalid vector for {code}");
    }
    let names: HashSet<&str> = vectors.iter().map(|v| v.0.as_str()).collect();
    for name in [
        "extra-field",
        "missing-field-ts",
        "unsorted-keys",
        "leading-zero-integer",
        "dl-31-bytes",
        "negative-bytes",
        "trailing-bytes",
        "over-512-bytes",
        "seq-zero",
        "ts-above-max",
        "sig-bit-flip-r",
        "signed-by-other-key",
        "small-order-key",
        "sig-s-not-reduced",
    ] {
        assert!(names.contains(name), "invalid vector {name} missing");
    }
    let valid = valid_vectors();
    assert!(valid.iter().any(|v| v.receipt.seq == 1));
    assert!(valid.iter().any(|v| v.receipt.seq > 1));
    assert!(valid.iter().any(|v| v.receipt.bytes == 0));
    assert!(valid.iter().any(|v| v.receipt.bytes == v.receipt.length));
    assert!(valid.iter().any(|v| v.receipt.length == MAX_INT));
    let signers: HashSet<[u8; 32]> = valid.iter().map(|v| v.receipt.downloader).collect();
    assert!(signers.len() >= 3, "valid vectors should use several keys");
}

// ---- mutations -------------------------------------------------------------------------------

/// Where each `key value` pair of a canonical receipt starts, and where the whole dict's body ends.
/// Only ever run on the valid vectors, which are canonical: a tiny walker is enough.
fn field_starts(enc: &[u8]) -> Vec<(Vec<u8>, usize)> {
    fn string_end(enc: &[u8], at: usize) -> (usize, usize) {
        let colon = at + enc[at..].iter().position(|&b| b == b':').unwrap();
        let len: usize = std::str::from_utf8(&enc[at..colon])
            .unwrap()
            .parse()
            .unwrap();
        (colon + 1, colon + 1 + len)
    }
    let mut out = Vec::new();
    let mut at = 1; // after 'd'
    while enc[at] != b'e' {
        let (kstart, kend) = string_end(enc, at);
        out.push((enc[kstart..kend].to_vec(), at));
        at = if enc[kend] == b'i' {
            kend + enc[kend..].iter().position(|&b| b == b'e').unwrap() + 1
        } else {
            string_end(enc, kend).1
        };
    }
    out.push((Vec::new(), at));
    out
}

/// Bytes that mean something to a bencode reader: mutations that insert them reach more paths
/// than uniformly random bytes do.
const INTERESTING: &[u8] = b"deil:-0123456789\x00\xff";

struct Mutator<'a> {
    rng: Rng,
    seeds: &'a [Vec<u8>],
    spans: Vec<Vec<(Vec<u8>, usize)>>,
}

impl Mutator<'_> {
    fn pick(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        if self.rng.below(2) == 0 {
            INTERESTING[self.pick(INTERESTING.len())]
        } else {
            self.rng.next_u64() as u8
        }
    }

    /// One random edit of `m`; `from` is the index of the seed `m` started as.
    fn mutate(&mut self, m: &mut Vec<u8>, from: usize) {
        let len = m.len();
        match self.rng.below(10) {
            // Flip one bit.
            0 | 1 if len > 0 => {
                let i = self.pick(len);
                m[i] ^= 1 << self.rng.below(8);
            }
            // Overwrite one byte.
            2 if len > 0 => {
                let i = self.pick(len);
                m[i] = self.byte();
            }
            // Insert one to four bytes.
            3 => {
                let at = self.pick(len + 1);
                for _ in 0..1 + self.rng.below(4) {
                    let b = self.byte();
                    m.insert(at, b);
                }
            }
            // Delete a short run.
            4 if len > 0 => {
                let at = self.pick(len);
                let n = (1 + self.pick(8)).min(len - at);
                m.drain(at..at + n);
            }
            // Truncate.
            5 => m.truncate(self.pick(len + 1)),
            // Splice: a prefix of this input and a suffix of any seed, cut at random points.
            6 => {
                let other = &self.seeds[self.pick(self.seeds.len())];
                let cut = self.pick(len + 1);
                let from_other = self.pick(other.len() + 1);
                m.truncate(cut);
                m.extend_from_slice(&other[from_other..]);
            }
            // Transplant one field from another valid vector (the same key): still canonical and
            // well-formed most of the time, so it reaches the bounds checks and the signature.
            7 | 8 if from < self.spans.len() => {
                let other = self.pick(self.spans.len());
                let k = self.pick(self.spans[other].len() - 1);
                let (key, o_start) = self.spans[other][k].clone();
                let o_end = self.spans[other][k + 1].1;
                let mine = &self.spans[from];
                if let Some(i) = mine.iter().position(|(kk, _)| *kk == key) {
                    let (start, end) = (mine[i].1, mine[i + 1].1);
                    // Earlier edits may have shortened the input; then this one is skipped.
                    if end <= m.len() {
                        let piece = self.seeds[other][o_start..o_end].to_vec();
                        m.splice(start..end, piece);
                    }
                }
            }
            // Duplicate a run somewhere else.
            _ if len > 0 => {
                let a = self.pick(len);
                let b = (a + 1 + self.pick(16)).min(len);
                let run = m[a..b].to_vec();
                let at = self.pick(len + 1);
                m.splice(at..at, run);
            }
            _ => m.push(self.byte()),
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    inputs: u64,
    decoded: u64,
    verified: u64,
}

/// The properties every input must have, whatever it is. Returns whether it verified.
fn check(input: &[u8], originals: &HashSet<Vec<u8>>, tally: &mut Tally) -> bool {
    tally.inputs += 1;
    // decode then verify, as decode_verified does, to see which step refused.
    let outcome = std::panic::catch_unwind(|| {
        let decoded = SignedReceipt::decode(input);
        let verified = decoded.as_ref().is_ok_and(|r| r.verify().is_ok());
        (decoded, verified)
    });
    let Ok((decoded, verified)) = outcome else {
        panic!("decoding panicked on {}", receipt::hex(input));
    };
    let Ok(r) = decoded else {
        return false;
    };
    tally.decoded += 1;
    // One receipt, one byte string: anything accepted is exactly its canonical encoding.
    assert_eq!(
        r.encode(),
        input,
        "decoded a non-canonical input: {}",
        receipt::hex(input)
    );
    assert!(input.len() <= MAX_ENCODED_LEN);
    assert_eq!(r.receipt.check_bounds(), Ok(()));
    if verified {
        tally.verified += 1;
        // Canonical, so equal bytes and equal receipts are the same thing: anything that
        // verifies must be one of the vectors, unchanged in every field.
        assert!(
            originals.contains(input),
            "a mutated receipt verifies: {}",
            receipt::hex(input)
        );
    }
    verified
}

#[test]
fn every_single_bit_flip_of_a_valid_receipt_is_refused() {
    let vectors = valid_vectors();
    let originals: HashSet<Vec<u8>> = vectors.iter().map(|v| v.encoded.clone()).collect();
    let mut tally = Tally::default();
    for v in &vectors {
        for i in 0..v.encoded.len() * 8 {
            let mut m = v.encoded.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert!(
                !check(&m, &originals, &mut tally),
                "{}: flipping bit {i} still verifies",
                v.name
            );
        }
    }
    eprintln!("single bit flips: {tally:?}");
}

#[test]
fn random_mutations_never_panic_and_never_forge() {
    // Bounded and seeded: the same inputs every run, a few seconds in a debug build.
    const CASES: u64 = 200_000;
    let valid = valid_vectors();
    let originals: HashSet<Vec<u8>> = valid.iter().map(|v| v.encoded.clone()).collect();
    // Valid vectors first (field transplants need their layout), then the invalid ones: starting
    // from a near miss reaches other paths.
    let mut seeds: Vec<Vec<u8>> = valid.iter().map(|v| v.encoded.clone()).collect();
    seeds.extend(invalid_vectors().into_iter().map(|v| v.3));
    let spans = valid.iter().map(|v| field_starts(&v.encoded)).collect();
    let mut mutator = Mutator {
        rng: Rng::new(0x5eed_7ab0_6ecb_7a11),
        seeds: &seeds,
        spans,
    };
    let mut tally = Tally::default();
    for _ in 0..CASES {
        // Mostly valid vectors: they are the ones whose mutants can reach the signature check.
        let from = if mutator.rng.below(4) == 0 {
            mutator.pick(seeds.len())
        } else {
            mutator.pick(valid.len())
        };
        let mut m = seeds[from].clone();
        for _ in 0..1 + mutator.rng.below(3) {
            mutator.mutate(&mut m, from);
        }
        // Keep inputs near the 512-byte limit rather than letting splices grow them without end.
        m.truncate(2 * MAX_ENCODED_LEN);
        check(&m, &originals, &mut tally);
    }
    eprintln!("random mutations: {tally:?}");
    // Without this the run could pass by never getting past the parser.
    assert!(
        tally.decoded > CASES / 20,
        "too few mutants decoded to test the signature: {tally:?}"
    );
}
