//! What a torrent's storage remembers besides its pieces: which pieces are verified and
//! written, whether the user paused it, how much it moved, and whether it was seeded from the
//! user's own files. Encoded as a bencoded dictionary; decoding trusts nothing (bad input is an
//! error, never a panic) and a bitfield that does not fit the torrent is refused.

use std::fmt;

use crate::bencode::{self, Limits, Value};
use crate::bitfield::Bitfield;
use crate::id::InfoHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    pub info_hash: InfoHash,
    pub have: Bitfield,
    pub paused: bool,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Milliseconds since the epoch when the torrent was added.
    pub added_ms: u64,
    /// Made from the user's own files (as opposed to downloaded).
    pub seeded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeError(pub String);

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unusable resume state: {}", self.0)
    }
}

impl std::error::Error for ResumeError {}

impl ResumeState {
    pub fn encode(&self) -> Vec<u8> {
        Value::dict()
            .int("v", 1)
            .bytes("info_hash", self.info_hash.0.to_vec())
            .int("pieces", self.have.len() as i64)
            .bytes("have", self.have.as_wire().to_vec())
            .int("paused", self.paused as i64)
            .int("uploaded", self.uploaded.min(i64::MAX as u64) as i64)
            .int("downloaded", self.downloaded.min(i64::MAX as u64) as i64)
            .int("added", self.added_ms.min(i64::MAX as u64) as i64)
            .int("seeded", self.seeded as i64)
            .build()
            .encode()
    }

    /// Reads a state; `num_pieces` is the torrent's piece count, which the bitfield must match.
    pub fn decode(bytes: &[u8], num_pieces: u32) -> Result<ResumeState, ResumeError> {
        let limits = Limits {
            max_depth: 4,
            max_tokens: 64,
            max_string_len: 1 << 20,
        };
        let v = bencode::decode_with(bytes, &limits).map_err(|e| ResumeError(e.to_string()))?;
        let int = |k: &str| {
            v.get(k.as_bytes())
                .and_then(Value::as_int)
                .filter(|&i| i >= 0)
        };
        if int("v") != Some(1) {
            return Err(ResumeError("unknown version".into()));
        }
        let ih = v
            .get(b"info_hash")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or_else(|| ResumeError("no info-hash".into()))?;
        if int("pieces") != Some(num_pieces as i64) {
            return Err(ResumeError("piece count differs from the torrent".into()));
        }
        let have_bytes = v.get(b"have").and_then(Value::as_bytes).unwrap_or_default();
        let have = Bitfield::from_wire(have_bytes, num_pieces as usize)
            .map_err(|e| ResumeError(e.to_string()))?;
        Ok(ResumeState {
            info_hash: InfoHash(ih),
            have,
            paused: int("paused") == Some(1),
            uploaded: int("uploaded").unwrap_or(0) as u64,
            downloaded: int("downloaded").unwrap_or(0) as u64,
            added_ms: int("added").unwrap_or(0) as u64,
            seeded: int("seeded") == Some(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ResumeState {
        let mut have = Bitfield::new(11);
        have.set(0);
        have.set(10);
        ResumeState {
            info_hash: InfoHash([7; 20]),
            have,
            paused: true,
            uploaded: 123,
            downloaded: 456,
            added_ms: 1_700_000_000_000,
            seeded: false,
        }
    }

    #[test]
    fn round_trip() {
        let s = state();
        assert_eq!(ResumeState::decode(&s.encode(), 11).unwrap(), s);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let bytes = state().encode();
        assert!(ResumeState::decode(&bytes, 12).is_err());
        assert!(ResumeState::decode(&bytes[..bytes.len() - 1], 11).is_err());
        assert!(ResumeState::decode(b"de", 11).is_err());
        // Every truncation and every flipped byte either fails or decodes to something sane.
        for i in 0..bytes.len() {
            let _ = ResumeState::decode(&bytes[..i], 11);
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            if let Ok(s) = ResumeState::decode(&b, 11) {
                assert_eq!(s.have.len(), 11);
            }
        }
    }
}
