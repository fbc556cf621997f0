//! Reward receipts for the browser driver: loads the tab's Ed25519 key (js/rewards.js keeps it
//! non-extractable in IndexedDB), signs the receipts the engine asks for, and keeps the ones it
//! verified. The engine decides what to sign and what to believe; this module only carries
//! bytes between it and WebCrypto/IndexedDB, and must never see or export the private key.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::engine::RewardConfig;
use crate::receipt::{hex, Receipt, SignedReceipt};

use super::client::ClientInner;
use super::torrent::{self, TorrentRef};
use super::util;

#[wasm_bindgen(module = "/src/web/js/rewards.js")]
extern "C" {
    #[wasm_bindgen(js_name = loadRewardKey)]
    fn load_reward_key() -> Promise;
    #[wasm_bindgen(js_name = signReceipt)]
    fn sign_receipt(private_key: &JsValue, message: &[u8]) -> Promise;
    #[wasm_bindgen(js_name = keepReceipt)]
    fn keep_receipt(record: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = listReceipts)]
    pub fn list_receipts() -> Promise;
    #[wasm_bindgen(js_name = submitReceipts)]
    pub fn submit_receipts(ledger: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = ledgerTotals)]
    pub fn ledger_totals(ledger: &JsValue, key_hex: &str) -> Promise;
}

/// Unpaid bytes a receipt-capable peer may run up in "require receipts" mode when the page
/// just says `requireReceipts: true`: more than the engine keeps in flight to one peer, so a
/// paying peer is never held back by its own pipeline.
pub const DEFAULT_REQUIRE_BYTES: u64 = 32 << 20;

/// The limit a page asks for: a number of bytes, `true` for the default, anything else off.
pub fn require_limit(value: &JsValue) -> Option<u64> {
    match value.as_f64() {
        Some(n) if n >= 0.0 => Some(n as u64),
        _ if *value == JsValue::TRUE => Some(DEFAULT_REQUIRE_BYTES),
        _ => None,
    }
}

/// The key, once loaded. `private` is an opaque, non-extractable CryptoKey.
pub struct RewardKey {
    pub public: [u8; 32],
    private: JsValue,
}

/// What a client knows about its key.
pub enum KeyState {
    /// `rewards: false`.
    Off,
    Loading(Promise),
    Ready(Rc<RewardKey>),
    /// Why there is no key (no WebCrypto Ed25519, no IndexedDB).
    Unavailable(String),
}

/// Starts loading the key; the returned promise resolves to `{ publicKey, privateKey }`.
pub fn start_loading() -> KeyState {
    KeyState::Loading(load_reward_key())
}

/// Waits for the key (at most once per client) and records the outcome.
pub async fn key(client: &Rc<RefCell<ClientInner>>) -> Option<Rc<RewardKey>> {
    let promise = match &client.borrow().reward_key {
        KeyState::Ready(k) => return Some(k.clone()),
        KeyState::Off | KeyState::Unavailable(_) => return None,
        KeyState::Loading(p) => p.clone(),
    };
    let outcome = JsFuture::from(promise).await;
    let mut c = client.borrow_mut();
    if let KeyState::Loading(_) = c.reward_key {
        c.reward_key = match outcome {
            Ok(v) => {
                let public = Uint8Array::new(&util::get(&v, "publicKey")).to_vec();
                match <[u8; 32]>::try_from(public.as_slice()) {
                    Ok(public) => KeyState::Ready(Rc::new(RewardKey {
                        public,
                        private: util::get(&v, "privateKey"),
                    })),
                    Err(_) => KeyState::Unavailable("the reward key is not 32 bytes".into()),
                }
            }
            Err(e) => {
                let why = util::error_message(&e);
                util::log(&format!("seedtab: {why}"));
                KeyState::Unavailable(why)
            }
        };
    }
    match &c.reward_key {
        KeyState::Ready(k) => Some(k.clone()),
        _ => None,
    }
}

/// Gives a new torrent's session the client's key before it meets any peer: the torrent
/// does not announce until this has run (`rewards_ready`).
pub fn attach(client: &Rc<RefCell<ClientInner>>, t: &TorrentRef) {
    let settled = !matches!(client.borrow().reward_key, KeyState::Loading(_));
    if settled {
        apply(client, t);
        return;
    }
    t.borrow_mut().rewards_ready = false;
    let (client, t) = (client.clone(), t.clone());
    wasm_bindgen_futures::spawn_local(async move {
        key(&client).await;
        apply(&client, &t);
        t.borrow_mut().rewards_ready = true;
        torrent::announce_due(&t, util::now_ms());
        torrent::drive(&t);
    });
}

fn apply(client: &Rc<RefCell<ClientInner>>, t: &TorrentRef) {
    let c = client.borrow();
    let KeyState::Ready(key) = &c.reward_key else {
        return;
    };
    // Session time is wall-clock time here (util::now_ms is Date.now()).
    let mut cfg = RewardConfig::new(key.public, 0);
    cfg.require_receipts = c.require_receipts;
    t.borrow_mut().session.set_rewards(Some(cfg));
}

/// `Event::SignReceipt`: WebCrypto signs off the engine's turn; the result goes back in.
pub fn sign(t: &TorrentRef, peer: u64, receipt: Receipt) {
    let key = {
        let inner = t.borrow();
        let client = inner.client.upgrade();
        let key = client.as_ref().and_then(|c| match &c.borrow().reward_key {
            KeyState::Ready(k) => Some(k.clone()),
            _ => None,
        });
        key
    };
    let t = t.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let signature = match key {
            Some(key) => {
                let message = receipt.signing_message();
                match JsFuture::from(sign_receipt(&key.private, &message)).await {
                    Ok(sig) => <[u8; 64]>::try_from(Uint8Array::new(&sig).to_vec().as_slice()).ok(),
                    Err(e) => {
                        util::log(&format!(
                            "seedtab: signing a receipt failed: {}",
                            util::error_message(&e)
                        ));
                        None
                    }
                }
            }
            None => None,
        };
        {
            let mut inner = t.borrow_mut();
            if inner.destroyed {
                return;
            }
            inner
                .session
                .receipt_signed(peer, receipt, signature, util::now_ms());
        }
        torrent::drive(&t);
    });
}

/// `Event::ReceiptReceived`: the engine verified it; keep it and tell the page.
pub fn received(t: &TorrentRef, receipt: &SignedReceipt) -> JsValue {
    let r = &receipt.receipt;
    let rec = Object::new();
    let id = format!(
        "{}{}{}",
        hex(&r.downloader),
        hex(&r.info_hash),
        hex(&r.session)
    );
    util::set(&rec, "id", id.as_str());
    util::set(&rec, "infoHash", hex(&r.info_hash).as_str());
    util::set(&rec, "uploader", hex(&r.uploader).as_str());
    util::set(&rec, "downloader", hex(&r.downloader).as_str());
    util::set(&rec, "session", hex(&r.session).as_str());
    util::set(&rec, "seq", r.seq as f64);
    util::set(&rec, "bytes", r.bytes as f64);
    util::set(&rec, "length", r.length as f64);
    util::set(&rec, "timestamp", r.timestamp_ms as f64);
    util::set(&rec, "receipt", hex(&receipt.encode()).as_str());
    if let Some(name) = t.borrow().session.metainfo().map(|m| m.info.name.clone()) {
        util::set(&rec, "name", name.as_str());
    }
    let rec: JsValue = rec.into();
    let keep = keep_receipt(&rec);
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(keep).await {
            util::log(&format!(
                "seedtab: could not keep a receipt: {}",
                util::error_message(&e)
            ));
        }
    });
    rec
}
