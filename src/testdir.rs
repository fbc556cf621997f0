//! A temporary folder that is removed when dropped, for the tests (unit and integration) that need
//! real files: the file store, torrents from disk, the native peer, the tracker's database-free
//! runs. Test support only: nothing in the library uses it, and it never touches a path outside
//! the system's temporary folder.

use std::fs;
use std::path::{Path, PathBuf};

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder named after `tag`, the process and the time, so parallel tests and
    /// runs never share one.
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("seedtab-test-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).expect("a temporary folder");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `data` at `rel` (folders created), returning the full path.
    pub fn file(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("a folder in the temporary folder");
        }
        fs::write(&p, data).expect("a file in the temporary folder");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
