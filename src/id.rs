//! 20-byte identifiers (info-hash, peer id) and their text forms: hex, and the latin-1 "binary
//! string" form the WebSocket tracker protocol uses (one char per byte, U+0000..U+00FF).
//! Never allocates more than the 40 characters a hex form needs; never panics on bad text.

use std::fmt;

/// Why a text could not be read as a 20-byte id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The text had the wrong number of characters for its form.
    Length { expected: usize, found: usize },
    /// A character outside the form's alphabet.
    BadChar(char),
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Length { expected, found } => {
                write!(f, "expected {expected} characters, found {found}")
            }
            IdError::BadChar(c) => write!(f, "unexpected character {c:?}"),
        }
    }
}

impl std::error::Error for IdError {}

macro_rules! id20 {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
            /// Parses 40 hex digits, either case.
            pub fn from_hex(s: &str) -> Result<Self, IdError> {
                from_hex(s).map($name)
            }
            /// The tracker protocol's form: each byte as the char with the same code point.
            pub fn to_latin1(&self) -> String {
                let mut s = String::with_capacity(40);
                s.extend(self.0.iter().map(|&b| char::from(b)));
                s
            }
            /// Reads the tracker protocol's form; every char must be U+0000..U+00FF.
            pub fn from_latin1(s: &str) -> Result<Self, IdError> {
                from_latin1(s).map($name)
            }
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id20!(
    InfoHash,
    "The SHA-1 of a torrent's bencoded info dictionary (BitTorrent v1)."
);
id20!(
    PeerId,
    "A peer's self-chosen 20-byte id, as sent in the handshake and to the tracker."
);

impl PeerId {
    /// An Azureus-style id `-ST0100-` followed by 12 bytes of the caller's randomness.
    pub fn generate(random: [u8; 12]) -> PeerId {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-ST0100-");
        // Printable characters keep logs and tracker dumps readable.
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for (dst, r) in id[8..].iter_mut().zip(random) {
            *dst = ALPHABET[r as usize % ALPHABET.len()];
        }
        PeerId(id)
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Result<[u8; 20], IdError> {
    let chars: Vec<char> = s.chars().take(41).collect();
    if chars.len() != 40 {
        return Err(IdError::Length {
            expected: 40,
            found: s.chars().count(),
        });
    }
    let mut out = [0u8; 20];
    for (i, pair) in chars.chunks(2).enumerate() {
        let hi = pair[0].to_digit(16).ok_or(IdError::BadChar(pair[0]))?;
        let lo = pair[1].to_digit(16).ok_or(IdError::BadChar(pair[1]))?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

fn from_latin1(s: &str) -> Result<[u8; 20], IdError> {
    let mut out = [0u8; 20];
    let mut n = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    // On UTF-8 bytes: U+0000..U+007F is one byte, U+0080..U+00FF two with lead 0xC2 or 0xC3.
    while i < bytes.len() {
        if n == 20 {
            return Err(IdError::Length {
                expected: 20,
                found: s.chars().count(),
            });
        }
        let b = bytes[i];
        match (b, bytes.get(i + 1)) {
            (0x00..=0x7F, _) => {
                out[n] = b;
                i += 1;
            }
            (0xC2 | 0xC3, Some(&c)) => {
                out[n] = ((b & 0x03) << 6) | (c & 0x3F);
                i += 2;
            }
            _ => {
                let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(IdError::BadChar(c));
            }
        }
        n += 1;
    }
    if n != 20 {
        return Err(IdError::Length {
            expected: 20,
            found: n,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(h.to_hex(), "ab".repeat(20));
        assert_eq!(InfoHash::from_hex(&"AB".repeat(20)).unwrap(), h);
        assert!(InfoHash::from_hex("abc").is_err());
        assert_eq!(
            InfoHash::from_hex(&"zz".repeat(20)),
            Err(IdError::BadChar('z'))
        );
    }

    #[test]
    fn latin1_round_trip_covers_every_byte_value() {
        let mut bytes = [0u8; 20];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(13).wrapping_add(0xF0);
        }
        let id = PeerId(bytes);
        let text = id.to_latin1();
        assert_eq!(text.chars().count(), 20);
        assert_eq!(PeerId::from_latin1(&text).unwrap(), id);
        assert!(PeerId::from_latin1("short").is_err());
        assert!(PeerId::from_latin1(&"\u{100}".repeat(20)).is_err());
    }

    #[test]
    fn latin1_reading_matches_char_by_char() {
        let reference = |s: &str| -> Result<Vec<u8>, IdError> {
            let chars: Vec<char> = s.chars().collect();
            if let Some(&c) = chars.iter().take(20).find(|c| **c as u32 > 0xFF) {
                return Err(IdError::BadChar(c));
            }
            if chars.len() != 20 {
                return Err(IdError::Length {
                    expected: 20,
                    found: chars.len(),
                });
            }
            Ok(chars.iter().map(|&c| c as u8).collect())
        };
        let mut texts: Vec<String> = (0..=255u8)
            .map(|b| char::from(b).to_string().repeat(20))
            .collect();
        for extra in ["", "x", "é", "\u{100}", "😀", "\u{7ff}"] {
            for at in [0, 5, 19, 20] {
                let mut s: String = (0..20u8).map(|i| char::from(i * 13)).collect();
                let cut = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
                s.insert_str(cut, extra);
                texts.push(s.clone());
                texts.push(s.chars().skip(1).collect());
            }
        }
        for t in &texts {
            assert_eq!(from_latin1(t).map(Vec::from), reference(t), "{t:?}");
        }
    }

    #[test]
    fn generated_peer_id_has_client_prefix() {
        let id = PeerId::generate([200; 12]);
        assert_eq!(&id.0[..8], b"-ST0100-");
        assert!(id.0[8..].iter().all(|b| b.is_ascii_alphanumeric()));
    }
}
