//! The browser driver and the JavaScript API (`Client`, `Torrent`, `TorrentFile`), named after
//! WebTorrent's so its users feel at home. Does the I/O the core may not: WebSocket trackers,
//! RTCPeerConnection data channels, the clock, entropy, reading `File`s. Holds no protocol
//! logic of its own: the engine and `signal::client` decide, this layer carries bytes.

mod client;
mod hashing;
mod persist;
mod rewards;
mod storage;
mod stream;
mod torrent;
mod tracker;
mod util;
mod webcrypto;
mod webseed;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::bitfield::Bitfield;
use crate::create::{CreateOptions, TorrentBuilder};
use crate::engine::{Config, Session};
use crate::id::InfoHash;
use crate::magnet::Magnet;
use crate::metainfo::{FileEntry, Info, Metainfo};
use crate::store::MemoryStore;

use client::ClientInner;
pub use hashing::{sha1_pieces, sha1_pieces_scalar, PieceHasher};
use torrent::{TorrentInner, TorrentRef};
pub use webcrypto::sha1_pieces_webcrypto;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Bytes of WebAssembly linear memory (it only grows): for tests and the benchmark's memory
/// figures.
#[doc(hidden)]
#[wasm_bindgen(js_name = __wasmMemoryBytes, skip_typescript)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as f64
        })
        .unwrap_or(0.0)
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface ClientOptions {
  /** WebSocket tracker URLs (ws:// or wss://). */
  trackers?: string[];
  /** Passed to RTCPeerConnection as `iceServers`. */
  iceServers?: RTCIceServer[];
  /** Log each torrent's start-up timeline (announce, offers, answers, channels, metadata) to the console. */
  debug?: boolean;
  /**
   * Where pieces go. "auto" (default): the Origin Private File System through a worker, else
   * IndexedDB, else memory; kept across reloads (see `restore()`). "memory": nothing is kept.
   * "opfs" / "idb": that backend only (tests).
   */
  storage?: 'auto' | 'memory' | 'opfs' | 'idb';
  /**
   * Reward receipts (docs/receipts.md), on by default: sign receipts for bytes received from
   * receipt-capable peers and keep the ones peers sign for our uploads. `false` turns them off.
   */
  rewards?: boolean;
  /**
   * "Require receipts": a receipt-capable peer whose receipts trail what we sent it by more
   * than this many bytes is choked until it catches up (`true`: 32 MiB). Peers without the
   * extension (WebTorrent) are served as usual.
   */
  requireReceipts?: boolean | number;
}
export interface RewardInfo { enabled: boolean; publicKey: string | null; reason: string | null }
export interface ReceiptRecord {
  id: string; infoHash: string; name?: string; uploader: string; downloader: string; session: string;
  seq: number; bytes: number; length: number; timestamp: number;
  /** Hex of the signed receipt's canonical bencoding, as the ledger takes it. */
  receipt: string;
  /** The seq last sent to the ledger (0: never), and what it said. */
  submittedSeq: number; ledger: { status: string; code: string | null } | null;
}
export interface SubmitResult {
  stored: number; duplicate: number; rejected: number; errors: { id: string; code: string; message: string }[];
}
export interface LedgerTotals {
  uploader: string; bytes: number; receipts: number;
  torrents: { info_hash: string; length: number; bytes: number; receipts: number }[];
}
export interface StorageEstimate {
  backend: 'opfs' | 'idb' | 'memory'; usage: number; quota: number; persisted: boolean; fallbackReason?: string;
}
export interface SeedInput { name: string; data: Uint8Array }
export interface SeedOptions {
  /** Torrent name; by default as create-torrent names it (the file, or the shared folder). */
  name?: string;
  pieceLength?: number;
  /** Extra tracker URLs for this torrent. */
  announce?: string[];
  comment?: string;
  private?: boolean;
}
export interface AddOptions { announce?: string[] }
export interface TorrentStats {
  downloaded: number; uploaded: number; downloadSpeed: number; uploadSpeed: number;
  numPeers: number; progress: number; verified: number; length: number; paused: boolean;
  /** Bytes moved since this page opened (downloaded/uploaded include earlier sessions). */
  sessionDownloaded: number; sessionUploaded: number;
}
"#;

fn seed_rng() -> u64 {
    u64::from_le_bytes(util::random_bytes::<8>())
}

fn usable_trackers(urls: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in urls {
        let u = u.trim().to_string();
        if (u.starts_with("ws://") || u.starts_with("wss://")) && !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// A BitTorrent client living in this tab.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<RefCell<ClientInner>>,
}

#[wasm_bindgen]
impl Client {
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions | undefined")] opts: JsValue,
    ) -> Client {
        let trackers = usable_trackers(util::get_strings(&opts, "trackers"));
        let ice = util::get(&opts, "iceServers");
        let ice = if ice.is_object() {
            ice
        } else {
            Array::new().into()
        };
        let storage = match util::get_string(&opts, "storage").as_deref() {
            Some("memory") => None,
            Some("opfs") => Some(Some(storage::Backend::Opfs)),
            Some("idb") => Some(Some(storage::Backend::Idb)),
            _ => Some(None),
        };
        let debug = util::get(&opts, "debug").is_truthy();
        let reward_key = if util::get(&opts, "rewards") == JsValue::FALSE {
            rewards::KeyState::Off
        } else {
            rewards::start_loading()
        };
        let require_receipts = rewards::require_limit(&util::get(&opts, "requireReceipts"));
        Client {
            inner: ClientInner::create(trackers, ice, debug, storage, reward_key, require_receipts),
        }
    }

    /// This tab's reward key: `{ enabled, publicKey, reason }`. `publicKey` is the hex of the
    /// Ed25519 public key (the private key cannot leave the browser's key store); when there
    /// is none, `reason` says why (rewards off, no WebCrypto Ed25519 here...).
    #[wasm_bindgen(js_name = rewardInfo, unchecked_return_type = "Promise<RewardInfo>")]
    pub fn reward_info(&self) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let key = rewards::key(&client).await;
            let o = js_sys::Object::new();
            util::set(&o, "enabled", key.is_some());
            match key {
                Some(k) => {
                    util::set(&o, "publicKey", crate::receipt::hex(&k.public).as_str());
                    util::set(&o, "reason", JsValue::NULL);
                }
                None => {
                    util::set(&o, "publicKey", JsValue::NULL);
                    let reason = match &client.borrow().reward_key {
                        rewards::KeyState::Unavailable(why) => why.clone(),
                        _ => "Reward receipts are turned off for this client".to_string(),
                    };
                    util::set(&o, "reason", reason.as_str());
                }
            }
            Ok(o.into())
        })
    }

    /// "Require receipts": the unpaid-bytes limit for receipt-capable peers, or null when off.
    #[wasm_bindgen(getter, js_name = requireReceipts)]
    pub fn require_receipts(&self) -> Option<f64> {
        self.inner.borrow().require_receipts.map(|n| n as f64)
    }

    /// Turns "require receipts" on (`true`: 32 MiB, or a number of bytes) or off (`false`), for
    /// every torrent of this client, now and later.
    #[wasm_bindgen(js_name = setRequireReceipts)]
    pub fn set_require_receipts(&self, value: JsValue) {
        let limit = rewards::require_limit(&value);
        let torrents = {
            let mut c = self.inner.borrow_mut();
            c.require_receipts = limit;
            c.torrents.clone()
        };
        for t in &torrents {
            t.borrow_mut().session.set_require_receipts(limit);
            torrent::drive(t);
        }
    }

    /// The receipts this browser's uploads earned (every tab of this site shares them), each
    /// the latest of its session and verified before it was kept.
    #[wasm_bindgen(unchecked_return_type = "Promise<ReceiptRecord[]>")]
    pub fn receipts(&self) -> js_sys::Promise {
        rewards::list_receipts()
    }

    /// Sends the receipts the ledger has not seen to it (default: this site's `/api`).
    #[wasm_bindgen(js_name = submitReceipts, unchecked_return_type = "Promise<SubmitResult>")]
    pub fn submit_receipts(&self, ledger: Option<String>) -> js_sys::Promise {
        rewards::submit_receipts(&ledger.map_or(JsValue::UNDEFINED, JsValue::from))
    }

    /// What the ledger (default: this site's `/api`) credits to this browser's key.
    #[wasm_bindgen(js_name = ledgerTotals, unchecked_return_type = "Promise<LedgerTotals>")]
    pub fn ledger_totals(&self, ledger: Option<String>) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let Some(key) = rewards::key(&client).await else {
                return Err(util::error("This browser has no reward key"));
            };
            let ledger = ledger.map_or(JsValue::UNDEFINED, JsValue::from);
            let p = rewards::ledger_totals(&ledger, &crate::receipt::hex(&key.public));
            JsFuture::from(p).await
        })
    }

    /// This client's peer id, in hex.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.borrow().peer_id.to_hex()
    }

    #[wasm_bindgen(getter, unchecked_return_type = "Torrent[]")]
    pub fn torrents(&self) -> Array {
        self.inner
            .borrow()
            .torrents
            .iter()
            .map(|t| JsValue::from(Torrent { inner: t.clone() }))
            .collect()
    }

    /// The torrent with this info-hash (hex), if the client has it.
    pub fn get(&self, info_hash: &str) -> Option<Torrent> {
        let ih = InfoHash::from_hex(info_hash).ok()?;
        self.inner.borrow().find(&ih).map(|inner| Torrent { inner })
    }

    /// Hashes the files, makes a torrent of them and seeds it. Files are `File` objects or
    /// `{ name, data: Uint8Array }`; a `/` in a name makes sub-folders of a multi-file torrent.
    #[wasm_bindgen(unchecked_return_type = "Promise<Torrent>")]
    pub fn seed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Array<File | SeedInput>")] files: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SeedOptions | undefined")] opts: JsValue,
    ) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let inputs = collect_inputs(&files)?;
            let torrent = match ClientInner::storage(&client).await {
                Some(storage) => seed_stored(&client, storage, inputs, &opts).await?,
                None => seed_inputs(&client, read_inputs(inputs).await?, &opts).await?,
            };
            Ok(JsValue::from(Torrent { inner: torrent }))
        })
    }

    /// Starts downloading from a magnet link, a 40-character info-hash, or `.torrent` bytes.
    /// Throws an Error saying what is wrong with bad input.
    pub fn add(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] torrent_id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "AddOptions | undefined")] opts: JsValue,
    ) -> Result<Torrent, JsValue> {
        if self.inner.borrow().destroyed {
            return Err(util::error("This client was destroyed"));
        }
        let extra = util::get_strings(&opts, "announce");
        // BEP 19 web seeds: magnet `ws=`, `.torrent` `url-list` (already bounded when parsed).
        let mut web_seeds: Vec<String> = Vec::new();
        let (mut session, trackers, name) = if let Some(text) = torrent_id.as_string() {
            let text = text.trim();
            let magnet = if text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit()) {
                let info_hash = InfoHash::from_hex(text)
                    .map_err(|e| util::error(format!("Invalid info-hash: {e}")))?;
                Magnet {
                    info_hash,
                    name: None,
                    trackers: Vec::new(),
                    web_seeds: Vec::new(),
                    exact_length: None,
                }
            } else {
                Magnet::parse(text).map_err(|e| util::error(format!("Invalid magnet link: {e}")))?
            };
            if let Some(t) = self.inner.borrow().find(&magnet.info_hash) {
                return Ok(Torrent { inner: t });
            }
            let c = self.inner.borrow();
            // Stored unless the client keeps pieces in memory (or storage fails to open, in
            // which case the torrent switches to memory before it starts).
            let session = if c.storage_mode.is_some() {
                Session::from_info_hash_external(
                    magnet.info_hash,
                    c.peer_id,
                    persist::external_config(None),
                    seed_rng(),
                )
            } else {
                Session::from_info_hash(
                    magnet.info_hash,
                    c.peer_id,
                    Box::new(|m: &Metainfo| {
                        Box::new(MemoryStore::new(m.info.num_pieces(), m.info.piece_length))
                            as Box<dyn crate::store::PieceStore>
                    }),
                    Config::default(),
                    seed_rng(),
                )
            };
            let trackers = usable_trackers(
                c.trackers
                    .iter()
                    .cloned()
                    .chain(magnet.trackers.clone())
                    .chain(extra),
            );
            web_seeds = magnet.web_seeds.clone();
            (session, trackers, magnet.name.clone())
        } else if let Some(bytes) = torrent_id.dyn_ref::<Uint8Array>() {
            let meta = Metainfo::from_torrent_bytes(&bytes.to_vec())
                .map_err(|e| util::error(format!("Invalid .torrent file: {e}")))?;
            if let Some(t) = self.inner.borrow().find(&meta.info_hash) {
                return Ok(Torrent { inner: t });
            }
            let c = self.inner.borrow();
            let store = MemoryStore::new(meta.info.num_pieces(), meta.info.piece_length);
            let have = Bitfield::new(meta.info.num_pieces() as usize);
            let trackers = usable_trackers(
                c.trackers
                    .iter()
                    .cloned()
                    .chain(meta.trackers())
                    .chain(extra),
            );
            let session = if c.storage_mode.is_some() {
                persist::session_for(meta, c.peer_id, have, seed_rng())
            } else {
                Session::new(
                    meta,
                    c.peer_id,
                    Box::new(store),
                    have,
                    Config::default(),
                    seed_rng(),
                )
            };
            (session, trackers, None)
        } else {
            return Err(util::error(
                "add() takes a magnet link, an info-hash or .torrent bytes (Uint8Array)",
            ));
        };
        if let Some(meta) = session.metainfo() {
            web_seeds = meta.url_list.clone();
        }
        for url in crate::engine::web_seed_urls(web_seeds.iter().map(String::as_str)) {
            session.add_web_seed(&url);
        }
        let stored = session.is_external();
        let t = start_torrent(&self.inner, session, trackers, name, !stored);
        if stored {
            let t = t.clone();
            wasm_bindgen_futures::spawn_local(async move { persist::init_added(t).await });
        }
        Ok(Torrent { inner: t })
    }

    /// Starts seeding (or downloading) every torrent kept in browser storage, as they were
    /// left: paused ones stay paused. Resolves to the torrents restored.
    #[wasm_bindgen(unchecked_return_type = "Promise<Torrent[]>")]
    pub fn restore(&self) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let out = Array::new();
            let Some(storage) = ClientInner::storage(&client).await else {
                return Ok(out.into());
            };
            for (sid, meta, state) in persist::stored_torrents(&storage).await {
                if let Some(t) = client.borrow().find(&meta.info_hash) {
                    out.push(&JsValue::from(Torrent { inner: t }));
                    continue;
                }
                let n = meta.info.num_pieces() as usize;
                let have = state
                    .as_ref()
                    .map_or_else(|| Bitfield::new(n), |s| s.have.clone());
                let (peer_id, client_trackers) = {
                    let c = client.borrow();
                    (c.peer_id, c.trackers.clone())
                };
                let trackers = usable_trackers(client_trackers.into_iter().chain(meta.trackers()));
                let web_seeds = meta.url_list.clone();
                let mut session = persist::session_for(meta, peer_id, have, seed_rng());
                for url in &web_seeds {
                    session.add_web_seed(url);
                }
                let paused = state.as_ref().is_some_and(|s| s.paused);
                session.set_paused(paused);
                let t = start_torrent(&client, session, trackers, None, false);
                {
                    let mut inner = t.borrow_mut();
                    inner.user_paused = paused;
                    inner.persist = Some(persist::persisted(storage.clone(), sid, state.as_ref()));
                }
                persist::open_stored(&t).await;
                out.push(&JsValue::from(Torrent { inner: t }));
            }
            Ok(out.into())
        })
    }

    /// How much browser storage is used and available: `{ backend, usage, quota, persisted }`
    /// (backend "memory" when pieces are not stored).
    #[wasm_bindgen(js_name = storageEstimate, unchecked_return_type = "Promise<StorageEstimate>")]
    pub fn storage_estimate(&self) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let o = js_sys::Object::new();
            match ClientInner::storage(&client).await {
                Some(s) => {
                    let e = s.estimate().await?;
                    util::set(&o, "backend", s.backend().as_str());
                    util::set(&o, "usage", e.usage);
                    util::set(&o, "quota", e.quota);
                    util::set(&o, "persisted", e.persisted);
                    if let Some(why) = s.fallback_reason() {
                        util::set(&o, "fallbackReason", why);
                    }
                }
                None => {
                    util::set(&o, "backend", "memory");
                    util::set(&o, "usage", 0.0);
                    util::set(&o, "quota", 0.0);
                    util::set(&o, "persisted", false);
                }
            }
            Ok(o.into())
        })
    }

    /// Asks the browser not to evict stored torrents under storage pressure; resolves to
    /// whether it agreed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn persist(&self) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match ClientInner::storage(&client).await {
                Some(s) => Ok(JsValue::from(s.persist().await?)),
                None => Ok(JsValue::FALSE),
            }
        })
    }

    /// Tests only: the next piece write fails after `after_bytes` bytes, as a crash or a full
    /// disk would leave it.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = __testFailNextWrite, skip_typescript)]
    pub fn test_fail_next_write(&self, after_bytes: u32) -> js_sys::Promise {
        let client = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Some(s) = ClientInner::storage(&client).await {
                s.test_fail_next_write(after_bytes, false);
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Stops every torrent, closes every connection and tracker socket.
    pub fn destroy(&self) {
        ClientInner::destroy(&self.inner);
    }
}

/// Registers a torrent; it announces at once if `ready`, else when its storage is open.
fn start_torrent(
    client: &Rc<RefCell<ClientInner>>,
    session: Session,
    trackers: Vec<String>,
    name: Option<String>,
    ready: bool,
) -> TorrentRef {
    ClientInner::ensure_sockets(client, &trackers);
    let t = TorrentInner::create(session, Rc::downgrade(client), trackers, name);
    t.borrow_mut().storage_ready = ready;
    rewards::attach(client, &t);
    client.borrow_mut().torrents.push(t.clone());
    torrent::announce_due(&t, util::now_ms());
    t
}

struct InputFile {
    path: Vec<String>,
    data: Vec<u8>,
}

/// Reads files into memory (for clients that keep pieces in memory).
async fn read_inputs(files: Vec<persist::SeedFile>) -> Result<Vec<InputFile>, JsValue> {
    let mut out = Vec::new();
    for f in files {
        let buf = JsFuture::from(f.blob.array_buffer()).await?;
        out.push(InputFile {
            path: f.path,
            data: Uint8Array::new(&buf).to_vec(),
        });
    }
    Ok(out)
}

/// The files to seed, as paths and Blobs: `File`s stay on disk; `{ name, data }` become Blobs.
fn collect_inputs(files: &JsValue) -> Result<Vec<persist::SeedFile>, JsValue> {
    let arr: Array = if Array::is_array(files) {
        files.clone().unchecked_into()
    } else if let Some(list) = files.dyn_ref::<web_sys::FileList>() {
        Array::from(list)
    } else {
        let a = Array::new();
        a.push(files);
        a
    };
    let mut out = Vec::new();
    for item in arr.iter() {
        let (name, data) = if let Some(blob) = item.dyn_ref::<web_sys::Blob>() {
            let name = item
                .dyn_ref::<web_sys::File>()
                .map(|f| {
                    let rel = util::get_string(&item, "webkitRelativePath").unwrap_or_default();
                    if rel.is_empty() {
                        f.name()
                    } else {
                        rel
                    }
                })
                .unwrap_or_else(|| "file".into());
            (name, blob.clone())
        } else {
            let name = util::get_string(&item, "name")
                .ok_or_else(|| util::error("each file needs a name"))?;
            let data = util::get(&item, "data");
            let data = data
                .dyn_ref::<Uint8Array>()
                .ok_or_else(|| util::error(format!("file {name:?} has no data (Uint8Array)")))?;
            let parts = Array::new();
            parts.push(data);
            (name, web_sys::Blob::new_with_u8_array_sequence(&parts)?)
        };
        let path: Vec<String> = name
            .split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        if path.is_empty() {
            return Err(util::error("a file has an empty name"));
        }
        out.push(persist::SeedFile { path, blob: data });
    }
    if out.is_empty() {
        return Err(util::error("nothing to seed: no files given"));
    }
    Ok(out)
}

/// Who seeds, through which trackers, with which torrent options.
fn seed_settings(
    client: &Rc<RefCell<ClientInner>>,
    opts: &JsValue,
) -> Result<(crate::id::PeerId, Vec<String>, CreateOptions), JsValue> {
    let (peer_id, client_trackers) = {
        let c = client.borrow();
        if c.destroyed {
            return Err(util::error("This client was destroyed"));
        }
        (c.peer_id, c.trackers.clone())
    };
    let trackers = usable_trackers(
        client_trackers
            .into_iter()
            .chain(util::get_strings(opts, "announce")),
    );
    // `create` strips a shared top folder and names the torrent after it, as create-torrent
    // does, so the same files give WebTorrent's info-hash; pass paths exactly as dropped.
    let create_opts = CreateOptions {
        name: util::get_string(opts, "name"),
        piece_length: util::get_f64(opts, "pieceLength").map(|v| v as u32),
        announce_list: trackers.iter().map(|t| vec![t.clone()]).collect(),
        comment: util::get_string(opts, "comment"),
        private: util::get(opts, "private").as_bool().unwrap_or(false),
        created_by: Some("seedtab/0.1".into()),
        creation_date: Some((js_sys::Date::now() / 1000.0) as i64),
        ..Default::default()
    };
    Ok((peer_id, trackers, create_opts))
}

/// Seeds files through browser storage: imported, hashed and kept there, never whole in memory.
async fn seed_stored(
    client: &Rc<RefCell<ClientInner>>,
    storage: storage::PieceStorage,
    files: Vec<persist::SeedFile>,
    opts: &JsValue,
) -> Result<TorrentRef, JsValue> {
    let (peer_id, trackers, create_opts) = seed_settings(client, opts)?;
    let (meta, sid) =
        persist::seed_into_storage(client, storage.clone(), files, create_opts).await?;
    if let Some(t) = client.borrow().find(&meta.info_hash) {
        return Ok(t);
    }
    let have = Bitfield::full(meta.info.num_pieces() as usize);
    let session = persist::session_for(meta, peer_id, have, seed_rng());
    let t = start_torrent(client, session, trackers, None, true);
    t.borrow_mut().persist = Some(persist::persisted(storage, sid, None));
    {
        let mut inner = t.borrow_mut();
        if let Some(p) = inner.persist.as_mut() {
            p.seeded = true;
        }
    }
    Ok(t)
}

async fn seed_inputs(
    client: &Rc<RefCell<ClientInner>>,
    inputs: Vec<InputFile>,
    opts: &JsValue,
) -> Result<TorrentRef, JsValue> {
    let (peer_id, trackers, create_opts) = seed_settings(client, opts)?;
    let layout = inputs
        .iter()
        .map(|f| (f.path.clone(), f.data.len() as u64))
        .collect();
    let mut builder = TorrentBuilder::new(layout, create_opts)
        .map_err(|e| util::error(format!("Could not create the torrent: {e}")))?;
    let mut all = Vec::with_capacity(builder.total_length() as usize);
    for f in &inputs {
        all.extend_from_slice(&f.data);
    }
    drop(inputs);
    let built = match webcrypto::subtle_crypto() {
        Some(subtle) => {
            let hashes = webcrypto::piece_hashes(&subtle, &all, builder.piece_length()).await?;
            builder.finish_with_piece_hashes(hashes)
        }
        None => builder.update(&all).and_then(|_| builder.finish()),
    };
    let meta = built.map_err(|e| util::error(format!("Could not create the torrent: {e}")))?;
    if let Some(t) = client.borrow().find(&meta.info_hash) {
        return Ok(t);
    }
    let store = MemoryStore::from_bytes(&all, meta.info.piece_length);
    drop(all);
    let have = Bitfield::full(meta.info.num_pieces() as usize);
    let session = Session::new(
        meta,
        peer_id,
        Box::new(store),
        have,
        Config::default(),
        seed_rng(),
    );
    Ok(start_torrent(client, session, trackers, None, true))
}

/// One torrent, downloading or seeding.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Torrent {
    inner: TorrentRef,
}

#[wasm_bindgen]
impl Torrent {
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.inner.borrow().info_hash.to_hex()
    }

    #[wasm_bindgen(getter, js_name = magnetURI)]
    pub fn magnet_uri(&self) -> String {
        let t = self.inner.borrow();
        let mut m = match t.session.metainfo() {
            Some(meta) => meta.magnet(),
            None => Magnet {
                info_hash: t.info_hash,
                name: t.magnet_name.clone(),
                trackers: Vec::new(),
                web_seeds: Vec::new(),
                exact_length: None,
            },
        };
        m.trackers = usable_trackers(t.trackers.iter().cloned().chain(m.trackers));
        if m.web_seeds.is_empty() {
            // Added from a magnet link: its `ws=` live in the session, not in the metadata.
            m.web_seeds = t.session.web_seeds().into_iter().map(|(_, u)| u).collect();
        }
        m.to_uri()
    }

    /// The `.torrent` file's bytes, once the metadata is known.
    #[wasm_bindgen(getter, js_name = torrentFile)]
    pub fn torrent_file(&self) -> Option<Uint8Array> {
        let t = self.inner.borrow();
        let meta = t.session.metainfo()?;
        Some(Uint8Array::from(meta.to_torrent_bytes().as_slice()))
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> Option<String> {
        let t = self.inner.borrow();
        t.session
            .metainfo()
            .map(|m| m.info.name.clone())
            .or_else(|| t.magnet_name.clone())
    }

    /// Total size in bytes, once the metadata is known.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> Option<f64> {
        self.inner
            .borrow()
            .session
            .metainfo()
            .map(|m| m.info.total_length as f64)
    }

    #[wasm_bindgen(getter, unchecked_return_type = "TorrentFile[]")]
    pub fn files(&self) -> Array {
        torrent::files_array(&self.inner)
    }

    /// Verified fraction, 0..1.
    #[wasm_bindgen(getter)]
    pub fn progress(&self) -> f64 {
        self.inner
            .borrow_mut()
            .session
            .stats(util::now_ms())
            .progress
    }

    #[wasm_bindgen(getter, js_name = numPeers)]
    pub fn num_peers(&self) -> usize {
        self.inner.borrow().session.num_peers()
    }

    /// Resolves when every piece is verified; rejects if the torrent is destroyed first.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<void>")]
    pub fn done(&self) -> js_sys::Promise {
        self.inner.borrow().done.promise.clone()
    }

    /// Resolves when the metadata is known.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<void>")]
    pub fn ready(&self) -> js_sys::Promise {
        self.inner.borrow().ready.promise.clone()
    }

    #[wasm_bindgen(unchecked_return_type = "TorrentStats")]
    pub fn stats(&self) -> JsValue {
        self.inner.borrow_mut().stats_object()
    }

    /// Listens for "metadata", "progress" (with the progress 0..1) or "done".
    pub fn on(&self, event: String, callback: js_sys::Function) {
        self.inner.borrow_mut().add_listener(event, callback);
    }

    pub fn off(&self, event: String, callback: js_sys::Function) {
        self.inner.borrow_mut().remove_listener(&event, &callback);
    }

    /// Stops uploading and downloading (remembered in storage across reloads).
    pub fn pause(&self) {
        {
            let mut t = self.inner.borrow_mut();
            t.user_paused = true;
            t.session.set_paused(true);
        }
        persist::save_state(&self.inner);
        torrent::drive(&self.inner);
    }

    /// Goes on after `pause()`, or after storage ran out and space was freed.
    pub fn resume(&self) {
        let retry_create = {
            let mut t = self.inner.borrow_mut();
            t.user_paused = false;
            t.last_error = None;
            t.session.set_paused(false);
            // Storing the torrent itself failed (no room): try again now.
            t.session.metainfo().is_some() && t.persist.as_ref().is_some_and(|p| !p.created)
        };
        if retry_create {
            let t = self.inner.clone();
            wasm_bindgen_futures::spawn_local(async move { persist::create_entry(&t).await });
        }
        persist::save_state(&self.inner);
        torrent::drive(&self.inner);
    }

    #[wasm_bindgen(getter)]
    pub fn paused(&self) -> bool {
        self.inner.borrow().session.is_paused()
    }

    /// "opfs", "idb", or "memory" (not kept across reloads).
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        let t = self.inner.borrow();
        match &t.persist {
            Some(p) => p.storage.backend().as_str().to_string(),
            None => "memory".into(),
        }
    }

    /// Hashes every stored piece again; damaged ones are downloaded again. Resolves to how many
    /// were damaged.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn recheck(&self) -> js_sys::Promise {
        let t = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(JsValue::from(persist::recheck(&t).await))
        })
    }

    /// Stops this torrent and deletes what storage holds for it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn remove(&self) -> js_sys::Promise {
        let target = {
            let t = self.inner.borrow();
            t.persist.as_ref().map(|p| (p.storage.clone(), p.sid))
        };
        self.destroy();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Some((storage, sid)) = target {
                storage.remove(&sid).await?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Stops this torrent and forgets it (what storage holds stays, for `client.restore()`).
    pub fn destroy(&self) {
        let (client, ih) = {
            let mut t = self.inner.borrow_mut();
            t.destroy();
            (t.client.upgrade(), t.info_hash)
        };
        if let Some(c) = client {
            c.borrow_mut().remove(&ih);
        }
    }
}

/// One file of a torrent.
#[wasm_bindgen]
pub struct TorrentFile {
    torrent: TorrentRef,
    name: String,
    path: String,
    offset: u64,
    length: u64,
}

impl TorrentFile {
    fn new(torrent: TorrentRef, _index: usize, f: &FileEntry, info: &Info) -> TorrentFile {
        let mut path = Vec::new();
        if info.multi_file {
            path.push(info.name.clone());
        }
        path.extend(f.path.iter().cloned());
        TorrentFile {
            torrent,
            name: f.path.last().cloned().unwrap_or_default(),
            path: path.join("/"),
            offset: f.offset,
            length: f.length,
        }
    }
}

#[wasm_bindgen]
impl TorrentFile {
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Path inside the torrent, with `/` separators (the torrent's folder first when multi-file).
    #[wasm_bindgen(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.length as f64
    }

    /// Resolves to the file's bytes (whole, in memory: use `blob()` for big files); rejects
    /// until every piece it spans is verified.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn bytes(&self) -> js_sys::Promise {
        let (torrent, name, offset, length) = (
            self.torrent.clone(),
            self.name.clone(),
            self.offset,
            self.length,
        );
        wasm_bindgen_futures::future_to_promise(async move {
            let missing = || util::error(format!("{name} is not downloaded yet"));
            if let Some((storage, sid)) =
                stored_range(&torrent, offset, length).map_err(|_| missing())?
            {
                let bytes = storage.read_range_js(&sid, offset, length as u32).await?;
                return Ok(bytes.into());
            }
            let data = torrent
                .borrow()
                .session
                .read(offset, length)
                .ok_or_else(missing)?;
            Ok(Uint8Array::from(data.as_slice()).into())
        })
    }

    /// Resolves to a Blob of the file. For stored torrents it is disk-backed: saving it (an
    /// object URL, or a stream to a file picked with the File System Access API) never builds
    /// the file in memory.
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn blob(&self) -> js_sys::Promise {
        let (torrent, name, offset, length) = (
            self.torrent.clone(),
            self.name.clone(),
            self.offset,
            self.length,
        );
        wasm_bindgen_futures::future_to_promise(async move {
            let missing = || util::error(format!("{name} is not downloaded yet"));
            if let Some((storage, sid)) =
                stored_range(&torrent, offset, length).map_err(|_| missing())?
            {
                return Ok(storage.file_blob(&sid, offset, length, None).await?.into());
            }
            let data = torrent
                .borrow()
                .session
                .read(offset, length)
                .ok_or_else(missing)?;
            let parts = Array::new();
            parts.push(&Uint8Array::from(data.as_slice()));
            Ok(web_sys::Blob::new_with_u8_array_sequence(&parts)?.into())
        })
    }
}

/// For a stored torrent whose pieces over `offset..offset+length` are all had: where to read
/// them. Ok(None) for torrents kept in memory; Err(()) if a piece is missing.
fn stored_range(
    t: &TorrentRef,
    offset: u64,
    length: u64,
) -> Result<Option<(storage::PieceStorage, InfoHash)>, ()> {
    let inner = t.borrow();
    let Some(p) = &inner.persist else {
        return Ok(None);
    };
    let meta = inner.session.metainfo().ok_or(())?;
    if length > 0 {
        let pl = meta.info.piece_length as u64;
        let (first, last) = (offset / pl, (offset + length - 1) / pl);
        if !(first..=last).all(|i| inner.session.have().get(i as usize)) {
            return Err(());
        }
    }
    Ok(Some((p.storage.clone(), p.sid)))
}
