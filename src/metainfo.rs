//! `.torrent` metainfo (BitTorrent v1, single- and multi-file): parsing, validation, the
//! info-hash, and the piece/block/file arithmetic every other module relies on.
//!
//! Metainfo comes from strangers (a dropped file, or peers via ut_metadata), so parsing must never
//! panic, must bound what it accepts (sizes, file counts) and must refuse file paths that could
//! escape the download folder. It never re-encodes the info dict: the info-hash is the SHA-1 of the
//! bytes as received.

use std::collections::HashSet;
use std::fmt;

use sha1::{Digest, Sha1};

use crate::bencode::{self, DecodeError, Limits, Value};
use crate::id::InfoHash;
use crate::magnet::Magnet;

/// The unit of requests on the wire (and what WebTorrent asks for).
pub const BLOCK_SIZE: u32 = 16384;
/// Largest piece accepted; a piece is held in memory while it is verified.
pub const MAX_PIECE_LENGTH: u32 = 64 << 20;
/// Largest torrent accepted; far beyond what a browser tab can store.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 40;
pub const MAX_FILES: usize = 100_000;

/// Bounds for decoding `.torrent` files and info dicts. A 16 MiB `pieces` string is ~840k pieces;
/// tokens cover 100k files with a few path components each.
pub fn torrent_limits() -> Limits {
    Limits {
        max_depth: 16,
        max_tokens: 4 << 20,
        max_string_len: 16 << 20,
    }
}

/// One file of the torrent, in the order of the torrent's byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Components below the torrent's folder (multi-file), or `[name]` (single-file).
    pub path: Vec<String>,
    pub length: u64,
    /// Where the file starts in the concatenation of all files.
    pub offset: u64,
}

impl FileEntry {
    /// BEP 47 padding files, by their conventional `.pad/` folder; their bytes are zeros that
    /// nobody wants on disk.
    pub fn is_padding(&self) -> bool {
        self.path.len() == 2 && self.path[0] == ".pad"
    }
}

/// The info dictionary, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// Single-file: the file name. Multi-file: the folder name.
    pub name: String,
    pub piece_length: u32,
    pub pieces: Vec<[u8; 20]>,
    pub files: Vec<FileEntry>,
    pub total_length: u64,
    pub private: bool,
    pub multi_file: bool,
}

impl Info {
    pub fn num_pieces(&self) -> u32 {
        // Validated to fit when parsed: total/piece_length stays far below u32::MAX.
        u32::try_from(self.pieces.len()).unwrap_or(u32::MAX)
    }

    /// Bytes in piece `i`: `piece_length` except for a shorter last piece; 0 past the end.
    pub fn piece_len(&self, i: u32) -> u32 {
        if i >= self.num_pieces() {
            return 0;
        }
        let rest = self.total_length.saturating_sub(self.piece_offset(i));
        rest.min(u64::from(self.piece_length)) as u32
    }

    /// Where piece `i` starts in the torrent's byte stream.
    pub fn piece_offset(&self, i: u32) -> u64 {
        u64::from(i) * u64::from(self.piece_length)
    }

    pub fn num_blocks(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_SIZE)
    }

    /// Bytes in block `block` of `piece`: `BLOCK_SIZE` except for a shorter last block; 0 past
    /// the end.
    pub fn block_len(&self, piece: u32, block: u32) -> u32 {
        let len = self.piece_len(piece);
        let start = u64::from(block) * u64::from(BLOCK_SIZE);
        (u64::from(len).saturating_sub(start)).min(u64::from(BLOCK_SIZE)) as u32
    }

    pub fn piece_hash(&self, i: u32) -> Option<&[u8; 20]> {
        self.pieces.get(i as usize)
    }

    /// The piece holding byte `offset` of the stream, if any.
    pub fn piece_at(&self, offset: u64) -> Option<u32> {
        if offset >= self.total_length || self.piece_length == 0 {
            return None;
        }
        u32::try_from(offset / u64::from(self.piece_length)).ok()
    }

    /// The pieces covering file `index` (empty for an empty file), e.g. to fetch one file first.
    pub fn file_pieces(&self, index: usize) -> std::ops::Range<u32> {
        let Some(f) = self.files.get(index) else {
            return 0..0;
        };
        if f.length == 0 || self.piece_length == 0 {
            return 0..0;
        }
        let pl = u64::from(self.piece_length);
        let first = f.offset / pl;
        let end = (f.offset + f.length).div_ceil(pl);
        first as u32..end as u32
    }

    /// How the stream range `offset..offset+len` maps onto files: `(file index, offset in that
    /// file, length)` in stream order. Empty files are never listed; the part of the range past
    /// the end of the torrent is ignored.
    pub fn file_ranges(&self, offset: u64, len: u64) -> Vec<(usize, u64, u64)> {
        let end = offset.saturating_add(len).min(self.total_length);
        let mut out = Vec::new();
        if offset >= end {
            return out;
        }
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        for (i, f) in self.files.iter().enumerate().skip(first) {
            if f.offset >= end {
                break;
            }
            if f.length == 0 {
                continue;
            }
            let start = offset.max(f.offset);
            let stop = end.min(f.offset + f.length);
            out.push((i, start - f.offset, stop - start));
        }
        out
    }
}

/// A parsed torrent: the validated info dict, its exact bytes and hash, and the outer fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    pub info_hash: InfoHash,
    pub info: Info,
    /// The info dict exactly as received; what peers hash and what ut_metadata serves.
    pub info_bytes: Vec<u8>,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 web seeds.
    pub url_list: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
}

/// Why metainfo was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetainfoError {
    Bencode(DecodeError),
    /// A required key is absent.
    Missing(&'static str),
    /// A key holds the wrong type of value, or an impossible one.
    Invalid {
        field: &'static str,
        reason: String,
    },
    /// Both `length` and `files`: single- or multi-file is ambiguous.
    BothLengthAndFiles,
    /// A name or path that is empty, `.`/`..`, absolute, or contains a separator or NUL.
    UnsafePath {
        path: String,
        reason: &'static str,
    },
    /// Two files would land at the same place (or one inside the other).
    PathConflict(String),
    TooManyFiles {
        count: usize,
        max: usize,
    },
    TooLarge {
        total: u64,
        max: u64,
    },
    /// All files are empty: nothing to share.
    Empty,
    /// `pieces` does not hold one hash per piece.
    PieceCount {
        expected: u64,
        found: u64,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Bencode(e) => write!(f, "torrent is not valid bencode: {e}"),
            MetainfoError::Missing(k) => write!(f, "torrent has no {k:?} field"),
            MetainfoError::Invalid { field, reason } => {
                write!(f, "torrent field {field:?} is invalid: {reason}")
            }
            MetainfoError::BothLengthAndFiles => {
                f.write_str("torrent info has both \"length\" and \"files\"")
            }
            MetainfoError::UnsafePath { path, reason } => {
                write!(f, "torrent file path {path:?} is unsafe: {reason}")
            }
            MetainfoError::PathConflict(p) => {
                write!(
                    f,
                    "torrent uses the file path {p:?} twice (or as both file and folder)"
                )
            }
            MetainfoError::TooManyFiles { count, max } => {
                write!(f, "torrent has {count} files, the limit is {max}")
            }
            MetainfoError::TooLarge { total, max } => {
                write!(f, "torrent holds {total} bytes, the limit is {max}")
            }
            MetainfoError::Empty => f.write_str("torrent holds no data (all files are empty)"),
            MetainfoError::PieceCount { expected, found } => {
                write!(
                    f,
                    "torrent has {found} piece hashes, its length needs {expected}"
                )
            }
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetainfoError::Bencode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for MetainfoError {
    fn from(e: DecodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> MetainfoError {
    MetainfoError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Metainfo {
    /// Parses a `.torrent` file. The info dict is validated strictly; the outer fields
    /// (trackers, comment, ...) are advisory, so malformed ones are skipped rather than refused.
    pub fn from_torrent_bytes(b: &[u8]) -> Result<Metainfo, MetainfoError> {
        let limits = torrent_limits();
        let root = bencode::decode_with(b, &limits)?;
        if root.as_dict().is_none() {
            return Err(invalid("(root)", "not a dictionary"));
        }
        let info_bytes = bencode::raw_dict_value(b, b"info", &limits)?
            .ok_or(MetainfoError::Missing("info"))?
            .to_vec();
        let info_value = root.get(b"info").ok_or(MetainfoError::Missing("info"))?;
        let info = parse_info(info_value)?;

        let announce = root
            .get(b"announce")
            .and_then(text)
            .filter(|s| !s.is_empty());
        let announce_list = root
            .get(b"announce-list")
            .and_then(Value::as_list)
            .map(|tiers| {
                tiers
                    .iter()
                    .filter_map(|tier| {
                        let urls: Vec<String> = tier
                            .as_list()?
                            .iter()
                            .filter_map(text)
                            .filter(|s| !s.is_empty())
                            .collect();
                        (!urls.is_empty()).then_some(urls)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // BEP 19 allows a single string as well as a list. Only http(s) URLs of bounded length
        // are kept, at most 16: they are what the web seed driver may fetch.
        let urls: Vec<String> = match root.get(b"url-list") {
            Some(Value::List(l)) => l.iter().take(1024).filter_map(text).collect(),
            Some(v) => text(v).into_iter().collect(),
            None => Vec::new(),
        };
        let url_list = crate::engine::web_seed_urls(urls.iter().map(String::as_str));
        Ok(Metainfo {
            info_hash: sha1_hash(&info_bytes),
            info,
            info_bytes,
            announce,
            announce_list,
            url_list,
            comment: utf8_field(&root, b"comment"),
            created_by: utf8_field(&root, b"created by"),
            creation_date: root.get_int(b"creation date"),
        })
    }

    /// Builds metainfo from a bare info dict, as fetched from peers with ut_metadata.
    pub fn from_info_bytes(info: Vec<u8>) -> Result<Metainfo, MetainfoError> {
        let value = bencode::decode_with(&info, &torrent_limits())?;
        let parsed = parse_info(&value)?;
        Ok(Metainfo {
            info_hash: sha1_hash(&info),
            info: parsed,
            info_bytes: info,
            announce: None,
            announce_list: Vec::new(),
            url_list: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
        })
    }

    /// A `.torrent` file with the info dict copied verbatim, so the info-hash is preserved even
    /// when the original encoding was not canonical.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        let mut outer = Value::dict()
            .insert_opt("announce", self.announce.as_deref())
            .insert_opt("comment", self.comment.as_deref())
            .insert_opt("created by", self.created_by.as_deref())
            .insert_opt("creation date", self.creation_date)
            // A placeholder that fixes the key's sorted position; replaced by the raw bytes.
            .int("info", 0);
        if !self.announce_list.is_empty() {
            let tiers = self
                .announce_list
                .iter()
                .map(|tier| Value::list(tier.iter().map(|u| Value::from(u.as_str()))));
            outer = outer.insert("announce-list", Value::list(tiers));
        }
        if !self.url_list.is_empty() {
            let urls = self.url_list.iter().map(|u| Value::from(u.as_str()));
            outer = outer.insert("url-list", Value::list(urls));
        }
        let Value::Dict(map) = outer.build() else {
            return Vec::new();
        };
        let mut out = vec![b'd'];
        for (k, v) in &map {
            bencode::encode_into(&Value::Bytes(k.clone()), &mut out);
            if k == b"info" {
                out.extend_from_slice(&self.info_bytes);
            } else {
                bencode::encode_into(v, &mut out);
            }
        }
        out.push(b'e');
        out
    }

    /// Every tracker URL: `announce`, then the `announce-list` tiers in order, without duplicates.
    pub fn trackers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for url in self
            .announce
            .iter()
            .chain(self.announce_list.iter().flatten())
        {
            if !out.contains(url) {
                out.push(url.clone());
            }
        }
        out
    }

    /// A magnet link for this torrent: hash, name, trackers and web seeds (no `xl`, like
    /// WebTorrent's links).
    pub fn magnet(&self) -> Magnet {
        Magnet {
            info_hash: self.info_hash,
            name: Some(self.info.name.clone()),
            trackers: self.trackers(),
            web_seeds: self.url_list.clone(),
            exact_length: None,
        }
    }
}

pub(crate) fn sha1_hash(bytes: &[u8]) -> InfoHash {
    InfoHash(Sha1::digest(bytes).into())
}

/// A byte string as text; invalid UTF-8 is replaced rather than refused (old torrents in legacy
/// code pages should still download, with odd-looking names).
fn text(v: &Value) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// `key.utf-8` when present (written by clients whose `key` is in a legacy code page), else `key`.
fn utf8_variant<'a>(dict: &'a Value, key: &str) -> Option<&'a Value> {
    let alt = format!("{key}.utf-8");
    dict.get(alt.as_bytes())
        .filter(|v| v.as_bytes().is_some() || v.as_list().is_some())
        .or_else(|| dict.get(key.as_bytes()))
}

fn utf8_field(dict: &Value, key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    utf8_variant(dict, key).and_then(text)
}

/// Checks one path component (or a torrent name) for anything that could leave the download
/// folder or be unrepresentable on common file systems.
pub fn check_component(c: &str) -> Result<(), &'static str> {
    let b = c.as_bytes();
    if c.is_empty() {
        Err("empty component")
    } else if c == "." || c == ".." {
        Err("relative component")
    } else if c.contains(['/', '\\']) {
        Err("contains a path separator")
    } else if c.contains('\0') {
        Err("contains NUL")
    } else if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        Err("looks like a drive letter")
    } else {
        Ok(())
    }
}

/// Why a file path (its components) cannot be in a torrent, if it cannot: shared by parsing
/// and by torrent creation.
pub fn unsafe_path_reason(path: &[String]) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    path.iter().find_map(|c| check_component(c).err())
}

fn check_path(path: &[String]) -> Result<(), MetainfoError> {
    match unsafe_path_reason(path) {
        Some(reason) => Err(MetainfoError::UnsafePath {
            path: path.join("/"),
            reason,
        }),
        None => Ok(()),
    }
}

fn length_field(v: Option<&Value>, field: &'static str) -> Result<u64, MetainfoError> {
    let n = v
        .ok_or(MetainfoError::Missing(field))?
        .as_int()
        .ok_or_else(|| invalid(field, "not an integer"))?;
    u64::try_from(n).map_err(|_| invalid(field, format!("negative ({n})")))
}

/// Validates an info dict. Public so creators and tests can check a hand-made dict.
pub fn parse_info(v: &Value) -> Result<Info, MetainfoError> {
    if v.as_dict().is_none() {
        return Err(invalid("info", "not a dictionary"));
    }
    let name = utf8_variant(v, "name").ok_or(MetainfoError::Missing("name"))?;
    let name = text(name).ok_or_else(|| invalid("name", "not a string"))?;
    check_component(&name).map_err(|reason| MetainfoError::UnsafePath {
        path: name.clone(),
        reason,
    })?;

    let pl = v
        .get(b"piece length")
        .ok_or(MetainfoError::Missing("piece length"))?;
    let pl = pl
        .as_int()
        .ok_or_else(|| invalid("piece length", "not an integer"))?;
    let piece_length = u32::try_from(pl)
        .ok()
        .filter(|p| (1..=MAX_PIECE_LENGTH).contains(p))
        .ok_or_else(|| {
            invalid(
                "piece length",
                format!("{pl} is outside 1..={MAX_PIECE_LENGTH}"),
            )
        })?;

    let raw_pieces = v.get(b"pieces").ok_or(MetainfoError::Missing("pieces"))?;
    let raw_pieces = raw_pieces
        .as_bytes()
        .ok_or_else(|| invalid("pieces", "not a byte string"))?;
    if raw_pieces.len() % 20 != 0 {
        return Err(invalid(
            "pieces",
            format!("length {} is not a multiple of 20", raw_pieces.len()),
        ));
    }

    let multi_file = match (v.get(b"length"), v.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
        (None, None) => return Err(MetainfoError::Missing("length")),
        (_, files) => files.is_some(),
    };
    let mut files = Vec::new();
    let mut total: u64 = 0;
    if multi_file {
        let list = v
            .get(b"files")
            .and_then(Value::as_list)
            .ok_or_else(|| invalid("files", "not a list"))?;
        if list.is_empty() {
            return Err(invalid("files", "empty list"));
        }
        if list.len() > MAX_FILES {
            return Err(MetainfoError::TooManyFiles {
                count: list.len(),
                max: MAX_FILES,
            });
        }
        let mut seen: HashSet<&[String]> = HashSet::new();
        let mut parsed: Vec<(Vec<String>, u64, bool)> = Vec::with_capacity(list.len());
        for f in list {
            if f.as_dict().is_none() {
                return Err(invalid("files", "entry is not a dictionary"));
            }
            let length = length_field(f.get(b"length"), "length")?;
            let comps = utf8_variant(f, "path")
                .ok_or(MetainfoError::Missing("path"))?
                .as_list()
                .ok_or_else(|| invalid("path", "not a list"))?;
            let path = comps
                .iter()
                .map(|c| text(c).ok_or_else(|| invalid("path", "component is not a string")))
                .collect::<Result<Vec<_>, _>>()?;
            check_path(&path)?;
            // BEP 47: libtorrent names every padding file `.pad/<size>`, so they repeat.
            let padding = f.get_bytes(b"attr").is_some_and(|a| a.contains(&b'p'));
            parsed.push((path, length, padding));
            total = total
                .checked_add(length)
                .filter(|&t| t <= MAX_TOTAL_LENGTH)
                .ok_or(MetainfoError::TooLarge {
                    total: total.saturating_add(length),
                    max: MAX_TOTAL_LENGTH,
                })?;
        }
        for (path, _, padding) in &parsed {
            if !*padding && !seen.insert(path.as_slice()) {
                return Err(MetainfoError::PathConflict(path.join("/")));
            }
        }
        // A file whose path is also a folder of another file cannot be written.
        for (path, _, padding) in &parsed {
            if *padding {
                continue;
            }
            for cut in 1..path.len() {
                if seen.contains(&path[..cut]) {
                    return Err(MetainfoError::PathConflict(path[..cut].join("/")));
                }
            }
        }
        let mut offset = 0;
        for (path, length, _) in parsed {
            files.push(FileEntry {
                path,
                length,
                offset,
            });
            offset += length;
        }
    } else {
        total = length_field(v.get(b"length"), "length")?;
        if total > MAX_TOTAL_LENGTH {
            return Err(MetainfoError::TooLarge {
                total,
                max: MAX_TOTAL_LENGTH,
            });
        }
        files.push(FileEntry {
            path: vec![name.clone()],
            length: total,
            offset: 0,
        });
    }
    if total == 0 {
        return Err(MetainfoError::Empty);
    }

    let expected = total.div_ceil(u64::from(piece_length));
    let found = (raw_pieces.len() / 20) as u64;
    if expected != found {
        return Err(MetainfoError::PieceCount { expected, found });
    }
    let pieces = raw_pieces
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    let private = v.get_int(b"private").is_some_and(|p| p != 0);
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        total_length: total,
        private,
        multi_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An info dict of the given shape with zeroed piece hashes.
    fn info_with(piece_length: u32, lengths: &[u64]) -> Info {
        let total: u64 = lengths.iter().sum();
        let n = total.div_ceil(u64::from(piece_length));
        let mut d = Value::dict()
            .bytes("name", "t")
            .int("piece length", i64::from(piece_length))
            .bytes("pieces", vec![0u8; n as usize * 20]);
        if let [one] = lengths {
            d = d.int("length", *one as i64);
        } else {
            let files = lengths.iter().enumerate().map(|(i, &l)| {
                Value::dict()
                    .int("length", l as i64)
                    .insert("path", Value::list([Value::from(format!("f{i}"))]))
                    .build()
            });
            d = d.insert("files", Value::list(files));
        }
        parse_info(&d.build()).unwrap()
    }

    fn single(extra: impl FnOnce(bencode::DictBuilder) -> bencode::DictBuilder) -> Value {
        extra(
            Value::dict()
                .bytes("name", "a.bin")
                .int("piece length", 16384)
                .bytes("pieces", vec![1u8; 20])
                .int("length", 100),
        )
        .build()
    }

    fn multi(paths: &[&[&str]]) -> Value {
        let files = paths.iter().map(|p| {
            Value::dict()
                .int("length", 10)
                .insert("path", Value::list(p.iter().map(|c| Value::from(*c))))
                .build()
        });
        Value::dict()
            .bytes("name", "dir")
            .int("piece length", 16384)
            .bytes("pieces", vec![1u8; 20])
            .insert("files", Value::list(files))
            .build()
    }

    #[test]
    fn piece_and_block_arithmetic_with_short_last_piece() {
        // 70000 bytes in 32 KiB pieces: two full pieces and 4464 bytes.
        let info = info_with(32768, &[70000]);
        assert_eq!(info.num_pieces(), 3);
        assert_eq!(info.piece_len(0), 32768);
        assert_eq!(info.piece_len(2), 70000 - 65536);
        assert_eq!(info.piece_len(3), 0);
        assert_eq!(info.piece_offset(2), 65536);
        assert_eq!(info.num_blocks(0), 2);
        assert_eq!(info.num_blocks(2), 1);
        assert_eq!(info.num_blocks(3), 0);
        assert_eq!(info.block_len(0, 1), BLOCK_SIZE);
        assert_eq!(info.block_len(0, 2), 0);
        assert_eq!(info.block_len(2, 0), 4464);
        assert_eq!(info.block_len(2, 1), 0);
        assert_eq!(info.block_len(9, 0), 0);
        assert_eq!(info.piece_at(65535), Some(1));
        assert_eq!(info.piece_at(69999), Some(2));
        assert_eq!(info.piece_at(70000), None);
        assert!(info.piece_hash(2).is_some());
        assert!(info.piece_hash(3).is_none());
    }

    #[test]
    fn last_block_shorter_and_exact_multiples() {
        let info = info_with(65536, &[65536 * 2 + 16384 + 100]);
        assert_eq!(info.num_pieces(), 3);
        assert_eq!(info.piece_len(2), 16484);
        assert_eq!(info.num_blocks(2), 2);
        assert_eq!(info.block_len(2, 0), 16384);
        assert_eq!(info.block_len(2, 1), 100);

        let exact = info_with(32768, &[32768 * 4]);
        assert_eq!(exact.num_pieces(), 4);
        assert_eq!(exact.piece_len(3), 32768);
        assert_eq!(exact.num_blocks(3), 2);
        assert_eq!(exact.block_len(3, 1), 16384);

        // Pieces smaller than a block are one short block.
        let tiny = info_with(1000, &[2500]);
        assert_eq!(tiny.num_pieces(), 3);
        assert_eq!(tiny.num_blocks(1), 1);
        assert_eq!(tiny.block_len(1, 0), 1000);
        assert_eq!(tiny.block_len(2, 0), 500);
    }

    #[test]
    fn file_ranges_across_files_and_empty_files() {
        let info = info_with(16384, &[10, 0, 20, 0, 0, 5]);
        let offsets: Vec<u64> = info.files.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [0, 10, 10, 30, 30, 30]);
        assert_eq!(info.total_length, 35);
        assert_eq!(info.file_ranges(0, 35), [(0, 0, 10), (2, 0, 20), (5, 0, 5)]);
        assert_eq!(info.file_ranges(5, 10), [(0, 5, 5), (2, 0, 5)]);
        assert_eq!(info.file_ranges(10, 20), [(2, 0, 20)]);
        assert_eq!(info.file_ranges(29, 100), [(2, 19, 1), (5, 0, 5)]);
        assert_eq!(info.file_ranges(35, 1), []);
        assert_eq!(info.file_ranges(3, 0), []);
        assert_eq!(info.file_ranges(u64::MAX, u64::MAX), []);
        assert_eq!(info.file_pieces(0), 0..1);
        assert_eq!(info.file_pieces(1), 0..0);
        assert_eq!(info.file_pieces(9), 0..0);

        let spread = info_with(10, &[15, 10, 6]);
        assert_eq!(spread.file_pieces(0), 0..2);
        assert_eq!(spread.file_pieces(1), 1..3);
        assert_eq!(spread.file_pieces(2), 2..4);
        assert_eq!(spread.file_ranges(10, 10), [(0, 10, 5), (1, 0, 5)]);
    }

    #[test]
    fn single_and_multi_file_shapes() {
        let s = parse_info(&single(|d| d)).unwrap();
        assert!(!s.multi_file);
        assert_eq!(
            s.files,
            [FileEntry {
                path: vec!["a.bin".into()],
                length: 100,
                offset: 0
            }]
        );
        let m = parse_info(&multi(&[&["a"], &["sub", "b"]])).unwrap();
        assert!(m.multi_file);
        assert_eq!(m.name, "dir");
        assert_eq!(m.files[1].path, ["sub", "b"]);
        assert_eq!(m.files[1].offset, 10);
        assert_eq!(m.total_length, 20);
    }

    #[test]
    fn path_sanitising() {
        let bad: &[(&[&str], &str)] = &[
            (&[], "empty path"),
            (&[""], "empty component"),
            (&["a", ""], "empty component"),
            (&["."], "relative component"),
            (&["a", ".."], "relative component"),
            (&["a/b"], "contains a path separator"),
            (&["/etc"], "contains a path separator"),
            (&["a\\b"], "contains a path separator"),
            (&["a\0b"], "contains NUL"),
            (&["C:"], "looks like a drive letter"),
            (&["c:evil"], "looks like a drive letter"),
        ];
        for (path, reason) in bad {
            match parse_info(&multi(&[path])) {
                Err(MetainfoError::UnsafePath { reason: r, .. }) => {
                    assert_eq!(r, *reason, "{path:?}")
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
        for name in ["", "..", "a/b", "D:x"] {
            let v = single(|d| d.bytes("name", name));
            assert!(
                matches!(parse_info(&v), Err(MetainfoError::UnsafePath { .. })),
                "{name:?}"
            );
        }
        // Ordinary odd names are fine.
        assert!(parse_info(&multi(&[&["...", "ab:c", " x ", "日本"]])).is_ok());
        let e = parse_info(&multi(&[&["ok", "a/b"]])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "torrent file path \"ok/a/b\" is unsafe: contains a path separator"
        );
    }

    #[test]
    fn path_conflicts() {
        assert_eq!(
            parse_info(&multi(&[&["a"], &["a"]])).unwrap_err(),
            MetainfoError::PathConflict("a".into())
        );
        assert_eq!(
            parse_info(&multi(&[&["a", "b"], &["a"]])).unwrap_err(),
            MetainfoError::PathConflict("a".into())
        );
        // Padding files repeat their names by design.
        let pad = |n: &str| {
            Value::dict()
                .int("length", 5)
                .bytes("attr", "p")
                .insert("path", Value::list([Value::from(".pad"), Value::from(n)]))
                .build()
        };
        let v = Value::dict()
            .bytes("name", "dir")
            .int("piece length", 16384)
            .bytes("pieces", vec![1u8; 20])
            .insert("files", Value::list([pad("5"), pad("5")]))
            .build();
        let info = parse_info(&v).unwrap();
        assert!(info.files.iter().all(FileEntry::is_padding));
    }

    #[test]
    fn field_validation() {
        use MetainfoError::*;
        let e = |v: Value| parse_info(&v).unwrap_err();
        assert_eq!(e(Value::Int(1)), invalid("info", "not a dictionary"));
        assert_eq!(e(Value::dict().build()), Missing("name"));
        assert_eq!(
            e(single(|d| d.int("name", 1))),
            invalid("name", "not a string")
        );
        assert_eq!(
            e(single(|d| d.insert("piece length", "x"))),
            invalid("piece length", "not an integer")
        );
        assert!(matches!(
            e(single(|d| d.int("piece length", 0))),
            Invalid {
                field: "piece length",
                ..
            }
        ));
        assert!(matches!(
            e(single(
                |d| d.int("piece length", i64::from(MAX_PIECE_LENGTH) + 1)
            )),
            Invalid {
                field: "piece length",
                ..
            }
        ));
        assert_eq!(
            e(single(|d| d.bytes("pieces", vec![0; 19]))),
            invalid("pieces", "length 19 is not a multiple of 20")
        );
        assert_eq!(
            e(single(|d| d.bytes("pieces", vec![0; 40]))),
            PieceCount {
                expected: 1,
                found: 2
            }
        );
        assert_eq!(
            e(single(|d| d.int("length", 16385))),
            PieceCount {
                expected: 2,
                found: 1
            }
        );
        assert_eq!(
            e(single(|d| d.int("length", -1))),
            invalid("length", "negative (-1)")
        );
        assert_eq!(e(single(|d| d.int("length", 0))), Empty);
        assert_eq!(
            e(single(|d| d.int("length", 1 << 41))),
            TooLarge {
                total: 1 << 41,
                max: 1 << 40
            }
        );
        assert_eq!(
            e(single(|d| d.insert("files", Value::list([])))),
            BothLengthAndFiles
        );
        let no_len = Value::dict()
            .bytes("name", "a")
            .int("piece length", 1)
            .bytes("pieces", "")
            .build();
        assert_eq!(e(no_len), Missing("length"));
        let mut m = multi(&[&["a"]]);
        if let Value::Dict(d) = &mut m {
            d.insert(b"files".to_vec(), Value::list([]));
        }
        assert_eq!(e(m), invalid("files", "empty list"));
        let mut m = multi(&[&["a"]]);
        if let Value::Dict(d) = &mut m {
            d.insert(
                b"files".to_vec(),
                Value::list([Value::dict().int("length", 1).build()]),
            );
        }
        assert_eq!(e(m), Missing("path"));
        assert!(TooManyFiles { count: 5, max: 1 }
            .to_string()
            .contains("5 files"));
    }

    #[test]
    fn utf8_variants_are_preferred_and_bad_utf8_is_replaced() {
        let v = single(|d| {
            d.bytes("name", vec![0xe9u8, b'a'])
                .bytes("name.utf-8", "é-name")
        });
        assert_eq!(parse_info(&v).unwrap().name, "é-name");
        let v = single(|d| d.bytes("name", vec![0xe9u8, b'a']));
        assert_eq!(parse_info(&v).unwrap().name, "\u{fffd}a");
        let files = Value::list([Value::dict()
            .int("length", 3)
            .insert("path", Value::list([Value::bytes(vec![0xffu8])]))
            .insert("path.utf-8", Value::list([Value::from("ünï")]))
            .build()]);
        let v = Value::dict()
            .bytes("name", "d")
            .int("piece length", 16384)
            .bytes("pieces", vec![0u8; 20])
            .insert("files", files)
            .build();
        assert_eq!(parse_info(&v).unwrap().files[0].path, ["ünï"]);
    }

    #[test]
    fn torrent_round_trip_keeps_non_canonical_info_bytes() {
        // Info keys deliberately out of order: re-encoding would change the hash.
        let info: &[u8] =
            b"d6:lengthi100e12:piece lengthi16384e4:name5:a.bin6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let mut file = b"d8:announce9:wss://one13:announce-listll9:wss://one9:wss://twoel0:ee7:comment2:hi13:creation datei42e4:info".to_vec();
        file.extend_from_slice(info);
        file.extend_from_slice(b"8:url-list8:http://se");
        let m = Metainfo::from_torrent_bytes(&file).unwrap();
        assert_eq!(m.info_bytes, info);
        assert_eq!(m.info_hash, sha1_hash(info));
        assert_ne!(bencode::encode(&bencode::decode(info).unwrap()), info);
        assert_eq!(m.announce.as_deref(), Some("wss://one"));
        assert_eq!(
            m.announce_list,
            [vec!["wss://one".to_string(), "wss://two".to_string()]]
        );
        assert_eq!(m.trackers(), ["wss://one", "wss://two"]);
        assert_eq!(m.url_list, ["http://s"]);
        assert_eq!(m.comment.as_deref(), Some("hi"));
        assert_eq!(m.creation_date, Some(42));
        let again = Metainfo::from_torrent_bytes(&m.to_torrent_bytes()).unwrap();
        assert_eq!(again, m);
        let from_info = Metainfo::from_info_bytes(info.to_vec()).unwrap();
        assert_eq!(from_info.info_hash, m.info_hash);
        assert_eq!(from_info.info, m.info);
        let magnet = m.magnet();
        assert_eq!(magnet.name.as_deref(), Some("a.bin"));
        assert_eq!(magnet.trackers, ["wss://one", "wss://two"]);
        assert_eq!(Magnet::parse(&magnet.to_uri()).unwrap(), magnet);
    }

    #[test]
    fn torrent_level_errors() {
        assert!(matches!(
            Metainfo::from_torrent_bytes(b"garbage"),
            Err(MetainfoError::Bencode(_))
        ));
        assert_eq!(
            Metainfo::from_torrent_bytes(b"le").unwrap_err(),
            invalid("(root)", "not a dictionary")
        );
        assert_eq!(
            Metainfo::from_torrent_bytes(b"de").unwrap_err(),
            MetainfoError::Missing("info")
        );
        assert_eq!(
            Metainfo::from_torrent_bytes(b"d4:infoi1ee").unwrap_err(),
            invalid("info", "not a dictionary")
        );
        let e = Metainfo::from_info_bytes(b"d4:name1:a".to_vec()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("torrent is not valid bencode: bencode: unexpected end"));
        // Malformed outer fields are skipped, not fatal.
        let mut file = b"d8:announcei1e13:announce-listl1:xli1eee8:url-listi3e4:info".to_vec();
        file.extend_from_slice(&bencode::encode(&single(|d| d)));
        file.push(b'e');
        let m = Metainfo::from_torrent_bytes(&file).unwrap();
        assert!(m.announce.is_none() && m.announce_list.is_empty() && m.url_list.is_empty());
        assert!(m.trackers().is_empty());
    }

    #[test]
    fn url_list_keeps_bounded_http_web_seeds() {
        let info = bencode::encode(&single(|d| d));
        let with = |url_list: Value| {
            let mut file = b"d8:url-list".to_vec();
            bencode::encode_into(&url_list, &mut file);
            file.extend_from_slice(b"4:info");
            file.extend_from_slice(&info);
            file.push(b'e');
            Metainfo::from_torrent_bytes(&file).unwrap().url_list
        };
        assert_eq!(with(Value::from("https://a/f")), ["https://a/f"]);
        let long = format!("http://a/{}", "x".repeat(2100));
        let list = [
            "ftp://x/",
            "http://b/",
            "",
            long.as_str(),
            "http://b/",
            "udp://t:1",
        ];
        assert_eq!(with(Value::list(list.map(Value::from))), ["http://b/"]);
        let many: Vec<Value> = (0..50)
            .map(|i| Value::from(format!("http://s{i}/").as_str()))
            .collect();
        assert_eq!(with(Value::list(many)).len(), 16);
    }
}
