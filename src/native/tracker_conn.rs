//! One tracker WebSocket, kept small because a tracker holds tens of thousands of them: the
//! upgrade is answered here (hyper, under axum, parses the HTTP request), and then one task per
//! connection reads into a per-thread buffer, unframes with [`ws_frame`], hands each text to the
//! [`TrackerService`], and writes what the service queued in the connection's [`Outbox`]. At rest
//! a connection owns no buffer at all: only bytes of an unfinished frame, or not yet written, are
//! kept per connection, and only until they are used.
//!
//! Moves bytes only: what a message means is the tracker's business. Never holds the tracker's
//! lock across an await, and never lets one connection's queue grow without bound.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::tracker::{ClientAddr, TrackerService};
use crate::signal::msg::MAX_FRAME_BYTES;
use crate::signal::server::ConnId;
use crate::signal::ws_frame::{self, close_code, Decoder, Message, WsError};

/// Frames queued for one connection before further ones are dropped. Signalling is best effort
/// (a lost offer just times out in the browser); unbounded queues would let one stuck reader eat
/// the tracker's memory.
const OUTBOX_FRAMES: usize = 256;

/// Bytes read from a socket at a time, into the per-thread buffer: a whole largest frame fits.
const READ_CHUNK: usize = MAX_FRAME_BYTES + ws_frame::MAX_HEADER;

/// Queued frames copied into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// Pongs waiting for a client that sends pings but does not read, before more pings go
/// unanswered.
const MAX_CONTROL_BYTES: usize = 1024;

/// How long a closing connection may take to accept its close frame.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    /// Every connection served by this thread reads into this one buffer and keeps only what
    /// it could not use yet, so idle connections cost no read buffer.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
    /// Frames are framed here and written in one call; what the socket does not take is copied
    /// to the connection.
    static WRITE_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(WRITE_BATCH + 1024));
}

/// Frames on their way to one connection, shared between its task and the service.
#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<OutState>,
}

#[derive(Default)]
struct OutState {
    frames: VecDeque<String>,
    /// The connection's task while it waits; taken while it runs, so that frames it queues
    /// for itself (replies) do not wake it again.
    waker: Option<Waker>,
    /// Close with this code and reason once the queue is written (server shutdown).
    close: Option<(u16, &'static str)>,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame; `false` if the queue was full and the frame was dropped.
    pub(crate) fn push(&self, frame: String) -> bool {
        let waker = {
            let mut s = self.lock();
            if s.frames.len() >= OUTBOX_FRAMES {
                return false;
            }
            s.frames.push_back(frame);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Asks the connection to close with 1001 after writing what is queued.
    pub(crate) fn shut_down(&self) {
        self.close(close_code::AWAY, "server shutting down");
    }

    /// Asks the connection to close with `code` after writing what is queued.
    fn close(&self, code: u16, reason: &'static str) {
        let waker = {
            let mut s = self.lock();
            s.close.get_or_insert((code, reason));
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// `GET /announce` (and `/` for the standalone tracker): answers a WebSocket handshake with 101
/// and runs the connection; anything else is told to upgrade.
pub(crate) async fn upgrade(
    State(service): State<Arc<TrackerService>>,
    ClientAddr(ip): ClientAddr,
    mut request: Request,
) -> Response {
    let accept =
        match handshake_accept(request.headers()) {
            Ok(accept) => accept,
            Err(Refusal::NotWebSocket) => return (
                StatusCode::UPGRADE_REQUIRED,
                [(header::UPGRADE, "websocket")],
                "seedtab WebSocket tracker: connect with a WebSocket client (ws://HOST/announce)\n",
            )
                .into_response(),
            Err(Refusal::Bad(why)) => return (StatusCode::BAD_REQUEST, why).into_response(),
        };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(service, TokioIo::new(upgraded), ip).await,
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}

enum Refusal {
    /// Not a WebSocket request at all (a plain GET).
    NotWebSocket,
    /// A WebSocket request we cannot serve.
    Bad(&'static str),
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and returns its `Sec-WebSocket-Accept`.
fn handshake_accept(headers: &HeaderMap) -> Result<String, Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err(Refusal::NotWebSocket);
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(Refusal::Bad(
            "WebSocket request without Connection: upgrade\n",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refusal::Bad("only WebSocket version 13 is served\n"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().trim_ascii())
        .filter(|k| k.len() == 24)
        .ok_or(Refusal::Bad("missing or malformed Sec-WebSocket-Key\n"))?;
    Ok(ws_frame::accept_key(key))
}

/// Why a connection ended, and what (if anything) to tell the client.
struct Ending {
    /// Close code and reason to send; `None` when the socket is gone or broken.
    close: Option<(u16, String)>,
    /// The rejection counter to bump, if it ended by a limit or a protocol error.
    rejection: Option<&'static str>,
}

impl Ending {
    fn gone() -> Ending {
        Ending {
            close: None,
            rejection: None,
        }
    }
}

/// Serves one upgraded connection until it closes.
async fn run<S>(service: Arc<TrackerService>, mut io: S, ip: Option<IpAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (conn, outbox) = match service.register(ip) {
        Ok(registered) => registered,
        Err(limit) => {
            // A close code and reason reach the page's `CloseEvent`; an HTTP 429 before the
            // upgrade would reach it only as an anonymous connection error.
            tracing::debug!(?ip, limit, "too many connections from one address");
            let reason = format!("too many connections from your address (limit {limit})");
            send_close(&mut io, close_code::POLICY, &reason).await;
            return;
        }
    };
    tracing::debug!(conn = conn.0, "connection open");
    let limits = service.limits().clone();
    let mut state = Conn {
        service: &service,
        conn,
        outbox: &outbox,
        decoder: Decoder::new(MAX_FRAME_BYTES),
        pending: Vec::new(),
        unsent: Vec::new(),
        control: Vec::new(),
        opened_at: Instant::now(),
        heard_at: None,
        ending: None,
    };
    // Until the first message the handshake timeout applies, then the idle timeout. The timer
    // is moved only when it fires (to the last message plus the timeout), not on every message.
    let first = [limits.handshake_timeout, limits.idle_timeout]
        .into_iter()
        .find(|t| !t.is_zero())
        .map(|t| tokio::time::sleep_until(state.opened_at + t));
    let mut timer = pin!(first);
    let ending = poll_fn(|cx| state.poll(cx, &mut io, timer.as_mut(), &limits)).await;
    service.unregister(conn, ip);
    if let Some(reason) = ending.rejection {
        service.count_rejection(reason);
    }
    if let Some((code, why)) = ending.close {
        tracing::debug!(conn = conn.0, code, why, "closing");
        // What was already written stays ahead of the close frame.
        let unsent = std::mem::take(&mut state.unsent);
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, io.write_all(&unsent)).await;
        send_close(&mut io, code, &why).await;
    }
    tracing::debug!(conn = conn.0, "connection closed");
}

/// Writes a close frame and shuts the socket down, best effort and bounded in time.
async fn send_close<S: AsyncWrite + Unpin>(io: &mut S, code: u16, reason: &str) {
    let mut frame = Vec::new();
    ws_frame::push_close(&mut frame, code, reason);
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        io.write_all(&frame).await?;
        io.shutdown().await
    })
    .await;
}

struct Conn<'a> {
    service: &'a TrackerService,
    conn: ConnId,
    outbox: &'a Outbox,
    decoder: Decoder,
    /// Received bytes not yet forming a whole frame (empty, and unallocated, at rest).
    pending: Vec<u8>,
    /// Framed bytes the socket has not taken yet (empty, and unallocated, at rest).
    unsent: Vec<u8>,
    /// Pongs and the reply to a client's close, framed, to go before queued frames.
    control: Vec<u8>,
    opened_at: Instant,
    /// When the last message arrived; `None` before the first.
    heard_at: Option<Instant>,
    ending: Option<Ending>,
}

impl Conn<'_> {
    fn poll<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut S,
        mut timer: Pin<&mut Option<Sleep>>,
        limits: &super::tracker::ConnLimits,
    ) -> Poll<Ending> {
        // Frames queued for us from here on are written in this poll: no wake-up needed.
        self.outbox.lock().waker = None;
        loop {
            let read_more = self.ending.is_none() && self.read(cx, io);
            if let Some(end) = self.ending.take() {
                // A close frame of ours follows whatever was queued before it.
                if end.close.is_some() {
                    self.drain_outbox_into_unsent();
                }
                return Poll::Ready(end);
            }
            let write_more = self.write(cx, io);
            if let Some(end) = self.ending.take() {
                return Poll::Ready(end);
            }
            if read_more || write_more {
                continue;
            }
            if let Some(end) = self.check_timer(cx, timer.as_mut(), limits) {
                return Poll::Ready(end);
            }
            let mut s = self.outbox.lock();
            if let Some((code, reason)) = s.close {
                if self.unsent.is_empty() && s.frames.is_empty() {
                    return Poll::Ready(Ending {
                        close: Some((code, reason.to_owned())),
                        rejection: None,
                    });
                }
            }
            if s.frames.is_empty() || !self.unsent.is_empty() {
                s.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // Frames arrived between writing and registering: write them now.
        }
    }

    /// Reads and handles what the socket has; `true` if it may have more right away.
    fn read<S: AsyncRead + Unpin>(&mut self, cx: &mut Context<'_>, io: &mut S) -> bool {
        READ_BUF.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(&mut buf[..]);
            match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                Poll::Pending => false,
                Poll::Ready(Err(_)) => {
                    self.ending = Some(Ending::gone());
                    false
                }
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.ending = Some(Ending::gone());
                        return false;
                    }
                    self.received(&mut buf[..n]);
                    true
                }
            }
        })
    }

    fn received(&mut self, fresh: &mut [u8]) {
        let result = if self.pending.is_empty() {
            let r = self.feed_from(fresh);
            if let Ok(used) = r {
                self.pending.extend_from_slice(&fresh[used..]);
            }
            r.map(|_| ())
        } else {
            self.pending.extend_from_slice(fresh);
            let mut pending = std::mem::take(&mut self.pending);
            let r = self.feed_from(&mut pending);
            if let Ok(used) = r {
                pending.drain(..used);
                if !pending.is_empty() {
                    self.pending = pending;
                }
            }
            r.map(|_| ())
        };
        if let Err(e) = result {
            let rejection = match e {
                WsError::TooBig { .. } => "frame_too_big",
                WsError::Protocol(_) | WsError::NotUtf8 => "protocol_error",
            };
            tracing::debug!(conn = self.conn.0, error = %e, "closing on a bad frame");
            self.ending = Some(Ending {
                close: Some((e.close_code(), e.to_string())),
                rejection: Some(rejection),
            });
        }
    }

    fn feed_from(&mut self, bytes: &mut [u8]) -> Result<usize, WsError> {
        let (service, conn) = (self.service, self.conn);
        let control = &mut self.control;
        let mut heard = false;
        let mut closed = None;
        let used = self.decoder.feed(bytes, &mut |m| match m {
            Message::Text(text) => {
                heard = true;
                service.handle_text(conn, text);
            }
            // The `ws` package bittorrent-tracker uses hands binary frames to JSON.parse too.
            Message::Binary(bytes) => {
                heard = true;
                match std::str::from_utf8(bytes) {
                    Ok(text) => service.handle_text(conn, text),
                    Err(_) => service.reject(conn, "binary frame is not UTF-8 JSON"),
                }
            }
            // Pings do not count as heard: browsers answer them with the tab frozen. Pongs
            // pile up only while the client does not read; past a few, answering the latest is
            // enough (RFC 6455 §5.5.3), and the pile stays bounded.
            Message::Ping(payload) if control.len() < MAX_CONTROL_BYTES => {
                ws_frame::push_pong(control, payload)
            }
            Message::Ping(_) => {}
            Message::Pong => {}
            Message::Close(code) => closed = Some(code),
        });
        if heard {
            self.heard_at = Some(Instant::now());
        }
        if let Some(code) = closed {
            // Echo the client's code (RFC 6455 §5.5.1), then end.
            let code = code
                .filter(|&c| is_sendable(c))
                .unwrap_or(close_code::NORMAL);
            self.ending = Some(Ending {
                close: Some((code, String::new())),
                rejection: None,
            });
        }
        used
    }

    /// Writes control frames, then queued frames; `true` if there may be more to write now.
    fn write<S: AsyncWrite + Unpin>(&mut self, cx: &mut Context<'_>, io: &mut S) -> bool {
        if !self.unsent.is_empty() {
            return match Pin::new(&mut *io).poll_write(cx, &self.unsent) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.ending = Some(Ending::gone());
                    false
                }
                Poll::Ready(Ok(n)) => {
                    self.unsent.drain(..n);
                    if self.unsent.is_empty() {
                        self.unsent = Vec::new();
                    }
                    true
                }
                Poll::Pending => false,
            };
        }
        WRITE_BUF.with_borrow_mut(|out| {
            out.clear();
            out.append(&mut self.control);
            {
                let mut s = self.outbox.lock();
                while out.len() < WRITE_BATCH {
                    let Some(frame) = s.frames.pop_front() else {
                        break;
                    };
                    ws_frame::push_text(out, &frame);
                }
            }
            if out.is_empty() {
                return false;
            }
            let written = match Pin::new(&mut *io).poll_write(cx, out) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.ending = Some(Ending::gone());
                    return false;
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Pending => 0,
            };
            self.unsent.extend_from_slice(&out[written..]);
            // More may be queued (the batch was full), or the rest may go at once.
            written > 0
        })
    }

    /// Everything still queued, framed into `unsent`, so the close frame follows it.
    fn drain_outbox_into_unsent(&mut self) {
        let mut s = self.outbox.lock();
        self.unsent.append(&mut self.control);
        while let Some(frame) = s.frames.pop_front() {
            ws_frame::push_text(&mut self.unsent, &frame);
        }
    }

    /// The handshake or idle timeout, checked when its timer fires.
    fn check_timer(
        &mut self,
        cx: &mut Context<'_>,
        mut timer: Pin<&mut Option<Sleep>>,
        limits: &super::tracker::ConnLimits,
    ) -> Option<Ending> {
        loop {
            let mut sleep = timer.as_mut().as_pin_mut()?;
            if sleep.as_mut().poll(cx).is_pending() {
                return None;
            }
            if self.heard_at.is_none() && !limits.handshake_timeout.is_zero() {
                let s = limits.handshake_timeout.as_secs_f64();
                return Some(Ending {
                    close: Some((
                        close_code::POLICY,
                        format!("no message within {s} s of connecting"),
                    )),
                    rejection: Some("handshake_timeout"),
                });
            }
            if limits.idle_timeout.is_zero() {
                timer.set(None);
                continue;
            }
            let due = self.heard_at.unwrap_or(self.opened_at) + limits.idle_timeout;
            if Instant::now() >= due {
                let s = limits.idle_timeout.as_secs_f64();
                return Some(Ending {
                    close: Some((close_code::NORMAL, format!("idle for {s} s"))),
                    rejection: Some("idle_timeout"),
                });
            }
            sleep.reset(due);
        }
    }
}

/// Whether a client's close code may be sent back (RFC 6455 §7.4: 1005, 1006 and 1015 are never
/// sent; codes below 1000 and unassigned ones are invalid).
fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::signal::server::TrackerConfig;

    /// Server frames in `bytes` as (first byte, payload length).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, usize)> {
        let mut out = Vec::new();
        while let [b0, b1, rest @ ..] = bytes {
            let len = usize::from(*b1);
            assert!(len < 126, "only short frames expected");
            out.push((*b0, len));
            bytes = &rest[len..];
        }
        out
    }

    #[tokio::test]
    async fn pongs_for_a_client_that_does_not_read_stay_bounded() {
        let service = TrackerService::new(TrackerConfig::default());
        // A 64-byte pipe: the client's side fills at once since it reads nothing.
        let (client, server) = tokio::io::duplex(64);
        let conn = tokio::spawn(run(service.clone(), server, None));
        let (mut rd, mut wr) = tokio::io::split(client);
        for _ in 0..10_000 {
            wr.write_all(&[0x89, 0x80, 1, 2, 3, 4]).await.unwrap();
        }
        wr.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
            .await
            .unwrap();
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        conn.await.unwrap();
        let frames = frames(&got);
        let pongs = frames.iter().filter(|f| **f == (0x8A, 0)).count();
        assert!(pongs > 0 && pongs < 1200, "{pongs} pongs for 10,000 pings");
        assert_eq!(frames.last(), Some(&(0x88, 2)), "the close is echoed last");
        assert_eq!(pongs + 1, frames.len());
        assert_eq!(service.stats().connections, 0);
    }

    #[tokio::test]
    async fn replies_reach_the_client_and_frames_queued_before_shutdown_go_first() {
        let service = TrackerService::new(TrackerConfig::default());
        let (client, server) = tokio::io::duplex(1 << 16);
        let conn = tokio::spawn(run(service.clone(), server, None));
        let (mut rd, mut wr) = tokio::io::split(client);
        let scrape = br#"{"action":"scrape"}"#;
        let mut frame = vec![0x81, 0x80 | scrape.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(scrape);
        wr.write_all(&frame).await.unwrap();
        let mut head = [0u8; 2];
        rd.read_exact(&mut head).await.unwrap();
        let mut reply = vec![0u8; usize::from(head[1])];
        rd.read_exact(&mut reply).await.unwrap();
        assert_eq!(head[0], 0x81);
        assert!(std::str::from_utf8(&reply).unwrap().contains("\"scrape\""));
        service.close_all();
        let mut rest = Vec::new();
        rd.read_to_end(&mut rest).await.unwrap();
        conn.await.unwrap();
        assert_eq!(rest[..4], [0x88, rest[1], 0x03, 0xE9], "close 1001");
    }
}
