//! Torrents kept in browser storage: opening what is stored when a torrent starts, writing each
//! verified piece and then the state that claims it, reading pieces back for uploads, importing
//! the user's files for seeding without holding them in memory, the library of stored torrents,
//! and integrity re-checks. The engine decides what to store; this only carries it to
//! `storage::PieceStorage` and back.

use std::cell::RefCell;
use std::rc::Rc;

use sha1::{Digest, Sha1};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::bitfield::Bitfield;
use crate::create::{CreateOptions, TorrentBuilder};
use crate::engine::{Config, Session};
use crate::id::InfoHash;
use crate::metainfo::Metainfo;
use crate::rng::Rng;
use crate::store::ResumeState;

use super::client::ClientInner;
use super::storage::{error_kind, ErrorKind, ImportFile, PieceStorage};
use super::torrent::{self, TorrentRef};
use super::util::{self, now_ms};

/// Verified bytes allowed to wait for storage before downloading pauses for it.
const UNSTORED_BYTES: usize = 16 << 20;
/// Pieces hashed again when a stored torrent is opened, to catch storage that lost data.
const QUICK_CHECK_PIECES: usize = 2;

/// A torrent's place in storage.
pub(crate) struct Persist {
    pub storage: PieceStorage,
    /// The storage key: the info-hash for downloads; a random id for seeds, whose info-hash is
    /// only known once their files are imported and hashed.
    pub sid: InfoHash,
    /// The `.torrent` is stored (writes may go ahead).
    pub created: bool,
    /// Pieces verified before `created`.
    pub pending: Vec<(u32, Vec<u8>)>,
    pub prior_uploaded: u64,
    pub prior_downloaded: u64,
    pub added_ms: u64,
    pub seeded: bool,
    /// A state save is in flight; `save_again` asks for one more after it.
    pub saving: bool,
    pub save_again: bool,
}

/// Engine settings for a torrent in storage: few unstored pieces, whatever the piece length.
pub(crate) fn external_config(piece_length: Option<u32>) -> Config {
    let pieces = piece_length.map_or(16, |l| (UNSTORED_BYTES / l.max(1) as usize).max(2));
    Config {
        max_unstored_pieces: pieces,
        ..Config::default()
    }
}

fn js_message(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            js_sys::Reflect::get(e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

fn failure_text(e: &JsValue) -> String {
    match error_kind(e) {
        ErrorKind::Quota => format!("browser storage is full ({})", js_message(e)),
        ErrorKind::Locked => "another tab is using this torrent's storage".into(),
        _ => js_message(e),
    }
}

/// Opens what storage holds for a torrent that was just added, then lets it announce. If
/// storage cannot be had, the torrent keeps its pieces in memory instead.
pub(crate) async fn init_added(t: TorrentRef) {
    let client = t.borrow().client.upgrade();
    let storage = match client {
        Some(c) => ClientInner::storage(&c).await,
        None => None,
    };
    let Some(storage) = storage else {
        t.borrow_mut().session.use_internal_store();
        finish_init(&t);
        return;
    };
    let sid = t.borrow().info_hash;
    let stored_torrent = storage.load_torrent(&sid).await.ok().flatten();
    let stored_state = storage.load_state(&sid).await.ok().flatten();
    let mut persist = Persist {
        storage: storage.clone(),
        sid,
        created: false,
        pending: Vec::new(),
        prior_uploaded: 0,
        prior_downloaded: 0,
        added_ms: js_sys::Date::now() as u64,
        seeded: false,
        saving: false,
        save_again: false,
    };
    let stored_meta = stored_torrent
        .as_deref()
        .filter(|b| !b.is_empty())
        .and_then(|b| Metainfo::from_torrent_bytes(b).ok())
        .filter(|m| m.info_hash == sid);
    {
        let mut inner = t.borrow_mut();
        let meta = stored_meta.or_else(|| inner.session.metainfo().cloned());
        if let Some(meta) = meta {
            let n = meta.info.num_pieces();
            let state = stored_state.and_then(|s| ResumeState::decode(&s, n).ok());
            let have = state
                .as_ref()
                .map_or_else(|| Bitfield::new(n as usize), |s| s.have.clone());
            if let Some(s) = &state {
                persist.prior_uploaded = s.uploaded;
                persist.prior_downloaded = s.downloaded;
                persist.added_ms = s.added_ms;
                persist.seeded = s.seeded;
            }
            if let Err(e) = inner.session.restore(Some(meta), have) {
                inner.trace(&format!("stored state unusable: {e}"));
            }
            if state.is_some_and(|s| s.paused) {
                inner.session.set_paused(true);
            }
        }
        inner.persist = Some(persist);
    }
    quick_check(&t).await;
    // Downloads whose metadata is already known are stored now; magnets once it arrives.
    if t.borrow().session.metainfo().is_some() {
        create_entry(&t).await;
    }
    finish_init(&t);
}

fn finish_init(t: &TorrentRef) {
    {
        let mut inner = t.borrow_mut();
        inner.storage_ready = true;
        inner.trace("storage ready");
    }
    torrent::announce_due(t, now_ms());
    torrent::drive(t);
}

/// Stores the `.torrent` (so a reopened tab knows it), then any pieces that waited for it.
pub(crate) async fn create_entry(t: &TorrentRef) {
    let (storage, sid, bytes, total) = {
        let inner = t.borrow();
        let (Some(p), Some(meta)) = (&inner.persist, inner.session.metainfo()) else {
            return;
        };
        if p.created {
            return;
        }
        (
            p.storage.clone(),
            p.sid,
            meta.to_torrent_bytes(),
            meta.info.total_length,
        )
    };
    // Reserving the whole length (OPFS) makes a lack of space show now, not half-way.
    match storage.create(&sid, &bytes, total, true).await {
        Ok(()) => {
            let pending = {
                let mut inner = t.borrow_mut();
                let Some(p) = inner.persist.as_mut() else {
                    return;
                };
                p.created = true;
                std::mem::take(&mut p.pending)
            };
            save_state(t);
            for (piece, data) in pending {
                store_piece(t, piece, data);
            }
        }
        Err(e) => {
            let reason = failure_text(&e);
            let message = format!("Storage failed, torrent paused: {reason}");
            {
                let mut inner = t.borrow_mut();
                let pending = inner
                    .persist
                    .as_mut()
                    .map(|p| std::mem::take(&mut p.pending))
                    .unwrap_or_default();
                for (piece, _) in pending {
                    inner.session.piece_stored(piece, Err(reason.clone()));
                }
                // Nothing can be kept until this works: stop and say so.
                inner.session.set_paused(true);
                inner.last_error = Some(message.clone());
            }
            torrent::fire(t, "error", &js_sys::Error::new(&message).into());
            torrent::drive(t);
        }
    }
}

/// Writes a verified piece, then tells the session, then saves the state that claims it.
pub(crate) fn store_piece(t: &TorrentRef, piece: u32, data: Vec<u8>) {
    let target = {
        let mut inner = t.borrow_mut();
        let offset = inner.session.metainfo().map(|m| m.info.piece_offset(piece));
        match (inner.persist.as_mut(), offset) {
            (Some(p), Some(offset)) if p.created => Some((p.storage.clone(), p.sid, offset)),
            (Some(p), Some(_)) => {
                p.pending.push((piece, data));
                return;
            }
            _ => None,
        }
    };
    let Some((storage, sid, offset)) = target else {
        t.borrow_mut()
            .session
            .piece_stored(piece, Err("no storage".into()));
        return;
    };
    let t = t.clone();
    spawn_local(async move {
        let result = storage.write_piece(&sid, offset, &data).await;
        drop(data);
        let result = result.map_err(|e| failure_text(&e));
        t.borrow_mut().session.piece_stored(piece, result);
        save_state(&t);
        torrent::drive(&t);
    });
}

/// Reads a piece back so the session can upload it.
pub(crate) fn load_piece(t: &TorrentRef, piece: u32) {
    let target = {
        let inner = t.borrow();
        let info = inner
            .session
            .metainfo()
            .map(|m| (m.info.piece_offset(piece), m.info.piece_len(piece)));
        inner
            .persist
            .as_ref()
            .zip(info)
            .map(|(p, (off, len))| (p.storage.clone(), p.sid, off, len))
    };
    let Some((storage, sid, offset, len)) = target else {
        t.borrow_mut().session.piece_loaded(piece, None);
        return;
    };
    let t = t.clone();
    spawn_local(async move {
        let data = storage.read_range(&sid, offset, len).await.ok();
        t.borrow_mut().session.piece_loaded(piece, data);
        torrent::drive(&t);
    });
}

/// The state record for the torrent as it is now.
fn current_state(inner: &torrent::TorrentInner) -> Option<(PieceStorage, InfoHash, Vec<u8>)> {
    let p = inner.persist.as_ref()?;
    if !p.created {
        return None;
    }
    let state = ResumeState {
        info_hash: inner.info_hash,
        have: inner.session.have().clone(),
        paused: inner.session.is_paused() || inner.user_paused,
        uploaded: p.prior_uploaded + inner.session.uploaded(),
        downloaded: p.prior_downloaded + inner.session.downloaded(),
        added_ms: p.added_ms,
        seeded: p.seeded,
    };
    Some((p.storage.clone(), p.sid, state.encode()))
}

/// Saves the state: at most one save in flight and one more owed, so saves never queue up
/// behind piece writes and the stored state trails the pieces by as little as possible.
pub(crate) fn save_state(t: &TorrentRef) {
    {
        let mut inner = t.borrow_mut();
        let Some(p) = inner.persist.as_mut() else {
            return;
        };
        if p.saving {
            p.save_again = true;
            return;
        }
        p.saving = true;
    }
    let t = t.clone();
    spawn_local(async move {
        loop {
            let Some((storage, sid, bytes)) = current_state(&t.borrow()) else {
                break;
            };
            if let Err(e) = storage.save_state(&sid, &bytes).await {
                util::log(&format!(
                    "seedtab: could not save state: {}",
                    failure_text(&e)
                ));
            }
            let mut inner = t.borrow_mut();
            let Some(p) = inner.persist.as_mut() else {
                break;
            };
            if !std::mem::take(&mut p.save_again) {
                break;
            }
        }
        if let Some(p) = t.borrow_mut().persist.as_mut() {
            p.saving = false;
        }
    });
}

async fn read_and_hash(
    storage: &PieceStorage,
    sid: &InfoHash,
    meta: &Metainfo,
    piece: u32,
) -> bool {
    let (off, len) = (meta.info.piece_offset(piece), meta.info.piece_len(piece));
    match storage.read_range(sid, off, len).await {
        Ok(data) => meta
            .info
            .piece_hash(piece)
            .is_some_and(|h| Sha1::digest(&data).as_slice() == h),
        Err(_) => false,
    }
}

/// On open: hash a few stored pieces; if any is wrong, re-check everything.
async fn quick_check(t: &TorrentRef) {
    let sample: Vec<u32> = {
        let inner = t.borrow();
        let have: Vec<u32> = inner.session.have().iter_set().map(|i| i as u32).collect();
        let mut rng = Rng::new(u64::from_le_bytes(util::random_bytes::<8>()));
        (0..QUICK_CHECK_PIECES.min(have.len()))
            .map(|_| have[rng.below(have.len() as u64) as usize])
            .collect()
    };
    if sample.is_empty() {
        return;
    }
    let Some((storage, sid, meta)) = storage_and_meta(t) else {
        return;
    };
    for piece in sample {
        if !read_and_hash(&storage, &sid, &meta, piece).await {
            t.borrow()
                .trace("quick check failed: re-checking everything");
            recheck(t).await;
            return;
        }
    }
}

fn storage_and_meta(t: &TorrentRef) -> Option<(PieceStorage, InfoHash, Metainfo)> {
    let inner = t.borrow();
    let p = inner.persist.as_ref()?;
    Some((p.storage.clone(), p.sid, inner.session.metainfo()?.clone()))
}

/// Hashes every stored piece; the damaged ones are fetched again. Returns how many were bad.
pub(crate) async fn recheck(t: &TorrentRef) -> u32 {
    let Some((storage, sid, meta)) = storage_and_meta(t) else {
        return 0;
    };
    let have: Vec<u32> = t
        .borrow()
        .session
        .have()
        .iter_set()
        .map(|i| i as u32)
        .collect();
    let mut bad = Vec::new();
    for piece in have {
        if !read_and_hash(&storage, &sid, &meta, piece).await {
            bad.push(piece);
        }
    }
    t.borrow_mut().session.forget_pieces(&bad);
    save_state(t);
    torrent::drive(t);
    bad.len() as u32
}

/// A file to seed: its path in the torrent and its bytes as a Blob (a `File` stays on disk).
pub(crate) struct SeedFile {
    pub path: Vec<String>,
    pub blob: web_sys::Blob,
}

/// Makes a torrent of the user's files with their bytes going straight into storage: the worker
/// reads, writes and hashes them, so nothing whole passes through memory.
pub(crate) async fn seed_into_storage(
    client: &Rc<RefCell<ClientInner>>,
    storage: PieceStorage,
    files: Vec<SeedFile>,
    opts: CreateOptions,
) -> Result<(Metainfo, InfoHash), JsValue> {
    let layout: Vec<(Vec<String>, u64)> = files
        .iter()
        .map(|f| (f.path.clone(), f.blob.size() as u64))
        .collect();
    let builder = TorrentBuilder::new(layout, opts)
        .map_err(|e| util::error(format!("Could not create the torrent: {e}")))?;
    let total = builder.total_length();
    let sid = InfoHash(util::random_bytes::<20>());
    storage
        .create(&sid, &[], total, false)
        .await
        .map_err(|e| util::error(failure_text(&e)))?;
    let mut offset = 0u64;
    let mut imports = Vec::new();
    for f in &files {
        imports.push(ImportFile {
            file: f.blob.clone(),
            offset,
        });
        offset += f.blob.size() as u64;
    }
    let hashes = match storage
        .import_files(&sid, &imports, builder.piece_length(), None)
        .await
    {
        Ok(h) => h,
        Err(e) => {
            let _ = storage.remove(&sid).await;
            return Err(util::error(format!(
                "Could not store the files: {}",
                failure_text(&e)
            )));
        }
    };
    let meta = builder
        .finish_with_piece_hashes(hashes)
        .map_err(|e| util::error(format!("Could not create the torrent: {e}")))?;
    if client.borrow().find(&meta.info_hash).is_some() {
        let _ = storage.remove(&sid).await;
        return Ok((meta, sid));
    }
    storage
        .create(&sid, &meta.to_torrent_bytes(), total, false)
        .await
        .map_err(|e| util::error(failure_text(&e)))?;
    let state = ResumeState {
        info_hash: meta.info_hash,
        have: Bitfield::full(meta.info.num_pieces() as usize),
        paused: false,
        uploaded: 0,
        downloaded: 0,
        added_ms: js_sys::Date::now() as u64,
        seeded: true,
    };
    storage
        .save_state(&sid, &state.encode())
        .await
        .map_err(|e| util::error(failure_text(&e)))?;
    Ok((meta, sid))
}

/// The `Persist` of a torrent whose entry is already complete in storage.
pub(crate) fn persisted(
    storage: PieceStorage,
    sid: InfoHash,
    state: Option<&ResumeState>,
) -> Persist {
    Persist {
        storage,
        sid,
        created: true,
        pending: Vec::new(),
        prior_uploaded: state.map_or(0, |s| s.uploaded),
        prior_downloaded: state.map_or(0, |s| s.downloaded),
        added_ms: state.map_or_else(|| js_sys::Date::now() as u64, |s| s.added_ms),
        seeded: state.is_some_and(|s| s.seeded),
        saving: false,
        save_again: false,
    }
}

/// Everything storage holds, as (storage id, metadata, state); unreadable entries are skipped.
pub(crate) async fn stored_torrents(
    storage: &PieceStorage,
) -> Vec<(InfoHash, Metainfo, Option<ResumeState>)> {
    let mut out = Vec::new();
    for sid in storage.list().await.unwrap_or_default() {
        let Some(bytes) = storage.load_torrent(&sid).await.ok().flatten() else {
            continue;
        };
        let Ok(meta) = Metainfo::from_torrent_bytes(&bytes) else {
            // An import that never finished: nothing to seed.
            let _ = storage.remove(&sid).await;
            continue;
        };
        let n = meta.info.num_pieces();
        let state = storage
            .load_state(&sid)
            .await
            .ok()
            .flatten()
            .and_then(|s| ResumeState::decode(&s, n).ok());
        out.push((sid, meta, state));
    }
    out
}

/// Opens a stored torrent as a session, checking a few pieces first.
pub(crate) async fn open_stored(t: &TorrentRef) {
    quick_check(t).await;
    finish_init(t);
}

pub(crate) fn session_for(
    meta: Metainfo,
    peer_id: crate::id::PeerId,
    have: Bitfield,
    seed: u64,
) -> Session {
    let config = external_config(Some(meta.info.piece_length));
    Session::new_external(meta, peer_id, have, config, seed)
}
