//! The WebSocket tracker server: an axum router that upgrades `/announce` (and optionally `/`)
//! to WebSockets (one small task per connection, in [`super::tracker_conn`]), feeding text frames
//! to the sans-IO [`Tracker`](crate::signal::server::Tracker) and delivering the frames it
//! returns to each connection's bounded [`Outbox`]. Also `GET /stats` (JSON, or HTML for
//! browsers), `GET /metrics` (Prometheus), a periodic expiry task, and the limits that need
//! sockets or clocks ([`ConnLimits`]: connections per IP, handshake and idle timeouts). With
//! `--redis`, several instances share swarms through [`super::tracker_redis`], which reaches the
//! tracker only through the `cluster` hooks here.
//!
//! No protocol logic here; and no `.await` while the tracker lock is held (frames for other
//! connections are only queued, so a slow reader can never stall the tracker). Nothing a client
//! sent reaches the HTML page unescaped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::tracker_conn::{self, Outbox};
use super::tracker_redis::{self, ClusterOptions};
use crate::id::{InfoHash, PeerId};
use crate::rng::Rng;
use crate::signal::msg::failure_json;
use crate::signal::server::{ClusterOut, ConnId, Counters, Tracker, TrackerConfig};

/// How often silent peers are swept out.
const EXPIRY_PERIOD: Duration = Duration::from_secs(30);

/// The window of the announces-per-second gauge in `/metrics`.
const RATE_WINDOW_MS: u64 = 10_000;

/// Swarms listed on the HTML stats page (the biggest first).
const STATS_HTML_SWARMS: usize = 50;

/// Limits the driver enforces because they need sockets or clocks; the per-message ones are in
/// [`TrackerConfig`]. A zero turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open WebSockets from one IPv4 address or one IPv6 /64 (what one host can trivially own).
    /// One tab holds one socket per tracker, so 128 leaves room for a NAT or campus; behind a
    /// reverse proxy every client has the proxy's address, so set 0 there and limit in the proxy.
    pub max_conns_per_ip: usize,
    /// From TCP accept until the first HTTP request is read, and again from the WebSocket
    /// upgrade until its first message: WebTorrent announces as soon as the socket opens, so
    /// anything slower is a half-open or deliberately slow connection holding a slot.
    pub handshake_timeout: Duration,
    /// A WebSocket with no text or binary message for this long is closed. Must exceed the
    /// announce interval (120 s), or healthy idle clients would be cut between re-announces;
    /// pings do not count, as browsers answer them with the tab frozen.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_conns_per_ip: 128,
            handshake_timeout: Duration::from_secs(10),
            // Peers expire after 2 x 120 s of silence anyway; a minute more tolerates a late
            // re-announce before the socket goes too.
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The tracker with everything its connections share.
pub struct TrackerService {
    inner: Mutex<Inner>,
    limits: ConnLimits,
    start: Instant,
    next_conn: AtomicU64,
    /// Set by [`TrackerService::close_all`]: connections opening after it are closed at once.
    closing: AtomicBool,
    /// Counted by [`GuardedStream`], which has no lock to take.
    handshake_timeouts: AtomicU64,
}

struct Inner {
    tracker: Tracker,
    rng: Rng,
    outboxes: HashMap<ConnId, Arc<Outbox>>,
    /// Open WebSockets per address key (see [`ip_key`]); entries are removed at zero.
    per_ip: HashMap<IpAddr, usize>,
    dropped_frames: u64,
    /// Failures the driver answers itself (non-UTF-8 binary frames).
    driver_failures: u64,
    /// Refusals the driver makes itself, by reason; merged with the tracker's in `/stats`.
    driver_rejections: BTreeMap<&'static str, u64>,
    /// `(ms since start, announces so far)`, about one a second over the last
    /// [`RATE_WINDOW_MS`], for the announces-per-second gauge.
    announce_samples: VecDeque<(u64, u64)>,
    /// The link to the other instances of a cluster, when there is one.
    cluster: Option<ClusterHook>,
}

/// How the driver hands [`ClusterOut`]s to the cluster link (src/native/tracker_redis.rs)
/// without waiting: `send` puts them in the link's own bounded queue and returns how many it
/// had to drop, so nothing here ever awaits Redis.
pub(crate) struct ClusterHook {
    pub(crate) instance_id: String,
    pub(crate) send: Box<dyn FnMut(Vec<ClusterOut>) -> u64 + Send>,
    /// Subscribed to Redis right now; while not, the tracker queues nothing and lists no
    /// remote peers.
    pub(crate) connected: bool,
    /// Times the link came up: 1 after a clean start, more after Redis outages (or a flapping
    /// link).
    pub(crate) joins: u64,
    /// Messages to or from other instances lost: link queue full, Redis unreachable, or a
    /// relayed frame whose peer had left.
    pub(crate) dropped: u64,
}

/// `GET /stats` as JSON. Fields are only ever added: scripts read `peers`, `announces`, ...
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TrackerStats {
    pub swarms: usize,
    pub peers: usize,
    /// Open WebSocket connections, whether or not they announced anything.
    pub connections: usize,
    pub announces: u64,
    pub offers_relayed: u64,
    pub answers_forwarded: u64,
    pub answers_dropped: u64,
    pub scrapes: u64,
    pub failures: u64,
    pub expired: u64,
    /// Frames dropped because a connection's outbox was full.
    pub dropped_frames: u64,
    pub uptime_s: u64,
    /// Messages or connections refused (or cut short) by a limit, by reason; every reason is
    /// listed, zeros included, so a dashboard sees the full set. See docs/tracker.md.
    pub rejections: BTreeMap<String, u64>,
    /// Peers of other instances of a cluster listed here (not in `peers`); docs/scaling.md.
    pub remote_peers: usize,
    /// This instance's id in a cluster; `null` when it runs alone.
    pub instance_id: Option<String>,
    /// Whether the cluster link (Redis) is up; `false` when alone.
    pub cluster_connected: bool,
    /// Cluster messages lost (link queue full, Redis down, relayed frame for a departed peer).
    pub cluster_dropped: u64,
    /// Times the cluster link came up (1 after a clean start; each Redis outage adds one).
    pub cluster_joins: u64,
}

/// Reasons the driver counts, listed in `/stats` and `/metrics` even at zero.
const DRIVER_REASONS: [&str; 5] = [
    "conns_per_ip",
    "handshake_timeout",
    "idle_timeout",
    "frame_too_big",
    "protocol_error",
];

impl TrackerService {
    pub fn new(config: TrackerConfig) -> Arc<TrackerService> {
        TrackerService::with_limits(config, ConnLimits::default())
    }

    pub fn with_limits(config: TrackerConfig, limits: ConnLimits) -> Arc<TrackerService> {
        Arc::new(TrackerService {
            inner: Mutex::new(Inner {
                tracker: Tracker::new(config),
                rng: Rng::new(super::entropy_seed()),
                outboxes: HashMap::new(),
                per_ip: HashMap::new(),
                dropped_frames: 0,
                driver_failures: 0,
                driver_rejections: BTreeMap::new(),
                announce_samples: VecDeque::new(),
                cluster: None,
            }),
            limits,
            start: Instant::now(),
            next_conn: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            handshake_timeouts: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The tracker never panics on input; if something else did mid-update, serving on beats
        // taking every connection down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stats(&self) -> TrackerStats {
        let inner = self.lock();
        let Counters {
            announces,
            offers_relayed,
            answers_forwarded,
            answers_dropped,
            scrapes,
            failures,
            expired,
        } = inner.tracker.counters();
        TrackerStats {
            swarms: inner.tracker.swarms(),
            peers: inner.tracker.peers(),
            connections: inner.outboxes.len(),
            announces,
            offers_relayed,
            answers_forwarded,
            answers_dropped,
            scrapes,
            failures: failures + inner.driver_failures,
            expired,
            dropped_frames: inner.dropped_frames,
            uptime_s: self.start.elapsed().as_secs(),
            rejections: self.rejections(&inner),
            remote_peers: inner.tracker.remote_peers(),
            instance_id: inner.cluster.as_ref().map(|c| c.instance_id.clone()),
            cluster_connected: inner.cluster.as_ref().is_some_and(|c| c.connected),
            cluster_dropped: inner.cluster.as_ref().map_or(0, |c| c.dropped),
            cluster_joins: inner.cluster.as_ref().map_or(0, |c| c.joins),
        }
    }

    fn rejections(&self, inner: &Inner) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> =
            DRIVER_REASONS.iter().map(|r| (r.to_string(), 0)).collect();
        for (reason, n) in inner.tracker.rejections().by_reason() {
            *all.entry(reason.to_owned()).or_default() += n;
        }
        for (reason, n) in &inner.driver_rejections {
            *all.entry((*reason).to_owned()).or_default() += n;
        }
        *all.entry("handshake_timeout".into()).or_default() +=
            self.handshake_timeouts.load(Ordering::Relaxed);
        all
    }

    /// Announces per second over about the last 10 s (0 until two samples exist).
    fn announce_rate(&self, inner: &mut Inner) -> f64 {
        let now = self.now_ms();
        let announces = inner.tracker.counters().announces;
        Self::sample_announces(inner, now, announces);
        match inner.announce_samples.front() {
            Some(&(t0, n0)) if now > t0 => (announces - n0) as f64 * 1000.0 / (now - t0) as f64,
            _ => 0.0,
        }
    }

    /// Keeps about one sample a second, none older than the window.
    fn sample_announces(inner: &mut Inner, now: u64, announces: u64) {
        let samples = &mut inner.announce_samples;
        if samples.back().is_none_or(|&(t, _)| now >= t + 1000) {
            samples.push_back((now, announces));
        }
        while samples
            .front()
            .is_some_and(|&(t, _)| now.saturating_sub(t) > RATE_WINDOW_MS)
        {
            samples.pop_front();
        }
    }

    /// Sweeps out silent peers now; returns how many left.
    pub fn expire(&self) -> usize {
        let now = self.now_ms();
        let mut inner = self.lock();
        let gone = inner.tracker.expire(now);
        Self::flush_cluster(&mut inner);
        gone
    }

    /// Asks every open WebSocket to close (code 1001) and stop.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let outboxes: Vec<Arc<Outbox>> = self.lock().outboxes.values().cloned().collect();
        for outbox in outboxes {
            outbox.shut_down();
        }
    }

    /// A new WebSocket from `ip` (unknown when served without [`ClientInfo`]); `Err(limit)`
    /// when its address already holds the most allowed.
    pub(crate) fn register(&self, ip: Option<IpAddr>) -> Result<(ConnId, Arc<Outbox>), usize> {
        let mut inner = self.lock();
        let limit = self.limits.max_conns_per_ip;
        if let Some(ip) = ip {
            let held = inner.per_ip.entry(ip).or_default();
            if limit > 0 && *held >= limit {
                *inner.driver_rejections.entry("conns_per_ip").or_default() += 1;
                return Err(limit);
            }
            *held += 1;
        }
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let outbox = Arc::new(Outbox::default());
        inner.outboxes.insert(conn, outbox.clone());
        drop(inner);
        if self.closing.load(Ordering::SeqCst) {
            outbox.shut_down();
        }
        Ok((conn, outbox))
    }

    pub(crate) fn unregister(&self, conn: ConnId, ip: Option<IpAddr>) {
        let mut inner = self.lock();
        inner.outboxes.remove(&conn);
        inner.tracker.disconnect(conn);
        Self::flush_cluster(&mut inner);
        if let Some(ip) = ip {
            if let Some(held) = inner.per_ip.get_mut(&ip) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    inner.per_ip.remove(&ip);
                }
            }
        }
    }

    pub(crate) fn count_rejection(&self, reason: &'static str) {
        *self.lock().driver_rejections.entry(reason).or_default() += 1;
    }

    pub(crate) fn handle_text(&self, conn: ConnId, text: &str) {
        let now = self.now_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let frames = inner.tracker.handle_text(conn, text, now, &mut inner.rng);
        for (to, frame) in frames {
            Self::deliver(inner, to, frame);
        }
        Self::flush_cluster(inner);
        let announces = inner.tracker.counters().announces;
        Self::sample_announces(inner, now, announces);
    }

    /// Answers a frame the tracker never saw with a failure.
    pub(crate) fn reject(&self, conn: ConnId, reason: &str) {
        let mut inner = self.lock();
        inner.driver_failures += 1;
        *inner.driver_rejections.entry("malformed").or_default() += 1;
        Self::deliver(&mut inner, conn, failure_json(reason, None, None));
    }

    /// Hands what the tracker queued for the other instances to the cluster link.
    fn flush_cluster(inner: &mut Inner) {
        let out = inner.tracker.take_cluster_out();
        if out.is_empty() {
            return;
        }
        if let Some(c) = inner.cluster.as_mut() {
            c.dropped += (c.send)(out);
        }
    }

    /// Joins a cluster: `hook` carries what the tracker queues from now on. Nothing is queued
    /// until [`TrackerService::set_cluster_connected`] says the link is up.
    pub(crate) fn attach_cluster(&self, hook: ClusterHook) {
        self.lock().cluster = Some(hook);
    }

    /// Leaves the cluster (shutdown): remote peers are forgotten and nothing more is queued.
    pub(crate) fn detach_cluster(&self) {
        let mut inner = self.lock();
        inner.tracker.set_clustered(false);
        inner.tracker.forget_remote();
        inner.cluster = None;
    }

    /// The link to the other instances came up or went down. Down forgets every remote peer:
    /// offers to them could not be delivered, so announces must pick local peers only until
    /// the link is back and the others have told their peers again. Returns how many went.
    pub(crate) fn set_cluster_connected(&self, up: bool) -> usize {
        let mut inner = self.lock();
        let Some(c) = inner.cluster.as_mut() else {
            return 0;
        };
        c.connected = up;
        c.joins += u64::from(up);
        inner.tracker.set_clustered(up);
        if up {
            0
        } else {
            inner.tracker.forget_remote()
        }
    }

    /// Applies news from another instance to the tracker with the current time, then hands on
    /// anything that queued.
    pub(crate) fn with_tracker<R>(&self, f: impl FnOnce(&mut Tracker, u64) -> R) -> R {
        let now = self.now_ms();
        let mut inner = self.lock();
        let r = f(&mut inner.tracker, now);
        Self::flush_cluster(&mut inner);
        r
    }

    /// A frame another instance relayed to our peer `peer_id`: into its connection's outbox, or
    /// counted as dropped when that peer is not (or no longer) here.
    pub(crate) fn deliver_relayed(&self, info_hash: &InfoHash, peer_id: &PeerId, frame: String) {
        let mut inner = self.lock();
        match inner.tracker.local_conn(info_hash, peer_id) {
            Some(conn) => Self::deliver(&mut inner, conn, frame),
            None => Self::count_cluster_dropped(&mut inner, 1),
        }
    }

    /// Counts cluster messages the link lost on its side (Redis unreachable).
    pub(crate) fn cluster_lost(&self, n: u64) {
        Self::count_cluster_dropped(&mut self.lock(), n);
    }

    fn count_cluster_dropped(inner: &mut Inner, n: u64) {
        if let Some(c) = inner.cluster.as_mut() {
            c.dropped += n;
        }
    }

    fn deliver(inner: &mut Inner, to: ConnId, frame: String) {
        let Some(outbox) = inner.outboxes.get(&to) else {
            return;
        };
        if !outbox.push(frame) {
            inner.dropped_frames += 1;
            tracing::debug!(conn = to.0, "outbox full, frame dropped");
        }
    }

    /// `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
    pub fn metrics(&self) -> String {
        let s = self.stats();
        let rate = self.announce_rate(&mut self.lock());
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP seedtab_tracker_{name} {help}\n# TYPE seedtab_tracker_{name} {kind}\n\
                 seedtab_tracker_{name} {value}\n"
            );
        };
        let gauges = [
            ("connections", "Open WebSocket connections.", s.connections),
            ("swarms", "Swarms with at least one peer.", s.swarms),
            (
                "peers",
                "Peers connected to this instance, over all swarms.",
                s.peers,
            ),
            (
                "remote_peers",
                "Peers of other cluster instances listed here.",
                s.remote_peers,
            ),
            (
                "cluster_connected",
                "1 while the cluster link (Redis) is up.",
                usize::from(s.cluster_connected),
            ),
        ];
        for (name, help, v) in gauges {
            metric(name, "gauge", help, v.to_string());
        }
        metric(
            "announces_per_second",
            "gauge",
            "Announces per second over the last 10 seconds.",
            format!("{rate:.3}"),
        );
        let counters = [
            ("announces_total", "Announces handled.", s.announces),
            (
                "offers_relayed_total",
                "Offers relayed to peers.",
                s.offers_relayed,
            ),
            (
                "answers_forwarded_total",
                "Answers forwarded to offerers.",
                s.answers_forwarded,
            ),
            (
                "answers_dropped_total",
                "Answers whose offerer had left.",
                s.answers_dropped,
            ),
            ("scrapes_total", "Scrapes handled.", s.scrapes),
            (
                "failures_total",
                "Frames answered with a failure reason.",
                s.failures,
            ),
            ("expired_total", "Peers dropped for silence.", s.expired),
            (
                "dropped_frames_total",
                "Frames dropped on full outboxes.",
                s.dropped_frames,
            ),
            (
                "cluster_dropped_total",
                "Cluster messages lost (link queue full, Redis down, peer gone).",
                s.cluster_dropped,
            ),
        ];
        for (name, help, v) in counters {
            metric(name, "counter", help, v.to_string());
        }
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since the tracker started.",
            s.uptime_s.to_string(),
        );
        out.push_str(
            "# HELP seedtab_tracker_rejections_total Messages or connections refused by a limit.\n\
             # TYPE seedtab_tracker_rejections_total counter\n",
        );
        for (reason, n) in &s.rejections {
            // Reasons are our own identifiers, never client text, so they need no escaping.
            let _ = writeln!(
                out,
                "seedtab_tracker_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }

    /// `GET /stats` for a person: the counters, the rejections and the biggest swarms.
    pub fn stats_html(&self) -> String {
        let s = self.stats();
        let swarms = self.lock().tracker.top_swarms(STATS_HTML_SWARMS);
        let mut h = String::from(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>seedtab tracker</title>\
             <style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:right}\
             td.h{font-family:monospace;text-align:left}</style></head><body>\n\
             <h1>seedtab tracker</h1>\n<table>\n",
        );
        let rows: [(&str, u64); 13] = [
            ("connections", s.connections as u64),
            ("swarms", s.swarms as u64),
            ("peers", s.peers as u64),
            ("announces", s.announces),
            ("offers relayed", s.offers_relayed),
            ("answers forwarded", s.answers_forwarded),
            ("answers dropped", s.answers_dropped),
            ("scrapes", s.scrapes),
            ("failures", s.failures),
            ("expired", s.expired),
            ("dropped frames", s.dropped_frames),
            ("uptime (s)", s.uptime_s),
            ("rejections", s.rejections.values().sum()),
        ];
        for (k, v) in rows {
            let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", escape_html(k));
        }
        h.push_str("</table>\n<h2>Rejections</h2>\n<table>\n");
        for (reason, n) in &s.rejections {
            let _ = writeln!(h, "<tr><th>{}</th><td>{n}</td></tr>", escape_html(reason));
        }
        let _ = write!(
            h,
            "</table>\n<h2>Largest swarms ({} of {})</h2>\n<table>\n\
             <tr><th>info-hash</th><th>seeders</th><th>leechers</th><th>downloaded</th></tr>\n",
            swarms.len(),
            s.swarms
        );
        for (ih, complete, incomplete, downloaded) in swarms {
            // Info-hashes are client-chosen bytes: shown as hex, and escaped all the same.
            let _ = writeln!(
                h,
                "<tr><td class=\"h\">{}</td><td>{complete}</td><td>{incomplete}</td><td>{downloaded}</td></tr>",
                escape_html(&ih.to_hex())
            );
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the per-IP limit counts: IPv4 addresses, and IPv6 /64 prefixes because one host is
/// usually handed a whole /64 (an IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A [`TcpListener`] whose connections must send their first HTTP request within the handshake
/// timeout (see [`GuardedStream`]). Serve it with
/// `into_make_service_with_connect_info::<ClientInfo>()` so handlers see the client's address.
pub struct GuardedListener {
    inner: TcpListener,
    service: Arc<TrackerService>,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, service: Arc<TrackerService>) -> GuardedListener {
        GuardedListener { inner, service }
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        // axum's own accept loop, which retries (and backs off on) accept errors.
        let (io, addr) = Listener::accept(&mut self.inner).await;
        // Signalling is small frames that someone waits for: Nagle's algorithm would hold each
        // relayed answer ~40 ms waiting for the ACK of the previous one.
        let _ = io.set_nodelay(true);
        let timeout = self.service.limits.handshake_timeout;
        let stream = GuardedStream {
            io,
            deadline: (!timeout.is_zero()).then(|| Box::pin(tokio::time::sleep(timeout))),
            armed: Arc::new(AtomicBool::new(true)),
            service: self.service.clone(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream whose reads fail once the handshake deadline passes, until a request is read
/// and [`ClientInfo`] disarms it. hyper (as axum runs it) has no header timeout of its own, so
/// without this a client sending one header byte a minute would hold its socket forever.
pub struct GuardedStream {
    io: TcpStream,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: Arc<AtomicBool>,
    service: Arc<TrackerService>,
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.armed.load(Ordering::Relaxed) {
            // Polling the timer also registers the waker, so an idle socket is woken to fail.
            if let Some(d) = this.deadline.as_mut() {
                if d.as_mut().poll(cx).is_ready() {
                    this.deadline = None;
                    this.service
                        .handshake_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP request within the handshake timeout",
                    )));
                }
            }
        } else {
            this.deadline = None;
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The connect info of a [`GuardedListener`] connection: the client's address, and the switch
/// that ends its handshake deadline.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    armed: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, GuardedListener>> for ClientInfo {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        ClientInfo {
            addr: *stream.remote_addr(),
            armed: stream.io().armed.clone(),
        }
    }
}

/// Middleware: a request was read in time, so its connection's handshake deadline is over.
async fn request_arrived(request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(info)) = request.extensions().get::<ConnectInfo<ClientInfo>>() {
        info.armed.store(false, Ordering::Relaxed);
    }
    next.run(request).await
}

/// The client's address when the server was started with connect info ([`ClientInfo`] or a
/// plain `SocketAddr`); `None` otherwise (a test's bare `axum::serve`), which skips the per-IP
/// limit rather than failing the request.
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        let addr = ext
            .get::<ConnectInfo<ClientInfo>>()
            .map(|c| c.0.addr)
            .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
        Ok(ClientAddr(addr.map(|a| ip_key(a.ip()))))
    }
}

/// Routes `/announce` (and `/` when `at_root`: WebTorrent users often give `ws://host:port` with
/// no path) to the tracker, plus `GET /stats` and `GET /metrics`.
pub fn router(service: Arc<TrackerService>, at_root: bool) -> Router {
    let mut r = Router::new()
        .route("/announce", get(tracker_conn::upgrade))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics));
    if at_root {
        r = r.route("/", get(tracker_conn::upgrade));
    }
    r.with_state(service)
}

/// Runs the expiry sweep until the returned task is aborted.
pub fn spawn_expiry(service: Arc<TrackerService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let gone = service.expire();
            if gone > 0 {
                tracing::debug!(gone, "expired silent peers");
            }
        }
    })
}

/// Serves the tracker on `listener` (at `/announce` and `/`) until `shutdown` resolves, then
/// closes every WebSocket; with the default [`ConnLimits`].
pub async fn serve_tracker(
    listener: TcpListener,
    config: TrackerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_tracker_with(listener, config, ConnLimits::default(), shutdown).await
}

/// [`serve_tracker`] with explicit connection limits.
pub async fn serve_tracker_with(
    listener: TcpListener,
    config: TrackerConfig,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_tracker_clustered(listener, config, limits, None, shutdown).await
}

/// [`serve_tracker_with`], sharing swarms with other instances through Redis when `cluster` is
/// given (docs/scaling.md). An unreachable Redis does not stop it serving its own peers; a
/// malformed Redis URL is an error before anything is served.
pub async fn serve_tracker_clustered(
    listener: TcpListener,
    config: TrackerConfig,
    limits: ConnLimits,
    cluster: Option<ClusterOptions>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if !limits.idle_timeout.is_zero() && limits.idle_timeout.as_secs() <= config.interval_s {
        tracing::warn!(
            idle_s = limits.idle_timeout.as_secs(),
            interval_s = config.interval_s,
            "idle timeout not above the announce interval: idle clients will be disconnected"
        );
    }
    let service = TrackerService::with_limits(config, limits);
    let app = router(service.clone(), true);
    serve_router(listener, app, service, cluster, shutdown).await
}

/// `axum::serve` with the expiry task, the handshake deadline and client addresses (for the
/// per-IP limit) on every connection, and a shutdown that also closes upgraded connections
/// (axum's graceful shutdown does not see them once they are handed to their own tasks).
pub(crate) async fn serve_router(
    listener: TcpListener,
    app: Router,
    service: Arc<TrackerService>,
    cluster: Option<ClusterOptions>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let link = match cluster {
        Some(opts) => Some(tracker_redis::start(service.clone(), opts)?),
        None => None,
    };
    let expiry = spawn_expiry(service.clone());
    let closer = service.clone();
    let listener = GuardedListener::new(listener, service.clone());
    let app = app.layer(middleware::from_fn(request_arrived));
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ClientInfo>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        closer.close_all();
    })
    .await;
    expiry.abort();
    service.close_all();
    if let Some(link) = link {
        link.leave().await;
    }
    result
}

/// `seedtab tracker`: binds `addr`, prints the listening line on stdout, serves until Ctrl-C or
/// SIGTERM; with `cluster`, shares swarms with the other instances on the same Redis.
pub async fn run(
    addr: SocketAddr,
    config: TrackerConfig,
    limits: ConnLimits,
    cluster: Option<ClusterOptions>,
) -> io::Result<()> {
    let listener = super::serve::bind(addr).await?;
    let local = listener.local_addr()?;
    super::serve::announce_line(&format!(
        "seedtab tracker listening on ws://{local}/announce"
    ));
    serve_tracker_clustered(listener, config, limits, cluster, super::shutdown_signal()).await
}

/// JSON unless the client prefers a page: browsers put `text/html` in `Accept`, while `fetch`,
/// curl and scripts send `*/*` or `application/json` and keep getting the JSON they parse.
async fn stats(State(service): State<Arc<TrackerService>>, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    let mut response = if wants_html {
        Html(service.stats_html()).into_response()
    } else {
        Json(service.stats()).into_response()
    };
    // One URL, two representations: caches must key on Accept.
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("accept"));
    response
}

async fn metrics(State(service): State<Arc<TrackerService>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service.metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain é"), "plain é");
    }

    #[test]
    fn ip_keys_group_ipv6_by_64_and_unmap_ipv4() {
        let k = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), k("2001:db8:1:2:ffff::1"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
    }

    #[test]
    fn per_ip_limit_counts_and_frees() {
        let service = TrackerService::with_limits(
            TrackerConfig::default(),
            ConnLimits {
                max_conns_per_ip: 2,
                ..ConnLimits::default()
            },
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (c1, _r1) = service.register(Some(a)).unwrap();
        let (_c2, _r2) = service.register(Some(a)).unwrap();
        assert_eq!(service.register(Some(a)).err(), Some(2));
        assert!(
            service.register(Some(b)).is_ok(),
            "other addresses unaffected"
        );
        assert!(
            service.register(None).is_ok(),
            "unknown address: not limited"
        );
        service.unregister(c1, Some(a));
        assert!(service.register(Some(a)).is_ok());
        assert_eq!(service.stats().rejections["conns_per_ip"], 1);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let service = TrackerService::new(TrackerConfig::default());
        let text = service.metrics();
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("seedtab_tracker_"), "{line}");
            value.parse::<f64>().unwrap();
        }
        assert!(text.contains("seedtab_tracker_rejections_total{reason=\"rate_limited\"} 0"));
        assert!(text.contains("# TYPE seedtab_tracker_announces_total counter"));
    }
}
