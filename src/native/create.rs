//! Torrents from files on disk, and seeding those files where they are: the on-disk side of
//! `seedtab create` and `seedtab seed PATH...`.
//!
//! [`collect_files`] walks the inputs as WebTorrent's create-torrent does for filesystem paths
//! (same files, same order, same torrent paths, so `webtorrent seed DIR` and `seedtab seed DIR`
//! share an info-hash); [`create_from_disk`] streams their bytes through
//! [`crate::create::TorrentBuilder`]; [`open_seed_store`] opens a [`FileStore`] over the files in
//! place, every piece had, since creating the torrent just hashed them all.
//!
//! What this module must never do: hold a whole file in memory (reads go through one bounded
//! buffer); follow a symlinked folder (that is how walks loop forever); share hidden files or
//! create-torrent's junk files (which also keeps our own `.seedtab` state folder out); or write
//! to, create, truncate or move the user's files — the only thing it writes is the resume state
//! file. Everything here blocks on disk I/O: call it before the async runtime starts or from
//! `spawn_blocking`, never on a runtime thread.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::bitfield::Bitfield;
use crate::create::{CreateError, CreateOptions, TorrentBuilder};
use crate::metainfo::{check_component, Metainfo, MAX_FILES};
use crate::store::FileStore;

/// Bytes read from disk at a time while hashing.
pub const READ_BUFFER: usize = 1 << 20;

/// One file to put in a torrent, and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFile {
    /// Its path inside the torrent (below the torrent's name, for a multi-file torrent).
    pub torrent_path: Vec<String>,
    pub disk_path: PathBuf,
    /// Its length when it was found; reading it later finds a different length is an error.
    pub length: u64,
}

/// Why files on disk could not become a torrent.
#[derive(Debug)]
pub enum CreateFromDiskError {
    /// The inputs hold no file (after skipping hidden and junk files and symlinked folders).
    NoFiles { inputs: Vec<PathBuf> },
    /// A path could not be read (missing, unreadable, a dangling symlink, ...).
    Io { path: PathBuf, error: io::Error },
    /// A file or folder name cannot go in a torrent.
    BadName { path: PathBuf, reason: &'static str },
    /// A file's length changed between finding it and reading it, or while reading it.
    Changed {
        path: PathBuf,
        expected: u64,
        /// Its length now, if it can still be read.
        now: Option<u64>,
    },
    /// The files found do not make a valid torrent (too many, too large, all empty, ...).
    Create(CreateError),
}

impl fmt::Display for CreateFromDiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateFromDiskError::NoFiles { inputs } => {
                let list: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "no files to share in {} (hidden files, junk files and symlinked folders are \
                     skipped)",
                    list.join(", ")
                )
            }
            CreateFromDiskError::Io { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            CreateFromDiskError::BadName { path, reason } => {
                write!(
                    f,
                    "{}: the name cannot go in a torrent: {reason}",
                    path.display()
                )
            }
            CreateFromDiskError::Changed {
                path,
                expected,
                now,
            } => {
                write!(
                    f,
                    "{} changed while it was being read: it had {expected} bytes",
                    path.display()
                )?;
                if let Some(now) = now {
                    write!(f, ", now {now}")?;
                }
                f.write_str("; try again once nothing is writing to it")
            }
            CreateFromDiskError::Create(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CreateFromDiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreateFromDiskError::Io { error, .. } => Some(error),
            CreateFromDiskError::Create(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CreateError> for CreateFromDiskError {
    fn from(e: CreateError) -> Self {
        CreateFromDiskError::Create(e)
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CreateFromDiskError + '_ {
    move |error| CreateFromDiskError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Finds the files under `paths` (files or folders, walked recursively) and their paths inside
/// the torrent, as create-torrent does for filesystem paths:
/// - one folder: paths relative to it, and its name as the default torrent name;
/// - one file: the path `[file name]`;
/// - several inputs: each contributes its own name as the first component (a folder `d` gives
///   `d/...`), and the first input's name is the default torrent name.
///
/// Inside folders, entries are taken in bytewise name order (what Node's `readdir` returns on
/// Unix), hidden entries (a name starting with `.`) and junk files are skipped, and symlinks to
/// files are followed but symlinks to folders are not. The inputs themselves are taken as given,
/// even hidden or symlinked. Anything neither file nor folder (FIFOs, sockets) is skipped.
///
/// The default name is `None` when only one file was found: the torrent is then single-file and
/// named after it (as a browser drop of that folder would be). Pass it as
/// [`CreateOptions::name`] to [`create_from_disk`] unless the user chose a name.
pub fn collect_files(
    paths: &[PathBuf],
) -> Result<(Option<String>, Vec<DiskFile>), CreateFromDiskError> {
    let several = paths.len() > 1;
    let mut first_name = None;
    let mut out = Vec::new();
    for input in paths {
        let meta = fs::metadata(input).map_err(io_error(input))?;
        let name = input_name(input)?;
        first_name.get_or_insert_with(|| name.clone());
        if meta.is_dir() {
            let prefix = if several { vec![name] } else { Vec::new() };
            walk(input, &prefix, &mut out)?;
        } else if meta.is_file() {
            push(
                &mut out,
                DiskFile {
                    torrent_path: vec![name],
                    disk_path: input.clone(),
                    length: meta.len(),
                },
            )?;
        } else {
            return Err(CreateFromDiskError::Io {
                path: input.clone(),
                error: io::Error::new(io::ErrorKind::InvalidInput, "neither a file nor a folder"),
            });
        }
    }
    if out.is_empty() {
        return Err(CreateFromDiskError::NoFiles {
            inputs: paths.to_vec(),
        });
    }
    let default_name = if out.len() == 1 { None } else { first_name };
    Ok((default_name, out))
}

/// The name an input contributes: its last component, or the real folder's name for `.`/`..`.
fn input_name(input: &Path) -> Result<String, CreateFromDiskError> {
    let name = match input.file_name() {
        Some(n) => n.to_os_string(),
        None => {
            let real = fs::canonicalize(input).map_err(io_error(input))?;
            match real.file_name() {
                Some(n) => n.to_os_string(),
                None => {
                    return Err(CreateFromDiskError::BadName {
                        path: input.to_path_buf(),
                        reason: "it has no name (a filesystem root?)",
                    })
                }
            }
        }
    };
    component(input, &name)
}

/// `name` as a torrent path component, or why it cannot be one.
fn component(path: &Path, name: &OsStr) -> Result<String, CreateFromDiskError> {
    let bad = |reason| CreateFromDiskError::BadName {
        path: path.to_path_buf(),
        reason,
    };
    let name = name.to_str().ok_or_else(|| bad("not valid UTF-8"))?;
    check_component(name).map_err(bad)?;
    Ok(name.to_string())
}

fn push(out: &mut Vec<DiskFile>, file: DiskFile) -> Result<(), CreateFromDiskError> {
    if out.len() >= MAX_FILES {
        // Stop walking a huge tree early rather than listing all of it first.
        return Err(CreateError::TooManyFiles {
            count: out.len() + 1,
            max: MAX_FILES,
        }
        .into());
    }
    out.push(file);
    Ok(())
}

fn walk(dir: &Path, prefix: &[String], out: &mut Vec<DiskFile>) -> Result<(), CreateFromDiskError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        if is_skipped(&name.to_string_lossy()) {
            continue;
        }
        entries.push(entry);
    }
    // `OsString` orders by bytes on Unix: Node's readdir order (libuv sorts with strcmp).
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_error(&path))?;
        let mut torrent_path = prefix.to_vec();
        torrent_path.push(component(&path, &entry.file_name())?);
        if file_type.is_dir() {
            walk(&path, &torrent_path, out)?;
            continue;
        }
        // Follows a symlink (a dangling one is an error, as in create-torrent).
        let meta = if file_type.is_symlink() {
            fs::metadata(&path).map_err(io_error(&path))?
        } else {
            entry.metadata().map_err(io_error(&path))?
        };
        if meta.is_file() {
            push(
                out,
                DiskFile {
                    torrent_path,
                    disk_path: path,
                    length: meta.len(),
                },
            )?;
        } else if meta.is_dir() {
            tracing::warn!(path = %path.display(), "not following a symlinked folder");
        }
    }
    Ok(())
}

/// Names create-torrent leaves out when it walks a folder: hidden ones, and those the `junk`
/// package (v4) matches. Its regular expressions, case-sensitive as there; the ones starting
/// with `.` are covered by the hidden rule.
pub fn is_skipped(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "npm-debug.log" | "Icon\r" | "__MACOSX" | "Thumbs.db" | "ehthumbs.db" | "Desktop.ini"
        )
        || name.ends_with('~')
        || name.ends_with("@eaDir")
        || name.contains(".Trashes")
}

/// Hashes `files` (from [`collect_files`], in that order) into a torrent, reading each file once
/// through a [`READ_BUFFER`]-sized buffer. `progress(hashed, total)` is called as bytes go by.
/// Paths are used as given: a folder shared by all of them is kept (see
/// [`TorrentBuilder::new_keeping_paths`]). A file whose length is no longer the one in its
/// [`DiskFile`], or that changes length while it is read, is an error.
pub fn create_from_disk(
    files: &[DiskFile],
    opts: CreateOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Metainfo, CreateFromDiskError> {
    let layout = files
        .iter()
        .map(|f| (f.torrent_path.clone(), f.length))
        .collect();
    let mut builder = TorrentBuilder::new_keeping_paths(layout, opts)?;
    let total = builder.total_length();
    progress(0, total);
    let mut buf = vec![0u8; usize::try_from(total).map_or(READ_BUFFER, |t| t.min(READ_BUFFER))];
    for f in files {
        hash_file(f, &mut builder, &mut buf, progress)?;
    }
    Ok(builder.finish()?)
}

fn hash_file(
    f: &DiskFile,
    builder: &mut TorrentBuilder,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), CreateFromDiskError> {
    let path = &f.disk_path;
    let changed = || CreateFromDiskError::Changed {
        path: path.clone(),
        expected: f.length,
        now: fs::metadata(path).ok().map(|m| m.len()),
    };
    let mut file = File::open(path).map_err(io_error(path))?;
    if file.metadata().map_err(io_error(path))?.len() != f.length {
        return Err(changed());
    }
    let mut left = f.length;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path)(e)),
        };
        builder.update(&buf[..n])?;
        left -= n as u64;
        progress(builder.bytes_hashed(), builder.total_length());
    }
    // Bytes past the length we hashed mean the file grew while we read it.
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(changed()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
}

/// Where the resume state of a torrent seeded from files near `base` lives:
/// `base/.seedtab/<infohash hex>.state`, the same place [`FileStore::open`] uses for a download
/// folder `base`. (`.seedtab` is hidden, so [`collect_files`] never shares it.)
pub fn default_state_path(meta: &Metainfo, base: &Path) -> PathBuf {
    FileStore::state_path_in(base, meta)
}

/// Opens the store that seeds `files` where they are, with every piece had and without reading
/// them again: only right after [`create_from_disk`] hashed these very files into `meta`.
/// Anything else (a `.torrent` made elsewhere, files that may have changed since) goes through
/// [`FileStore::open_paths_verify`]. The state file is written if it can be; if not (a read-only
/// folder), seeding still works and the error waits in [`FileStore::take_error`]. Pieces of a
/// file that has meanwhile gone missing or shrunk are not had.
pub fn open_seed_store(
    files: &[DiskFile],
    meta: &Metainfo,
    state_path: PathBuf,
) -> io::Result<(FileStore, Bitfield)> {
    let torrent_files = &meta.info.files;
    let fits = files.len() == torrent_files.len()
        && files
            .iter()
            .zip(torrent_files)
            .all(|(d, t)| d.length == t.length);
    if !fits {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "these files are not the ones the torrent was created from",
        ));
    }
    let paths = files.iter().map(|f| f.disk_path.clone()).collect();
    let (mut store, _) = FileStore::open_paths(paths, state_path, meta)?;
    store.mark_all_had();
    let have = store.have().clone();
    Ok((store, have))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::create_torrent;
    use crate::store::PieceStore;
    use crate::testdir::TempDir;

    fn bytes(n: usize, seed: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 17 + seed * 59 + i / 253) % 251) as u8)
            .collect()
    }

    fn paths(files: &[DiskFile]) -> Vec<String> {
        files.iter().map(|f| f.torrent_path.join("/")).collect()
    }

    fn opts(name: Option<String>, piece_length: u32) -> CreateOptions {
        CreateOptions {
            name,
            piece_length: Some(piece_length),
            ..CreateOptions::default()
        }
    }

    fn no_progress() -> impl FnMut(u64, u64) {
        |_, _| {}
    }

    #[test]
    fn single_file() {
        let tmp = TempDir::new("single");
        let data = bytes(40_000, 1);
        let p = tmp.file("movie.bin", &data);
        let (name, files) = collect_files(std::slice::from_ref(&p)).unwrap();
        assert_eq!(name, None);
        assert_eq!(
            files,
            [DiskFile {
                torrent_path: vec!["movie.bin".into()],
                disk_path: p,
                length: 40_000
            }]
        );
        let meta = create_from_disk(&files, opts(name, 16384), &mut no_progress()).unwrap();
        let expected =
            create_torrent(&[(vec!["movie.bin".into()], &data)], opts(None, 16384)).unwrap();
        assert_eq!(meta.info_hash, expected.info_hash);
        assert!(!meta.info.multi_file);
        assert_eq!(meta.info.name, "movie.bin");
    }

    #[test]
    fn directory_nested_hidden_and_junk() {
        let tmp = TempDir::new("dir");
        let root = tmp.0.join("album");
        let put =
            |rel: &str, n: usize, seed: usize| tmp.file(&format!("album/{rel}"), &bytes(n, seed));
        put("b.txt", 10, 1);
        put("a/z.bin", 20, 2);
        put("a/y/x", 30, 3);
        put("a.txt", 5, 4);
        put("B", 7, 5);
        put("empty", 0, 6);
        // Never shared: hidden files and folders (our state folder among them), and junk.
        put(".hidden", 1, 0);
        put(".seedtab/abc.state", 1, 0);
        put("a/.git/config", 1, 0);
        put("Thumbs.db", 1, 0);
        put("a/Desktop.ini", 1, 0);
        put("notes.txt~", 1, 0);
        put("__MACOSX/x", 1, 0);
        let (name, files) = collect_files(std::slice::from_ref(&root)).unwrap();
        assert_eq!(name.as_deref(), Some("album"));
        // Bytewise order, folders where their name sorts ("a" < "a.txt").
        assert_eq!(
            paths(&files),
            ["B", "a/y/x", "a/z.bin", "a.txt", "b.txt", "empty"]
        );
        assert_eq!(files[1].disk_path, root.join("a").join("y").join("x"));
        assert_eq!(files[1].length, 30);
        assert_eq!(files[5].length, 0);

        // Same info-hash as creating the torrent from the same bytes in memory.
        let contents: Vec<Vec<u8>> = files
            .iter()
            .map(|f| fs::read(&f.disk_path).unwrap())
            .collect();
        let in_memory: Vec<(Vec<String>, &[u8])> = files
            .iter()
            .zip(&contents)
            .map(|(f, d)| {
                let mut p = vec!["album".to_string()];
                p.extend(f.torrent_path.iter().cloned());
                (p, d.as_slice())
            })
            .collect();
        let expected = create_torrent(&in_memory, opts(None, 16)).unwrap();
        let mut calls = Vec::new();
        let meta =
            create_from_disk(&files, opts(name, 16), &mut |h, t| calls.push((h, t))).unwrap();
        assert_eq!(meta.info_hash, expected.info_hash);
        assert_eq!(meta.info.name, "album");
        assert_eq!(calls.first(), Some(&(0, 72)));
        assert_eq!(calls.last(), Some(&(72, 72)));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn a_folder_holding_one_folder_keeps_it_in_the_paths() {
        let tmp = TempDir::new("onefolder");
        tmp.file("top/sub/a", b"aaa");
        tmp.file("top/sub/b", b"bb");
        let (name, files) = collect_files(&[tmp.0.join("top")]).unwrap();
        assert_eq!(paths(&files), ["sub/a", "sub/b"]);
        let meta = create_from_disk(&files, opts(name, 16), &mut no_progress()).unwrap();
        assert_eq!(meta.info.name, "top");
        assert_eq!(meta.info.files[0].path, ["sub", "a"]);
    }

    #[test]
    fn a_folder_with_one_file_gives_a_single_file_torrent() {
        let tmp = TempDir::new("onefile");
        tmp.file("top/only.bin", b"data");
        let (name, files) = collect_files(&[tmp.0.join("top")]).unwrap();
        assert_eq!(name, None);
        let meta = create_from_disk(&files, opts(name, 16), &mut no_progress()).unwrap();
        assert!(!meta.info.multi_file);
        assert_eq!(meta.info.name, "only.bin");
    }

    #[test]
    fn several_inputs() {
        let tmp = TempDir::new("several");
        let d = tmp.0.join("docs");
        tmp.file("docs/b", b"bbbb");
        tmp.file("docs/a/c", b"cc");
        tmp.file("docs/.hidden", b"h");
        let f = tmp.file("readme.md", b"hello");
        // A hidden input given by name is taken, as create-torrent does.
        let h = tmp.file(".env", b"x=1");
        let (name, files) = collect_files(&[d, f, h]).unwrap();
        assert_eq!(name.as_deref(), Some("docs"));
        assert_eq!(paths(&files), ["docs/a/c", "docs/b", "readme.md", ".env"]);
        let meta = create_from_disk(&files, opts(name, 16), &mut no_progress()).unwrap();
        assert_eq!(meta.info.name, "docs");
        assert_eq!(meta.info.files.len(), 4);
        assert_eq!(meta.info.files[0].path, ["docs", "a", "c"]);
        // Two inputs with one name cannot both be in the torrent.
        let other = tmp.file("x/readme.md", b"other");
        let (_, files) = collect_files(&[tmp.0.join("readme.md"), other]).unwrap();
        assert!(matches!(
            create_from_disk(&files, opts(None, 16), &mut no_progress()),
            Err(CreateFromDiskError::Create(CreateError::DuplicatePath(_)))
        ));
    }

    #[test]
    fn no_files_and_unreadable_paths_are_errors() {
        let tmp = TempDir::new("errors");
        let empty = tmp.0.join("empty");
        fs::create_dir_all(empty.join("sub")).unwrap();
        tmp.file("empty/.DS_Store", b"junk");
        let err = collect_files(std::slice::from_ref(&empty)).unwrap_err();
        assert!(matches!(err, CreateFromDiskError::NoFiles { .. }));
        assert!(err.to_string().contains(&empty.display().to_string()));
        assert!(matches!(
            collect_files(&[]),
            Err(CreateFromDiskError::NoFiles { .. })
        ));

        let missing = tmp.0.join("missing");
        let err = collect_files(std::slice::from_ref(&missing)).unwrap_err();
        assert!(matches!(err, CreateFromDiskError::Io { ref path, .. } if *path == missing));
        assert!(err
            .to_string()
            .starts_with(&format!("cannot read {}", missing.display())));

        // Only empty files: a torrent needs some data.
        tmp.file("zeros/a", b"");
        let (name, files) = collect_files(&[tmp.0.join("zeros")]).unwrap();
        assert!(matches!(
            create_from_disk(&files, opts(name, 16), &mut no_progress()),
            Err(CreateFromDiskError::Create(CreateError::Empty))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn names_a_torrent_cannot_hold_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = TempDir::new("badname");
        tmp.file("d/ok", b"1");
        tmp.file("d/C:evil", b"2");
        let err = collect_files(&[tmp.0.join("d")]).unwrap_err();
        match &err {
            CreateFromDiskError::BadName { path, reason } => {
                assert_eq!(*path, tmp.0.join("d").join("C:evil"));
                assert_eq!(*reason, "looks like a drive letter");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("C:evil"));
        fs::remove_file(tmp.0.join("d").join("C:evil")).unwrap();
        let latin1 = tmp.0.join("d").join(OsStr::from_bytes(b"caf\xe9"));
        fs::write(&latin1, b"3").unwrap();
        assert!(matches!(
            collect_files(&[tmp.0.join("d")]),
            Err(CreateFromDiskError::BadName {
                reason: "not valid UTF-8",
                ..
            })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_not_followed() {
        let tmp = TempDir::new("symlink");
        tmp.file("d/real/a", b"aaa");
        let target = tmp.file("outside.bin", b"linked");
        std::os::unix::fs::symlink(tmp.0.join("d"), tmp.0.join("d/real/loop")).unwrap();
        std::os::unix::fs::symlink(&target, tmp.0.join("d/link.bin")).unwrap();
        let (_, files) = collect_files(&[tmp.0.join("d")]).unwrap();
        assert_eq!(paths(&files), ["link.bin", "real/a"]);
        assert_eq!(files[0].length, 6);
        // A dangling link is an error naming it.
        std::os::unix::fs::symlink(tmp.0.join("gone"), tmp.0.join("d/dangling")).unwrap();
        assert!(matches!(
            collect_files(&[tmp.0.join("d")]),
            Err(CreateFromDiskError::Io { ref path, .. }) if path.ends_with("dangling")
        ));
    }

    #[test]
    fn junk_names() {
        for junk in [
            ".DS_Store",
            "._x",
            ".x.swp",
            "Thumbs.db",
            "ehthumbs.db",
            "Desktop.ini",
            "npm-debug.log",
            "Icon\r",
            "__MACOSX",
            "a~",
            "x@eaDir",
            "a.Trashes",
        ] {
            assert!(is_skipped(junk), "{junk:?}");
        }
        for keep in [
            "desktop.ini",
            "thumbs.db",
            "Icon",
            "a.txt",
            "~a",
            "npm-debug.log.1",
        ] {
            assert!(!is_skipped(keep), "{keep:?}");
        }
    }

    #[test]
    fn a_file_that_changed_size_is_an_error() {
        let tmp = TempDir::new("changed");
        let p = tmp.file("d/a", &bytes(5000, 1));
        tmp.file("d/b", &bytes(100, 2));
        let (name, files) = collect_files(&[tmp.0.join("d")]).unwrap();
        fs::write(&p, bytes(4000, 1)).unwrap();
        let err =
            create_from_disk(&files, opts(name.clone(), 1024), &mut no_progress()).unwrap_err();
        match &err {
            CreateFromDiskError::Changed {
                path,
                expected,
                now,
            } => {
                assert_eq!(*path, p);
                assert_eq!((*expected, *now), (5000, Some(4000)));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("changed while it was being read"));

        // Grown since it was found.
        fs::write(&p, bytes(6000, 1)).unwrap();
        assert!(matches!(
            create_from_disk(&files, opts(name, 1024), &mut no_progress()),
            Err(CreateFromDiskError::Changed {
                now: Some(6000),
                ..
            })
        ));
    }

    #[test]
    fn seeding_in_place_reads_exact_blocks_across_files() {
        let tmp = TempDir::new("seed");
        let sizes = [1500usize, 0, 300, 2272];
        let names = ["a", "b", "c", "d"];
        let mut all = Vec::new();
        for (i, (n, size)) in names.iter().zip(sizes).enumerate() {
            let data = bytes(size, i);
            tmp.file(&format!("share/{n}"), &data);
            all.extend_from_slice(&data);
        }
        let (name, files) = collect_files(&[tmp.0.join("share")]).unwrap();
        let meta = create_from_disk(&files, opts(name, 1024), &mut no_progress()).unwrap();
        assert_eq!(meta.info.num_pieces(), 4);
        let state = default_state_path(&meta, &tmp.0.join("share"));
        assert_eq!(
            state,
            tmp.0
                .join("share")
                .join(".seedtab")
                .join(format!("{}.state", meta.info_hash.to_hex()))
        );
        let (mut store, have) = open_seed_store(&files, &meta, state.clone()).unwrap();
        assert!(have.is_complete());
        assert!(store.take_error().is_none());
        assert!(state.is_file());
        // Piece 1 (1024..2048) spans a, the empty b, c and d; piece 3 is the short last one.
        for (piece, begin, len) in [
            (1u32, 0u32, 1024u32),
            (1, 400, 500),
            (3, 0, 1000),
            (0, 1000, 24),
        ] {
            let mut out = vec![7];
            assert!(
                store.read_block(piece, begin, len, &mut out),
                "{piece} {begin}"
            );
            let at = piece as usize * 1024 + begin as usize;
            assert_eq!(out[1..], all[at..at + len as usize]);
        }
        assert!(!store.read_block(3, 0, 1001, &mut Vec::new()));
        // Nothing was written next to the files, apart from the state.
        let mut names_now: Vec<_> = fs::read_dir(tmp.0.join("share"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names_now.sort();
        assert_eq!(names_now, [".seedtab", "a", "b", "c", "d"]);
        drop(store);

        // The hidden state folder stays out of the next walk; the state resumes every piece.
        let (_, again) = collect_files(&[tmp.0.join("share")]).unwrap();
        assert_eq!(again, files);
        let paths = files.iter().map(|f| f.disk_path.clone()).collect();
        let (_, resumed) = FileStore::open_paths(paths, state, &meta).unwrap();
        assert!(resumed.is_complete());
    }

    #[test]
    fn seed_store_works_without_a_writable_state_folder() {
        let tmp = TempDir::new("readonly");
        tmp.file("d/a", &bytes(3000, 1));
        let (name, files) = collect_files(&[tmp.0.join("d")]).unwrap();
        let meta = create_from_disk(&files, opts(name, 1024), &mut no_progress()).unwrap();
        // The state's folder cannot be created: a file is in the way (permissions would not
        // stop root, who runs these tests in containers).
        let blocker = tmp.file("blocker", b"");
        let (mut store, have) = open_seed_store(&files, &meta, blocker.join("x.state")).unwrap();
        assert!(have.is_complete());
        assert!(store.take_error().is_some());
        let mut out = Vec::new();
        assert!(store.read_block(2, 0, 952, &mut out));
        assert_eq!(out, bytes(3000, 1)[2048..]);
    }

    #[test]
    fn seed_store_refuses_other_files_and_drops_vanished_ones() {
        let tmp = TempDir::new("mismatch");
        tmp.file("d/a", &bytes(2000, 1));
        tmp.file("d/b", &bytes(2000, 2));
        let (name, files) = collect_files(&[tmp.0.join("d")]).unwrap();
        let meta = create_from_disk(&files, opts(name, 1024), &mut no_progress()).unwrap();
        let state = default_state_path(&meta, &tmp.0);
        assert_eq!(
            open_seed_store(&files[..1], &meta, state.clone())
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        fs::remove_file(&files[1].disk_path).unwrap();
        let (_, have) = open_seed_store(&files, &meta, state).unwrap();
        // Piece 1 spans a and b; pieces 1..=3 touch the missing b.
        assert_eq!(have.iter_set().collect::<Vec<_>>(), [0]);
    }
}
