//! Streaming reads for a media player (the service worker of `www/sw.js` asks through the page):
//! `TorrentFile.read(start, end)` puts the pieces under the read position, then a read-ahead,
//! into the engine's streaming window, waits until the piece under `start` is verified, and
//! resolves to the verified bytes from there on. Only the window is handed to the engine: this
//! module never picks pieces or talks to peers itself, and never holds more than one read's
//! bytes (at most `MAX_READ`).

use std::ops::Range;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::torrent::{self, TorrentRef};
use super::{stored_range, util, TorrentFile};

/// Most bytes one read returns: the service worker asks in chunks of about this size, so a
/// seek never waits for more than this behind the new position.
const MAX_READ: u64 = 1 << 20;
/// Pieces after the ones being read that go into the window too, so playback does not stall
/// at every piece boundary.
const READ_AHEAD_BYTES: u64 = 8 << 20;
/// A wait for pieces wakes at the next verified piece, or after this long to look again (a
/// destroyed torrent drops its listeners, so the wake-up may never come).
const WAIT_MS: i32 = 500;

#[wasm_bindgen(typescript_custom_section)]
const TS_READ: &'static str = r#"
export interface TorrentFile {
  /**
   * Streaming read of the file's bytes `start..end` (end exclusive, default the file's end).
   * Moves the pieces under `start` (and a read-ahead after them) to the front of the download
   * queue, waits until the piece under `start` is verified, and resolves to the verified bytes
   * from `start` on: at least one byte, at most `end - start` and 1 MiB, fewer when the next
   * piece is still missing (like read(2)). Resolves to an empty array at or past the end;
   * rejects if the torrent is destroyed.
   */
  read(start: number, end?: number): Promise<Uint8Array>;
}
"#;

#[wasm_bindgen]
impl TorrentFile {
    /// See the TypeScript declaration above (one place for the contract).
    #[wasm_bindgen(skip_typescript)]
    pub fn read(&self, start: f64, end: Option<f64>) -> Promise {
        let len = self.length;
        let start = clamp(start, len);
        let end = end.map_or(len, |e| clamp(e, len)).max(start);
        let end = end.min(start + MAX_READ);
        let (torrent, offset) = (self.torrent.clone(), self.offset);
        wasm_bindgen_futures::future_to_promise(async move {
            if start == end {
                return Ok(Uint8Array::new_with_length(0).into());
            }
            read_verified(&torrent, offset + start, offset + end, offset + len).await
        })
    }
}

fn clamp(v: f64, len: u64) -> u64 {
    if v.is_nan() || v <= 0.0 {
        0
    } else {
        (v as u64).min(len)
    }
}

/// The torrent's bytes from `start` up to at most `end` (absolute offsets), once the piece under
/// `start` is verified; `file_end` bounds the read-ahead.
async fn read_verified(
    t: &TorrentRef,
    start: u64,
    end: u64,
    file_end: u64,
) -> Result<JsValue, JsValue> {
    let mut window_set = false;
    loop {
        let ready = {
            let mut inner = t.borrow_mut();
            if inner.destroyed {
                return Err(util::error("the torrent was destroyed"));
            }
            let Some(meta) = inner.session.metainfo() else {
                return Err(util::error("the torrent has no metadata"));
            };
            let pl = meta.info.piece_length as u64;
            let first = (start / pl) as u32;
            let last = ((end - 1) / pl) as u32;
            let mut next = first;
            while next <= last && inner.session.have().get(next as usize) {
                next += 1;
            }
            if !window_set {
                // Set once per read: the newest read (a seek) wins over reads still waiting.
                let ahead = ((end + READ_AHEAD_BYTES).min(file_end) - 1) / pl;
                let window: Vec<Range<u32>> = std::iter::once(first..ahead as u32 + 1).collect();
                inner.session.set_window(window);
            }
            (next > first).then(|| end.min(next as u64 * pl))
        };
        if !window_set {
            window_set = true;
            torrent::drive(t);
        }
        if let Some(ready_end) = ready {
            return read_now(t, start, ready_end).await;
        }
        wait_for_piece(t).await;
    }
}

/// Reads bytes whose pieces are all had: from browser storage, or from the session's memory.
async fn read_now(t: &TorrentRef, start: u64, end: u64) -> Result<JsValue, JsValue> {
    let len = end - start;
    let gone = || util::error("the pieces to read are no longer available");
    if let Some((storage, sid)) = stored_range(t, start, len).map_err(|_| gone())? {
        return Ok(storage.read_range_js(&sid, start, len as u32).await?.into());
    }
    let data = t.borrow().session.read(start, len).ok_or_else(gone)?;
    Ok(Uint8Array::from(data.as_slice()).into())
}

/// Resolves at the torrent's next "progress" event (a piece was verified and stored), or after
/// `WAIT_MS`; the listener is removed either way, so waits never pile up in the listener list.
async fn wait_for_piece(t: &TorrentRef) {
    let mut resolve: Option<Function> = None;
    let promise = Promise::new(&mut |res, _| resolve = Some(res));
    let Some(resolve) = resolve else { return };
    t.borrow_mut()
        .add_listener("progress".to_string(), resolve.clone());
    util::set_timeout(&resolve, WAIT_MS);
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    t.borrow_mut().remove_listener("progress", &resolve);
}
