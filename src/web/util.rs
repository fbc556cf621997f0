//! Small browser helpers for the driver: the clock, entropy, timers, promises with their resolve
//! functions, and reading options from JS objects. Nothing here knows about BitTorrent.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Every DOM event handler the driver installs has this one shape.
pub type Handler = Closure<dyn FnMut(JsValue)>;

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Bytes from the browser's CSPRNG (falls back to Math.random only where crypto is missing).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.get_random_values_with_u8_array(&mut out).is_ok())
        .unwrap_or(false);
    if !filled {
        for b in out.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    out
}

pub fn set_timeout(f: &Function, ms: i32) -> i32 {
    web_sys::window()
        .and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms)
                .ok()
        })
        .unwrap_or(0)
}

pub fn set_interval(f: &Function, ms: i32) -> i32 {
    web_sys::window()
        .and_then(|w| {
            w.set_interval_with_callback_and_timeout_and_arguments_0(f, ms)
                .ok()
        })
        .unwrap_or(0)
}

pub fn clear_interval(id: i32) {
    if let Some(w) = web_sys::window() {
        w.clear_interval_with_handle(id);
    }
}

/// A promise together with the functions that settle it.
pub struct Deferred {
    pub promise: Promise,
    resolve: Function,
    reject: Function,
    settled: bool,
}

impl Deferred {
    pub fn new() -> Deferred {
        let mut slots: (Option<Function>, Option<Function>) = (None, None);
        let promise = Promise::new(&mut |res, rej| {
            slots = (Some(res), Some(rej));
        });
        // The executor runs synchronously inside `new`, so both slots are filled.
        let (resolve, reject) = (slots.0.unwrap_or_default(), slots.1.unwrap_or_default());
        Deferred {
            promise,
            resolve,
            reject,
            settled: false,
        }
    }

    pub fn resolve(&mut self, v: &JsValue) {
        if !self.settled {
            self.settled = true;
            let _ = self.resolve.call1(&JsValue::NULL, v);
        }
    }

    pub fn reject(&mut self, message: &str) {
        if !self.settled {
            self.settled = true;
            let _ = self
                .reject
                .call1(&JsValue::NULL, &js_sys::Error::new(message));
        }
    }
}

pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

pub fn get_string(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

pub fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

pub fn get_strings(obj: &JsValue, key: &str) -> Vec<String> {
    let v = get(obj, key);
    if let Some(s) = v.as_string() {
        return vec![s];
    }
    match v.dyn_into::<js_sys::Array>() {
        Ok(arr) => arr.iter().filter_map(|x| x.as_string()).collect(),
        Err(_) => Vec::new(),
    }
}

pub fn set(obj: &js_sys::Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

pub fn error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

/// The message of a thrown Error (or the thrown string), for logs and UI text.
pub fn error_message(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

pub fn log(message: &str) {
    web_sys::console::log_1(&JsValue::from_str(message));
}
