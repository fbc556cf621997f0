//! Magnet URIs (BEP 9): parsing what users paste, and writing the links we show.
//!
//! Parsing must accept what WebTorrent's `magnet-uri` writes (hex or base32 `btih`, `+` for spaces
//! in `dn`) and must never panic or allocate beyond the URI's own size, which is capped. It never
//! fetches anything: trackers and web seeds come out as plain strings.

use std::fmt;
use std::str::FromStr;

use crate::id::InfoHash;

/// Longest URI accepted; real ones are a few hundred bytes, tracker-heavy ones a few KiB.
pub const MAX_URI_LEN: usize = 64 * 1024;

/// What a magnet link tells us about a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    /// `dn`: display name, a hint until the metadata arrives.
    pub name: Option<String>,
    /// `tr`, in order, without duplicates.
    pub trackers: Vec<String>,
    /// `ws` (BEP 19 web seeds), plus `as`, which WebTorrent treats the same way.
    pub web_seeds: Vec<String>,
    /// `xl`: total length in bytes.
    pub exact_length: Option<u64>,
}

/// Why a text is not a usable magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MagnetError {
    TooLong {
        len: usize,
        max: usize,
    },
    /// Does not start with `magnet:?`.
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    NoInfoHash,
    /// The btih value is neither 40 hex nor 32 base32 characters.
    BadHashLength(usize),
    /// A character outside the hash's alphabet.
    BadHashChar(char),
    /// `xl` is not a non-negative decimal integer.
    BadExactLength(String),
    /// A `%` not followed by two hex digits, in the named parameter.
    BadEscape(String),
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::TooLong { len, max } => {
                write!(f, "magnet link is {len} bytes long, the limit is {max}")
            }
            MagnetError::NotMagnet => f.write_str("not a magnet link (expected \"magnet:?\")"),
            MagnetError::NoInfoHash => {
                f.write_str("magnet link has no BitTorrent info-hash (xt=urn:btih:...)")
            }
            MagnetError::BadHashLength(n) => write!(
                f,
                "magnet info-hash has {n} characters, expected 40 (hex) or 32 (base32)"
            ),
            MagnetError::BadHashChar(c) => {
                write!(f, "magnet info-hash has invalid character {c:?}")
            }
            MagnetError::BadExactLength(v) => {
                write!(f, "magnet xl (exact length) {v:?} is not a number")
            }
            MagnetError::BadEscape(key) => write!(f, "magnet parameter {key} has a bad %-escape"),
        }
    }
}

impl std::error::Error for MagnetError {}

impl Magnet {
    /// A link carrying only the info-hash.
    pub fn new(info_hash: InfoHash) -> Magnet {
        Magnet {
            info_hash,
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            exact_length: None,
        }
    }

    /// Parses a magnet URI. Unknown parameters are ignored; of several `xt`, the first `btih` wins
    /// (others may be `btmh` v2 hashes, which we cannot use).
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let uri = uri.trim();
        if uri.len() > MAX_URI_LEN {
            return Err(MagnetError::TooLong {
                len: uri.len(),
                max: MAX_URI_LEN,
            });
        }
        let query = match uri.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("magnet:?") => &uri[8..],
            _ => return Err(MagnetError::NotMagnet),
        };
        let mut info_hash = None;
        let mut m = Magnet::new(InfoHash::default());
        for param in query.split('&') {
            let Some((key, raw)) = param.split_once('=') else {
                continue;
            };
            match key {
                "xt" => {
                    if info_hash.is_some() {
                        continue;
                    }
                    let value = percent_decode(raw, false, key)?;
                    if let Some(hash) = strip_prefix_ignore_case(&value, "urn:btih:") {
                        info_hash = Some(parse_btih(hash)?);
                    }
                }
                "dn" => m.name = Some(percent_decode(raw, true, key)?),
                "tr" => push_unique(&mut m.trackers, percent_decode(raw, false, key)?),
                "ws" | "as" => push_unique(&mut m.web_seeds, percent_decode(raw, false, key)?),
                "xl" => {
                    let v = percent_decode(raw, false, key)?;
                    let n = if v.bytes().all(|b| b.is_ascii_digit()) {
                        v.parse().ok()
                    } else {
                        None
                    };
                    m.exact_length = Some(n.ok_or(MagnetError::BadExactLength(v))?);
                }
                _ => {}
            }
        }
        m.info_hash = info_hash.ok_or(MagnetError::NoInfoHash)?;
        Ok(m)
    }

    /// The URI in the order and escaping WebTorrent's `magnet-uri` uses: `xt`, `dn` (spaces as
    /// `+`), then `xl`, `tr`, `ws`.
    pub fn to_uri(&self) -> String {
        let mut s = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(name) = &self.name {
            s.push_str("&dn=");
            percent_encode_into(name, true, &mut s);
        }
        if let Some(xl) = self.exact_length {
            s.push_str(&format!("&xl={xl}"));
        }
        for tr in &self.trackers {
            s.push_str("&tr=");
            percent_encode_into(tr, false, &mut s);
        }
        for ws in &self.web_seeds {
            s.push_str("&ws=");
            percent_encode_into(ws, false, &mut s);
        }
        s
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Magnet, MagnetError> {
        Magnet::parse(s)
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_btih(s: &str) -> Result<InfoHash, MagnetError> {
    let n = s.chars().count();
    match n {
        40 => InfoHash::from_hex(s).map_err(|e| match e {
            crate::id::IdError::BadChar(c) => MagnetError::BadHashChar(c),
            crate::id::IdError::Length { found, .. } => MagnetError::BadHashLength(found),
        }),
        32 => base32_decode(s).map(InfoHash),
        _ => Err(MagnetError::BadHashLength(n)),
    }
}

/// RFC 4648 base32 without padding; 32 characters carry exactly 160 bits.
fn base32_decode(s: &str) -> Result<[u8; 20], MagnetError> {
    let mut out = [0u8; 20];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in s.chars() {
        let v = match c {
            'A'..='Z' => c as u64 - 'A' as u64,
            'a'..='z' => c as u64 - 'a' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return Err(MagnetError::BadHashChar(c)),
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = out.get_mut(n) {
                *slot = (acc >> bits) as u8;
            }
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// The base32 form of an info-hash, upper case, as some older clients write it.
pub fn base32_encode(hash: &InfoHash) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut s = String::with_capacity(32);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in &hash.0 {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            s.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    s
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`); invalid UTF-8 in the result is
/// replaced rather than refused, since a garbled name is better than no download.
fn percent_decode(s: &str, plus_is_space: bool, key: &str) -> Result<String, MagnetError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                        out.push(b);
                        i += 3;
                    }
                    _ => return Err(MagnetError::BadEscape(key.to_string())),
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Escapes everything JavaScript's `encodeURIComponent` escapes, so our links match WebTorrent's
/// byte for byte; with `space_as_plus`, spaces become `+` as `magnet-uri` writes `dn`.
fn percent_encode_into(s: &str, space_as_plus: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => out.push(b as char),
            b' ' if space_as_plus => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    fn hash() -> InfoHash {
        InfoHash::from_hex(HEX).unwrap()
    }

    #[test]
    fn parses_a_webtorrent_link() {
        let uri = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck+Bunny&tr=udp%3A%2F%2Fexplodie.org%3A6969\
             &tr=wss%3A%2F%2Ftracker.btorrent.xyz&ws=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2F"
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(
            m.trackers,
            ["udp://explodie.org:6969", "wss://tracker.btorrent.xyz"]
        );
        assert_eq!(m.web_seeds, ["https://webtorrent.io/torrents/"]);
        assert_eq!(m.exact_length, None);
        assert_eq!(m.to_uri(), uri);
        assert_eq!(m.to_string(), uri);
        assert_eq!(uri.parse::<Magnet>().unwrap(), m);
    }

    #[test]
    fn base32_and_hex_agree() {
        let b32 = base32_encode(&hash());
        assert_eq!(b32.len(), 32);
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        assert_eq!(m.info_hash, hash());
        let lower = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", b32.to_lowercase())).unwrap();
        assert_eq!(lower.info_hash, hash());
        let upper = Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{}", HEX.to_uppercase())).unwrap();
        assert_eq!(upper.info_hash, hash());
        // Known value: 20 zero bytes then all-ones.
        assert_eq!(base32_encode(&InfoHash([0; 20])), "A".repeat(32));
        assert_eq!(base32_encode(&InfoHash([0xff; 20])), "7".repeat(32));
        assert_eq!(base32_decode(&"7".repeat(32)).unwrap(), [0xff; 20]);
    }

    #[test]
    fn round_trips_with_reserved_characters() {
        let m = Magnet {
            info_hash: hash(),
            name: Some("a b+c&d=e%f/é 日本 (1).txt".into()),
            trackers: vec!["wss://t.example/a?x=1&y=2".into(), "udp://t:1".into()],
            web_seeds: vec!["https://s.example/p q/".into()],
            exact_length: Some(123456789),
        };
        let uri = m.to_uri();
        assert!(uri
            .contains("&dn=a+b%2Bc%26d%3De%25f%2F%C3%A9+%E6%97%A5%E6%9C%AC+(1).txt&xl=123456789&"));
        assert!(!uri[8..].contains(' '));
        assert_eq!(Magnet::parse(&uri).unwrap(), m);
        let bare = Magnet::new(hash());
        assert_eq!(bare.to_uri(), format!("magnet:?xt=urn:btih:{HEX}"));
        assert_eq!(Magnet::parse(&bare.to_uri()).unwrap(), bare);
    }

    #[test]
    fn tolerant_where_harmless() {
        let m = Magnet::parse(&format!(
            "  magnet:?foo&x.pe=1.2.3.4:5&xt=urn:btmh:1220{}&xt=urn:btih:{HEX}&tr=a&tr=a&as=b&ws=b\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.trackers, ["a"]);
        assert_eq!(m.web_seeds, ["b"]);
        // Bytes that are not UTF-8 are replaced, not refused.
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%FFok")).unwrap();
        assert_eq!(m.name.as_deref(), Some("\u{fffd}ok"));
        // `+` means space only in dn.
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&tr=a+b&dn=a+b%2B")).unwrap();
        assert_eq!(m.trackers, ["a+b"]);
        assert_eq!(m.name.as_deref(), Some("a b+"));
    }

    #[test]
    fn errors() {
        use MagnetError::*;
        let p = |s: &str| Magnet::parse(s).unwrap_err();
        assert_eq!(p("http://example.com"), NotMagnet);
        assert_eq!(p("magnet:"), NotMagnet);
        assert_eq!(p(HEX), NotMagnet);
        assert_eq!(p("magnet:?dn=x"), NoInfoHash);
        assert_eq!(p("magnet:?xt=urn:sha1:abc"), NoInfoHash);
        assert_eq!(p("magnet:?xt=urn:btih:abc"), BadHashLength(3));
        assert_eq!(p(&format!("magnet:?xt=urn:btih:{HEX}0")), BadHashLength(41));
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{}", "g".repeat(40))),
            BadHashChar('g')
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{}", "1".repeat(32))),
            BadHashChar('1')
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{}", "é".repeat(40))),
            BadHashChar('é')
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{HEX}&xl=-5")),
            BadExactLength("-5".into())
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{HEX}&xl=+5")),
            BadExactLength("+5".into())
        );
        assert_eq!(
            p(&format!(
                "magnet:?xt=urn:btih:{HEX}&xl=99999999999999999999"
            )),
            BadExactLength("99999999999999999999".into())
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{HEX}&dn=%G1")),
            BadEscape("dn".into())
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{HEX}&tr=%4")),
            BadEscape("tr".into())
        );
        assert_eq!(
            p(&format!("magnet:?xt=urn:btih:{HEX}&tr=%+1")),
            BadEscape("tr".into())
        );
        let long = format!("magnet:?xt=urn:btih:{HEX}&tr={}", "a".repeat(MAX_URI_LEN));
        assert!(matches!(
            p(&long),
            TooLong {
                max: MAX_URI_LEN,
                ..
            }
        ));
        assert_eq!(
            NoInfoHash.to_string(),
            "magnet link has no BitTorrent info-hash (xt=urn:btih:...)"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "magnet:?",
            "magnet:?&&&",
            "magnet:?=",
            "magnet:?xt=",
            "magnet:?xt=%",
            "magnet:?é=é",
            "magnet:?xt=urn:btih:é",
        ] {
            let _ = Magnet::parse(s);
        }
    }
}
