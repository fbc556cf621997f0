//! Creating torrents from files, with info dicts byte-identical to WebTorrent's `create-torrent`
//! (6.x) for the same files, name and piece length, so that a swarm seeded from a seedtab tab and
//! one seeded from WebTorrent share an info-hash.
//!
//! Streaming: data is fed in order and hashed as it arrives, so no more than the hasher's state is
//! held, never a whole piece or file. It never reads files or clocks itself: the driver feeds the
//! bytes and passes the creation date.
//!
//! Facts taken from create-torrent 6.1.3 (and what we deliberately do not copy):
//! - One file gives the single-file form (`length`), even if its path has folders; otherwise the
//!   multi-file form (`files`, each `{length, path}`), files in input order, empty files included.
//! - With several files whose paths all have a folder and share the first one, that folder is
//!   removed from every path and becomes the name unless a name was given. With no name and no
//!   common folder, the name is the first file's own name.
//! - Info keys: `files`|`length`, `name`, `piece length`, `pieces`, and `private` only when the
//!   caller set it. create-torrent writes `private: 0` when given `private: false`; we write the key
//!   only for `true` (WebTorrent's `seed()` passes it only when asked), so a torrent made with an
//!   explicit `private: false` there has a different hash than ours.
//! - create-torrent drops "junk" files (`.DS_Store`, `Thumbs.db`, ...) from its input; callers that
//!   want the same info-hash must drop them before building.
//! - Given Node Buffers, create-torrent 6.1.3 hashes a stray zero byte after an empty file (a bug
//!   in block-iterator); with browser `File`s it does not. We match the `File` behaviour.

use std::collections::HashSet;
use std::fmt;

use sha1::{Digest, Sha1};

use crate::bencode::{self, Value};
use crate::metainfo::{
    check_component, Metainfo, MetainfoError, MAX_FILES, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH,
};

/// Most piece hashes a created torrent may hold: the `pieces` string must fit the 16 MiB string
/// limit our own parser (and others') applies.
pub const MAX_PIECES: u64 = (16 << 20) / 20;

/// What goes into a new torrent besides the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// The torrent's name; by default derived from the paths as create-torrent does.
    pub name: Option<String>,
    /// By default [`piece_length_for`] the total length.
    pub piece_length: Option<u32>,
    pub announce_list: Vec<Vec<String>>,
    pub url_list: Vec<String>,
    pub private: bool,
    pub comment: Option<String>,
    /// Defaults to `seedtab/0.1`.
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch; the caller owns the clock.
    pub creation_date: Option<i64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            name: None,
            piece_length: None,
            announce_list: Vec::new(),
            url_list: Vec::new(),
            private: false,
            comment: None,
            created_by: Some("seedtab/0.1".to_string()),
            creation_date: None,
        }
    }
}

/// Why a torrent could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateError {
    NoFiles,
    UnsafePath {
        path: String,
        reason: &'static str,
    },
    DuplicatePath(String),
    TooManyFiles {
        count: usize,
        max: usize,
    },
    TooLarge {
        total: u64,
        max: u64,
    },
    /// Every file is empty.
    Empty,
    BadPieceLength(u32),
    TooManyPieces {
        count: u64,
        max: u64,
    },
    /// More bytes were fed than the files' lengths add up to.
    TooMuchData {
        expected: u64,
    },
    /// `finish` came before all bytes were fed.
    NotEnoughData {
        expected: u64,
        got: u64,
    },
    /// Piece hashes handed to `finish_with_piece_hashes` do not fit the layout.
    PieceHashes {
        expected: u64,
        got: u64,
    },
    /// The result did not validate; a bug on our side rather than in the input.
    Metainfo(MetainfoError),
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::NoFiles => f.write_str("no files to create a torrent from"),
            CreateError::PieceHashes { expected, got } => {
                write!(f, "expected {expected} bytes of piece hashes, got {got}")
            }
            CreateError::UnsafePath { path, reason } => {
                write!(f, "file path {path:?} cannot go in a torrent: {reason}")
            }
            CreateError::DuplicatePath(p) => write!(f, "file path {p:?} appears more than once"),
            CreateError::TooManyFiles { count, max } => {
                write!(f, "{count} files, a torrent may hold at most {max}")
            }
            CreateError::TooLarge { total, max } => {
                write!(f, "{total} bytes, a torrent may hold at most {max}")
            }
            CreateError::Empty => f.write_str("all files are empty; a torrent needs some data"),
            CreateError::BadPieceLength(p) => {
                write!(f, "piece length {p} is outside 1..={MAX_PIECE_LENGTH}")
            }
            CreateError::TooManyPieces { count, max } => {
                write!(
                    f,
                    "{count} pieces, at most {max}: choose a larger piece length"
                )
            }
            CreateError::TooMuchData { expected } => {
                write!(f, "more data than the {expected} bytes the files declared")
            }
            CreateError::NotEnoughData { expected, got } => {
                write!(f, "got {got} bytes of data, the files declared {expected}")
            }
            CreateError::Metainfo(e) => write!(f, "created torrent is invalid: {e}"),
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreateError::Metainfo(e) => Some(e),
            _ => None,
        }
    }
}

/// The piece length create-torrent picks: `1 << round(log2(total / 1024))`, clamped to
/// 16 KiB ..= 4 MiB (its `piece-length` package, capped by its default `maxPieceLength`).
/// Computed in integers: rounding up from k-½ means `total / 1024 >= 2^(k - 1/2)`, i.e.
/// `total² >= 2^(2k + 19)`. Exact for every length we accept (≤ 1 TiB); create-torrent's 32-bit
/// shift falls back to 16 KiB only from ~3 TiB on.
pub fn piece_length_for(total_len: u64) -> u32 {
    const MIN_SHIFT: u32 = 14;
    const MAX_SHIFT: u32 = 22;
    let square = u128::from(total_len) * u128::from(total_len);
    let mut shift = MIN_SHIFT;
    for k in MIN_SHIFT + 1..=MAX_SHIFT {
        if square >= 1u128 << (2 * k + 19) {
            shift = k;
        }
    }
    1 << shift
}

/// Builds a torrent from data fed in order: all files concatenated.
pub struct TorrentBuilder {
    name: String,
    /// Paths inside the torrent (after removing a common folder).
    files: Vec<(Vec<String>, u64)>,
    single_file: bool,
    opts: CreateOptions,
    piece_length: u32,
    total: u64,
    fed: u64,
    in_piece: u32,
    hasher: Sha1,
    pieces: Vec<u8>,
}

impl TorrentBuilder {
    /// Checks the files and options and fixes the layout; `files` are `(path, length)` in the
    /// order their data will be fed.
    pub fn new(
        files: Vec<(Vec<String>, u64)>,
        opts: CreateOptions,
    ) -> Result<TorrentBuilder, CreateError> {
        TorrentBuilder::with_layout(files, opts, true)
    }

    /// Like [`TorrentBuilder::new`], but a folder shared by every path stays in the paths: for
    /// files whose paths are already relative to the torrent's folder, as create-torrent keeps
    /// the files it finds under filesystem paths (a folder holding only `sub/a` and `sub/b`
    /// gives those two paths, not `a` and `b`).
    pub fn new_keeping_paths(
        files: Vec<(Vec<String>, u64)>,
        opts: CreateOptions,
    ) -> Result<TorrentBuilder, CreateError> {
        TorrentBuilder::with_layout(files, opts, false)
    }

    fn with_layout(
        files: Vec<(Vec<String>, u64)>,
        opts: CreateOptions,
        remove_common_folder: bool,
    ) -> Result<TorrentBuilder, CreateError> {
        if files.is_empty() {
            return Err(CreateError::NoFiles);
        }
        if files.len() > MAX_FILES {
            return Err(CreateError::TooManyFiles {
                count: files.len(),
                max: MAX_FILES,
            });
        }
        for (path, _) in &files {
            check_path(path)?;
        }
        let mut total: u64 = 0;
        for (_, len) in &files {
            total = total.saturating_add(*len);
        }
        if total > MAX_TOTAL_LENGTH {
            return Err(CreateError::TooLarge {
                total,
                max: MAX_TOTAL_LENGTH,
            });
        }
        if total == 0 {
            return Err(CreateError::Empty);
        }

        let single_file = files.len() == 1;
        let mut files = files;
        let common = if remove_common_folder {
            common_folder(&files)
        } else {
            None
        };
        if common.is_some() {
            for (path, _) in &mut files {
                path.remove(0);
            }
        }
        let name = match (&opts.name, common) {
            (Some(n), _) => n.clone(),
            (None, Some(c)) => c,
            // Paths are checked non-empty above, so the first file has a last component.
            (None, None) => files[0].0.last().cloned().unwrap_or_default(),
        };
        check_component(&name).map_err(|reason| CreateError::UnsafePath {
            path: name.clone(),
            reason,
        })?;
        if !single_file {
            let mut seen = HashSet::new();
            for (path, _) in &files {
                if !seen.insert(path.as_slice()) {
                    return Err(CreateError::DuplicatePath(path.join("/")));
                }
            }
            for (path, _) in &files {
                for cut in 1..path.len() {
                    if seen.contains(&path[..cut]) {
                        return Err(CreateError::DuplicatePath(path[..cut].join("/")));
                    }
                }
            }
        }

        let piece_length = opts.piece_length.unwrap_or_else(|| piece_length_for(total));
        if piece_length == 0 || piece_length > MAX_PIECE_LENGTH {
            return Err(CreateError::BadPieceLength(piece_length));
        }
        let count = total.div_ceil(u64::from(piece_length));
        if count > MAX_PIECES {
            return Err(CreateError::TooManyPieces {
                count,
                max: MAX_PIECES,
            });
        }
        Ok(TorrentBuilder {
            name,
            files,
            single_file,
            opts,
            piece_length,
            total,
            fed: 0,
            in_piece: 0,
            hasher: Sha1::new(),
            pieces: Vec::with_capacity(count as usize * 20),
        })
    }

    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The sum of the files' lengths: how many bytes `update` must receive.
    pub fn total_length(&self) -> u64 {
        self.total
    }

    /// Bytes fed so far, for progress display.
    pub fn bytes_hashed(&self) -> u64 {
        self.fed
    }

    /// Feeds the next bytes of the concatenated files; any chunking works.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), CreateError> {
        if data.len() as u64 > self.total - self.fed {
            return Err(CreateError::TooMuchData {
                expected: self.total,
            });
        }
        while !data.is_empty() {
            let room = (self.piece_length - self.in_piece) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.hasher.update(now);
            self.in_piece += now.len() as u32;
            self.fed += now.len() as u64;
            if self.in_piece == self.piece_length {
                self.close_piece();
            }
            data = rest;
        }
        Ok(())
    }

    fn close_piece(&mut self) {
        let digest = std::mem::take(&mut self.hasher).finalize();
        self.pieces.extend_from_slice(&digest);
        self.in_piece = 0;
    }

    /// Hashes the last partial piece and returns the torrent.
    pub fn finish(mut self) -> Result<Metainfo, CreateError> {
        if self.fed != self.total {
            return Err(CreateError::NotEnoughData {
                expected: self.total,
                got: self.fed,
            });
        }
        if self.in_piece > 0 {
            self.close_piece();
        }
        self.build()
    }

    /// Returns the torrent with piece hashes computed elsewhere (a browser's WebCrypto, which is
    /// faster than SHA-1 in wasm): `pieces` is the SHA-1 of each piece, concatenated, for data
    /// laid out as `new` was told. Nothing may have been fed with `update`.
    pub fn finish_with_piece_hashes(mut self, pieces: Vec<u8>) -> Result<Metainfo, CreateError> {
        let count = self.total.div_ceil(u64::from(self.piece_length));
        if self.fed != 0 || pieces.len() as u64 != count * 20 {
            return Err(CreateError::PieceHashes {
                expected: count * 20,
                got: pieces.len() as u64,
            });
        }
        self.pieces = pieces;
        self.build()
    }

    fn build(mut self) -> Result<Metainfo, CreateError> {
        let mut info = Value::dict()
            .bytes("name", self.name.as_str())
            .int("piece length", i64::from(self.piece_length))
            .bytes("pieces", std::mem::take(&mut self.pieces));
        if self.opts.private {
            info = info.int("private", 1);
        }
        info = if self.single_file {
            info.int("length", self.total as i64)
        } else {
            let files = self.files.iter().map(|(path, len)| {
                Value::dict()
                    .int("length", *len as i64)
                    .insert(
                        "path",
                        Value::list(path.iter().map(|c| Value::from(c.as_str()))),
                    )
                    .build()
            });
            info.insert("files", Value::list(files))
        };
        let mut m = Metainfo::from_info_bytes(bencode::encode(&info.build()))
            .map_err(CreateError::Metainfo)?;
        let opts = self.opts;
        m.announce_list = opts
            .announce_list
            .into_iter()
            .map(|tier| {
                tier.into_iter()
                    .filter(|u| !u.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|tier| !tier.is_empty())
            .collect();
        m.announce = m
            .announce_list
            .first()
            .and_then(|tier| tier.first())
            .cloned();
        m.url_list = opts.url_list;
        m.comment = opts.comment;
        m.created_by = opts.created_by;
        m.creation_date = opts.creation_date;
        Ok(m)
    }
}

/// The first folder shared by every path, when there are several files and all are in folders.
fn common_folder(files: &[(Vec<String>, u64)]) -> Option<String> {
    if files.len() < 2 {
        return None;
    }
    let first = files[0].0.first()?;
    files
        .iter()
        .all(|(p, _)| p.len() >= 2 && p[0] == *first)
        .then(|| first.clone())
}

fn check_path(path: &[String]) -> Result<(), CreateError> {
    match crate::metainfo::unsafe_path_reason(path) {
        Some(reason) => Err(CreateError::UnsafePath {
            path: path.join("/"),
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates a torrent from in-memory files, for tests and small drops.
pub fn create_torrent(
    files: &[(Vec<String>, &[u8])],
    opts: CreateOptions,
) -> Result<Metainfo, CreateError> {
    let layout = files
        .iter()
        .map(|(p, d)| (p.clone(), d.len() as u64))
        .collect();
    let mut b = TorrentBuilder::new(layout, opts)?;
    for (_, data) in files {
        b.update(data)?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::BLOCK_SIZE;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(String::from).collect()
    }

    fn stream(start: usize, n: usize) -> Vec<u8> {
        (start..start + n)
            .map(|i| ((i * 31 + 7) % 251) as u8)
            .collect()
    }

    #[test]
    fn piece_length_matches_create_torrent_at_its_edges() {
        assert_eq!(piece_length_for(0), 16384);
        assert_eq!(piece_length_for(1), 16384);
        assert_eq!(piece_length_for(23_726_566), 16384);
        assert_eq!(piece_length_for(23_726_567), 32768);
        assert_eq!(piece_length_for(47_453_132), 32768);
        assert_eq!(piece_length_for(47_453_133), 65536);
        assert_eq!(piece_length_for(3_037_000_499), 2 << 20);
        assert_eq!(piece_length_for(3_037_000_500), 4 << 20);
        assert_eq!(piece_length_for(1 << 40), 4 << 20);
        assert_eq!(piece_length_for(u64::MAX), 4 << 20);
    }

    #[test]
    fn single_file_form_and_hashes() {
        let data = stream(0, 40000);
        let m = create_torrent(
            &[(p("dir/a.bin"), &data)],
            CreateOptions {
                piece_length: Some(16384),
                ..CreateOptions::default()
            },
        )
        .unwrap();
        assert!(!m.info.multi_file);
        assert_eq!(m.info.name, "a.bin");
        assert_eq!(m.info.num_pieces(), 3);
        assert_eq!(
            m.info.piece_hash(2).unwrap(),
            &<[u8; 20]>::from(Sha1::digest(&data[32768..]))
        );
        assert_eq!(m.created_by.as_deref(), Some("seedtab/0.1"));
        // The exact key set and order create-torrent writes for one file.
        let mut expected =
            b"d6:lengthi40000e4:name5:a.bin12:piece lengthi16384e6:pieces60:".to_vec();
        for i in 0..3 {
            expected.extend_from_slice(m.info.piece_hash(i).unwrap());
        }
        expected.push(b'e');
        assert_eq!(m.info_bytes, expected);
        assert!(!m.info.private);
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let data = stream(0, 100_000);
        let layout = vec![(p("d/x"), 30_000), (p("d/y"), 0), (p("d/z"), 70_000)];
        let opts = CreateOptions {
            piece_length: Some(BLOCK_SIZE * 2),
            ..CreateOptions::default()
        };
        let mut whole = TorrentBuilder::new(layout.clone(), opts.clone()).unwrap();
        whole.update(&data).unwrap();
        let whole = whole.finish().unwrap();
        for chunk in [1, 7, 16384, 32768, 32769] {
            let mut b = TorrentBuilder::new(layout.clone(), opts.clone()).unwrap();
            for c in data.chunks(chunk) {
                b.update(c).unwrap();
            }
            b.update(&[]).unwrap();
            assert_eq!(b.bytes_hashed(), 100_000);
            assert_eq!(
                b.finish().unwrap().info_hash,
                whole.info_hash,
                "chunk {chunk}"
            );
        }
        assert_eq!(whole.info.name, "d");
        assert_eq!(whole.info.files[1].path, ["y"]);
        assert_eq!(whole.info.files[2].offset, 30_000);
    }

    #[test]
    fn precomputed_piece_hashes_give_the_same_torrent() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let opts = || CreateOptions {
            piece_length: Some(16384),
            ..CreateOptions::default()
        };
        let direct = create_torrent(&[(p("a"), &data[..])], opts()).unwrap();
        let mut hashes = Vec::new();
        for piece in data.chunks(16384) {
            hashes.extend_from_slice(&Sha1::digest(piece));
        }
        let b = TorrentBuilder::new(vec![(p("a"), data.len() as u64)], opts()).unwrap();
        let outside = b.finish_with_piece_hashes(hashes.clone()).unwrap();
        assert_eq!(outside.info_hash, direct.info_hash);
        let b = TorrentBuilder::new(vec![(p("a"), data.len() as u64)], opts()).unwrap();
        assert!(matches!(
            b.finish_with_piece_hashes(hashes[..20].to_vec()),
            Err(CreateError::PieceHashes { .. })
        ));
    }

    #[test]
    fn naming_rules() {
        let d = [1u8; 10];
        let name = |files: &[&str], name: Option<&str>| {
            let files: Vec<_> = files.iter().map(|f| (p(f), &d[..])).collect();
            let m = create_torrent(
                &files,
                CreateOptions {
                    name: name.map(String::from),
                    ..CreateOptions::default()
                },
            )
            .unwrap();
            (
                m.info.name.clone(),
                m.info
                    .files
                    .iter()
                    .map(|f| f.path.join("/"))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            name(&["a.txt"], None),
            ("a.txt".into(), vec!["a.txt".into()])
        );
        assert_eq!(name(&["a.txt"], Some("N")), ("N".into(), vec!["N".into()]));
        assert_eq!(
            name(&["f/a", "f/s/b"], None),
            ("f".into(), vec!["a".into(), "s/b".into()])
        );
        assert_eq!(
            name(&["f/a", "f/s/b"], Some("N")),
            ("N".into(), vec!["a".into(), "s/b".into()])
        );
        assert_eq!(
            name(&["f/a", "g/b"], None),
            ("a".into(), vec!["f/a".into(), "g/b".into()])
        );
        assert_eq!(
            name(&["f/a", "b"], None),
            ("a".into(), vec!["f/a".into(), "b".into()])
        );
        assert_eq!(
            name(&["a", "b"], Some("N")),
            ("N".into(), vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn keeping_paths_keeps_a_common_folder() {
        let layout = vec![(p("sub/a"), 3), (p("sub/b"), 2)];
        let opts = CreateOptions {
            name: Some("top".into()),
            ..CreateOptions::default()
        };
        let mut kept = TorrentBuilder::new_keeping_paths(layout.clone(), opts.clone()).unwrap();
        kept.update(b"aaabb").unwrap();
        let kept = kept.finish().unwrap();
        assert_eq!(kept.info.name, "top");
        assert_eq!(kept.info.files[1].path, ["sub", "b"]);
        let mut cut = TorrentBuilder::new(layout, opts).unwrap();
        cut.update(b"aaabb").unwrap();
        assert_eq!(cut.finish().unwrap().info.files[1].path, ["b"]);
        // With no name and nothing removed, the first file names the torrent.
        let mut b = TorrentBuilder::new_keeping_paths(
            vec![(p("d/a"), 1), (p("d/b"), 1)],
            CreateOptions::default(),
        )
        .unwrap();
        b.update(b"xy").unwrap();
        let m = b.finish().unwrap();
        assert_eq!(m.info.name, "a");
        assert_eq!(m.info.files[0].path, ["d", "a"]);
    }

    #[test]
    fn outer_fields_and_private() {
        let m = create_torrent(
            &[(p("a"), b"hello")],
            CreateOptions {
                announce_list: vec![
                    vec!["wss://a".into(), "".into()],
                    vec![],
                    vec!["wss://b".into()],
                ],
                url_list: vec!["https://s/".into()],
                private: true,
                comment: Some("c".into()),
                created_by: None,
                creation_date: Some(5),
                ..CreateOptions::default()
            },
        )
        .unwrap();
        assert!(m.info.private);
        assert!(m.info_bytes.ends_with(b"7:privatei1ee"));
        assert_eq!(m.announce.as_deref(), Some("wss://a"));
        assert_eq!(
            m.announce_list,
            [vec!["wss://a".to_string()], vec!["wss://b".to_string()]]
        );
        let again = Metainfo::from_torrent_bytes(&m.to_torrent_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn errors() {
        use CreateError::*;
        let o = CreateOptions::default;
        let new = |files: Vec<(Vec<String>, u64)>, opts| TorrentBuilder::new(files, opts).err();
        assert_eq!(new(vec![], o()), Some(NoFiles));
        assert_eq!(new(vec![(p("a"), 0), (p("b"), 0)], o()), Some(Empty));
        assert!(matches!(
            new(vec![(p("a/../b"), 1)], o()),
            Some(UnsafePath {
                reason: "relative component",
                ..
            })
        ));
        assert!(matches!(
            new(vec![(vec![], 1)], o()),
            Some(UnsafePath {
                reason: "empty path",
                ..
            })
        ));
        let bad_name = CreateOptions {
            name: Some("x/y".into()),
            ..o()
        };
        assert!(matches!(
            new(vec![(p("a"), 1)], bad_name),
            Some(UnsafePath { .. })
        ));
        assert_eq!(
            new(vec![(p("a"), 1), (p("a"), 1)], o()),
            Some(DuplicatePath("a".into()))
        );
        assert_eq!(
            new(vec![(p("a"), 1), (p("a/b"), 1)], o()),
            Some(DuplicatePath("a".into()))
        );
        assert_eq!(
            new(vec![(p("a"), 1 << 41)], o()),
            Some(TooLarge {
                total: 1 << 41,
                max: 1 << 40
            })
        );
        assert_eq!(
            new(vec![(p("a"), u64::MAX), (p("b"), 5)], o()),
            Some(TooLarge {
                total: u64::MAX,
                max: 1 << 40
            })
        );
        let zero = CreateOptions {
            piece_length: Some(0),
            ..o()
        };
        assert_eq!(new(vec![(p("a"), 1)], zero), Some(BadPieceLength(0)));
        let small = CreateOptions {
            piece_length: Some(16384),
            ..o()
        };
        assert!(matches!(
            new(vec![(p("a"), 1 << 40)], small),
            Some(TooManyPieces { .. })
        ));
        let many: Vec<_> = (0..=MAX_FILES).map(|i| (vec![i.to_string()], 1)).collect();
        assert_eq!(
            new(many, o()),
            Some(TooManyFiles {
                count: MAX_FILES + 1,
                max: MAX_FILES
            })
        );

        let mut b = TorrentBuilder::new(vec![(p("a"), 3)], o()).unwrap();
        assert_eq!(b.update(b"abcd"), Err(TooMuchData { expected: 3 }));
        b.update(b"ab").unwrap();
        assert_eq!(b.update(b"cd"), Err(TooMuchData { expected: 3 }));
        assert_eq!(
            b.finish().err(),
            Some(NotEnoughData {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            NotEnoughData {
                expected: 3,
                got: 2
            }
            .to_string(),
            "got 2 bytes of data, the files declared 3"
        );
    }
}
