//! Web seeds in the browser (BEP 19): performs the engine's `Event::WebSeedFetch` with `fetch`
//! and `Range` requests (`js/webseed.js`) and hands the bytes, or the error, back with
//! `Session::web_seed_data`. It never chooses pieces or seeds (the engine does), never keeps a
//! body larger than the range asked for, and never treats fetched bytes as verified: the engine
//! checks every piece's SHA-1 and drops a web seed that lies.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::engine::WebSeedRequest;

use super::torrent::{drive, TorrentRef};
use super::util::{self, now_ms};

/// One ranged GET that has not answered by then is abandoned (the engine also gives up on the
/// whole piece after its own, longer time-out).
const REQUEST_TIMEOUT_MS: u32 = 30_000;

#[wasm_bindgen(module = "/src/web/js/webseed.js")]
extern "C" {
    #[wasm_bindgen(js_name = fetchRange)]
    fn fetch_range(url: &str, start: f64, end: f64, file_length: f64, timeout_ms: u32) -> Promise;
}

/// Fetches a piece's ranges one after the other (a piece rarely spans more than a few files)
/// and reports the concatenated bodies to the session.
pub(crate) fn fetch_piece(t: &TorrentRef, seed: u32, piece: u32, requests: Vec<WebSeedRequest>) {
    let t = t.clone();
    spawn_local(async move {
        let mut out: Vec<u8> = Vec::new();
        let mut result = Ok(());
        for r in &requests {
            let p = fetch_range(
                &r.url,
                r.start as f64,
                r.end as f64,
                r.file_length as f64,
                REQUEST_TIMEOUT_MS,
            );
            match JsFuture::from(p).await {
                Ok(v) => out.extend_from_slice(&Uint8Array::new(&v).to_vec()),
                Err(e) => {
                    let msg = js_sys::Error::from(e)
                        .message()
                        .as_string()
                        .unwrap_or_else(|| "fetch failed".into());
                    result = Err(format!("{}: {msg}", r.url));
                    break;
                }
            }
        }
        {
            let mut inner = t.borrow_mut();
            if inner.destroyed {
                return;
            }
            if let Err(e) = &result {
                util::log(&format!("seedtab: web seed {seed} piece {piece}: {e}"));
            }
            inner
                .session
                .web_seed_data(seed, piece, result.map(|()| out), now_ms());
        }
        drive(&t);
    });
}
