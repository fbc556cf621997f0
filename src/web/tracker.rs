//! One WebSocket connection to one tracker, shared by every torrent of a client. Reconnects with
//! WebTorrent's back-off, and hands each parsed message to the torrent it names. Speaks the
//! protocol only through `signal::client`; never builds JSON by hand.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

use crate::signal::client::{parse_tracker_message, reconnect_delay_ms, TrackerEvent};

use super::client::ClientInner;
use super::util;

pub(crate) struct TrackerSocket {
    pub url: String,
    ws: RefCell<Option<WebSocket>>,
    open: Cell<bool>,
    attempt: Cell<u32>,
    destroyed: Cell<bool>,
    client: Weak<RefCell<ClientInner>>,
    handlers: RefCell<Vec<util::Handler>>,
    /// Frames to send once the socket opens.
    queue: RefCell<Vec<String>>,
}

impl TrackerSocket {
    pub fn new(url: String, client: Weak<RefCell<ClientInner>>) -> Rc<TrackerSocket> {
        let s = Rc::new(TrackerSocket {
            url,
            ws: RefCell::new(None),
            open: Cell::new(false),
            attempt: Cell::new(0),
            destroyed: Cell::new(false),
            client,
            handlers: RefCell::new(Vec::new()),
            queue: RefCell::new(Vec::new()),
        });
        TrackerSocket::connect(&s);
        s
    }

    pub fn is_open(&self) -> bool {
        self.open.get()
    }

    /// Sends now, or when the socket is next open. Announces are re-sent by the torrents on
    /// reconnect, so an unbounded queue is never needed: keep only the latest few.
    pub fn send(&self, text: String) {
        if self.open.get() {
            if let Some(ws) = self.ws.borrow().as_ref() {
                if ws.send_with_str(&text).is_ok() {
                    return;
                }
            }
        }
        let mut q = self.queue.borrow_mut();
        if q.len() >= 32 {
            q.remove(0);
        }
        q.push(text);
    }

    fn connect(this: &Rc<TrackerSocket>) {
        if this.destroyed.get() {
            return;
        }
        let ws = match WebSocket::new(&this.url) {
            Ok(ws) => ws,
            Err(e) => {
                util::log(&format!("seedtab: tracker {} unusable: {:?}", this.url, e));
                return;
            }
        };
        let weak = Rc::downgrade(this);
        let on_open = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_| {
                let Some(s) = weak.upgrade() else { return };
                s.open.set(true);
                s.attempt.set(0);
                let pending: Vec<String> = s.queue.borrow_mut().drain(..).collect();
                if let Some(ws) = s.ws.borrow().as_ref() {
                    for text in pending {
                        let _ = ws.send_with_str(&text);
                    }
                }
                if let Some(client) = s.client.upgrade() {
                    ClientInner::on_tracker_open(&client, &s.url);
                }
            }
        });
        let on_message = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |ev: JsValue| {
                let Some(s) = weak.upgrade() else { return };
                let Ok(ev) = ev.dyn_into::<MessageEvent>() else {
                    return;
                };
                let Some(text) = ev.data().as_string() else {
                    return;
                };
                match parse_tracker_message(&text) {
                    Ok(event) => {
                        if let Some(client) = s.client.upgrade() {
                            ClientInner::on_tracker_event(&client, &s.url, event);
                        }
                    }
                    Err(e) => util::log(&format!("seedtab: bad message from {}: {e}", s.url)),
                }
            }
        });
        let on_close = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_| {
                let Some(s) = weak.upgrade() else { return };
                s.open.set(false);
                if s.destroyed.get() {
                    return;
                }
                let attempt = s.attempt.get();
                s.attempt.set(attempt + 1);
                let delay = reconnect_delay_ms(attempt);
                let weak = Rc::downgrade(&s);
                let retry = Closure::once_into_js(move || {
                    if let Some(s) = weak.upgrade() {
                        TrackerSocket::connect(&s);
                    }
                });
                util::set_timeout(retry.unchecked_ref(), delay.min(i32::MAX as u64) as i32);
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        if let Some(old) = this.ws.replace(Some(ws)) {
            detach(&old);
        }
        // The old socket's handlers were detached above; only now may they be dropped.
        *this.handlers.borrow_mut() = vec![on_open, on_message, on_close];
    }

    pub fn destroy(&self) {
        self.destroyed.set(true);
        self.open.set(false);
        if let Some(ws) = self.ws.borrow_mut().take() {
            detach(&ws);
            let _ = ws.close();
        }
        self.handlers.borrow_mut().clear();
    }
}

fn detach(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
}

/// Which torrent a tracker message is for.
pub(crate) fn event_info_hash(ev: &TrackerEvent) -> Option<crate::id::InfoHash> {
    match ev {
        TrackerEvent::AnnounceReply { info_hash, .. }
        | TrackerEvent::Offer { info_hash, .. }
        | TrackerEvent::Answer { info_hash, .. } => Some(*info_hash),
        TrackerEvent::Failure { info_hash, .. } => *info_hash,
        _ => None,
    }
}
