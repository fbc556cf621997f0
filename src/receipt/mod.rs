//! Reward receipts (docs/receipts.md): a downloader's Ed25519-signed statement of how many
//! verified bytes it received from one uploader over one session, cumulative and monotonic.
//!
//! This module is the format and the checks every holder of a receipt makes: canonical bencode,
//! the domain and version, bounds, and the signature. It must never trust a receipt before
//! [`SignedReceipt::verify`] has passed, never accept a non-canonical encoding (one receipt, one
//! byte string, so a ledger can key on it), and never hold a private key of a browser: the web
//! driver signs with a non-extractable WebCrypto key, [`sign`] exists for native tools and tests.

pub mod ext;

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::bencode::{self, Limits, Value};

/// What every receipt says it is, inside the signed dict and as the first bytes signed, so a
/// signature made for anything else (BEP 44 items, another protocol's bencode) never verifies.
pub const DOMAIN: &str = "seedtab-receipt";
/// The format described in docs/receipts.md.
pub const VERSION: i64 = 1;
/// Prepended to the canonical bencoding of the unsigned fields to form the signed message.
pub const SIGNING_PREFIX: &[u8] = b"seedtab-receipt/1\n";
/// A signed receipt is about 300 bytes; anything longer is not one.
pub const MAX_ENCODED_LEN: usize = 512;
/// Integers stay within what JavaScript numbers hold exactly, so browsers need no BigInt.
pub const MAX_INT: u64 = (1 << 53) - 1;

/// The fields a downloader signs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The signer's Ed25519 public key: who received the bytes.
    pub downloader: [u8; 32],
    /// Who sent them, as announced in the uploader's extended handshake.
    pub uploader: [u8; 32],
    pub info_hash: [u8; 20],
    /// The torrent's total length in bytes; `bytes` can never pass it.
    pub length: u64,
    /// Chosen at random by the downloader for one connection.
    pub session: [u8; 16],
    /// Starts at 1 and goes up by at least one with every receipt of the session.
    pub seq: u64,
    /// Cumulative verified bytes received from the uploader in this session.
    pub bytes: u64,
    /// Wall-clock time of signing, milliseconds since the Unix epoch (informational).
    pub timestamp_ms: u64,
}

/// A receipt with its signature, as carried on the wire, kept by uploaders and sent to ledgers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub signature: [u8; 64],
}

/// Why a receipt was refused. Every variant has a stable [`code`](ReceiptError::code) that the
/// ledger returns to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not a canonical bencoded dict with exactly the fields of docs/receipts.md.
    Malformed(&'static str),
    /// `dom` is not [`DOMAIN`].
    WrongDomain,
    /// `v` is not a version this code speaks.
    UnsupportedVersion(i64),
    /// The signature does not verify under the downloader key, or the key is not a valid point.
    BadSignature,
    /// `bytes` is larger than the torrent's `len`.
    ExceedsLength,
    /// Downloader and uploader are the same key: nobody earns from themselves.
    SelfReceipt,
}

impl ReceiptError {
    /// The stable machine-readable code (docs/receipts.md, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptError::Malformed(_) => "malformed",
            ReceiptError::WrongDomain => "wrong_domain",
            ReceiptError::UnsupportedVersion(_) => "unsupported_version",
            ReceiptError::BadSignature => "bad_signature",
            ReceiptError::ExceedsLength => "exceeds_length",
            ReceiptError::SelfReceipt => "self_receipt",
        }
    }
}

impl fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptError::Malformed(why) => write!(f, "malformed receipt: {why}"),
            ReceiptError::WrongDomain => write!(f, "not a {DOMAIN} (wrong domain)"),
            ReceiptError::UnsupportedVersion(v) => write!(f, "unsupported receipt version {v}"),
            ReceiptError::BadSignature => write!(f, "the signature does not verify"),
            ReceiptError::ExceedsLength => write!(f, "bytes exceed the torrent's length"),
            ReceiptError::SelfReceipt => write!(f, "downloader and uploader are the same key"),
        }
    }
}

impl std::error::Error for ReceiptError {}

fn limits() -> Limits {
    Limits {
        max_depth: 2,
        max_tokens: 32,
        max_string_len: 64,
    }
}

fn int(n: u64) -> i64 {
    // Callers keep every integer within MAX_INT; saturate rather than wrap if one did not.
    i64::try_from(n.min(MAX_INT)).unwrap_or(i64::MAX)
}

impl Receipt {
    /// The unsigned fields as a bencode dict (`dom` and `v` included, `sig` not).
    fn to_value(&self) -> bencode::DictBuilder {
        Value::dict()
            .int("bytes", int(self.bytes))
            .bytes("dl", self.downloader.to_vec())
            .bytes("dom", DOMAIN)
            .bytes("ih", self.info_hash.to_vec())
            .int("len", int(self.length))
            .int("seq", int(self.seq))
            .bytes("sid", self.session.to_vec())
            .int("ts", int(self.timestamp_ms))
            .bytes("ul", self.uploader.to_vec())
            .int("v", VERSION)
    }

    /// Exactly the bytes an Ed25519 signature covers: [`SIGNING_PREFIX`] then the canonical
    /// bencoding of the unsigned fields.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut out = SIGNING_PREFIX.to_vec();
        bencode::encode_into(&self.to_value().build(), &mut out);
        out
    }

    /// Checks that hold for every receipt before any signature is looked at.
    pub fn check_bounds(&self) -> Result<(), ReceiptError> {
        if self.seq == 0 {
            return Err(ReceiptError::Malformed("seq starts at 1"));
        }
        for n in [self.length, self.seq, self.bytes, self.timestamp_ms] {
            if n > MAX_INT {
                return Err(ReceiptError::Malformed("integer above 2^53 - 1"));
            }
        }
        if self.bytes > self.length {
            return Err(ReceiptError::ExceedsLength);
        }
        if self.downloader == self.uploader {
            return Err(ReceiptError::SelfReceipt);
        }
        Ok(())
    }
}

impl SignedReceipt {
    /// The canonical bencoding: the unsigned fields plus `sig`.
    pub fn encode(&self) -> Vec<u8> {
        self.receipt
            .to_value()
            .bytes("sig", self.signature.to_vec())
            .build()
            .encode()
    }

    /// Parses a receipt without checking its signature: the structure must be exact and
    /// canonical, the domain and version ours, and the bounds of [`Receipt::check_bounds`] hold.
    /// Nothing is to be believed until [`verify`](Self::verify) passes as well.
    pub fn decode(input: &[u8]) -> Result<SignedReceipt, ReceiptError> {
        if input.len() > MAX_ENCODED_LEN {
            return Err(ReceiptError::Malformed("longer than 512 bytes"));
        }
        let v = bencode::decode_with(input, &limits())
            .map_err(|_| ReceiptError::Malformed("not valid bencode"))?;
        let dict = v.as_dict().ok_or(ReceiptError::Malformed("not a dict"))?;
        // Domain and version first, so a receipt of another kind gets the error that says so.
        match v.get(b"dom").map(|d| d.as_bytes()) {
            Some(Some(d)) if d == DOMAIN.as_bytes() => {}
            Some(Some(_)) => return Err(ReceiptError::WrongDomain),
            _ => return Err(ReceiptError::Malformed("no dom")),
        }
        match v.get_int(b"v") {
            Some(VERSION) => {}
            Some(other) => return Err(ReceiptError::UnsupportedVersion(other)),
            None => return Err(ReceiptError::Malformed("no v")),
        }
        const FIELDS: [&[u8]; 11] = [
            b"bytes", b"dl", b"dom", b"ih", b"len", b"seq", b"sid", b"sig", b"ts", b"ul", b"v",
        ];
        if dict.len() != FIELDS.len() || !FIELDS.iter().all(|k| dict.contains_key(*k)) {
            return Err(ReceiptError::Malformed(
                "fields are not exactly those of version 1",
            ));
        }
        let uint = |key: &[u8], what: &'static str| -> Result<u64, ReceiptError> {
            v.get_int(key)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(ReceiptError::Malformed(what))
        };
        let receipt = Receipt {
            downloader: fixed(&v, b"dl", "dl is not 32 bytes")?,
            uploader: fixed(&v, b"ul", "ul is not 32 bytes")?,
            info_hash: fixed(&v, b"ih", "ih is not 20 bytes")?,
            length: uint(b"len", "len is not a non-negative integer")?,
            session: fixed(&v, b"sid", "sid is not 16 bytes")?,
            seq: uint(b"seq", "seq is not a non-negative integer")?,
            bytes: uint(b"bytes", "bytes is not a non-negative integer")?,
            timestamp_ms: uint(b"ts", "ts is not a non-negative integer")?,
        };
        receipt.check_bounds()?;
        let signed = SignedReceipt {
            receipt,
            signature: fixed(&v, b"sig", "sig is not 64 bytes")?,
        };
        // One receipt has one encoding: unsorted keys or other non-canonical forms that the
        // bencode reader tolerates are refused here.
        if signed.encode() != input {
            return Err(ReceiptError::Malformed("not canonical bencode"));
        }
        Ok(signed)
    }

    /// Checks the Ed25519 signature under the downloader key (strict: no small-order keys, no
    /// non-canonical signatures).
    pub fn verify(&self) -> Result<(), ReceiptError> {
        let key = VerifyingKey::from_bytes(&self.receipt.downloader)
            .map_err(|_| ReceiptError::BadSignature)?;
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.receipt.signing_message(), &sig)
            .map_err(|_| ReceiptError::BadSignature)
    }

    /// [`decode`](Self::decode) then [`verify`](Self::verify).
    pub fn decode_verified(input: &[u8]) -> Result<SignedReceipt, ReceiptError> {
        let r = SignedReceipt::decode(input)?;
        r.verify()?;
        Ok(r)
    }
}

fn fixed<const N: usize>(
    v: &Value,
    key: &[u8],
    what: &'static str,
) -> Result<[u8; N], ReceiptError> {
    v.get_bytes(key)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(ReceiptError::Malformed(what))
}

/// The public key of an Ed25519 secret seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Signs with a secret seed held in memory: for native tools, benchmarks and test vectors.
/// Browsers sign with their WebCrypto key instead and never see the seed.
pub fn sign(receipt: Receipt, seed: &[u8; 32]) -> SignedReceipt {
    let key = SigningKey::from_bytes(seed);
    let signature = key.sign(&receipt.signing_message()).to_bytes();
    SignedReceipt { receipt, signature }
}

/// Lowercase hex, the form keys and info-hashes take in JSON and the ledger's API.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses exactly `N` bytes of hex (either case).
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DL_SEED: [u8; 32] = [1; 32];
    const UL_SEED: [u8; 32] = [2; 32];

    fn sample() -> Receipt {
        Receipt {
            downloader: public_key(&DL_SEED),
            uploader: public_key(&UL_SEED),
            info_hash: [0xab; 20],
            length: 1_000_000,
            session: [7; 16],
            seq: 3,
            bytes: 524_288,
            timestamp_ms: 1_790_000_000_000,
        }
    }

    #[test]
    fn signed_receipts_round_trip_and_verify() {
        let r = sign(sample(), &DL_SEED);
        let bytes = r.encode();
        assert!(bytes.len() < MAX_ENCODED_LEN);
        let back = SignedReceipt::decode_verified(&bytes).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_message_is_prefix_then_canonical_fields() {
        let m = sample().signing_message();
        assert!(m.starts_with(b"seedtab-receipt/1\nd5:bytesi524288e2:dl32:"));
        assert!(m.ends_with(b"1:vi1ee"));
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let good = sign(sample(), &DL_SEED);
        let mut tampered = good.clone();
        tampered.receipt.bytes += 1;
        assert_eq!(tampered.verify(), Err(ReceiptError::BadSignature));
        let mut tampered = good.clone();
        tampered.receipt.uploader = public_key(&[3; 32]);
        assert_eq!(tampered.verify(), Err(ReceiptError::BadSignature));
        // Signed by someone else than the downloader it names.
        let forged = sign(sample(), &[9; 32]);
        assert_eq!(forged.verify(), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn domain_version_and_bounds_have_their_own_errors() {
        let enc = sign(sample(), &DL_SEED).encode();
        let swap = |from: &[u8], to: &[u8]| -> Vec<u8> {
            let at = enc.windows(from.len()).position(|w| w == from).unwrap();
            [&enc[..at], to, &enc[at + from.len()..]].concat()
        };
        assert_eq!(
            SignedReceipt::decode(&swap(b"15:seedtab-receipt", b"15:seedtab-receiqt")),
            Err(ReceiptError::WrongDomain)
        );
        assert_eq!(
            SignedReceipt::decode(&swap(b"1:vi1e", b"1:vi2e")),
            Err(ReceiptError::UnsupportedVersion(2))
        );
        let mut big = sample();
        big.bytes = big.length + 1;
        assert_eq!(
            SignedReceipt::decode(&sign(big, &DL_SEED).encode()),
            Err(ReceiptError::ExceedsLength)
        );
        let mut own = sample();
        own.uploader = own.downloader;
        assert_eq!(
            SignedReceipt::decode(&sign(own, &DL_SEED).encode()),
            Err(ReceiptError::SelfReceipt)
        );
        let mut zero = sample();
        zero.seq = 0;
        assert!(matches!(
            SignedReceipt::decode(&sign(zero, &DL_SEED).encode()),
            Err(ReceiptError::Malformed(_))
        ));
    }

    #[test]
    fn non_canonical_or_extra_fields_are_malformed() {
        let enc = sign(sample(), &DL_SEED).encode();
        // An extra field.
        let extra = [&enc[..enc.len() - 1], b"1:xi0ee"].concat();
        assert!(matches!(
            SignedReceipt::decode(&extra),
            Err(ReceiptError::Malformed(_))
        ));
        // A leading zero would be a second encoding of the same number; bencode forbids it.
        let at = enc.windows(4).position(|w| w == b"seqi").unwrap() + 4;
        let padded = [&enc[..at], b"0", &enc[at..]].concat();
        assert!(matches!(
            SignedReceipt::decode(&padded),
            Err(ReceiptError::Malformed(_))
        ));
        assert!(SignedReceipt::decode(b"").is_err());
        assert!(SignedReceipt::decode(b"le").is_err());
        assert!(SignedReceipt::decode(&vec![b'd'; 600]).is_err());
    }

    #[test]
    fn hex_round_trips() {
        let k = public_key(&DL_SEED);
        assert_eq!(from_hex::<32>(&hex(&k)), Some(k));
        assert_eq!(from_hex::<32>("zz"), None);
        assert_eq!(from_hex::<2>("0aFf"), Some([0x0a, 0xff]));
    }
}
