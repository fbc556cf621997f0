//! The WebSocket tracker server: an axum router that upgrades `/announce` (and optionally `/`)
//! to WebSockets, one task per connection, feeding text frames to the sans-IO
//! [`Tracker`](crate::signal::server::Tracker) and delivering the frames it returns through a
//! bounded channel per connection. Also `GET /stats` and a periodic expiry task.
//!
//! No protocol logic here; and no `.await` while the tracker lock is held (sends to other
//! connections use `try_send`, so a slow reader can never stall the tracker).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::rng::Rng;
use crate::signal::msg::{failure_json, MAX_FRAME_BYTES};
use crate::signal::server::{ConnId, Counters, Tracker, TrackerConfig};

/// Frames queued for one connection before further ones are dropped. Signalling is best effort
/// (a lost offer just times out in the browser); unbounded queues would let one stuck reader eat
/// the tracker's memory.
const OUTBOX_FRAMES: usize = 256;

/// How often silent peers are swept out.
const EXPIRY_PERIOD: Duration = Duration::from_secs(30);

/// The tracker with everything its connections share.
pub struct TrackerService {
    inner: Mutex<Inner>,
    start: Instant,
    next_conn: AtomicU64,
    closing: watch::Sender<bool>,
}

struct Inner {
    tracker: Tracker,
    rng: Rng,
    outboxes: HashMap<ConnId, mpsc::Sender<String>>,
    dropped_frames: u64,
    /// Failures the driver answers itself (non-UTF-8 binary frames).
    driver_failures: u64,
}

/// `GET /stats`.
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
}

impl TrackerService {
    pub fn new(config: TrackerConfig) -> Arc<TrackerService> {
        Arc::new(TrackerService {
            inner: Mutex::new(Inner {
                tracker: Tracker::new(config),
                rng: Rng::new(super::entropy_seed()),
                outboxes: HashMap::new(),
                dropped_frames: 0,
                driver_failures: 0,
            }),
            start: Instant::now(),
            next_conn: AtomicU64::new(1),
            closing: watch::channel(false).0,
        })
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
        }
    }

    /// Sweeps out silent peers now; returns how many left.
    pub fn expire(&self) -> usize {
        let now = self.now_ms();
        self.lock().tracker.expire(now)
    }

    /// Asks every open WebSocket to close (code 1001) and stop.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    fn register(&self) -> (ConnId, mpsc::Receiver<String>) {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
        self.lock().outboxes.insert(conn, tx);
        (conn, rx)
    }

    fn unregister(&self, conn: ConnId) {
        let mut inner = self.lock();
        inner.outboxes.remove(&conn);
        inner.tracker.disconnect(conn);
    }

    fn handle_text(&self, conn: ConnId, text: &str) {
        let now = self.now_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let frames = inner.tracker.handle_text(conn, text, now, &mut inner.rng);
        for (to, frame) in frames {
            Self::deliver(inner, to, frame);
        }
    }

    /// Answers a frame the tracker never saw with a failure.
    fn reject(&self, conn: ConnId, reason: &str) {
        let mut inner = self.lock();
        inner.driver_failures += 1;
        Self::deliver(&mut inner, conn, failure_json(reason, None, None));
    }

    fn deliver(inner: &mut Inner, to: ConnId, frame: String) {
        let Some(tx) = inner.outboxes.get(&to) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(frame) {
            inner.dropped_frames += 1;
            tracing::debug!(conn = to.0, "outbox full, frame dropped");
        }
    }
}

/// Routes `/announce` (and `/` when `at_root`: WebTorrent users often give `ws://host:port` with
/// no path) to the tracker, plus `GET /stats`.
pub fn router(service: Arc<TrackerService>, at_root: bool) -> Router {
    let mut r = Router::new()
        .route("/announce", get(upgrade))
        .route("/stats", get(stats));
    if at_root {
        r = r.route("/", get(upgrade));
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
/// closes every WebSocket.
pub async fn serve_tracker(
    listener: TcpListener,
    config: TrackerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let service = TrackerService::new(config);
    serve_router(listener, router(service.clone(), true), service, shutdown).await
}

/// `axum::serve` with the expiry task and a shutdown that also closes upgraded connections
/// (axum's graceful shutdown does not see them once they are handed to their own tasks).
pub(crate) async fn serve_router(
    listener: TcpListener,
    app: Router,
    service: Arc<TrackerService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let expiry = spawn_expiry(service.clone());
    let closer = service.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closer.close_all();
        })
        .await;
    expiry.abort();
    service.close_all();
    result
}

/// `seedtab tracker`: binds `addr`, prints the listening line on stdout, serves until Ctrl-C or
/// SIGTERM.
pub async fn run(addr: SocketAddr) -> io::Result<()> {
    let listener = super::serve::bind(addr).await?;
    let local = listener.local_addr()?;
    super::serve::announce_line(&format!(
        "seedtab tracker listening on ws://{local}/announce"
    ));
    serve_tracker(listener, TrackerConfig::default(), super::shutdown_signal()).await
}

async fn stats(State(service): State<Arc<TrackerService>>) -> Json<TrackerStats> {
    Json(service.stats())
}

async fn upgrade(
    State(service): State<Arc<TrackerService>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws
            .max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            .on_upgrade(move |socket| connection(service, socket)),
        Err(_) => (
            StatusCode::UPGRADE_REQUIRED,
            "seedtab WebSocket tracker: connect with a WebSocket client (ws://HOST/announce)\n",
        )
            .into_response(),
    }
}

async fn connection(service: Arc<TrackerService>, mut socket: WebSocket) {
    let (conn, mut outbox) = service.register();
    let mut closing = service.closing.subscribe();
    tracing::debug!(conn = conn.0, "connection open");
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => service.handle_text(conn, text.as_str()),
                // The `ws` package bittorrent-tracker uses hands binary frames to JSON.parse too.
                Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                    Ok(text) => service.handle_text(conn, text),
                    Err(_) => service.reject(conn, "binary frame is not UTF-8 JSON"),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    // Oversized frames end up here: tell the client why before dropping it.
                    tracing::debug!(conn = conn.0, error = %e, "connection error");
                    let frame = CloseFrame { code: close_code::SIZE, reason: "message too big or malformed".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
            },
            frame = outbox.recv() => match frame {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            // The watch guard is dropped inside: it must not live across the select's awaits.
            _ = async { drop(closing.wait_for(|&c| c).await) } => {
                let frame = CloseFrame { code: close_code::AWAY, reason: "server shutting down".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                break;
            }
        }
    }
    service.unregister(conn);
    tracing::debug!(conn = conn.0, "connection closed");
}
