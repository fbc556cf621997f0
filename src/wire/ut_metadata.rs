//! BEP 9 `ut_metadata`: fetching the info dict from peers in 16 KiB pieces, which is how a magnet
//! link becomes a torrent. Message values and encoding, plus an assembler that collects pieces
//! and accepts the result only if it hashes to the info-hash.
//!
//! Never trusts a size from a peer: the total is capped at [`MAX_METADATA_SIZE`] before any
//! buffer is allocated, and every piece must have exactly the size its index implies.

use sha1::{Digest, Sha1};

use super::extended::{bencode_err, ext_limits, saturating_i64};
use super::WireError;
use crate::bencode::{self, Value};
use crate::id::InfoHash;

pub const METADATA_PIECE_SIZE: usize = 16384;

/// Largest info dict we will fetch. Real ones are rarely above 2 MiB (the piece hashes of a
/// ~100 GB torrent); WebTorrent's own cap is 10 MB. Anything above is refused, not buffered.
pub const MAX_METADATA_SIZE: u64 = 8 << 20;

const REQUEST: i64 = 0;
const DATA: i64 = 1;
const REJECT: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    Reject {
        piece: u32,
    },
}

impl MetadataMsg {
    /// Decodes the payload of a `ut_metadata` extended message (the bytes after the extension
    /// id). An unknown `msg_type` gives [`WireError::UnknownMetadataType`], which BEP 9 says to
    /// ignore rather than drop the peer for.
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, WireError> {
        let (dict, used) = bencode::decode_prefix(payload, &ext_limits()).map_err(bencode_err)?;
        if dict.as_dict().is_none() {
            return Err(WireError::BadExtended("ut_metadata message is not a dict"));
        }
        let msg_type = dict.get_int(b"msg_type").ok_or(WireError::BadExtended(
            "ut_metadata message without msg_type",
        ))?;
        // Checked first: a future message type need not carry a piece.
        if !(REQUEST..=REJECT).contains(&msg_type) {
            return Err(WireError::UnknownMetadataType(msg_type));
        }
        let piece = dict
            .get_int(b"piece")
            .and_then(|p| u32::try_from(p).ok())
            .ok_or(WireError::BadExtended(
                "ut_metadata message without a valid piece",
            ))?;
        match msg_type {
            REQUEST => Ok(MetadataMsg::Request { piece }),
            REJECT => Ok(MetadataMsg::Reject { piece }),
            DATA => {
                let total_size = dict
                    .get_int(b"total_size")
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or(WireError::BadExtended(
                        "ut_metadata data without a valid total_size",
                    ))?;
                let data = payload.get(used..).unwrap_or_default();
                if data.len() > METADATA_PIECE_SIZE {
                    return Err(WireError::BadMetadataPiece {
                        piece,
                        len: data.len(),
                    });
                }
                Ok(MetadataMsg::Data {
                    piece,
                    total_size,
                    data: data.to_vec(),
                })
            }
            other => Err(WireError::UnknownMetadataType(other)),
        }
    }

    /// The payload to send inside an extended message with the *peer's* `ut_metadata` id.
    ///
    /// The dict holds exactly `msg_type`, `piece` and (for data) `total_size`: WebTorrent finds
    /// the end of the dict by searching for the first `ee`, which these keys never produce early.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece, total_size, data) = match self {
            MetadataMsg::Request { piece } => (REQUEST, piece, None, &[][..]),
            MetadataMsg::Reject { piece } => (REJECT, piece, None, &[][..]),
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => (
                DATA,
                piece,
                Some(saturating_i64(*total_size)),
                data.as_slice(),
            ),
        };
        let mut out = Value::dict()
            .int("msg_type", msg_type)
            .int("piece", i64::from(*piece))
            .insert_opt("total_size", total_size)
            .build()
            .encode();
        out.extend_from_slice(data);
        out
    }
}

/// Piece `piece` of an info dict we hold, for answering a request; `None` past the end.
pub fn metadata_piece(info: &[u8], piece: u32) -> Option<&[u8]> {
    let start = (piece as usize).checked_mul(METADATA_PIECE_SIZE)?;
    if start >= info.len() {
        return None;
    }
    let end = info.len().min(start + METADATA_PIECE_SIZE);
    info.get(start..end)
}

/// Collects the pieces of one info dict. Pieces may come in any order and from any peers; the
/// buffer is only allocated when the first piece arrives.
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    total_size: usize,
    buf: Vec<u8>,
    have: Vec<bool>,
    received: u32,
}

impl MetadataAssembler {
    /// Refuses a size of 0 or above [`MAX_METADATA_SIZE`].
    pub fn new(total_size: u64) -> Result<MetadataAssembler, WireError> {
        if total_size == 0 || total_size > MAX_METADATA_SIZE {
            return Err(WireError::BadMetadataSize(total_size));
        }
        // ≤ 8 MiB, so it fits usize everywhere we build.
        let total_size = total_size as usize;
        let pieces = total_size.div_ceil(METADATA_PIECE_SIZE);
        Ok(MetadataAssembler {
            total_size,
            buf: Vec::new(),
            have: vec![false; pieces],
            received: 0,
        })
    }

    pub fn total_size(&self) -> u64 {
        self.total_size as u64
    }

    pub fn num_pieces(&self) -> u32 {
        self.have.len() as u32
    }

    /// The size piece `piece` must have: 16 KiB except the last; `None` past the end.
    pub fn piece_len(&self, piece: u32) -> Option<usize> {
        let start = (piece as usize).checked_mul(METADATA_PIECE_SIZE)?;
        (start < self.total_size).then(|| (self.total_size - start).min(METADATA_PIECE_SIZE))
    }

    pub fn has_piece(&self, piece: u32) -> bool {
        self.have.get(piece as usize).copied().unwrap_or(false)
    }

    /// The lowest-numbered piece not yet received.
    pub fn next_missing(&self) -> Option<u32> {
        self.have.iter().position(|h| !h).map(|i| i as u32)
    }

    /// Every piece not yet received, lowest first, to spread requests over several peers.
    pub fn missing_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.have
            .iter()
            .enumerate()
            .filter(|(_, h)| !**h)
            .map(|(i, _)| i as u32)
    }

    /// Stores a piece. A piece received twice is overwritten (the hash check decides at the end).
    pub fn insert(&mut self, piece: u32, data: &[u8]) -> Result<(), WireError> {
        let bad = WireError::BadMetadataPiece {
            piece,
            len: data.len(),
        };
        let want = self.piece_len(piece).ok_or_else(|| bad.clone())?;
        if data.len() != want {
            return Err(bad);
        }
        if self.buf.is_empty() {
            self.buf = vec![0; self.total_size];
        }
        let start = piece as usize * METADATA_PIECE_SIZE;
        self.buf[start..start + want].copy_from_slice(data);
        let slot = &mut self.have[piece as usize];
        if !*slot {
            *slot = true;
            self.received += 1;
        }
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.received as usize == self.have.len()
    }

    /// The info dict, if every piece is in and it hashes to `expected`. On success the assembler
    /// is left empty; on a mismatch it is reset so the pieces can be fetched again (from other
    /// peers: at least one of those that sent pieces lied).
    pub fn finish(&mut self, expected: &InfoHash) -> Result<Vec<u8>, WireError> {
        if !self.is_complete() {
            return Err(WireError::MetadataIncomplete);
        }
        let digest: [u8; 20] = Sha1::digest(&self.buf).into();
        let ok = digest == expected.0;
        let buf = std::mem::take(&mut self.buf);
        self.reset();
        if ok {
            Ok(buf)
        } else {
            Err(WireError::MetadataHashMismatch)
        }
    }

    /// Forgets every piece received.
    pub fn reset(&mut self) {
        self.have.iter_mut().for_each(|h| *h = false);
        self.received = 0;
        self.buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_of(len: usize) -> (Vec<u8>, InfoHash) {
        let info: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let hash = InfoHash(Sha1::digest(&info).into());
        (info, hash)
    }

    #[test]
    fn messages_round_trip() {
        let msgs = [
            MetadataMsg::Request { piece: 0 },
            MetadataMsg::Request { piece: u32::MAX },
            MetadataMsg::Reject { piece: 3 },
            MetadataMsg::Data {
                piece: 1,
                total_size: 20000,
                data: vec![5; 3616],
            },
            MetadataMsg::Data {
                piece: 0,
                total_size: 16384,
                data: vec![6; 16384],
            },
        ];
        for m in msgs {
            assert_eq!(MetadataMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn encodes_as_bep9_and_webtorrent_expect() {
        assert_eq!(
            MetadataMsg::Request { piece: 2 }.encode(),
            b"d8:msg_typei0e5:piecei2ee"
        );
        assert_eq!(
            MetadataMsg::Reject { piece: 0 }.encode(),
            b"d8:msg_typei2e5:piecei0ee"
        );
        let data = MetadataMsg::Data {
            piece: 1,
            total_size: 20000,
            data: b"eexyz".to_vec(),
        };
        let bytes = data.encode();
        let dict = b"d8:msg_typei1e5:piecei1e10:total_sizei20000ee";
        assert!(bytes.starts_with(dict));
        assert_eq!(&bytes[dict.len()..], b"eexyz");
        // WebTorrent splits the dict from the data at the first "ee".
        let split = bytes.windows(2).position(|w| w == b"ee").unwrap() + 2;
        assert_eq!(split, dict.len());
    }

    #[test]
    fn decode_refusals() {
        assert_eq!(
            MetadataMsg::decode(b"d8:msg_typei7e5:piecei0ee"),
            Err(WireError::UnknownMetadataType(7))
        );
        assert!(matches!(
            MetadataMsg::decode(b"d5:piecei0ee"),
            Err(WireError::BadExtended(_))
        ));
        assert!(matches!(
            MetadataMsg::decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(WireError::BadExtended(_))
        ));
        assert!(matches!(
            MetadataMsg::decode(b"d8:msg_typei1e5:piecei0ee"),
            Err(WireError::BadExtended(_))
        ));
        assert!(matches!(
            MetadataMsg::decode(b"i1e"),
            Err(WireError::BadExtended(_))
        ));
        assert!(matches!(
            MetadataMsg::decode(b"d8:msg_type"),
            Err(WireError::Bencode(_))
        ));
        let mut too_big = MetadataMsg::Data {
            piece: 0,
            total_size: 1 << 20,
            data: vec![],
        }
        .encode();
        too_big.resize(too_big.len() + METADATA_PIECE_SIZE + 1, 0);
        assert!(matches!(
            MetadataMsg::decode(&too_big),
            Err(WireError::BadMetadataPiece {
                piece: 0,
                len: 16385
            })
        ));
    }

    #[test]
    fn assembler_sizes() {
        assert_eq!(
            MetadataAssembler::new(0).unwrap_err(),
            WireError::BadMetadataSize(0)
        );
        assert!(MetadataAssembler::new(MAX_METADATA_SIZE + 1).is_err());
        assert!(MetadataAssembler::new(u64::MAX).is_err());
        assert_eq!(
            MetadataAssembler::new(MAX_METADATA_SIZE)
                .unwrap()
                .num_pieces(),
            512
        );
        let a = MetadataAssembler::new(16385).unwrap();
        assert_eq!(a.num_pieces(), 2);
        assert_eq!(
            (a.piece_len(0), a.piece_len(1), a.piece_len(2)),
            (Some(16384), Some(1), None)
        );
        assert_eq!(a.piece_len(u32::MAX), None);
        assert_eq!(MetadataAssembler::new(16384).unwrap().num_pieces(), 1);
    }

    #[test]
    fn assembles_out_of_order_and_checks_the_hash() {
        let (info, hash) = info_of(3 * METADATA_PIECE_SIZE + 100);
        let mut a = MetadataAssembler::new(info.len() as u64).unwrap();
        assert_eq!(a.missing_pieces().collect::<Vec<_>>(), [0, 1, 2, 3]);
        for piece in [3u32, 1, 0] {
            a.insert(piece, metadata_piece(&info, piece).unwrap())
                .unwrap();
        }
        assert!(!a.is_complete());
        assert_eq!(a.next_missing(), Some(2));
        assert_eq!(a.finish(&hash), Err(WireError::MetadataIncomplete));
        a.insert(2, metadata_piece(&info, 2).unwrap()).unwrap();
        assert!(a.is_complete());
        assert_eq!(a.next_missing(), None);
        assert_eq!(a.finish(&hash).unwrap(), info);
        assert!(!a.is_complete());
    }

    #[test]
    fn wrong_hash_resets_for_refetch() {
        let (info, hash) = info_of(20000);
        let mut a = MetadataAssembler::new(20000).unwrap();
        a.insert(0, metadata_piece(&info, 0).unwrap()).unwrap();
        let mut bad = metadata_piece(&info, 1).unwrap().to_vec();
        bad[0] ^= 1;
        a.insert(1, &bad).unwrap();
        assert_eq!(a.finish(&hash), Err(WireError::MetadataHashMismatch));
        assert_eq!(a.next_missing(), Some(0));
        assert!(!a.has_piece(1));
        a.insert(0, metadata_piece(&info, 0).unwrap()).unwrap();
        a.insert(1, metadata_piece(&info, 1).unwrap()).unwrap();
        assert_eq!(a.finish(&hash).unwrap(), info);
    }

    #[test]
    fn pieces_of_the_wrong_size_or_index_are_refused() {
        let mut a = MetadataAssembler::new(20000).unwrap();
        let err = |piece, len| Err(WireError::BadMetadataPiece { piece, len });
        assert_eq!(a.insert(0, &[0; 100]), err(0, 100));
        assert_eq!(a.insert(1, &[0; 16384]), err(1, 16384));
        assert_eq!(a.insert(1, &[0; 3615]), err(1, 3615));
        assert_eq!(a.insert(2, &[]), err(2, 0));
        assert_eq!(a.insert(u32::MAX, &[0; 1]), err(u32::MAX, 1));
        assert!(a.insert(1, &[0; 3616]).is_ok());
        assert!(a.has_piece(1));
    }

    #[test]
    fn serving_pieces() {
        let (info, _) = info_of(16384 + 10);
        assert_eq!(metadata_piece(&info, 0).unwrap().len(), 16384);
        assert_eq!(metadata_piece(&info, 1).unwrap(), &info[16384..]);
        assert_eq!(metadata_piece(&info, 2), None);
        assert_eq!(metadata_piece(&info, u32::MAX), None);
        assert_eq!(metadata_piece(&[], 0), None);
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut rng = crate::rng::Rng::new(99);
        let seeds = [
            MetadataMsg::Data {
                piece: 1,
                total_size: 20000,
                data: vec![1; 40],
            }
            .encode(),
            b"d1:md11:ut_metadatai1ee13:metadata_sizei5ee".to_vec(),
        ];
        for round in 0..3000 {
            let mut p = seeds[round % 2].clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(p.len() as u64) as usize;
                p[i] = rng.next_u64() as u8;
            }
            p.truncate(rng.below(p.len() as u64 + 1) as usize);
            let _ = MetadataMsg::decode(&p);
            let _ = super::super::ExtendedHandshake::decode(&p);
        }
    }
}
