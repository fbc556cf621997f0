//! The BitTorrent peer wire protocol as bytes in, values out: the 68-byte handshake, the
//! length-prefixed messages of BEP 3 and BEP 6 (fast extension), an incremental stream decoder,
//! and the BEP 10 extension protocol with BEP 9 `ut_metadata`.
//!
//! Never touches a socket, a clock or a random source, never panics on input from the wire, and
//! never allocates from a length it has not first checked against a caller-given maximum.

mod decoder;
mod extended;
mod handshake;
mod message;
mod ut_metadata;

use std::fmt;

pub use decoder::{Decoder, Frame, DEFAULT_MAX_MESSAGE_LEN};
pub use extended::{
    ExtendedHandshake, RewardFields, EXTENDED_HANDSHAKE_ID, UT_METADATA_LOCAL_ID, UT_METADATA_NAME,
};
pub use handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL_STRING};
pub use message::{encode_piece_header, BlockRef, Message, PIECE_HEADER_LEN};
pub use ut_metadata::{
    metadata_piece, MetadataAssembler, MetadataMsg, MAX_METADATA_SIZE, METADATA_PIECE_SIZE,
};

/// The block size every client requests; WebTorrent drops peers that ask for much more.
pub const BLOCK_SIZE: u32 = 16384;

/// Why bytes from a peer were refused. Every variant means the peer broke the protocol (or is not
/// speaking it); the connection should normally be dropped, except where a variant says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The stream did not open with `0x13 "BitTorrent protocol"`.
    BadProtocolString,
    /// A length prefix above the decoder's limit; refused before buffering the body.
    MessageTooLong { len: u32, max: u32 },
    /// A message whose length does not fit its id (e.g. a `have` that is not 5 bytes).
    BadLength { id: u8, len: u32 },
    /// A message id this crate does not know. [`Decoder`] skips these (BEP 3 says to ignore
    /// them) and never returns this; only [`Message::decode`] does.
    UnknownId(u8),
    /// An extension payload that is not valid bencode (the text says why).
    Bencode(String),
    /// An extension payload that is bencode but not the expected shape.
    BadExtended(&'static str),
    /// A `ut_metadata` `msg_type` outside 0..=2. BEP 9 says to ignore these: not a reason to
    /// drop the peer.
    UnknownMetadataType(i64),
    /// A metadata size that is zero or above [`MAX_METADATA_SIZE`].
    BadMetadataSize(u64),
    /// A metadata piece with an index past the end or a size other than the one it must have.
    BadMetadataPiece { piece: u32, len: usize },
    /// `finish` called before every metadata piece arrived.
    MetadataIncomplete,
    /// The assembled metadata does not hash to the info-hash; the assembler has been reset.
    MetadataHashMismatch,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadProtocolString => {
                f.write_str("peer did not send the BitTorrent handshake")
            }
            WireError::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            WireError::BadLength { id, len } => {
                write!(f, "message id {id} with invalid length {len}")
            }
            WireError::UnknownId(id) => write!(f, "unknown message id {id}"),
            WireError::Bencode(e) => write!(f, "bad bencode in extension message: {e}"),
            WireError::BadExtended(why) => write!(f, "bad extension message: {why}"),
            WireError::UnknownMetadataType(t) => write!(f, "unknown ut_metadata msg_type {t}"),
            WireError::BadMetadataSize(n) => write!(f, "unacceptable metadata size {n}"),
            WireError::BadMetadataPiece { piece, len } => {
                write!(f, "bad metadata piece {piece} of {len} bytes")
            }
            WireError::MetadataIncomplete => f.write_str("metadata is not complete"),
            WireError::MetadataHashMismatch => f.write_str("metadata does not match the info-hash"),
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_something_useful() {
        let e = WireError::MessageTooLong {
            len: 70000,
            max: 1000,
        };
        assert_eq!(
            e.to_string(),
            "message of 70000 bytes exceeds the limit of 1000"
        );
        let e = WireError::BadLength { id: 4, len: 3 };
        assert!(e.to_string().contains("id 4"));
        let boxed: Box<dyn std::error::Error> = Box::new(WireError::BadProtocolString);
        assert!(!boxed.to_string().is_empty());
    }
}
