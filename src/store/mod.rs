//! Where verified pieces live. The engine only ever writes pieces that passed their SHA-1 check
//! and reads back blocks to upload. `PieceStore` is the seam for the browser (IndexedDB/OPFS) and
//! native (file) stores; `MemoryStore` is the in-memory one. Stores never verify or decide
//! anything: they keep bytes.

#[cfg(feature = "native")]
mod file;
mod memory;
mod resume;

#[cfg(feature = "native")]
pub use file::{FileStore, DEFAULT_MAX_OPEN_FILES, STATE_DIR};
pub use memory::MemoryStore;
pub use resume::{ResumeError, ResumeState};

/// Storage for the pieces of one torrent.
pub trait PieceStore {
    /// Keeps a verified piece. `data.len()` is the piece's exact length.
    fn put_piece(&mut self, index: u32, data: Vec<u8>);
    /// Why the last `put_piece` failed, if it did (taken: asking again returns None). A
    /// session that sees an error does not count the piece as had, and pauses.
    fn take_write_error(&mut self) -> Option<String> {
        None
    }
    /// Appends `len` bytes at `begin` within piece `index` to `out`; false if the piece is absent
    /// or the range is out of bounds.
    fn read_block(&self, index: u32, begin: u32, len: u32, out: &mut Vec<u8>) -> bool;
    /// Whether the piece is held.
    fn has_piece(&self, index: u32) -> bool;
}
