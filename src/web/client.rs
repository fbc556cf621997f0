//! The client: one peer id, the tracker sockets shared by its torrents, the ICE servers, and the
//! once-a-second timer. Routes tracker messages to torrents; owns nothing protocol-specific.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::id::{InfoHash, PeerId};
use crate::signal::client::TrackerEvent;

use super::rewards::KeyState;
use super::storage::{Backend, PieceStorage};
use super::torrent::{self, TorrentRef};
use super::tracker::{event_info_hash, TrackerSocket};
use super::util;

pub(crate) struct ClientInner {
    pub peer_id: PeerId,
    pub trackers: Vec<String>,
    pub ice_servers: JsValue,
    /// Log a timeline of each torrent's start-up to the console.
    pub debug: bool,
    /// Where pieces go: `None` = memory only; `Some(None)` = the best browser storage;
    /// `Some(Some(b))` = that backend (tests).
    pub storage_mode: Option<Option<Backend>>,
    /// Storage, once asked for: a Promise of the opened storage object (shared by all).
    storage: Option<js_sys::Promise>,
    pub torrents: Vec<TorrentRef>,
    /// The reward key (docs/receipts.md): loading, loaded, off or unavailable here.
    pub reward_key: KeyState,
    /// "Require receipts": unpaid bytes a receipt-capable peer may run up.
    pub require_receipts: Option<u64>,
    sockets: HashMap<String, Rc<TrackerSocket>>,
    next_key: u64,
    timer: Option<(i32, Closure<dyn FnMut()>)>,
    pub destroyed: bool,
    self_ref: Weak<RefCell<ClientInner>>,
}

impl ClientInner {
    pub fn create(
        trackers: Vec<String>,
        ice_servers: JsValue,
        debug: bool,
        storage_mode: Option<Option<Backend>>,
        reward_key: KeyState,
        require_receipts: Option<u64>,
    ) -> Rc<RefCell<ClientInner>> {
        let c = Rc::new(RefCell::new(ClientInner {
            peer_id: PeerId::generate(util::random_bytes::<12>()),
            trackers,
            ice_servers,
            debug,
            storage_mode,
            storage: None,
            torrents: Vec::new(),
            reward_key,
            require_receipts,
            sockets: HashMap::new(),
            next_key: 1,
            timer: None,
            destroyed: false,
            self_ref: Weak::new(),
        }));
        let weak = Rc::downgrade(&c);
        c.borrow_mut().self_ref = weak.clone();
        let tick = Closure::<dyn FnMut()>::new(move || {
            let Some(c) = weak.upgrade() else { return };
            let torrents: Vec<TorrentRef> = c.borrow().torrents.clone();
            for t in &torrents {
                torrent::tick(t);
            }
        });
        let id = util::set_interval(tick.as_ref().unchecked_ref(), 1000);
        c.borrow_mut().timer = Some((id, tick));
        c
    }

    /// The browser storage, opened on first use; None when the client keeps pieces in memory
    /// or no storage works here (the first failure is logged).
    pub async fn storage(this: &Rc<RefCell<ClientInner>>) -> Option<PieceStorage> {
        let promise = {
            let mut c = this.borrow_mut();
            let force = c.storage_mode?;
            c.storage
                .get_or_insert_with(|| {
                    wasm_bindgen_futures::future_to_promise(async move {
                        let s = PieceStorage::open(force).await?;
                        // Ask the browser to keep our data under storage pressure.
                        let _ = s.persist().await;
                        Ok(s.as_js().clone().into())
                    })
                })
                .clone()
        };
        match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(js) => Some(PieceStorage::from_js(js)),
            Err(e) => {
                let mut c = this.borrow_mut();
                if c.storage_mode.is_some() {
                    util::log(&format!(
                        "seedtab: no browser storage, keeping pieces in memory: {e:?}"
                    ));
                    c.storage_mode = None;
                }
                None
            }
        }
    }

    pub fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    pub fn socket(&self, url: &str) -> Option<Rc<TrackerSocket>> {
        self.sockets.get(url).cloned()
    }

    /// Opens (or reuses) the sockets a torrent's trackers need.
    pub fn ensure_sockets(this: &Rc<RefCell<ClientInner>>, urls: &[String]) {
        let weak = Rc::downgrade(this);
        for url in urls {
            let exists = this.borrow().sockets.contains_key(url);
            if !exists {
                let s = TrackerSocket::new(url.clone(), weak.clone());
                this.borrow_mut().sockets.insert(url.clone(), s);
            }
        }
    }

    pub fn find(&self, info_hash: &InfoHash) -> Option<TorrentRef> {
        self.torrents
            .iter()
            .find(|t| t.borrow().info_hash == *info_hash)
            .cloned()
    }

    pub fn on_tracker_open(this: &Rc<RefCell<ClientInner>>, url: &str) {
        let torrents: Vec<TorrentRef> = this.borrow().torrents.clone();
        for t in &torrents {
            if t.borrow().trackers.iter().any(|u| u == url) {
                torrent::on_tracker_open(t, url);
            }
        }
    }

    pub fn on_tracker_event(this: &Rc<RefCell<ClientInner>>, url: &str, event: TrackerEvent) {
        let Some(info_hash) = event_info_hash(&event) else {
            if let TrackerEvent::Failure { reason, .. } = &event {
                util::log(&format!("seedtab: tracker {url}: {reason}"));
            }
            return;
        };
        let Some(t) = this.borrow().find(&info_hash) else {
            return;
        };
        match event {
            TrackerEvent::AnnounceReply { interval, .. } => {
                torrent::on_announce_reply(&t, url, interval)
            }
            TrackerEvent::Offer {
                peer_id,
                offer_id,
                sdp,
                ..
            } => torrent::accept_offer(&t, url.to_string(), peer_id, offer_id, sdp),
            TrackerEvent::Answer {
                peer_id,
                offer_id,
                sdp,
                ..
            } => torrent::accept_answer(&t, peer_id, offer_id, sdp),
            TrackerEvent::Failure { reason, .. } => torrent::on_failure(&t, url, &reason),
            _ => {}
        }
    }

    pub fn remove(&mut self, info_hash: &InfoHash) {
        self.torrents.retain(|t| t.borrow().info_hash != *info_hash);
    }

    pub fn destroy(this: &Rc<RefCell<ClientInner>>) {
        let torrents = {
            let mut c = this.borrow_mut();
            if c.destroyed {
                return;
            }
            c.destroyed = true;
            std::mem::take(&mut c.torrents)
        };
        // Torrents say "stopped" through the sockets, so those close last.
        for t in torrents {
            t.borrow_mut().destroy();
        }
        let (sockets, timer) = {
            let mut c = this.borrow_mut();
            (std::mem::take(&mut c.sockets), c.timer.take())
        };
        for (_, s) in sockets {
            s.destroy();
        }
        if let Some((id, closure)) = timer {
            util::clear_interval(id);
            drop(closure);
        }
    }
}
