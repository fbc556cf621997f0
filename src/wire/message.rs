//! The length-prefixed peer messages of BEP 3, BEP 6 (fast extension) and the BEP 10 envelope:
//! their values, their encoding, and decoding of one already-delimited message body.
//! Never accepts a fixed-size message with the wrong size: a wrong size means the stream is out of
//! step, and everything after it would be misread.

use super::WireError;

/// The bytes before a piece's block data: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const SUGGEST: u8 = 0x0D;
const HAVE_ALL: u8 = 0x0E;
const HAVE_NONE: u8 = 0x0F;
const REJECT: u8 = 0x10;
const ALLOWED_FAST: u8 = 0x11;
const EXTENDED: u8 = 20;

/// One block of a piece, as named by `request`, `cancel` and `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// Raw wire bytes; check them with `Bitfield::from_wire` once the piece count is known.
    Bitfield(Vec<u8>),
    Request(BlockRef),
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel(BlockRef),
    /// DHT port (BEP 5); meaningless over WebRTC but harmless to read.
    Port(u16),
    Suggest(u32),
    HaveAll,
    HaveNone,
    Reject(BlockRef),
    AllowedFast(u32),
    /// `id` is the *receiver's* extension id (0 is the extended handshake); payload is opaque here.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
}

impl Message {
    /// The message id byte, or `None` for keep-alive (which has none).
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have(_) => HAVE,
            Message::Bitfield(_) => BITFIELD,
            Message::Request(_) => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel(_) => CANCEL,
            Message::Port(_) => PORT,
            Message::Suggest(_) => SUGGEST,
            Message::HaveAll => HAVE_ALL,
            Message::HaveNone => HAVE_NONE,
            Message::Reject(_) => REJECT,
            Message::AllowedFast(_) => ALLOWED_FAST,
            Message::Extended { .. } => EXTENDED,
        })
    }

    /// Bytes after the length prefix.
    fn body_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Port(_) => 3,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 13,
            Message::Bitfield(b) => 1 + b.len(),
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }

    /// Length on the wire, prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// Appends the message, length prefix included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        if let Message::Piece { index, begin, data } = self {
            encode_piece_header(*index, *begin, len_u32(data.len()), out);
            out.extend_from_slice(data);
            return;
        }
        out.extend_from_slice(&len_u32(self.body_len()).to_be_bytes());
        let Some(id) = self.id() else { return };
        out.push(id);
        match self {
            Message::Have(i) | Message::Suggest(i) | Message::AllowedFast(i) => {
                out.extend_from_slice(&i.to_be_bytes())
            }
            Message::Request(b) | Message::Cancel(b) | Message::Reject(b) => {
                out.extend_from_slice(&b.index.to_be_bytes());
                out.extend_from_slice(&b.begin.to_be_bytes());
                out.extend_from_slice(&b.length.to_be_bytes());
            }
            Message::Port(p) => out.extend_from_slice(&p.to_be_bytes()),
            Message::Bitfield(b) => out.extend_from_slice(b),
            Message::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            _ => {}
        }
    }

    /// Decodes one message body: the bytes after the length prefix (empty is a keep-alive).
    /// Unknown ids give [`WireError::UnknownId`] so the caller can choose to skip them.
    pub fn decode(body: &[u8]) -> Result<Message, WireError> {
        let Some((&id, p)) = body.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let bad = || WireError::BadLength {
            id,
            len: len_u32(body.len()),
        };
        let exact = |n: usize| if p.len() == n { Ok(()) } else { Err(bad()) };
        Ok(match id {
            CHOKE => exact(0).map(|_| Message::Choke)?,
            UNCHOKE => exact(0).map(|_| Message::Unchoke)?,
            INTERESTED => exact(0).map(|_| Message::Interested)?,
            NOT_INTERESTED => exact(0).map(|_| Message::NotInterested)?,
            HAVE_ALL => exact(0).map(|_| Message::HaveAll)?,
            HAVE_NONE => exact(0).map(|_| Message::HaveNone)?,
            HAVE => exact(4).map(|_| Message::Have(be32(p, 0)))?,
            SUGGEST => exact(4).map(|_| Message::Suggest(be32(p, 0)))?,
            ALLOWED_FAST => exact(4).map(|_| Message::AllowedFast(be32(p, 0)))?,
            REQUEST => exact(12).map(|_| Message::Request(block_ref(p)))?,
            CANCEL => exact(12).map(|_| Message::Cancel(block_ref(p)))?,
            REJECT => exact(12).map(|_| Message::Reject(block_ref(p)))?,
            PORT => exact(2).map(|_| Message::Port(u16::from_be_bytes([p[0], p[1]])))?,
            BITFIELD => Message::Bitfield(p.to_vec()),
            PIECE => {
                if p.len() < 8 {
                    return Err(bad());
                }
                Message::Piece {
                    index: be32(p, 0),
                    begin: be32(p, 4),
                    data: p[8..].to_vec(),
                }
            }
            EXTENDED => {
                let Some((&ext, payload)) = p.split_first() else {
                    return Err(bad());
                };
                Message::Extended {
                    id: ext,
                    payload: payload.to_vec(),
                }
            }
            other => return Err(WireError::UnknownId(other)),
        })
    }
}

/// Writes the 13-byte header of a `piece` message carrying `data_len` bytes, so a driver can
/// append the block straight from storage instead of building a `Message::Piece` copy first.
pub fn encode_piece_header(index: u32, begin: u32, data_len: u32, out: &mut Vec<u8>) {
    // Saturating: a caller passing a block near 4 GiB gets a refused message, not a panic.
    out.extend_from_slice(&data_len.saturating_add(9).to_be_bytes());
    out.push(PIECE);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&begin.to_be_bytes());
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Callers have checked `p.len() >= at + 4`.
fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

fn block_ref(p: &[u8]) -> BlockRef {
    BlockRef {
        index: be32(p, 0),
        begin: be32(p, 4),
        length: be32(p, 8),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One of every message, with field values that catch byte-order and offset mistakes.
    pub(crate) fn every_message() -> Vec<Message> {
        let b = BlockRef {
            index: 0x0102_0304,
            begin: 0x0004_0000,
            length: 16384,
        };
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(0xDEAD_BEEF),
            Message::Bitfield(vec![0xff, 0x80]),
            Message::Bitfield(vec![]),
            Message::Request(b),
            Message::Piece {
                index: 7,
                begin: 16384,
                data: (0..=255).collect(),
            },
            Message::Piece {
                index: 0,
                begin: 0,
                data: vec![],
            },
            Message::Cancel(b),
            Message::Port(6881),
            Message::Suggest(3),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(b),
            Message::AllowedFast(u32::MAX),
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai1eee".to_vec(),
            },
            Message::Extended {
                id: 3,
                payload: vec![],
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in every_message() {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(out.len(), m.encoded_len(), "{m:?}");
            let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
            assert_eq!(len, out.len() - 4, "{m:?}");
            assert_eq!(Message::decode(&out[4..]), Ok(m.clone()));
            assert_eq!(m.id(), out.get(4).copied());
        }
    }

    #[test]
    fn known_encodings() {
        let enc = |m: Message| {
            let mut out = vec![0xAA]; // encode appends, never overwrites
            m.encode(&mut out);
            out.remove(0);
            out
        };
        assert_eq!(enc(Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(enc(Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(enc(Message::Have(258)), [0, 0, 0, 5, 4, 0, 0, 1, 2]);
        assert_eq!(enc(Message::Port(0x1AE1)), [0, 0, 0, 3, 9, 0x1A, 0xE1]);
        assert_eq!(enc(Message::HaveAll), [0, 0, 0, 1, 0x0E]);
        assert_eq!(
            enc(Message::Reject(BlockRef {
                index: 1,
                begin: 2,
                length: 3
            })),
            [0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        assert_eq!(
            enc(Message::Extended {
                id: 1,
                payload: b"de".to_vec()
            }),
            [0, 0, 0, 4, 20, 1, b'd', b'e']
        );
    }

    #[test]
    fn piece_header_matches_full_encoding() {
        let data = vec![9u8; 1000];
        let mut full = Vec::new();
        Message::Piece {
            index: 5,
            begin: 32768,
            data: data.clone(),
        }
        .encode(&mut full);
        let mut split = Vec::new();
        encode_piece_header(5, 32768, 1000, &mut split);
        assert_eq!(split.len(), PIECE_HEADER_LEN);
        split.extend_from_slice(&data);
        assert_eq!(split, full);
    }

    #[test]
    fn fixed_size_messages_with_wrong_lengths_are_refused() {
        let cases: &[(u8, usize)] = &[
            (CHOKE, 0),
            (UNCHOKE, 0),
            (INTERESTED, 0),
            (NOT_INTERESTED, 0),
            (HAVE_ALL, 0),
            (HAVE_NONE, 0),
            (HAVE, 4),
            (SUGGEST, 4),
            (ALLOWED_FAST, 4),
            (REQUEST, 12),
            (CANCEL, 12),
            (REJECT, 12),
            (PORT, 2),
        ];
        for &(id, good) in cases {
            let mut body = vec![id];
            body.resize(1 + good, 0);
            assert!(Message::decode(&body).is_ok(), "id {id}");
            for wrong in [good + 1, good.wrapping_sub(1)] {
                if wrong > 64 {
                    continue;
                }
                let mut body = vec![id];
                body.resize(1 + wrong, 0);
                let len = body.len() as u32;
                assert_eq!(
                    Message::decode(&body),
                    Err(WireError::BadLength { id, len })
                );
            }
        }
        // Variable-size messages still need their fixed part.
        assert_eq!(
            Message::decode(&[PIECE, 0, 0, 0, 1, 0, 0, 0]),
            Err(WireError::BadLength { id: PIECE, len: 8 })
        );
        assert_eq!(
            Message::decode(&[EXTENDED]),
            Err(WireError::BadLength {
                id: EXTENDED,
                len: 1
            })
        );
    }

    #[test]
    fn unknown_ids_are_reported_not_guessed() {
        for id in [10u8, 11, 12, 18, 19, 21, 255] {
            assert_eq!(
                Message::decode(&[id, 1, 2, 3]),
                Err(WireError::UnknownId(id))
            );
        }
    }
}
