//! One torrent in the browser: the engine session, its WebRTC peer connections, its offers
//! waiting for answers, and the JS-facing promises and listeners. Moves bytes between data
//! channels and the session, with backpressure; decides nothing the engine can decide.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
    RtcDataChannelType, RtcIceGatheringState, RtcPeerConnection, RtcSdpType,
    RtcSessionDescriptionInit,
};

use crate::engine::{Event, PeerKey, Session};
use crate::id::{InfoHash, PeerId};
use crate::signal::client::{announce_json, answer_json, AnnounceEvent, OfferOut};

use super::client::ClientInner;
use super::persist::{self, Persist};
use super::rewards;
use super::util::{self, now_ms, Deferred};

/// Bytes handed to one `send()`: under Chromium's 256 KiB limit and WebTorrent's 64 KiB
/// assumption for peers that do not advertise a size.
const SEND_CHUNK: usize = 64 * 1024;
/// Stop writing to a channel above this; Chromium silently closes channels near 16 MiB.
const HIGH_WATER: u32 = 4 * 1024 * 1024;
const LOW_WATER: u32 = 1024 * 1024;
/// How long an answerer waits for the offerer's first bytes before sending its own anyway.
const ANSWERER_WAIT_MS: u64 = 2_000;
/// Offers made per announce while we want more peers.
const OFFERS_PER_ANNOUNCE: usize = 5;
/// An offer nobody answered in this long is withdrawn.
const OFFER_TIMEOUT_MS: u64 = 50_000;
/// ICE gathering that has not completed by then is used as it is.
const GATHER_TIMEOUT_MS: i32 = 5_000;
const MAX_PEERS: usize = 40;
const DEFAULT_INTERVAL_MS: u64 = 120_000;
/// While we have no peers and lack pieces, ask again sooner than the tracker's interval.
const LONELY_INTERVAL_MS: u64 = 10_000;

pub(crate) type TorrentRef = Rc<RefCell<TorrentInner>>;

pub(crate) struct PeerConn {
    pc: RtcPeerConnection,
    dc: Option<RtcDataChannel>,
    remote: Option<PeerId>,
    open: bool,
    /// We answered this connection's offer: say nothing until the offerer has spoken (or
    /// `ANSWERER_WAIT_MS` passed). WebTorrent as the offerer sometimes loses what arrives before
    /// its own side is set up (simple-peer's "connect"), which left it waiting for a handshake
    /// that never came; both WebTorrent and seedtab offerers send theirs at once.
    wait_to_speak: bool,
    opened_ms: u64,
    handlers: Vec<util::Handler>,
}

impl PeerConn {
    fn close(mut self) {
        if let Some(dc) = &self.dc {
            dc.set_onopen(None);
            dc.set_onmessage(None);
            dc.set_onclose(None);
            dc.set_onbufferedamountlow(None);
            dc.close();
        }
        self.pc.set_ondatachannel(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_onicegatheringstatechange(None);
        self.pc.close();
        self.handlers.clear();
    }
}

struct PendingOffer {
    key: PeerKey,
    created_ms: u64,
}

struct TrackerState {
    next_announce_ms: u64,
    last_announce_ms: u64,
    interval_ms: u64,
    started: bool,
    completed_sent: bool,
}

pub(crate) struct TorrentInner {
    pub session: Session,
    pub client: Weak<RefCell<ClientInner>>,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub magnet_name: Option<String>,
    pub trackers: Vec<String>,
    tracker_state: HashMap<String, TrackerState>,
    peers: HashMap<PeerKey, PeerConn>,
    offers: HashMap<[u8; 20], PendingOffer>,
    listeners: Vec<(String, Function)>,
    pub done: Deferred,
    pub ready: Deferred,
    pub destroyed: bool,
    self_ref: Weak<RefCell<TorrentInner>>,
    debug: bool,
    created_ms: u64,
    first_piece_traced: bool,
    /// Where its pieces are stored; None while opening, or for memory-only torrents.
    pub persist: Option<Persist>,
    /// Storage is open and restored: the torrent may announce.
    pub storage_ready: bool,
    /// False until the client's reward key is loaded (or known to be missing) and given to the
    /// session: no announce, hence no peer, before it.
    pub rewards_ready: bool,
    /// Paused by the user (not by a storage failure).
    pub user_paused: bool,
    /// The last failure the user should hear about ("error" listeners).
    pub last_error: Option<String>,
}

/// What the JS side must hear after a turn of the engine, collected while borrowed.
#[derive(Default)]
struct Outcome {
    events: Vec<(&'static str, JsValue)>,
}

impl TorrentInner {
    pub fn create(
        session: Session,
        client: Weak<RefCell<ClientInner>>,
        trackers: Vec<String>,
        magnet_name: Option<String>,
    ) -> TorrentRef {
        let info_hash = session.info_hash();
        let peer_id = session.peer_id();
        let t = Rc::new(RefCell::new(TorrentInner {
            session,
            client,
            info_hash,
            peer_id,
            magnet_name,
            trackers,
            tracker_state: HashMap::new(),
            peers: HashMap::new(),
            offers: HashMap::new(),
            listeners: Vec::new(),
            done: Deferred::new(),
            ready: Deferred::new(),
            destroyed: false,
            self_ref: Weak::new(),
            debug: false,
            created_ms: now_ms(),
            first_piece_traced: false,
            persist: None,
            storage_ready: true,
            rewards_ready: true,
            user_paused: false,
            last_error: None,
        }));
        {
            let mut inner = t.borrow_mut();
            inner.self_ref = Rc::downgrade(&t);
            inner.debug = inner.client.upgrade().is_some_and(|c| c.borrow().debug);
            if inner.session.metainfo().is_some() {
                inner.ready.resolve(&JsValue::UNDEFINED);
            }
            if inner.session.is_complete() {
                inner.done.resolve(&JsValue::UNDEFINED);
            }
        }
        t
    }

    /// One line of the start-up timeline, when the client was made with `debug: true`.
    pub fn trace(&self, what: &str) {
        if self.debug {
            let ih = self.info_hash.to_hex();
            util::log(&format!(
                "seedtab +{} ms {}: {what}",
                now_ms() - self.created_ms,
                &ih[..8]
            ));
        }
    }

    pub fn add_listener(&mut self, event: String, f: Function) {
        if self.listeners.len() < 1024 {
            self.listeners.push((event, f));
        }
    }

    pub fn remove_listener(&mut self, event: &str, f: &Function) {
        self.listeners.retain(|(e, g)| !(e == event && g == f));
    }

    pub fn wants_peers(&self) -> bool {
        self.peers.len() + self.offers.len() < MAX_PEERS
    }

    fn ice_config(&self) -> RtcConfiguration {
        let config = RtcConfiguration::new();
        if let Some(client) = self.client.upgrade() {
            if let Ok(c) = client.try_borrow() {
                config.set_ice_servers(&c.ice_servers);
            }
        }
        config
    }

    fn next_key(&self) -> PeerKey {
        self.client
            .upgrade()
            .and_then(|c| c.try_borrow_mut().ok().map(|mut c| c.next_key()))
            .unwrap_or(0)
    }

    fn random_id(&self) -> [u8; 20] {
        util::random_bytes::<20>()
    }

    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        let stopped: Vec<(String, String)> = self
            .trackers
            .iter()
            .filter(|u| self.tracker_state.get(*u).is_some_and(|s| s.started))
            .map(|u| (u.clone(), self.announce_text(AnnounceEvent::Stopped, &[])))
            .collect();
        for (url, text) in stopped {
            send_to_tracker(&self.client, &url, text);
        }
        for (_, p) in self.peers.drain() {
            p.close();
        }
        self.offers.clear();
        self.done.reject("torrent destroyed");
        self.ready.reject("torrent destroyed");
        self.listeners.clear();
    }

    fn announce_text(&self, event: AnnounceEvent, offers: &[OfferOut]) -> String {
        announce_json(
            &self.info_hash,
            &self.peer_id,
            event,
            self.session.uploaded(),
            self.session.downloaded(),
            self.session.left(),
            50,
            offers,
        )
    }

    fn tracker_due(&mut self, url: &str, now: u64) -> bool {
        let lonely = self.peers.is_empty() && !self.session.is_complete();
        let st = self
            .tracker_state
            .entry(url.to_string())
            .or_insert(TrackerState {
                next_announce_ms: 0,
                last_announce_ms: 0,
                interval_ms: DEFAULT_INTERVAL_MS,
                started: false,
                completed_sent: false,
            });
        let due = if lonely {
            st.next_announce_ms
                .min(st.last_announce_ms + LONELY_INTERVAL_MS)
        } else {
            st.next_announce_ms
        };
        now >= due
    }

    fn js_stats(&mut self) -> JsValue {
        let s = self.session.stats(now_ms());
        let o = js_sys::Object::new();
        let (up0, down0) = self
            .persist
            .as_ref()
            .map_or((0, 0), |p| (p.prior_uploaded, p.prior_downloaded));
        util::set(&o, "downloaded", (s.downloaded + down0) as f64);
        util::set(&o, "uploaded", (s.uploaded + up0) as f64);
        util::set(&o, "paused", self.session.is_paused());
        // Since this page opened (the totals above include earlier sessions from storage).
        util::set(&o, "sessionDownloaded", s.downloaded as f64);
        util::set(&o, "sessionUploaded", s.uploaded as f64);
        util::set(&o, "downloadSpeed", s.download_speed);
        util::set(&o, "uploadSpeed", s.upload_speed);
        util::set(&o, "numPeers", s.num_peers as f64);
        util::set(&o, "progress", s.progress);
        util::set(&o, "verified", s.verified_bytes as f64);
        util::set(&o, "length", s.total_bytes as f64);
        o.into()
    }

    pub fn stats_object(&mut self) -> JsValue {
        self.js_stats()
    }
}

fn send_to_tracker(client: &Weak<RefCell<ClientInner>>, url: &str, text: String) {
    let Some(client) = client.upgrade() else {
        return;
    };
    let socket = client.try_borrow().ok().and_then(|c| c.socket(url));
    if let Some(socket) = socket {
        socket.send(text);
    }
}

/// Announce to every tracker that is due, with fresh offers while we want peers.
pub(crate) fn announce_due(t: &TorrentRef, now: u64) {
    let (urls, want) = {
        let mut inner = t.borrow_mut();
        if inner.destroyed || !inner.storage_ready || !inner.rewards_ready {
            return;
        }
        let urls: Vec<String> = inner.trackers.clone();
        let due: Vec<String> = urls
            .into_iter()
            .filter(|u| inner.tracker_due(u, now))
            .collect();
        for u in &due {
            if let Some(st) = inner.tracker_state.get_mut(u) {
                // Claim the slot now so a slow offer gathering does not announce twice.
                st.next_announce_ms = now + st.interval_ms;
                st.last_announce_ms = now;
            }
        }
        (due, inner.wants_peers())
    };
    for url in urls {
        let socket_open = t
            .borrow()
            .client
            .upgrade()
            .and_then(|c| c.try_borrow().ok().and_then(|c| c.socket(&url)))
            .is_some_and(|s| s.is_open());
        if !socket_open {
            // Announce when the socket opens (ClientInner::on_tracker_open resets the schedule).
            if let Some(st) = t.borrow_mut().tracker_state.get_mut(&url) {
                st.next_announce_ms = 0;
            }
            continue;
        }
        let t = t.clone();
        spawn_local(async move {
            let offers = if want {
                make_offers(&t, OFFERS_PER_ANNOUNCE).await
            } else {
                Vec::new()
            };
            let (text, client) = {
                let mut inner = t.borrow_mut();
                if inner.destroyed {
                    return;
                }
                let complete = inner.session.is_complete();
                let st = inner.tracker_state.get_mut(&url);
                let event = match st {
                    Some(st) if !st.started => {
                        st.started = true;
                        st.completed_sent = complete;
                        AnnounceEvent::Started
                    }
                    Some(st) if complete && !st.completed_sent => {
                        st.completed_sent = true;
                        AnnounceEvent::Completed
                    }
                    _ => AnnounceEvent::Update,
                };
                // The protocol forbids offers with "completed".
                let offers = if event == AnnounceEvent::Completed {
                    &[][..]
                } else {
                    &offers[..]
                };
                inner.trace(&format!(
                    "announce {event:?} to {url} with {} offers",
                    offers.len()
                ));
                (inner.announce_text(event, offers), inner.client.clone())
            };
            send_to_tracker(&client, &url, text);
        });
    }
}

/// Makes `n` peer connections with a data channel each and waits for their ICE gathering, so the
/// SDP carries every candidate (WebTorrent does not trickle).
async fn make_offers(t: &TorrentRef, n: usize) -> Vec<OfferOut> {
    // Gathered side by side: start-up waits for the slowest offer, not for their sum.
    let out: Rc<RefCell<Vec<OfferOut>>> = Rc::new(RefCell::new(Vec::new()));
    let promises = Array::new();
    for _ in 0..n {
        let (t, out) = (t.clone(), out.clone());
        promises.push(&wasm_bindgen_futures::future_to_promise(async move {
            if let Some(offer) = make_offer(&t).await {
                out.borrow_mut().push(offer);
            }
            Ok(JsValue::UNDEFINED)
        }));
    }
    let _ = JsFuture::from(js_sys::Promise::all(&promises)).await;
    let offers = std::mem::take(&mut *out.borrow_mut());
    offers
}

async fn make_offer(t: &TorrentRef) -> Option<OfferOut> {
    let (pc, key, offer_id) = {
        let inner = t.borrow();
        if inner.destroyed {
            return None;
        }
        let pc = RtcPeerConnection::new_with_configuration(&inner.ice_config()).ok()?;
        (pc, inner.next_key(), inner.random_id())
    };
    let dc = pc.create_data_channel("seedtab");
    let handlers = attach_channel(t, key, &dc);
    let sdp = async {
        let offer = JsFuture::from(pc.create_offer()).await?;
        let init: RtcSessionDescriptionInit = offer.unchecked_into();
        JsFuture::from(pc.set_local_description(&init)).await?;
        wait_for_gathering(&pc).await;
        Ok::<_, JsValue>(pc.local_description().map(|d| d.sdp()).unwrap_or_default())
    }
    .await;
    let mut inner = t.borrow_mut();
    let conn = PeerConn {
        pc,
        dc: Some(dc),
        remote: None,
        open: false,
        wait_to_speak: false,
        opened_ms: 0,
        handlers,
    };
    match sdp {
        Ok(sdp) if !inner.destroyed && !sdp.is_empty() => {
            inner.peers.insert(key, conn);
            inner.offers.insert(
                offer_id,
                PendingOffer {
                    key,
                    created_ms: now_ms(),
                },
            );
            Some(OfferOut { offer_id, sdp })
        }
        _ => {
            conn.close();
            None
        }
    }
}

async fn wait_for_gathering(pc: &RtcPeerConnection) {
    if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
        return;
    }
    let pc2 = pc.clone();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let done = resolve.clone();
        let pc3 = pc2.clone();
        let on_change = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if pc3.ice_gathering_state() == RtcIceGatheringState::Complete {
                let _ = done.call0(&JsValue::NULL);
            }
        });
        pc2.set_onicegatheringstatechange(Some(on_change.as_ref().unchecked_ref()));
        // Lives as long as the connection may fire it; cleared in PeerConn::close.
        on_change.forget();
        util::set_timeout(&resolve, GATHER_TIMEOUT_MS);
    });
    let _ = JsFuture::from(promise).await;
    pc.set_onicegatheringstatechange(None);
}

/// Wires a data channel to the session under `key`.
fn attach_channel(t: &TorrentRef, key: PeerKey, dc: &RtcDataChannel) -> Vec<util::Handler> {
    dc.set_binary_type(RtcDataChannelType::Arraybuffer);
    dc.set_buffered_amount_low_threshold(LOW_WATER);
    let weak = Rc::downgrade(t);
    let on_open = Closure::<dyn FnMut(JsValue)>::new({
        let weak = weak.clone();
        move |_| {
            if let Some(t) = weak.upgrade() {
                channel_open(&t, key);
            }
        }
    });
    let on_message = Closure::<dyn FnMut(JsValue)>::new({
        let weak = weak.clone();
        move |ev: JsValue| {
            let Some(t) = weak.upgrade() else { return };
            let Ok(ev) = ev.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = ev.data();
            let bytes = if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                Uint8Array::new(buf).to_vec()
            } else if let Some(s) = data.as_string() {
                // Text frames carry nothing for us; treat them as bytes so the decoder rejects them.
                s.into_bytes()
            } else {
                return;
            };
            {
                let mut inner = t.borrow_mut();
                if inner.destroyed {
                    return;
                }
                if let Some(p) = inner.peers.get_mut(&key) {
                    p.wait_to_speak = false;
                }
                inner.session.peer_data(key, &bytes, now_ms());
            }
            drive(&t);
        }
    });
    let on_close = Closure::<dyn FnMut(JsValue)>::new({
        let weak = weak.clone();
        move |_| {
            let Some(t) = weak.upgrade() else { return };
            close_peer(&t, key);
            drive(&t);
        }
    });
    let on_low = Closure::<dyn FnMut(JsValue)>::new({
        let weak = weak.clone();
        move |_| {
            if let Some(t) = weak.upgrade() {
                drive(&t);
            }
        }
    });
    dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
    vec![on_open, on_message, on_close, on_low]
}

fn channel_open(t: &TorrentRef, key: PeerKey) {
    {
        let mut inner = t.borrow_mut();
        let Some(p) = inner.peers.get_mut(&key) else {
            return;
        };
        if p.open {
            return;
        }
        p.open = true;
        p.opened_ms = now_ms();
        inner.offers.retain(|_, o| o.key != key);
        inner.trace(&format!("data channel {key} open"));
        inner.session.peer_connected(key, now_ms());
    }
    drive(t);
}

fn close_peer(t: &TorrentRef, key: PeerKey) {
    let conn = {
        let mut inner = t.borrow_mut();
        inner.session.peer_closed(key);
        inner.offers.retain(|_, o| o.key != key);
        inner.peers.remove(&key)
    };
    if let Some(conn) = conn {
        conn.close();
    }
}

/// A remote offer relayed by a tracker: answer it with a new connection.
pub(crate) fn accept_offer(
    t: &TorrentRef,
    tracker: String,
    from: PeerId,
    offer_id: [u8; 20],
    sdp: String,
) {
    {
        let inner = t.borrow();
        if inner.destroyed || !inner.wants_peers() {
            return;
        }
        inner.trace(&format!("offer from {from}"));
        // One connection per remote peer: a second offer from someone we know is ignored.
        if inner.peers.values().any(|p| p.remote == Some(from))
            || inner.session.banned().contains(&from)
        {
            return;
        }
    }
    let t = t.clone();
    spawn_local(async move {
        let (pc, key) = {
            let inner = t.borrow();
            let Ok(pc) = RtcPeerConnection::new_with_configuration(&inner.ice_config()) else {
                return;
            };
            (pc, inner.next_key())
        };
        let weak = Rc::downgrade(&t);
        let on_channel = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let Some(t) = weak.upgrade() else { return };
            let Ok(ev) = ev.dyn_into::<RtcDataChannelEvent>() else {
                return;
            };
            let dc = ev.channel();
            let handlers = attach_channel(&t, key, &dc);
            let already_open = dc.ready_state() == RtcDataChannelState::Open;
            {
                let mut inner = t.borrow_mut();
                match inner.peers.get_mut(&key) {
                    Some(p) if p.dc.is_none() => {
                        p.dc = Some(dc);
                        p.handlers.extend(handlers);
                    }
                    _ => {
                        dc.close();
                        return;
                    }
                }
            }
            if already_open {
                channel_open(&t, key);
            }
        });
        pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        t.borrow_mut().peers.insert(
            key,
            PeerConn {
                pc: pc.clone(),
                dc: None,
                remote: Some(from),
                open: false,
                wait_to_speak: true,
                opened_ms: 0,
                handlers: vec![on_channel],
            },
        );
        let answer = async {
            let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
            init.set_sdp(&sdp);
            JsFuture::from(pc.set_remote_description(&init)).await?;
            let answer = JsFuture::from(pc.create_answer()).await?;
            let init: RtcSessionDescriptionInit = answer.unchecked_into();
            JsFuture::from(pc.set_local_description(&init)).await?;
            wait_for_gathering(&pc).await;
            Ok::<_, JsValue>(pc.local_description().map(|d| d.sdp()).unwrap_or_default())
        }
        .await;
        let text = {
            let inner = t.borrow();
            match answer {
                Ok(answer) if !inner.destroyed && !answer.is_empty() => Some((
                    answer_json(&inner.info_hash, &inner.peer_id, &from, &offer_id, &answer),
                    inner.client.clone(),
                )),
                _ => None,
            }
        };
        match text {
            Some((text, client)) => {
                t.borrow().trace("answer sent");
                send_to_tracker(&client, &tracker, text)
            }
            None => close_peer(&t, key),
        }
    });
}

/// A tracker forwarded the answer to one of our offers.
pub(crate) fn accept_answer(t: &TorrentRef, from: PeerId, offer_id: [u8; 20], sdp: String) {
    let pc = {
        let mut inner = t.borrow_mut();
        let Some(offer) = inner.offers.remove(&offer_id) else {
            return;
        };
        let duplicate = inner.peers.values().any(|p| p.remote == Some(from))
            || inner.session.banned().contains(&from);
        if duplicate {
            drop(inner);
            close_peer(t, offer.key);
            return;
        }
        let Some(p) = inner.peers.get_mut(&offer.key) else {
            return;
        };
        p.remote = Some(from);
        let pc = p.pc.clone();
        inner.trace(&format!("answer from {from}"));
        pc
    };
    spawn_local(async move {
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        init.set_sdp(&sdp);
        if let Err(e) = JsFuture::from(pc.set_remote_description(&init)).await {
            util::log(&format!("seedtab: answer refused: {e:?}"));
        }
    });
}

/// Tracker said something about this torrent's announce.
pub(crate) fn on_announce_reply(t: &TorrentRef, tracker: &str, interval_s: Option<u64>) {
    let mut inner = t.borrow_mut();
    if let Some(st) = inner.tracker_state.get_mut(tracker) {
        if let Some(s) = interval_s {
            let ms = s.clamp(10, 3600) * 1000;
            st.next_announce_ms = st.last_announce_ms + ms;
            st.interval_ms = ms;
        }
    }
}

pub(crate) fn on_tracker_open(t: &TorrentRef, tracker: &str) {
    if let Some(st) = t.borrow_mut().tracker_state.get_mut(tracker) {
        st.next_announce_ms = 0;
        st.started = false;
    }
    announce_due(t, now_ms());
}

pub(crate) fn on_failure(t: &TorrentRef, tracker: &str, reason: &str) {
    util::log(&format!(
        "seedtab: tracker {tracker} refused {}: {reason}",
        t.borrow().info_hash
    ));
}

/// The once-a-second housekeeping.
pub(crate) fn tick(t: &TorrentRef) {
    let now = now_ms();
    let expired: Vec<PeerKey> = {
        let mut inner = t.borrow_mut();
        if inner.destroyed {
            return;
        }
        inner.session.tick(now);
        let old: Vec<[u8; 20]> = inner
            .offers
            .iter()
            .filter(|(_, o)| now.saturating_sub(o.created_ms) > OFFER_TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        old.iter()
            .filter_map(|id| inner.offers.remove(id))
            .map(|o| o.key)
            .collect()
    };
    for key in expired {
        close_peer(t, key);
    }
    announce_due(t, now);
    drive(t);
}

/// One turn: push out what the session has for open channels (up to the high-water mark) and
/// act on its events; then tell JS listeners, outside the borrow.
pub(crate) fn drive(t: &TorrentRef) {
    let now = now_ms();
    let mut outcome = Outcome::default();
    let mut to_close = Vec::new();
    let mut completed = false;
    let (mut stores, mut loads, mut metadata_arrived) = (Vec::new(), Vec::new(), false);
    let (mut to_sign, mut receipts) = (Vec::new(), Vec::new());
    let mut web_fetches = Vec::new();
    {
        let mut inner = t.borrow_mut();
        if inner.destroyed {
            return;
        }
        inner.session.fill_all_requests(now);
        for key in inner.session.peers_with_output() {
            let Some(dc) = inner
                .peers
                .get(&key)
                .filter(|p| {
                    p.open
                        && (!p.wait_to_speak || now.saturating_sub(p.opened_ms) >= ANSWERER_WAIT_MS)
                })
                .and_then(|p| p.dc.clone())
            else {
                continue;
            };
            while dc.buffered_amount() < HIGH_WATER {
                let Some(bytes) = inner.session.transmit(key, SEND_CHUNK, now) else {
                    break;
                };
                if dc.send_with_u8_array(&bytes).is_err() {
                    to_close.push(key);
                    break;
                }
            }
        }
        let mut progressed = false;
        while let Some(ev) = inner.session.poll_event() {
            match ev {
                Event::ClosePeer { key, reason } => {
                    util::log(&format!("seedtab: dropping peer: {reason}"));
                    to_close.push(key);
                }
                Event::PieceVerified(_) => {
                    if !inner.first_piece_traced {
                        inner.first_piece_traced = true;
                        inner.trace("first piece verified");
                    }
                    progressed = true
                }
                Event::HashFailed { piece } => {
                    util::log(&format!("seedtab: piece {piece} failed its hash check"))
                }
                Event::MetadataReady => {
                    metadata_arrived = true;
                    inner.trace("metadata ready");
                    inner.ready.resolve(&JsValue::UNDEFINED);
                    outcome.events.push(("metadata", JsValue::UNDEFINED));
                }
                Event::Done => {
                    inner.trace("done");
                    inner.done.resolve(&JsValue::UNDEFINED);
                    outcome.events.push(("done", JsValue::UNDEFINED));
                    completed = true;
                }
                // Its connection is closed by the ClosePeer that comes with it; the session
                // keeps the ban list, which offers and answers are checked against.
                Event::PeerBanned { peer_id } => {
                    util::log(&format!("seedtab: banned peer {peer_id}"));
                }
                Event::HashPiece { piece } => {
                    // Only with Config::external_hashing, which this driver does not set: hash here.
                    let digest = inner.session.piece_buffer(piece).map(|b| {
                        use sha1::Digest;
                        let d: [u8; 20] = sha1::Sha1::digest(b).into();
                        d
                    });
                    if let Some(d) = digest {
                        inner.session.piece_hashed(piece, d);
                    }
                }
                // Storage is asynchronous: act once the borrow is released.
                Event::StorePiece { piece, data } => stores.push((piece, data)),
                Event::LoadPiece { piece } => loads.push(piece),
                Event::StorageFailed { piece, reason } => {
                    inner.trace(&format!("storing piece {piece} failed: {reason}"));
                    let message = format!("Storage failed, torrent paused: {reason}");
                    inner.last_error = Some(message.clone());
                    outcome
                        .events
                        .push(("error", js_sys::Error::new(&message).into()));
                }
                Event::PeerReady { key, peer_id } => {
                    inner.trace(&format!("peer {key} handshake done"));
                    if let Some(p) = inner.peers.get_mut(&key) {
                        p.remote.get_or_insert(peer_id);
                    }
                }
                Event::SignReceipt { key, receipt } => to_sign.push((key, receipt)),
                Event::ReceiptReceived { receipt, .. } => receipts.push(receipt),
                Event::WebSeedFetch {
                    seed,
                    piece,
                    requests,
                } => web_fetches.push((seed, piece, requests)),
                Event::WebSeedDropped { url, reason, .. } => {
                    util::log(&format!("seedtab: web seed {url} dropped: {reason}"));
                }
            }
        }
        if progressed {
            let progress = inner.session.stats(now).progress;
            outcome
                .events
                .push(("progress", JsValue::from_f64(progress)));
        }
    }
    for key in to_close {
        close_peer(t, key);
    }
    if metadata_arrived && t.borrow().persist.is_some() {
        let t = t.clone();
        spawn_local(async move { persist::create_entry(&t).await });
    }
    for (piece, data) in stores.drain(..) {
        persist::store_piece(t, piece, data);
    }
    for piece in loads.drain(..) {
        persist::load_piece(t, piece);
    }
    for (key, receipt) in to_sign {
        rewards::sign(t, key, receipt);
    }
    for (seed, piece, requests) in web_fetches {
        super::webseed::fetch_piece(t, seed, piece, requests);
    }
    for receipt in &receipts {
        let record = rewards::received(t, receipt);
        outcome.events.push(("receipt", record));
    }
    if completed || metadata_arrived {
        persist::save_state(t);
    }
    if completed {
        announce_completed(t);
    }
    if !outcome.events.is_empty() {
        let listeners: Vec<(String, Function)> = t.borrow().listeners.clone();
        for (name, arg) in outcome.events {
            for (ev, f) in &listeners {
                if ev == name {
                    let _ = f.call1(&JsValue::NULL, &arg);
                }
            }
        }
    }
}

/// Calls the listeners of `event` with `arg`, outside any borrow.
pub(crate) fn fire(t: &TorrentRef, event: &str, arg: &JsValue) {
    let listeners: Vec<(String, Function)> = t.borrow().listeners.clone();
    for (ev, f) in &listeners {
        if ev == event {
            let _ = f.call1(&JsValue::NULL, arg);
        }
    }
}

fn announce_completed(t: &TorrentRef) {
    let now = now_ms();
    {
        let mut inner = t.borrow_mut();
        for st in inner.tracker_state.values_mut() {
            if st.started && !st.completed_sent {
                st.next_announce_ms = now;
            }
        }
    }
    announce_due(t, now);
}

pub(crate) fn files_array(t: &TorrentRef) -> Array {
    let arr = Array::new();
    let inner = t.borrow();
    if let Some(meta) = inner.session.metainfo() {
        for (i, f) in meta.info.files.iter().enumerate() {
            let file = super::TorrentFile::new(t.clone(), i, f, &meta.info);
            arr.push(&JsValue::from(file));
        }
    }
    arr
}
