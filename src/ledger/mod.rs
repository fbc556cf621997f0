//! The reward ledger's rules (docs/ledger.md): what a ledger does with a receipt an uploader
//! submits, given what it already holds. Receipts are cumulative, so a ledger keeps only the
//! highest one per (downloader, uploader, info-hash, session) and totals those.
//!
//! Pure decisions only: the native driver (`native::ledger`) keeps the receipts in SQLite and
//! serves them over HTTP. This module must never do I/O, read a clock, or decide anything about
//! a receipt whose signature has not been verified ([`decide`] takes only a [`Verified`]
//! receipt, which [`verify_hex`] and [`Verified::check`] alone make).

use std::fmt;

use crate::receipt::{ReceiptError, SignedReceipt};

/// The ledger's key: one downloader's receipts for one uploader, one torrent, one session.
/// Only the highest receipt under a key counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub downloader: [u8; 32],
    pub uploader: [u8; 32],
    pub info_hash: [u8; 20],
    pub session: [u8; 16],
}

impl Key {
    pub fn of(r: &SignedReceipt) -> Key {
        let r = &r.receipt;
        Key {
            downloader: r.downloader,
            uploader: r.uploader,
            info_hash: r.info_hash,
            session: r.session,
        }
    }
}

/// A receipt whose bounds and signature have been checked: the only kind [`decide`] takes, so
/// nothing unverified can reach a ledger's store. Made by [`verify_hex`] or [`Verified::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified(SignedReceipt);

impl Verified {
    /// Checks a receipt held as a value: the bounds of `Receipt::check_bounds` and the
    /// signature. Domain, version and canonical form hold by construction (`encode` writes them).
    pub fn check(r: SignedReceipt) -> Result<Verified, Rejection> {
        r.receipt.check_bounds()?;
        r.verify()?;
        Ok(Verified(r))
    }

    pub fn get(&self) -> &SignedReceipt {
        &self.0
    }

    pub fn into_inner(self) -> SignedReceipt {
        self.0
    }
}

impl std::ops::Deref for Verified {
    type Target = SignedReceipt;

    fn deref(&self) -> &SignedReceipt {
        &self.0
    }
}

/// What happens to an accepted receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The first receipt under its key, or a higher one that replaces the stored one.
    Stored,
    /// Byte for byte the receipt already stored: resubmission is idempotent and succeeds.
    Duplicate,
}

impl Accepted {
    /// `"stored"` or `"duplicate"`, as the API reports it.
    pub fn status(self) -> &'static str {
        match self {
            Accepted::Stored => "stored",
            Accepted::Duplicate => "duplicate",
        }
    }
}

/// Every reason a ledger refuses a receipt: those of the receipt itself ([`ReceiptError`]) and
/// those that come from comparing it with what the ledger holds. Each has a stable
/// [`code`](Rejection::code); [`Display`](fmt::Display) gives the human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The receipt itself is refused (not hex counts as malformed): its code is the
    /// receipt's.
    Receipt(ReceiptError),
    /// A lower `seq` than the receipt stored for the same session.
    SequenceRegressed { stored: u64, got: u64 },
    /// The `seq` of the stored receipt with different content: the downloader signed two
    /// receipts with one sequence number.
    SequenceConflict { seq: u64 },
    /// A higher `seq` that claims fewer bytes: receipts are cumulative.
    BytesDecreased { stored: u64, got: u64 },
    /// The torrent's `len` differs from the length the ledger already holds for the info-hash.
    LengthMismatch { known: u64, got: u64 },
}

impl Rejection {
    /// Every code, in the order of the docs' table.
    pub const CODES: [&'static str; 10] = [
        "malformed",
        "wrong_domain",
        "unsupported_version",
        "bad_signature",
        "exceeds_length",
        "self_receipt",
        "sequence_regressed",
        "sequence_conflict",
        "bytes_decreased",
        "length_mismatch",
    ];

    /// The stable machine-readable code; the first six are [`ReceiptError::code`]'s.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Receipt(e) => e.code(),
            Rejection::SequenceRegressed { .. } => "sequence_regressed",
            Rejection::SequenceConflict { .. } => "sequence_conflict",
            Rejection::BytesDecreased { .. } => "bytes_decreased",
            Rejection::LengthMismatch { .. } => "length_mismatch",
        }
    }

    /// The human-readable message (the same text as `to_string()`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl From<ReceiptError> for Rejection {
    fn from(e: ReceiptError) -> Rejection {
        Rejection::Receipt(e)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Receipt(e) => e.fmt(f),
            Rejection::SequenceRegressed { stored, got } => write!(
                f,
                "seq {got} is lower than the stored receipt's seq {stored} for this session"
            ),
            Rejection::SequenceConflict { seq } => write!(
                f,
                "a different receipt with seq {seq} is already stored for this session"
            ),
            Rejection::BytesDecreased { stored, got } => write!(
                f,
                "bytes {got} is less than the stored receipt's {stored}, with a higher seq"
            ),
            Rejection::LengthMismatch { known, got } => write!(
                f,
                "len {got} differs from the length {known} the ledger holds for this info-hash"
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// What the ledger does with `incoming`, given the receipt it stores under the same [`Key`] (if
/// any; it was verified when it came in) and the length it holds for the info-hash (if any).
///
/// A byte-identical resubmission is [`Accepted::Duplicate`] before anything else is compared,
/// so resending a batch always succeeds. Otherwise the length must match what the ledger knows
/// (the first stored receipt of an info-hash fixes it), the sequence must go up, and bytes must
/// not go down. Equal bytes with a higher `seq` are stored: a downloader may re-sign.
pub fn decide(
    incoming: &Verified,
    stored: Option<&SignedReceipt>,
    known_length: Option<u64>,
) -> Result<Accepted, Rejection> {
    let incoming = incoming.get();
    debug_assert!(stored.is_none_or(|s| Key::of(s) == Key::of(incoming)));
    if stored == Some(incoming) {
        // Canonical encoding: equal fields and signature are equal bytes.
        return Ok(Accepted::Duplicate);
    }
    let r = &incoming.receipt;
    if let Some(known) = known_length {
        if known != r.length {
            return Err(Rejection::LengthMismatch {
                known,
                got: r.length,
            });
        }
    }
    let Some(stored) = stored.map(|s| &s.receipt) else {
        return Ok(Accepted::Stored);
    };
    if r.seq < stored.seq {
        return Err(Rejection::SequenceRegressed {
            stored: stored.seq,
            got: r.seq,
        });
    }
    if r.seq == stored.seq {
        return Err(Rejection::SequenceConflict { seq: r.seq });
    }
    if r.bytes < stored.bytes {
        return Err(Rejection::BytesDecreased {
            stored: stored.bytes,
            got: r.bytes,
        });
    }
    Ok(Accepted::Stored)
}

/// Decodes hex (either case) of any even length; `None` for anything else.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    s.chunks_exact(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect()
}

/// A receipt as the API carries it (hex of its canonical bencoding), decoded and verified: the
/// only way a submitted receipt reaches [`decide`]. The length is checked before decoding so a
/// huge string costs nothing.
pub fn verify_hex(s: &str) -> Result<Verified, Rejection> {
    if s.len() > 2 * crate::receipt::MAX_ENCODED_LEN {
        return Err(Rejection::Receipt(ReceiptError::Malformed(
            "longer than 512 bytes",
        )));
    }
    let bytes = decode_hex(s).ok_or(Rejection::Receipt(ReceiptError::Malformed("not hex")))?;
    Ok(Verified(SignedReceipt::decode_verified(&bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{hex, public_key, sign, Receipt};

    const DL: [u8; 32] = [1; 32];
    const UL: [u8; 32] = [2; 32];

    fn receipt(seq: u64, bytes: u64) -> Verified {
        Verified::check(signed(seq, bytes)).unwrap()
    }

    fn signed(seq: u64, bytes: u64) -> SignedReceipt {
        sign(
            Receipt {
                downloader: public_key(&DL),
                uploader: public_key(&UL),
                info_hash: [0xab; 20],
                length: 1_000_000,
                session: [7; 16],
                seq,
                bytes,
                timestamp_ms: 1_790_000_000_000 + seq,
            },
            &DL,
        )
    }

    #[test]
    fn first_receipt_is_stored_and_fixes_nothing_by_itself() {
        assert_eq!(decide(&receipt(1, 10), None, None), Ok(Accepted::Stored));
        assert_eq!(
            decide(&receipt(1, 10), None, Some(1_000_000)),
            Ok(Accepted::Stored)
        );
    }

    #[test]
    fn higher_seq_with_as_many_or_more_bytes_replaces() {
        let old = signed(3, 100);
        assert_eq!(
            decide(&receipt(4, 100), Some(&old), Some(1_000_000)),
            Ok(Accepted::Stored)
        );
        assert_eq!(
            decide(&receipt(9, 5000), Some(&old), Some(1_000_000)),
            Ok(Accepted::Stored)
        );
    }

    #[test]
    fn identical_resubmission_is_a_duplicate() {
        let r = receipt(3, 100);
        assert_eq!(
            decide(&r.clone(), Some(r.get()), Some(1_000_000)),
            Ok(Accepted::Duplicate)
        );
    }

    #[test]
    fn each_ordering_violation_has_its_code() {
        let stored = signed(5, 500);
        let got = decide(&receipt(4, 900), Some(&stored), None).unwrap_err();
        assert_eq!(got, Rejection::SequenceRegressed { stored: 5, got: 4 });
        assert_eq!(got.code(), "sequence_regressed");

        // Same seq, different bytes; and same fields but another timestamp.
        let got = decide(&receipt(5, 600), Some(&stored), None).unwrap_err();
        assert_eq!(got.code(), "sequence_conflict");
        let mut other = stored.receipt.clone();
        other.timestamp_ms += 1;
        let other = Verified::check(sign(other, &DL)).unwrap();
        let got = decide(&other, Some(&stored), None).unwrap_err();
        assert_eq!(got, Rejection::SequenceConflict { seq: 5 });

        let got = decide(&receipt(6, 499), Some(&stored), None).unwrap_err();
        assert_eq!(
            got,
            Rejection::BytesDecreased {
                stored: 500,
                got: 499
            }
        );
        assert_eq!(got.code(), "bytes_decreased");
    }

    #[test]
    fn length_must_match_what_the_ledger_knows() {
        let got = decide(&receipt(1, 10), None, Some(999_999)).unwrap_err();
        assert_eq!(
            got,
            Rejection::LengthMismatch {
                known: 999_999,
                got: 1_000_000
            }
        );
        assert_eq!(got.code(), "length_mismatch");
        assert!(got.message().contains("999999"));
    }

    #[test]
    fn receipt_errors_keep_their_codes() {
        for e in [
            ReceiptError::Malformed("x"),
            ReceiptError::WrongDomain,
            ReceiptError::UnsupportedVersion(2),
            ReceiptError::BadSignature,
            ReceiptError::ExceedsLength,
            ReceiptError::SelfReceipt,
        ] {
            let r = Rejection::from(e.clone());
            assert_eq!(r.code(), e.code());
            assert_eq!(r.message(), e.to_string());
        }
    }

    #[test]
    fn codes_are_distinct_and_listed() {
        let all = [
            ReceiptError::Malformed("x").into(),
            ReceiptError::WrongDomain.into(),
            ReceiptError::UnsupportedVersion(2).into(),
            ReceiptError::BadSignature.into(),
            ReceiptError::ExceedsLength.into(),
            ReceiptError::SelfReceipt.into(),
            Rejection::SequenceRegressed { stored: 2, got: 1 },
            Rejection::SequenceConflict { seq: 1 },
            Rejection::BytesDecreased { stored: 2, got: 1 },
            Rejection::LengthMismatch { known: 2, got: 1 },
        ];
        let codes: Vec<&str> = all.iter().map(Rejection::code).collect();
        assert_eq!(codes, Rejection::CODES);
    }

    #[test]
    fn hex_input_is_decoded_then_verified() {
        let r = receipt(2, 20);
        let h = hex(&r.encode());
        assert_eq!(Verified::check(r.get().clone()), Ok(r.clone()));
        assert_eq!(verify_hex(&h), Ok(r.clone()));
        assert_eq!(verify_hex(&h.to_uppercase()), Ok(r.clone()));
        assert_eq!(
            verify_hex("zz"),
            Err(Rejection::Receipt(ReceiptError::Malformed("not hex")))
        );
        assert_eq!(
            verify_hex("abc"),
            Err(Rejection::Receipt(ReceiptError::Malformed("not hex")))
        );
        assert!(matches!(
            verify_hex(""),
            Err(Rejection::Receipt(ReceiptError::Malformed(_)))
        ));
        assert!(matches!(
            verify_hex(&"00".repeat(600)),
            Err(Rejection::Receipt(ReceiptError::Malformed(_)))
        ));
        let mut forged = r.into_inner();
        forged.signature[0] ^= 1;
        assert_eq!(
            verify_hex(&hex(&forged.encode())),
            Err(Rejection::Receipt(ReceiptError::BadSignature))
        );
        assert_eq!(
            Verified::check(forged),
            Err(Rejection::Receipt(ReceiptError::BadSignature))
        );
        let mut own = signed(1, 1).receipt;
        own.uploader = own.downloader;
        assert_eq!(
            Verified::check(sign(own, &DL)),
            Err(ReceiptError::SelfReceipt.into())
        );
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("é0"), None);
    }
}
