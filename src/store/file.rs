//! `FileStore`: a torrent's pieces kept in its files on disk, with resume.
//!
//! Layout: `dir/<name>` for a single-file torrent, `dir/<name>/<path...>` for a multi-file one
//! ([`FileStore::open`]), or any path per file, for seeding files where they already are
//! ([`FileStore::open_paths`]).
//! Pieces that span files are split across them. A file is created (sparse, at its full length)
//! the first time a piece touching it is written; empty files are created with the first piece.
//! BEP 47 padding files (`.pad/...`) never reach the disk: their bytes are zeros, checked on write
//! and produced on read.
//!
//! Resume: the set of pieces that are written *and synced* lives in `dir/.seedtab/<infohash>.state`
//! (or the state path given to `open_paths`)
//! (a small binary record with a SHA-1 checksum), replaced atomically (temp file, fsync, rename,
//! fsync of the folder) only after the piece data itself is synced, so after a crash the state
//! never claims a piece whose bytes are not on disk. It may lag behind (see
//! [`FileStore::set_state_interval`]): a lagging state only costs a re-download.
//!
//! `PieceStore::put_piece` cannot fail, so I/O errors are kept for [`FileStore::take_error`], a
//! piece whose write failed is not had (`has_piece` is false) and never enters the state. Drivers
//! using the engine's external storage mode can call [`FileStore::write_piece`] and
//! [`FileStore::read_piece`] instead, which return the error.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sha1::{Digest, Sha1};

use super::PieceStore;
use crate::bitfield::Bitfield;
use crate::id::InfoHash;
use crate::metainfo::{check_component, Info, Metainfo};

/// The folder, inside the download folder, that holds resume state.
pub const STATE_DIR: &str = ".seedtab";
/// Open file handles kept by default; torrents with more files reopen them as needed.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

const STATE_MAGIC: &[u8; 8] = b"SDTBST\x00\x01";
/// magic, info-hash, piece count, piece length, total length.
const STATE_HEADER: usize = 8 + 20 + 4 + 4 + 8;

#[derive(Debug)]
pub struct FileStore {
    info: Info,
    info_hash: InfoHash,
    /// One path per file of the torrent, inside the download folder.
    paths: Vec<PathBuf>,
    state_path: PathBuf,
    /// Pieces written and synced.
    have: Bitfield,
    /// `have` differs from what the state file says.
    state_dirty: bool,
    /// Pieces stored since the state was last written.
    unsaved: u32,
    state_every: u32,
    empties_created: bool,
    io: Mutex<Io>,
}

/// What reads (through `&self`) change: the handle cache and the last error.
#[derive(Debug)]
struct Io {
    handles: Vec<Slot>,
    max_open: usize,
    tick: u64,
    error: Option<io::Error>,
}

#[derive(Debug)]
struct Slot {
    file: usize,
    handle: File,
    writable: bool,
    used: u64,
}

impl FileStore {
    /// Opens the store for `meta` under `dir`, returning it with the pieces to resume from: those
    /// in a valid state file whose files are still on disk at (at least) their length. A missing,
    /// corrupt or foreign state file gives an empty bitfield. Creates nothing on disk. Fails only
    /// if a path of the torrent would leave `dir` or collide with the state folder.
    pub fn open(dir: impl AsRef<Path>, meta: &Metainfo) -> io::Result<(FileStore, Bitfield)> {
        let dir = dir.as_ref();
        let paths = file_paths(dir, &meta.info)?;
        FileStore::open_at(paths, FileStore::state_path_in(dir, meta), meta)
    }

    /// Like [`FileStore::open`], but file `i` of the torrent lives at `paths[i]`, wherever that
    /// is, and the resume state at `state_path`: how files are seeded in place, from where they
    /// already are (`seedtab seed PATH...`). `paths` has one entry per file of the torrent,
    /// padding files included; the entries of padding files are never touched, as with `open`.
    /// Refuses a `paths` of the wrong length, an empty path for a file that is not padding, or a
    /// `state_path` that is one of the files. Creates nothing on disk.
    pub fn open_paths(
        paths: Vec<PathBuf>,
        state_path: PathBuf,
        meta: &Metainfo,
    ) -> io::Result<(FileStore, Bitfield)> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let files = &meta.info.files;
        if paths.len() != files.len() {
            return Err(invalid(format!(
                "{} file paths given for a torrent of {} files",
                paths.len(),
                files.len()
            )));
        }
        for (p, f) in paths.iter().zip(files) {
            if f.is_padding() {
                continue;
            }
            if p.as_os_str().is_empty() {
                return Err(invalid(format!(
                    "no path given for torrent file {:?}",
                    f.path.join("/")
                )));
            }
            if *p == state_path {
                return Err(invalid(format!(
                    "the state file {} is also a file of the torrent",
                    state_path.display()
                )));
            }
        }
        FileStore::open_at(paths, state_path, meta)
    }

    /// Like [`FileStore::open_verify`], for files seeded in place (see [`FileStore::open_paths`]).
    pub fn open_paths_verify(
        paths: Vec<PathBuf>,
        state_path: PathBuf,
        meta: &Metainfo,
    ) -> io::Result<(FileStore, Bitfield)> {
        let (store, from_state) = FileStore::open_paths(paths, state_path, meta)?;
        store.verify_opened(from_state)
    }

    /// Where [`FileStore::open`] keeps the resume state of `meta` for the download folder `dir`:
    /// `dir/.seedtab/<infohash hex>.state`.
    pub fn state_path_in(dir: impl AsRef<Path>, meta: &Metainfo) -> PathBuf {
        dir.as_ref()
            .join(STATE_DIR)
            .join(format!("{}.state", meta.info_hash.to_hex()))
    }

    /// The part of `open` shared by every layout: `paths` are checked by the caller.
    fn open_at(
        paths: Vec<PathBuf>,
        state_path: PathBuf,
        meta: &Metainfo,
    ) -> io::Result<(FileStore, Bitfield)> {
        let info = &meta.info;
        let n = info.num_pieces() as usize;
        let mut store = FileStore {
            info: info.clone(),
            info_hash: meta.info_hash,
            paths,
            state_path,
            have: Bitfield::new(n),
            state_dirty: false,
            unsaved: 0,
            state_every: 1,
            empties_created: false,
            io: Mutex::new(Io {
                handles: Vec::new(),
                max_open: DEFAULT_MAX_OPEN_FILES,
                tick: 0,
                error: None,
            }),
        };
        match fs::read(&store.state_path) {
            Ok(bytes) => {
                if let Some(have) = decode_state(&bytes, meta) {
                    store.have = have;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => store.io_mut().error = Some(e),
        }
        store.drop_pieces_of_short_files();
        let have = store.have.clone();
        Ok((store, have))
    }

    /// Like [`FileStore::open`], but the pieces are found by hashing the files on disk (the state
    /// file is ignored, then rewritten if the result differs): how existing files get seeded, or
    /// a download is checked after its files were touched. Reads every byte of the torrent.
    pub fn open_verify(
        dir: impl AsRef<Path>,
        meta: &Metainfo,
    ) -> io::Result<(FileStore, Bitfield)> {
        let (store, from_state) = FileStore::open(dir, meta)?;
        store.verify_opened(from_state)
    }

    fn verify_opened(mut self, from_state: Bitfield) -> io::Result<(FileStore, Bitfield)> {
        let have = self.recheck()?;
        if have != from_state || self.state_dirty {
            self.have = have.clone();
            self.state_dirty = true;
            self.flush_keeping_error();
        }
        Ok((self, have))
    }

    /// Records every piece as had, without reading anything, and writes the state file (a
    /// failure to write it, e.g. in a read-only folder, is kept for [`FileStore::take_error`]:
    /// seeding works without resume). Pieces touching a file that is now missing or shorter
    /// than the torrent says are left out.
    ///
    /// Only for a caller that has just hashed every piece from these very files (as creating
    /// the torrent from them does): nothing here checks the bytes. Anyone else uses
    /// [`FileStore::open_verify`] or [`FileStore::recheck`].
    pub fn mark_all_had(&mut self) {
        let full = Bitfield::full(self.info.num_pieces() as usize);
        if self.have != full {
            self.have = full;
            self.state_dirty = true;
        }
        self.drop_pieces_of_short_files();
        self.flush_keeping_error();
    }

    /// `flush`, keeping an error for `take_error` instead of returning it.
    fn flush_keeping_error(&mut self) {
        if let Err(e) = self.flush() {
            self.io_mut().error = Some(e);
        }
    }

    /// Hashes every piece from the files on disk and returns those that match. Missing files
    /// and files too short count as missing pieces; other I/O errors are returned. Does not
    /// change what the store holds.
    pub fn recheck(&self) -> io::Result<Bitfield> {
        let n = self.info.num_pieces();
        let mut have = Bitfield::new(n as usize);
        let mut buf = Vec::new();
        for i in 0..n {
            buf.clear();
            match self.read_range(self.info.piece_offset(i), self.info.piece_len(i), &mut buf) {
                Ok(()) => {
                    let digest: [u8; 20] = Sha1::digest(&buf).into();
                    if self.info.piece_hash(i) == Some(&digest) {
                        have.set(i as usize);
                    }
                }
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(have)
    }

    /// Writes a verified piece, syncs it, and records it (the state file is updated according to
    /// [`FileStore::set_state_interval`]). On error the piece is not had, even if it was before.
    pub fn write_piece(&mut self, index: u32, data: &[u8]) -> io::Result<()> {
        let result = self.write_piece_inner(index, data);
        match &result {
            Ok(()) => {
                if self.have.set(index as usize) {
                    self.state_dirty = true;
                    self.unsaved += 1;
                }
                if self.unsaved >= self.state_every {
                    // The piece is on disk; only its resume record is missing. Kept, not returned.
                    self.flush_keeping_error();
                }
            }
            Err(_) => {
                if self.have.get(index as usize) {
                    // Its bytes may be half-overwritten: forget it, and make the state say so.
                    self.have.clear(index as usize);
                    self.state_dirty = true;
                    self.flush_keeping_error();
                }
            }
        }
        result
    }

    /// The whole of a held piece, read from disk.
    pub fn read_piece(&self, index: u32) -> io::Result<Vec<u8>> {
        if !self.have.get(index as usize) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("piece {index} is not stored"),
            ));
        }
        let mut out = Vec::new();
        self.read_range(
            self.info.piece_offset(index),
            self.info.piece_len(index),
            &mut out,
        )?;
        Ok(out)
    }

    /// The last I/O error since the previous call, if any (writes, reads, state file).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.io_mut().error.take()
    }

    /// Pieces written and synced.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Writes the state file now if it is behind. Also done on drop (errors then are lost).
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.state_dirty {
            return Ok(());
        }
        let bytes = encode_state(self.info_hash, &self.info, &self.have);
        write_atomic(&self.state_path, &bytes)?;
        self.state_dirty = false;
        self.unsaved = 0;
        Ok(())
    }

    /// Rewrite the state file every `pieces` stored pieces (default 1; 0 counts as 1). Each
    /// rewrite costs an fsync and a rename; a larger interval only means re-downloading up to
    /// that many pieces after a crash.
    pub fn set_state_interval(&mut self, pieces: u32) {
        self.state_every = pieces.max(1);
    }

    /// Most file handles kept open at once (default [`DEFAULT_MAX_OPEN_FILES`], at least 1).
    pub fn set_max_open_files(&mut self, n: usize) {
        let io = self.io_mut();
        io.max_open = n.max(1);
        while io.handles.len() > io.max_open {
            io.evict();
        }
    }

    /// How many file handles are open now.
    pub fn open_files(&self) -> usize {
        self.lock_io().handles.len()
    }

    /// Where file `index` of the torrent lives.
    pub fn file_path(&self, index: usize) -> Option<&Path> {
        self.paths.get(index).map(PathBuf::as_path)
    }

    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    fn io_mut(&mut self) -> &mut Io {
        self.io.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_io(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_padding(&self, file: usize) -> bool {
        self.info.files[file].is_padding()
    }

    fn write_piece_inner(&mut self, index: u32, data: &[u8]) -> io::Result<()> {
        if index >= self.info.num_pieces() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("piece {index} is past the end of the torrent"),
            ));
        }
        let expected = self.info.piece_len(index);
        if data.len() != expected as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("piece {index} is {} bytes, expected {expected}", data.len()),
            ));
        }
        if !self.empties_created {
            self.create_empty_files()?;
            self.empties_created = true;
        }
        let ranges = self
            .info
            .file_ranges(self.info.piece_offset(index), u64::from(expected));
        let mut at = 0usize;
        for (file, offset, len) in ranges {
            let chunk = &data[at..at + len as usize];
            at += len as usize;
            if self.is_padding(file) {
                if chunk.iter().any(|&b| b != 0) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("piece {index} has non-zero bytes in a padding file"),
                    ));
                }
                continue;
            }
            let (path, length) = (&self.paths[file], self.info.files[file].length);
            let io = self.io.get_mut().unwrap_or_else(|e| e.into_inner());
            let handle = io.file(file, path, length, true)?;
            write_at(handle, chunk, offset)?;
            // Synced file by file, so evicting a handle never leaves unsynced data behind.
            handle.sync_data()?;
        }
        Ok(())
    }

    fn create_empty_files(&self) -> io::Result<()> {
        for (i, f) in self.info.files.iter().enumerate() {
            if f.length == 0 && !f.is_padding() {
                create_file_durable(&self.paths[i])?;
            }
        }
        Ok(())
    }

    /// Appends the torrent's bytes `offset..offset+len` to `out` (all or nothing).
    fn read_range(&self, offset: u64, len: u32, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + len as usize, 0);
        let result = self.read_into(offset, &mut out[start..]);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut io = self.lock_io();
        let mut at = 0usize;
        for (file, file_offset, len) in self.info.file_ranges(offset, buf.len() as u64) {
            let dst = &mut buf[at..at + len as usize];
            at += len as usize;
            if self.is_padding(file) {
                dst.fill(0);
                continue;
            }
            let handle = io.file(file, &self.paths[file], 0, false)?;
            read_at(handle, dst, file_offset)?;
        }
        if at != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read past the end of the torrent",
            ));
        }
        Ok(())
    }

    /// Drops claimed pieces that touch a file which is missing or shorter than it must be.
    fn drop_pieces_of_short_files(&mut self) {
        if self.have.count() == 0 {
            return;
        }
        let short: Vec<bool> = self
            .info
            .files
            .iter()
            .zip(&self.paths)
            .map(|(f, p)| {
                !f.is_padding()
                    && f.length > 0
                    && fs::metadata(p).map_or(true, |m| !m.is_file() || m.len() < f.length)
            })
            .collect();
        if !short.contains(&true) {
            return;
        }
        let claimed: Vec<usize> = self.have.iter_set().collect();
        for i in claimed {
            let i32 = i as u32;
            let ranges = self.info.file_ranges(
                self.info.piece_offset(i32),
                u64::from(self.info.piece_len(i32)),
            );
            if ranges.iter().any(|&(file, _, _)| short[file]) {
                self.have.clear(i);
                self.state_dirty = true;
            }
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl PieceStore for FileStore {
    fn put_piece(&mut self, index: u32, data: Vec<u8>) {
        if let Err(e) = self.write_piece(index, &data) {
            self.io_mut().error = Some(e);
        }
    }

    fn take_write_error(&mut self) -> Option<String> {
        self.take_error().map(|e| e.to_string())
    }

    fn read_block(&self, index: u32, begin: u32, len: u32, out: &mut Vec<u8>) -> bool {
        let piece_len = self.info.piece_len(index);
        if !self.have.get(index as usize) || u64::from(begin) + u64::from(len) > piece_len.into() {
            return false;
        }
        let offset = self.info.piece_offset(index) + u64::from(begin);
        match self.read_range(offset, len, out) {
            Ok(()) => true,
            Err(e) => {
                self.lock_io().error = Some(e);
                false
            }
        }
    }

    fn has_piece(&self, index: u32) -> bool {
        self.have.get(index as usize)
    }
}

/// A shared store: hand one clone to the engine and keep another to call
/// [`FileStore::take_error`], [`FileStore::flush`] or [`FileStore::recheck`].
impl PieceStore for Arc<Mutex<FileStore>> {
    fn put_piece(&mut self, index: u32, data: Vec<u8>) {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .put_piece(index, data);
    }

    fn take_write_error(&mut self) -> Option<String> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_write_error()
    }

    fn read_block(&self, index: u32, begin: u32, len: u32, out: &mut Vec<u8>) -> bool {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .read_block(index, begin, len, out)
    }

    fn has_piece(&self, index: u32) -> bool {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .has_piece(index)
    }
}

impl Io {
    /// A handle for file `file`, from the cache or newly opened. Writable handles create the
    /// file (and its folders) and give it its full `length`; read-only ones create nothing.
    fn file(&mut self, file: usize, path: &Path, length: u64, write: bool) -> io::Result<&File> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(pos) = self
            .handles
            .iter()
            .position(|s| s.file == file && (s.writable || !write))
        {
            self.handles[pos].used = tick;
            return Ok(&self.handles[pos].handle);
        }
        // A read-only handle for a file we now write is replaced.
        self.handles.retain(|s| s.file != file);
        let handle = if write {
            open_for_write(path, length)?
        } else {
            File::open(path)?
        };
        while self.handles.len() >= self.max_open {
            self.evict();
        }
        self.handles.push(Slot {
            file,
            handle,
            writable: write,
            used: tick,
        });
        Ok(&self.handles[self.handles.len() - 1].handle)
    }

    fn evict(&mut self) {
        if let Some(pos) = self
            .handles
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.used)
            .map(|(i, _)| i)
        {
            self.handles.swap_remove(pos);
        }
    }
}

/// Every file's place under `dir`, refusing any path that could leave `dir` or reach the state
/// folder. The metainfo parser already refuses such paths; this guards hand-made `Info`s.
fn file_paths(dir: &Path, info: &Info) -> io::Result<Vec<PathBuf>> {
    let unsafe_path = |p: &str, why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("torrent path {p:?} is unsafe: {why}"),
        )
    };
    let check = |c: &str| -> io::Result<()> {
        check_component(c).map_err(|why| unsafe_path(c, why))?;
        let mut comps = Path::new(c).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => Ok(()),
            _ => Err(unsafe_path(c, "not a plain file name")),
        }
    };
    check(&info.name)?;
    if info.name == STATE_DIR {
        return Err(unsafe_path(&info.name, "reserved for resume state"));
    }
    if !info.multi_file && info.files.len() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "single-file torrent without exactly one file",
        ));
    }
    let base = if info.multi_file {
        dir.join(&info.name)
    } else {
        dir.to_path_buf()
    };
    info.files
        .iter()
        .map(|f| {
            if f.path.is_empty() {
                return Err(unsafe_path("", "empty path"));
            }
            if !info.multi_file && f.path != [info.name.clone()] {
                return Err(unsafe_path(&f.path.join("/"), "differs from the name"));
            }
            let mut p = base.clone();
            for c in &f.path {
                check(c)?;
                p.push(c);
            }
            Ok(p)
        })
        .collect()
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
    )
}

fn encode_state(info_hash: InfoHash, info: &Info, have: &Bitfield) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_HEADER + have.as_wire().len() + 20);
    out.extend_from_slice(STATE_MAGIC);
    out.extend_from_slice(&info_hash.0);
    out.extend_from_slice(&info.num_pieces().to_le_bytes());
    out.extend_from_slice(&info.piece_length.to_le_bytes());
    out.extend_from_slice(&info.total_length.to_le_bytes());
    out.extend_from_slice(have.as_wire());
    let digest: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&digest);
    out
}

/// The bitfield in a state file, if the file is intact and describes this torrent.
fn decode_state(bytes: &[u8], meta: &Metainfo) -> Option<Bitfield> {
    let info = &meta.info;
    let n = info.num_pieces() as usize;
    if bytes.len() != STATE_HEADER + n.div_ceil(8) + 20 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 20);
    let digest: [u8; 20] = Sha1::digest(body).into();
    if digest[..] != *sum {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap_or_default());
    let total = u64::from_le_bytes(body[36..44].try_into().ok()?);
    if &body[..8] != STATE_MAGIC
        || body[8..28] != meta.info_hash.0
        || u32_at(28) != info.num_pieces()
        || u32_at(32) != info.piece_length
        || total != info.total_length
    {
        return None;
    }
    Bitfield::from_wire(&body[STATE_HEADER..], n).ok()
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let parent = parent_of(path);
    create_dir_durable(parent)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    sync_dir(parent)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing parents, syncing each new entry's folder.
fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent_of(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `path` if missing (keeping any content), its folders too, durably.
fn create_file_durable(path: &Path) -> io::Result<File> {
    create_dir_durable(parent_of(path))?;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => {
            sync_dir(parent_of(path))?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().read(true).write(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Opens a file for writing, creating it sparse at exactly `length` bytes if it is not.
fn open_for_write(path: &Path, length: u64) -> io::Result<File> {
    let f = create_file_durable(path)?;
    if f.metadata()?.len() != length {
        f.set_len(length)?;
    }
    Ok(f)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Folders cannot be opened as files here; renames are durable on their own on Windows.
    Ok(())
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

// Portable fallback: seek then read/write. Handles are used under `&mut Io`, so the file
// position is never shared.
#[cfg(not(unix))]
fn read_at(mut f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(not(unix))]
fn write_at(mut f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::{create_torrent, CreateOptions};
    use crate::testdir::TempDir;

    fn bytes(n: usize, seed: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 13 + seed * 101) % 251) as u8)
            .collect()
    }

    fn torrent(files: &[(&str, usize)], piece_length: u32) -> (Metainfo, Vec<u8>) {
        let contents: Vec<Vec<u8>> = files
            .iter()
            .enumerate()
            .map(|(i, (_, n))| bytes(*n, i))
            .collect();
        let refs: Vec<(Vec<String>, &[u8])> = files
            .iter()
            .zip(&contents)
            .map(|((p, _), d)| (p.split('/').map(String::from).collect(), d.as_slice()))
            .collect();
        let opts = CreateOptions {
            name: Some("t".into()),
            piece_length: Some(piece_length),
            ..Default::default()
        };
        (create_torrent(&refs, opts).unwrap(), contents.concat())
    }

    fn piece<'a>(meta: &Metainfo, all: &'a [u8], i: u32) -> &'a [u8] {
        let off = meta.info.piece_offset(i) as usize;
        &all[off..off + meta.info.piece_len(i) as usize]
    }

    #[test]
    fn state_round_trips_and_rejects_damage() {
        let (meta, _) = torrent(&[("a", 100), ("b", 50)], 16);
        let mut have = Bitfield::new(meta.info.num_pieces() as usize);
        have.set(0);
        have.set(9);
        let enc = encode_state(meta.info_hash, &meta.info, &have);
        assert_eq!(decode_state(&enc, &meta), Some(have.clone()));
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 1;
            assert_eq!(decode_state(&bad, &meta), None, "flipped byte {i}");
        }
        assert_eq!(decode_state(&enc[..enc.len() - 1], &meta), None);
        let (other, _) = torrent(&[("a", 100), ("b", 51)], 16);
        assert_eq!(decode_state(&enc, &other), None);
    }

    #[test]
    fn handle_cache_is_bounded_and_reads_stay_right() {
        let files: Vec<(String, usize)> = (0..20).map(|i| (format!("f{i}"), 7 + i)).collect();
        let refs: Vec<(&str, usize)> = files.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        let (meta, all) = torrent(&refs, 16);
        let tmp = TempDir::new("lru");
        let (mut store, _) = FileStore::open(&tmp.0, &meta).unwrap();
        store.set_max_open_files(3);
        for i in 0..meta.info.num_pieces() {
            store.put_piece(i, piece(&meta, &all, i).to_vec());
            assert!(store.open_files() <= 3);
        }
        assert!(store.take_error().is_none());
        for i in 0..meta.info.num_pieces() {
            assert_eq!(store.read_piece(i).unwrap(), piece(&meta, &all, i));
            assert!(store.open_files() <= 3);
        }
        for (i, (name, n)) in files.iter().enumerate() {
            let on_disk = fs::read(tmp.0.join("t").join(name)).unwrap();
            let off = meta.info.files[i].offset as usize;
            assert_eq!(on_disk, all[off..off + n]);
        }
    }

    #[test]
    fn padding_files_stay_off_disk_and_read_as_zeros() {
        let mut data = bytes(10, 1);
        data.extend_from_slice(&[0; 6]);
        data.extend_from_slice(&bytes(16, 2));
        let opts = CreateOptions {
            name: Some("p".into()),
            piece_length: Some(16),
            ..Default::default()
        };
        let files: Vec<(Vec<String>, &[u8])> = vec![
            (vec!["a".into()], &data[..10]),
            (vec![".pad".into(), "6".into()], &data[10..16]),
            (vec!["b".into()], &data[16..]),
        ];
        let meta = create_torrent(&files, opts).unwrap();
        assert!(meta.info.files[1].is_padding());
        let tmp = TempDir::new("pad");
        let (mut store, _) = FileStore::open(&tmp.0, &meta).unwrap();
        store.put_piece(0, data[..16].to_vec());
        store.put_piece(1, data[16..].to_vec());
        assert!(store.take_error().is_none());
        assert!(!tmp.0.join("p/.pad").exists());
        assert_eq!(store.read_piece(0).unwrap(), data[..16]);
        assert_eq!(store.recheck().unwrap(), Bitfield::full(2));
        // Non-zero bytes where padding belongs cannot be kept.
        let mut bad = data[..16].to_vec();
        bad[12] = 1;
        assert_eq!(
            store.write_piece(0, &bad).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(!store.has_piece(0));
    }

    #[test]
    fn wrong_length_or_index_is_an_error() {
        let (meta, all) = torrent(&[("a", 40)], 16);
        let tmp = TempDir::new("len");
        let (mut store, _) = FileStore::open(&tmp.0, &meta).unwrap();
        store.put_piece(2, all[32..].to_vec());
        assert!(store.take_error().is_none());
        store.put_piece(0, all[..15].to_vec());
        assert!(store.take_error().is_some());
        store.put_piece(3, vec![0; 16]);
        assert!(store.take_error().is_some());
        assert!(!store.has_piece(0) && store.has_piece(2));
        let mut out = vec![9];
        assert!(!store.read_block(2, 0, 9, &mut out));
        assert!(store.read_block(2, 2, 6, &mut out));
        assert_eq!(out[1..], all[34..40]);
        // Single file: dir/<name>, no folder.
        assert_eq!(fs::metadata(tmp.0.join("t")).unwrap().len(), 40);
    }

    #[test]
    fn open_paths_serves_files_where_they_are() {
        let (meta, all) = torrent(&[("x/a", 20), ("b", 0), ("c", 30)], 16);
        let tmp = TempDir::new("paths");
        let paths: Vec<PathBuf> = ["one", "two", "deep/three"]
            .iter()
            .map(|p| tmp.0.join(p))
            .collect();
        fs::create_dir_all(tmp.0.join("deep")).unwrap();
        fs::write(&paths[0], &all[..20]).unwrap();
        fs::write(&paths[1], b"").unwrap();
        fs::write(&paths[2], &all[20..]).unwrap();
        let state = tmp.0.join("st").join("t.state");
        let (store, have) =
            FileStore::open_paths_verify(paths.clone(), state.clone(), &meta).unwrap();
        assert!(have.is_complete());
        assert_eq!(store.file_path(2), Some(paths[2].as_path()));
        assert_eq!(store.state_path(), state);
        // Piece 1 (16..32) spans the first and third files, across the empty one.
        let mut out = Vec::new();
        assert!(store.read_block(1, 2, 14, &mut out));
        assert_eq!(out, all[18..32]);
        drop(store);
        assert!(state.is_file());
        assert!(!tmp.0.join("t").exists());
        // Resumed from the state file without hashing.
        let (_, resumed) = FileStore::open_paths(paths.clone(), state.clone(), &meta).unwrap();
        assert!(resumed.is_complete());

        let refused = |paths: Vec<PathBuf>, state: PathBuf| {
            FileStore::open_paths(paths, state, &meta)
                .unwrap_err()
                .kind()
        };
        assert_eq!(
            refused(paths[..2].to_vec(), state.clone()),
            io::ErrorKind::InvalidInput
        );
        let mut with_empty = paths.clone();
        with_empty[1] = PathBuf::new();
        assert_eq!(refused(with_empty, state), io::ErrorKind::InvalidInput);
        assert_eq!(
            refused(paths.clone(), paths[0].clone()),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn open_paths_never_touches_padding_paths() {
        let mut data = bytes(10, 1);
        data.extend_from_slice(&[0; 6]);
        data.extend_from_slice(&bytes(16, 2));
        let files: Vec<(Vec<String>, &[u8])> = vec![
            (vec!["a".into()], &data[..10]),
            (vec![".pad".into(), "6".into()], &data[10..16]),
            (vec!["b".into()], &data[16..]),
        ];
        let opts = CreateOptions {
            name: Some("p".into()),
            piece_length: Some(16),
            ..Default::default()
        };
        let meta = create_torrent(&files, opts).unwrap();
        let tmp = TempDir::new("pathspad");
        // The padding file's entry points somewhere that must stay untouched (and may be empty).
        let paths = vec![tmp.0.join("a"), PathBuf::new(), tmp.0.join("b")];
        let (mut store, have) = FileStore::open_paths(paths, tmp.0.join("s.state"), &meta).unwrap();
        assert_eq!(have.count(), 0);
        store.put_piece(0, data[..16].to_vec());
        store.put_piece(1, data[16..].to_vec());
        assert!(store.take_error().is_none());
        assert_eq!(fs::read(tmp.0.join("a")).unwrap(), data[..10]);
        assert_eq!(fs::read(tmp.0.join("b")).unwrap(), data[16..]);
        assert_eq!(store.recheck().unwrap(), Bitfield::full(2));
        let mut names: Vec<_> = fs::read_dir(&tmp.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "s.state"]);
    }

    #[test]
    fn mark_all_had_records_pieces_and_keeps_a_state_error() {
        let (meta, all) = torrent(&[("a", 40), ("b", 20)], 16);
        let tmp = TempDir::new("markall");
        fs::create_dir_all(tmp.0.join("t")).unwrap();
        fs::write(tmp.0.join("t/a"), &all[..40]).unwrap();
        fs::write(tmp.0.join("t/b"), &all[40..]).unwrap();
        let (mut store, have) = FileStore::open(&tmp.0, &meta).unwrap();
        assert_eq!(have.count(), 0);
        store.mark_all_had();
        assert!(store.have().is_complete());
        assert!(store.take_error().is_none());
        assert!(FileStore::state_path_in(&tmp.0, &meta).is_file());
        assert_eq!(store.read_piece(3).unwrap(), all[48..]);

        // A file gone short: the pieces touching it are not claimed.
        fs::write(tmp.0.join("t/b"), &all[40..50]).unwrap();
        store.mark_all_had();
        assert_eq!(store.have().iter_set().collect::<Vec<_>>(), [0, 1]);

        // The state cannot be written: kept as an error, the pieces still count.
        let blocker = tmp.0.join("blocker");
        fs::write(&blocker, b"").unwrap();
        let paths = vec![tmp.0.join("t/a"), tmp.0.join("t/b")];
        let (mut store, _) = FileStore::open_paths(paths, blocker.join("x.state"), &meta).unwrap();
        store.mark_all_had();
        assert_eq!(store.have().count(), 2);
        assert!(store.take_error().is_some());
    }
}
