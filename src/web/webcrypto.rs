//! SHA-1 through the browser's WebCrypto, for hashing pieces when a torrent is created: it runs
//! off the main thread and is faster than SHA-1 compiled to wasm. Only in secure contexts
//! (https, localhost); elsewhere `subtle_crypto` is None and callers hash in wasm.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::SubtleCrypto;

/// Digests kept in flight at once: enough to keep WebCrypto's worker busy, few enough that the
/// copies it takes of each piece stay small.
const IN_FLIGHT: usize = 16;

pub fn subtle_crypto() -> Option<SubtleCrypto> {
    let crypto = web_sys::window()?.crypto().ok()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    subtle.dyn_into::<SubtleCrypto>().ok()
}

/// The SHA-1 of each `piece_length` piece of `data`, concatenated.
pub async fn piece_hashes(
    subtle: &SubtleCrypto,
    data: &[u8],
    piece_length: u32,
) -> Result<Vec<u8>, JsValue> {
    let pieces: Vec<&[u8]> = data.chunks(piece_length.max(1) as usize).collect();
    // digest() copies its input before returning, so a view of wasm memory is safe here.
    digests(pieces.len(), |i| {
        subtle.digest_with_str_and_u8_array("SHA-1", pieces[i])
    })
    .await
}

/// The same for bytes that live in JavaScript (a File read into an ArrayBuffer): no copy into
/// wasm memory on the way.
pub async fn piece_hashes_js(
    subtle: &SubtleCrypto,
    data: &Uint8Array,
    piece_length: u32,
) -> Result<Vec<u8>, JsValue> {
    let (len, pl) = (data.length(), piece_length.max(1));
    digests(len.div_ceil(pl) as usize, |i| {
        let start = i as u32 * pl;
        let piece = data.subarray(start, (start + pl).min(len));
        subtle.digest_with_str_and_js_u8_array("SHA-1", &piece)
    })
    .await
}

/// Runs `count` digests, `IN_FLIGHT` at a time, and concatenates them in order.
async fn digests(
    count: usize,
    mut start: impl FnMut(usize) -> Result<js_sys::Promise, JsValue>,
) -> Result<Vec<u8>, JsValue> {
    let mut out = Vec::with_capacity(count * 20);
    let mut pending = std::collections::VecDeque::new();
    let mut next = 0;
    while out.len() < count * 20 {
        while next < count && pending.len() < IN_FLIGHT {
            pending.push_back(start(next)?);
            next += 1;
        }
        let Some(p) = pending.pop_front() else { break };
        let digest = JsFuture::from(p).await?;
        out.extend_from_slice(&Uint8Array::new(&digest).to_vec());
    }
    Ok(out)
}

/// The SHA-1 of each piece of `data`, as torrent creation computes it (WebCrypto, several
/// digests in flight): resolves to the concatenated digests. Exported for the benchmark and
/// for pages that hash before seeding.
#[wasm_bindgen(js_name = sha1PiecesWebCrypto, unchecked_return_type = "Promise<Uint8Array>")]
pub fn sha1_pieces_webcrypto(data: Uint8Array, piece_length: u32) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let subtle = subtle_crypto().ok_or_else(|| {
            JsValue::from(js_sys::Error::new(
                "WebCrypto is not available here (not a secure context)",
            ))
        })?;
        let out = piece_hashes_js(&subtle, &data, piece_length).await?;
        Ok(Uint8Array::from(out.as_slice()).into())
    })
}
