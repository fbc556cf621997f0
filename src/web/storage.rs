//! Piece storage in the browser: bindings to `src/web/js/storage.js` and a small typed wrapper.
//!
//! A torrent's bytes live on disk, never whole in memory: in the Origin Private File System,
//! written in place through `FileSystemSyncAccessHandle` in a dedicated worker, or in IndexedDB
//! where that is missing (older browsers; insecure contexts such as `http://LAN-IP`). Per torrent
//! (keyed by the info-hash in hex) the store holds one data file of the torrent's total length
//! (piece `i` at byte `i * piece_length`, the files of a multi-file torrent concatenated), the
//! `.torrent` bytes, and a small state record the caller encodes (bitfield, counters, ...), saved
//! so that a crash mid-save leaves the previous state readable. The layouts are described at the
//! top of `storage.js`.
//!
//! Rules for the caller:
//! - `create` a torrent once (it is idempotent; later sessions may write without it);
//! - mark a piece as had in the saved state only after its `write_piece` resolved (a failed write
//!   may leave part of the piece on disk);
//! - a failure's [`ErrorKind`] is read with [`error_kind`]: `Quota` when the origin's quota is
//!   full, `Locked` when another tab holds the torrent's files (OPFS handles are exclusive).
//!
//! Offsets and lengths cross into JS as numbers (exact up to 2^53 bytes).

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::id::InfoHash;

#[wasm_bindgen(module = "/src/web/js/storage.js")]
extern "C" {
    /// `PieceStorage` of storage.js. Async methods return Promises; their failures are
    /// `StorageError`s.
    #[wasm_bindgen(js_name = PieceStorage)]
    #[derive(Clone, Debug)]
    pub type JsPieceStorage;

    #[wasm_bindgen(static_method_of = JsPieceStorage, js_name = open)]
    fn open_js(options: &JsValue) -> Promise;

    #[wasm_bindgen(method, getter)]
    fn backend(this: &JsPieceStorage) -> String;

    #[wasm_bindgen(method, getter, js_name = fallbackReason)]
    fn fallback_reason(this: &JsPieceStorage) -> Option<String>;

    /// `options`: `{ preallocate?: boolean }`.
    #[wasm_bindgen(method)]
    fn create(
        this: &JsPieceStorage,
        ih: &str,
        torrent: &[u8],
        total_length: f64,
        options: &JsValue,
    ) -> Promise;

    /// `data` is passed as a view of wasm memory; storage.js copies it before returning.
    #[wasm_bindgen(method, js_name = writePiece)]
    fn write_piece(this: &JsPieceStorage, ih: &str, offset: f64, data: &[u8]) -> Promise;

    #[wasm_bindgen(method, js_name = readRange)]
    fn read_range(this: &JsPieceStorage, ih: &str, offset: f64, length: f64) -> Promise;

    #[wasm_bindgen(method, js_name = saveState)]
    fn save_state(this: &JsPieceStorage, ih: &str, state: &[u8]) -> Promise;

    #[wasm_bindgen(method, js_name = loadState)]
    fn load_state(this: &JsPieceStorage, ih: &str) -> Promise;

    #[wasm_bindgen(method, js_name = loadTorrent)]
    fn load_torrent(this: &JsPieceStorage, ih: &str) -> Promise;

    #[wasm_bindgen(method)]
    fn list(this: &JsPieceStorage) -> Promise;

    #[wasm_bindgen(method)]
    fn remove(this: &JsPieceStorage, ih: &str) -> Promise;

    #[wasm_bindgen(method, js_name = fileBlob)]
    fn file_blob(this: &JsPieceStorage, ih: &str, offset: f64, length: f64, mime: &str) -> Promise;

    /// `files`: `[{ file: Blob, offset: number }]`; `options`: `{ onProgress?(bytesDone) }`.
    #[wasm_bindgen(method, js_name = importFiles)]
    fn import_files(
        this: &JsPieceStorage,
        ih: &str,
        files: &Array,
        piece_length: f64,
        options: &JsValue,
    ) -> Promise;

    #[wasm_bindgen(method)]
    fn estimate(this: &JsPieceStorage) -> Promise;

    #[wasm_bindgen(method)]
    fn persist(this: &JsPieceStorage) -> Promise;

    #[wasm_bindgen(method, js_name = testFailNextWrite)]
    fn test_fail_next_write(this: &JsPieceStorage, after_bytes: f64, what: &str);

    #[wasm_bindgen(method)]
    fn close(this: &JsPieceStorage) -> Promise;

    /// `StorageError` of storage.js: an `Error` with a `kind`.
    #[wasm_bindgen(js_name = StorageError, extends = js_sys::Error)]
    #[derive(Clone, Debug)]
    pub type JsStorageError;

    #[wasm_bindgen(method, getter)]
    fn kind(this: &JsStorageError) -> String;
}

/// Where the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Origin Private File System, sync access handles in a worker.
    Opfs,
    /// IndexedDB (in a worker, or on the main thread when no worker can be made).
    Idb,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Opfs => "opfs",
            Backend::Idb => "idb",
        }
    }
}

/// What kind of failure a storage call rejected with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The origin's quota (or the disk) is full.
    Quota,
    /// No such torrent, or a range that was never written.
    Missing,
    /// Another tab (or worker) holds the torrent's files open.
    Locked,
    /// Anything else the storage reported.
    Io,
    /// Not a `StorageError` at all.
    Other,
}

/// The kind of a value a storage call rejected with.
pub fn error_kind(err: &JsValue) -> ErrorKind {
    let kind = Reflect::get(err, &JsValue::from_str("kind"))
        .ok()
        .and_then(|k| k.as_string());
    match kind.as_deref() {
        Some("quota") => ErrorKind::Quota,
        Some("missing") => ErrorKind::Missing,
        Some("locked") => ErrorKind::Locked,
        Some(_) => ErrorKind::Io,
        None => ErrorKind::Other,
    }
}

/// This origin's storage use, from `navigator.storage`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub usage: f64,
    pub quota: f64,
    pub persisted: bool,
}

/// One file to import, placed at `offset` in the torrent.
#[derive(Clone, Debug)]
pub struct ImportFile {
    pub file: web_sys::Blob,
    pub offset: u64,
}

/// An open piece storage (one per tab; it may hold many torrents).
#[derive(Clone, Debug)]
pub struct PieceStorage {
    js: JsPieceStorage,
}

async fn wait(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn bytes_or_none(v: JsValue) -> Option<Vec<u8>> {
    v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec)
}

fn number(obj: &JsValue, key: &str) -> f64 {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

impl PieceStorage {
    /// Opens the best storage there is, or the one `force`d (tests); fails only if none works.
    pub async fn open(force: Option<Backend>) -> Result<PieceStorage, JsValue> {
        let opts = Object::new();
        if let Some(b) = force {
            Reflect::set(&opts, &"forceBackend".into(), &b.as_str().into())?;
        }
        let js = wait(JsPieceStorage::open_js(&opts)).await?;
        Ok(PieceStorage {
            js: js.unchecked_into(),
        })
    }

    /// Wraps a storage object opened earlier (kept as a plain JsValue, e.g. in a Promise).
    pub fn from_js(js: JsValue) -> PieceStorage {
        PieceStorage {
            js: js.unchecked_into(),
        }
    }

    pub fn backend(&self) -> Backend {
        if self.js.backend() == "opfs" {
            Backend::Opfs
        } else {
            Backend::Idb
        }
    }

    /// Why OPFS is not used, when it is not.
    pub fn fallback_reason(&self) -> Option<String> {
        self.js.fallback_reason()
    }

    /// The JS object, for code that talks to it directly.
    pub fn as_js(&self) -> &JsPieceStorage {
        &self.js
    }

    /// Makes or opens the torrent's entry, storing its `.torrent` bytes. Idempotent.
    /// `preallocate` (OPFS only) sizes the data file to `total_length` at once, so a lack of
    /// quota fails here rather than in the middle of the download.
    pub async fn create(
        &self,
        ih: &InfoHash,
        torrent: &[u8],
        total_length: u64,
        preallocate: bool,
    ) -> Result<(), JsValue> {
        let opts = Object::new();
        Reflect::set(&opts, &"preallocate".into(), &preallocate.into())?;
        wait(
            self.js
                .create(&ih.to_hex(), torrent, total_length as f64, &opts),
        )
        .await?;
        Ok(())
    }

    /// Writes `data` at `offset`; resolves once it is flushed to disk.
    pub async fn write_piece(
        &self,
        ih: &InfoHash,
        offset: u64,
        data: &[u8],
    ) -> Result<(), JsValue> {
        wait(self.js.write_piece(&ih.to_hex(), offset as f64, data)).await?;
        Ok(())
    }

    /// `length` bytes at `offset`, as a JS array (e.g. to hand to a data channel as it is).
    pub async fn read_range_js(
        &self,
        ih: &InfoHash,
        offset: u64,
        length: u32,
    ) -> Result<Uint8Array, JsValue> {
        let v = wait(
            self.js
                .read_range(&ih.to_hex(), offset as f64, length as f64),
        )
        .await?;
        Ok(v.unchecked_into())
    }

    /// `length` bytes at `offset`, copied into wasm memory.
    pub async fn read_range(
        &self,
        ih: &InfoHash,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, JsValue> {
        Ok(self.read_range_js(ih, offset, length).await?.to_vec())
    }

    /// Replaces the saved state; a failed or torn save leaves the previous one readable.
    pub async fn save_state(&self, ih: &InfoHash, state: &[u8]) -> Result<(), JsValue> {
        wait(self.js.save_state(&ih.to_hex(), state)).await?;
        Ok(())
    }

    pub async fn load_state(&self, ih: &InfoHash) -> Result<Option<Vec<u8>>, JsValue> {
        Ok(bytes_or_none(wait(self.js.load_state(&ih.to_hex())).await?))
    }

    pub async fn load_torrent(&self, ih: &InfoHash) -> Result<Option<Vec<u8>>, JsValue> {
        Ok(bytes_or_none(
            wait(self.js.load_torrent(&ih.to_hex())).await?,
        ))
    }

    /// The stored torrents' info-hashes (those that parse).
    pub async fn list(&self) -> Result<Vec<InfoHash>, JsValue> {
        let v: Array = wait(self.js.list()).await?.unchecked_into();
        Ok(v.iter()
            .filter_map(|s| s.as_string())
            .filter_map(|s| InfoHash::from_hex(&s).ok())
            .collect())
    }

    /// Deletes everything stored for the torrent (no error if there is nothing).
    pub async fn remove(&self, ih: &InfoHash) -> Result<(), JsValue> {
        wait(self.js.remove(&ih.to_hex())).await?;
        Ok(())
    }

    /// A disk-backed Blob of `length` bytes at `offset` (a file of the torrent), for saving.
    pub async fn file_blob(
        &self,
        ih: &InfoHash,
        offset: u64,
        length: u64,
        mime: Option<&str>,
    ) -> Result<web_sys::Blob, JsValue> {
        let v = wait(self.js.file_blob(
            &ih.to_hex(),
            offset as f64,
            length as f64,
            mime.unwrap_or(""),
        ))
        .await?;
        Ok(v.unchecked_into())
    }

    /// Stores the files at their offsets and returns the SHA-1 of every piece from the first
    /// file's on (20 bytes each), hashing across file boundaries. The files must be contiguous
    /// and the first must start at a piece boundary; `create` the torrent first.
    pub async fn import_files(
        &self,
        ih: &InfoHash,
        files: &[ImportFile],
        piece_length: u32,
        on_progress: Option<&Function>,
    ) -> Result<Vec<u8>, JsValue> {
        let list = Array::new();
        for f in files {
            let o = Object::new();
            Reflect::set(&o, &"file".into(), &f.file)?;
            Reflect::set(&o, &"offset".into(), &(f.offset as f64).into())?;
            list.push(&o);
        }
        let opts = Object::new();
        if let Some(cb) = on_progress {
            Reflect::set(&opts, &"onProgress".into(), cb)?;
        }
        let v = wait(
            self.js
                .import_files(&ih.to_hex(), &list, piece_length as f64, &opts),
        )
        .await?;
        Ok(v.unchecked_into::<Uint8Array>().to_vec())
    }

    pub async fn estimate(&self) -> Result<Estimate, JsValue> {
        let v = wait(self.js.estimate()).await?;
        Ok(Estimate {
            usage: number(&v, "usage"),
            quota: number(&v, "quota"),
            persisted: Reflect::get(&v, &"persisted".into())?.is_truthy(),
        })
    }

    /// Asks the browser not to evict this origin's data; true when granted.
    pub async fn persist(&self) -> Result<bool, JsValue> {
        Ok(wait(self.js.persist()).await?.is_truthy())
    }

    /// Tests only: the next piece write (or state save, `state = true`) writes `after_bytes`
    /// bytes, then fails.
    pub fn test_fail_next_write(&self, after_bytes: u32, state: bool) {
        self.js
            .test_fail_next_write(after_bytes as f64, if state { "state" } else { "piece" });
    }

    /// Closes every file and stops the worker.
    pub async fn close(&self) -> Result<(), JsValue> {
        wait(self.js.close()).await?;
        Ok(())
    }
}

/// Exercises the wrapper end to end (tests/browser/storage.test.mjs calls it through the wasm
/// package, so the bindings' names are checked at run time). Returns a short report object.
#[doc(hidden)]
#[wasm_bindgen(js_name = __storageSelfTest, skip_typescript)]
pub async fn storage_self_test(backend: String) -> Result<JsValue, JsValue> {
    let force = match backend.as_str() {
        "opfs" => Some(Backend::Opfs),
        "idb" => Some(Backend::Idb),
        _ => None,
    };
    let s = PieceStorage::open(force).await?;
    let ih = InfoHash([0x5e; 20]);
    let fail = |what: &str| JsValue::from(js_sys::Error::new(&format!("self-test: {what}")));
    let piece: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + 3) as u8).collect();
    s.remove(&ih).await?;
    s.create(&ih, b"d4:infod6:lengthi80000eee", 80_000, false)
        .await?;
    s.write_piece(&ih, 40_000, &piece).await?;
    s.write_piece(&ih, 0, &piece[..20_000]).await?;
    s.write_piece(&ih, 20_000, &piece[20_000..]).await?;
    if s.read_range(&ih, 0, 40_000).await? != piece {
        return Err(fail("read_range gave other bytes"));
    }
    if s.read_range(&ih, 39_990, 20).await?[10..] != piece[..10] {
        return Err(fail("read_range across pieces"));
    }
    let missing = s.read_range(&ih, 79_999, 2).await;
    if missing.as_ref().map_err(error_kind) != Err(ErrorKind::Missing) {
        return Err(fail("read past the data is not a Missing error"));
    }
    s.save_state(&ih, b"state one").await?;
    s.save_state(&ih, b"state two").await?;
    s.test_fail_next_write(3, true);
    if s.save_state(&ih, b"state three").await.is_ok() {
        return Err(fail("injected state failure did not fail"));
    }
    if s.load_state(&ih).await?.as_deref() != Some(&b"state two"[..]) {
        return Err(fail("load_state after a torn save"));
    }
    if s.load_torrent(&ih).await?.as_deref() != Some(&b"d4:infod6:lengthi80000eee"[..]) {
        return Err(fail("load_torrent"));
    }
    if !s.list().await?.contains(&ih) {
        return Err(fail("list"));
    }
    let blob = s.file_blob(&ih, 100, 1000, Some("text/plain")).await?;
    let buf = JsFuture::from(blob.array_buffer()).await?;
    if Uint8Array::new(&buf).to_vec() != piece[100..1100] || blob.type_() != "text/plain" {
        return Err(fail("file_blob"));
    }
    let parts = Array::of1(&Uint8Array::from(&piece[..]));
    let file = web_sys::Blob::new_with_u8_array_sequence(&parts)?;
    let ih2 = InfoHash([0x5f; 20]);
    s.remove(&ih2).await?;
    s.create(&ih2, b"d4:infod6:lengthi40000eee", 40_000, true)
        .await?;
    let hashes = s
        .import_files(&ih2, &[ImportFile { file, offset: 0 }], 16_384, None)
        .await?;
    let want: Vec<u8> = piece
        .chunks(16_384)
        .flat_map(|c| {
            use sha1::Digest;
            sha1::Sha1::digest(c).to_vec()
        })
        .collect();
    if hashes != want || s.read_range(&ih2, 0, 40_000).await? != piece {
        return Err(fail("import_files"));
    }
    let est = s.estimate().await?;
    s.remove(&ih).await?;
    s.remove(&ih2).await?;
    if s.load_state(&ih).await?.is_some() || s.list().await?.contains(&ih) {
        return Err(fail("remove"));
    }
    let report = Object::new();
    Reflect::set(&report, &"backend".into(), &s.backend().as_str().into())?;
    Reflect::set(&report, &"usage".into(), &est.usage.into())?;
    Reflect::set(&report, &"quota".into(), &est.quota.into())?;
    s.close().await?;
    Ok(report.into())
}
