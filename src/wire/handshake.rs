//! The 68-byte opening message both peers send: protocol string, reserved (capability) bits,
//! info-hash and peer id. Never accepts another protocol string: without encryption there is no
//! other valid opening, and a wrong one means the other end is not a BitTorrent peer.

use super::WireError;
use crate::id::{InfoHash, PeerId};

pub const HANDSHAKE_LEN: usize = 68;

/// The first 20 bytes of every handshake: length byte 19, then the name.
pub const PROTOCOL_STRING: &[u8; 20] = b"\x13BitTorrent protocol";

/// BEP 10 extension protocol: reserved byte 5, bit 0x10.
const EXTENDED_BYTE: usize = 5;
const EXTENDED_BIT: u8 = 0x10;
/// BEP 6 fast extension: reserved byte 7, bit 0x04.
const FAST_BYTE: usize = 7;
const FAST_BIT: u8 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    /// Our handshake: advertises the extension protocol (needed for `ut_metadata`, which magnet
    /// downloads depend on) and the fast extension (`have_all`/`reject` save round trips).
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENDED_BYTE] |= EXTENDED_BIT;
        reserved[FAST_BYTE] |= FAST_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    pub fn supports_extended(&self) -> bool {
        self.reserved[EXTENDED_BYTE] & EXTENDED_BIT != 0
    }

    /// BEP 6 messages may only be sent when *both* handshakes set this bit.
    pub fn supports_fast(&self) -> bool {
        self.reserved[FAST_BYTE] & FAST_BIT != 0
    }

    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL_STRING);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Reserved bits we do not know are kept as they came: they are the peer's to set.
    pub fn decode(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if &b[..20] != PROTOCOL_STRING {
            return Err(WireError::BadProtocolString);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&b[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&b[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&b[48..68]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([0x11; 20]), PeerId(*b"-ST0100-abcdefghijkl"))
    }

    #[test]
    fn new_sets_extension_and_fast_bits_only() {
        let h = sample();
        assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert!(h.supports_extended());
        assert!(h.supports_fast());
    }

    #[test]
    fn encodes_to_the_documented_layout() {
        let bytes = sample().encode();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&bytes[28..48], &[0x11; 20]);
        assert_eq!(&bytes[48..68], b"-ST0100-abcdefghijkl");
    }

    #[test]
    fn round_trips_and_keeps_unknown_reserved_bits() {
        let mut h = sample();
        h.reserved = [0xff, 0, 0x80, 0, 0, 0, 0, 1];
        assert_eq!(Handshake::decode(&h.encode()), Ok(h));
        assert!(!h.supports_extended());
        assert!(!h.supports_fast());
    }

    #[test]
    fn refuses_other_protocols() {
        let mut bytes = sample().encode();
        bytes[0] = 18;
        assert_eq!(Handshake::decode(&bytes), Err(WireError::BadProtocolString));
        let mut bytes = sample().encode();
        bytes[5] = b't';
        assert_eq!(Handshake::decode(&bytes), Err(WireError::BadProtocolString));
        assert_eq!(
            Handshake::decode(&[0u8; 68]),
            Err(WireError::BadProtocolString)
        );
    }
}
