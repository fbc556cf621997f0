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
    let mut out = Vec::with_capacity(pieces.len() * 20);
    let mut pending = std::collections::VecDeque::new();
    let mut next = 0;
    while out.len() < pieces.len() * 20 {
        while next < pieces.len() && pending.len() < IN_FLIGHT {
            // digest() copies its input before returning, so a view of wasm memory is safe here.
            pending.push_back(subtle.digest_with_str_and_u8_array("SHA-1", pieces[next])?);
            next += 1;
        }
        let Some(p) = pending.pop_front() else { break };
        let digest = JsFuture::from(p).await?;
        out.extend_from_slice(&Uint8Array::new(&digest).to_vec());
    }
    Ok(out)
}
