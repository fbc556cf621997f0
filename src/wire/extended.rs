//! The BEP 10 extended handshake: which extensions a peer speaks, under which message ids, and a
//! few facts about it (metadata size, client name, request queue depth).
//!
//! Reads leniently — a field of the wrong type is treated as absent, because clients disagree on
//! the optional ones and dropping a peer over its client-name type would lose a working peer —
//! but never accepts a payload that is not a bencoded dict, and never decodes it without limits.

use std::collections::BTreeMap;

use super::WireError;
use crate::bencode::{self, Limits, Value};
use crate::receipt::ext as receipt_ext;

/// Extension message id 0 is always the extended handshake.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// The name WebTorrent, libtorrent and others register BEP 9 under.
pub const UT_METADATA_NAME: &str = "ut_metadata";

/// The id *we* ask peers to use when sending us `ut_metadata` messages (our `m` entry).
/// Peers send to us with this id; we send to them with the id from *their* handshake.
pub const UT_METADATA_LOCAL_ID: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// Extension name → the id the sender wants to receive it under. Entries with id 0 (BEP 10:
    /// "disabled") or out of range are left out, so every id here is usable.
    pub m: BTreeMap<String, u8>,
    /// Size of the bencoded info dict, when the sender has it (BEP 9).
    pub metadata_size: Option<u64>,
    /// Client name and version, for display only.
    pub v: Option<String>,
    /// How many outstanding requests the sender will queue.
    pub reqq: Option<u32>,
    /// The sender's listen port; meaningless over WebRTC, kept for completeness.
    pub p: Option<u16>,
    /// The sender's reward key and receipt session (docs/receipts.md), when it speaks
    /// `seedtab_receipt`. Both or neither: one without the other is read as neither.
    pub reward: Option<RewardFields>,
}

/// What a receipt-capable peer adds to its extended handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardFields {
    /// Its Ed25519 public key.
    pub key: [u8; 32],
    /// The session id of receipts it signs for bytes it receives on this connection.
    pub session: [u8; 16],
}

/// Bounds for decoding extension payloads: small, flat dicts in practice.
pub(super) fn ext_limits() -> Limits {
    Limits {
        max_depth: 8,
        max_tokens: 4096,
        max_string_len: 1 << 16,
    }
}

pub(super) fn bencode_err(e: bencode::DecodeError) -> WireError {
    WireError::Bencode(e.to_string())
}

impl ExtendedHandshake {
    /// What seedtab sends: `ut_metadata` under [`UT_METADATA_LOCAL_ID`], our client name, and the
    /// metadata size once we have the info dict (WebTorrent only asks for metadata when it is set).
    pub fn with_ut_metadata(metadata_size: Option<u64>) -> ExtendedHandshake {
        let mut m = BTreeMap::new();
        m.insert(UT_METADATA_NAME.to_string(), UT_METADATA_LOCAL_ID);
        ExtendedHandshake {
            m,
            metadata_size,
            v: Some(concat!("seedtab ", env!("CARGO_PKG_VERSION")).to_string()),
            ..ExtendedHandshake::default()
        }
    }

    /// The id the sender wants its `ut_metadata` messages under, if it speaks it.
    pub fn ut_metadata_id(&self) -> Option<u8> {
        self.m.get(UT_METADATA_NAME).copied()
    }

    /// Decodes the payload of an extended message with id 0. Bytes after the dict are ignored, as
    /// WebTorrent does.
    pub fn decode(payload: &[u8]) -> Result<ExtendedHandshake, WireError> {
        let (v, _) = bencode::decode_prefix(payload, &ext_limits()).map_err(bencode_err)?;
        if v.as_dict().is_none() {
            return Err(WireError::BadExtended("extended handshake is not a dict"));
        }
        let mut m = BTreeMap::new();
        if let Some(dict) = v.get(b"m").and_then(Value::as_dict) {
            for (name, id) in dict {
                let (Ok(name), Some(id)) = (std::str::from_utf8(name), id.as_int()) else {
                    continue;
                };
                if let Ok(id @ 1..=255) = u8::try_from(id) {
                    m.insert(name.to_string(), id);
                }
            }
        }
        Ok(ExtendedHandshake {
            m,
            metadata_size: v
                .get_int(b"metadata_size")
                .and_then(|n| u64::try_from(n).ok()),
            v: v.get_bytes(b"v")
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            reqq: v.get_int(b"reqq").and_then(|n| u32::try_from(n).ok()),
            p: v.get_int(b"p")
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&p| p != 0),
            reward: reward_fields(&v),
        })
    }

    /// The bencoded payload (without the extension id byte). `m` is always present, even empty:
    /// bittorrent-protocol reads extension names from it unconditionally.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Value::dict();
        for (name, &id) in &self.m {
            m = m.int(name, i64::from(id));
        }
        Value::dict()
            .insert("m", m)
            .insert_opt("metadata_size", self.metadata_size.map(saturating_i64))
            .insert_opt("v", self.v.as_deref())
            .insert_opt("reqq", self.reqq.map(i64::from))
            .insert_opt("p", self.p.map(i64::from))
            .insert_opt(
                receipt_ext::HANDSHAKE_KEY,
                self.reward.map(|r| Value::bytes(r.key.to_vec())),
            )
            .insert_opt(
                receipt_ext::HANDSHAKE_SESSION,
                self.reward.map(|r| Value::bytes(r.session.to_vec())),
            )
            .build()
            .encode()
    }

    /// The id the sender wants its receipts under, if it speaks `seedtab_receipt` and sent a key.
    pub fn receipt_id(&self) -> Option<u8> {
        self.reward?;
        self.m.get(receipt_ext::EXT_NAME).copied()
    }
}

fn reward_fields(v: &Value) -> Option<RewardFields> {
    let key = v.get_bytes(receipt_ext::HANDSHAKE_KEY.as_bytes())?;
    let session = v.get_bytes(receipt_ext::HANDSHAKE_SESSION.as_bytes())?;
    Some(RewardFields {
        key: key.try_into().ok()?,
        session: session.try_into().ok()?,
    })
}

pub(super) fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_round_trips_and_names_ut_metadata() {
        let ours = ExtendedHandshake::with_ut_metadata(Some(31_337));
        let bytes = ours.encode();
        assert!(bytes.starts_with(b"d1:md11:ut_metadatai1ee13:metadata_sizei31337e1:v"));
        let back = ExtendedHandshake::decode(&bytes).unwrap();
        assert_eq!(back, ours);
        assert_eq!(back.ut_metadata_id(), Some(UT_METADATA_LOCAL_ID));
    }

    #[test]
    fn every_field_round_trips() {
        let mut h = ExtendedHandshake {
            metadata_size: Some(0),
            v: Some("µTorrent 3.5".into()),
            reqq: Some(u32::MAX),
            p: Some(65535),
            reward: Some(RewardFields {
                key: [0xee; 32],
                session: [0x5a; 16],
            }),
            ..Default::default()
        };
        h.m.insert("ut_pex".into(), 2);
        h.m.insert(receipt_ext::EXT_NAME.into(), 7);
        h.m.insert("ut_metadata".into(), 255);
        assert_eq!(ExtendedHandshake::decode(&h.encode()), Ok(h.clone()));
        assert_eq!(h.receipt_id(), Some(7));
        // A key of the wrong length is as good as none.
        let mut bad = h.clone();
        bad.reward = None;
        let short = [
            &bad.encode()[..bad.encode().len() - 1],
            b"11:seedtab_key3:abc11:seedtab_sid16:0123456789abcdefe",
        ]
        .concat();
        assert_eq!(ExtendedHandshake::decode(&short).unwrap().reward, None);
        assert_eq!(bad.receipt_id(), None);
        let empty = ExtendedHandshake::default();
        assert_eq!(empty.encode(), b"d1:mdee");
        assert_eq!(ExtendedHandshake::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn reads_a_webtorrent_handshake() {
        // As bittorrent-protocol sends it: its `extendedHandshake` fields plus the `m` mapping.
        let payload = b"d1:md11:ut_metadatai3ee13:metadata_sizei16384ee";
        let h = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(h.ut_metadata_id(), Some(3));
        assert_eq!(h.metadata_size, Some(16384));
        assert_eq!(h.v, None);
    }

    #[test]
    fn wrongly_typed_or_out_of_range_fields_count_as_absent() {
        let payload =
            b"d1:md1:ai0e1:bi256e1:ci-1e1:d1:x1:ei9e2:\xff\xfei4ee13:metadata_sizei-5e1:pi70000e4:reqq1:51:vi3ee";
        let h = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(h.m.len(), 1);
        assert_eq!(h.m.get("e"), Some(&9));
        assert_eq!(
            (h.metadata_size, h.p, h.reqq, h.v),
            (None, None, None, None)
        );
        // No `m` at all (e.g. a later handshake only updating a field) is fine.
        assert_eq!(
            ExtendedHandshake::decode(b"d4:reqqi5ee").unwrap().reqq,
            Some(5)
        );
        // Bytes after the dict are ignored.
        assert!(ExtendedHandshake::decode(b"d1:mdeeJUNK").is_ok());
    }

    #[test]
    fn refuses_non_dicts_and_bad_bencode() {
        assert_eq!(
            ExtendedHandshake::decode(b"li1ee"),
            Err(WireError::BadExtended("extended handshake is not a dict"))
        );
        assert!(matches!(
            ExtendedHandshake::decode(b""),
            Err(WireError::Bencode(_))
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:m"),
            Err(WireError::Bencode(_))
        ));
        let deep = [b"d1:m".as_slice(), &[b'l'; 100], &[b'e'; 101]].concat();
        assert!(matches!(
            ExtendedHandshake::decode(&deep),
            Err(WireError::Bencode(_))
        ));
    }
}
