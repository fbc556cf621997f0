//! The native peer's WebSocket connection to one tracker: connects, reconnects with
//! WebTorrent's back-off, sends the frames the driver gives it and reads what the tracker sends
//! into [`TrackerEvent`]s (parsed by the sans-IO `signal::client`).
//!
//! It decides nothing about announces: the driver hears `Connected` and announces. Frames handed
//! over while the socket is down are dropped, never queued without bound.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::signal::client::{parse_tracker_events, reconnect_delay_ms, TrackerEvent};
use crate::signal::msg::MAX_TRACKER_FRAME_BYTES;

/// A tracker that does not answer the WebSocket handshake by then is tried again later.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long the last frames (`stopped`) may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the connection tells the driver.
#[derive(Debug)]
pub enum TrackerInput {
    Connected,
    Event(TrackerEvent),
    /// A frame that is not the tracker protocol (logged, otherwise ignored).
    BadFrame(String),
    Disconnected(String),
}

pub type TrackerSink = Arc<dyn Fn(TrackerInput) + Send + Sync>;

/// One tracker connection, kept up until [`TrackerConn::close`].
pub struct TrackerConn {
    pub url: String,
    tx: mpsc::UnboundedSender<String>,
    task: JoinHandle<()>,
}

impl TrackerConn {
    /// Starts connecting to `url` (ws:// or wss://) in the background.
    pub fn start(url: String, sink: TrackerSink) -> TrackerConn {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(url.clone(), rx, sink));
        TrackerConn { url, tx, task }
    }

    /// Sends a frame if the socket is up (dropped otherwise: the driver re-announces on
    /// `Connected`).
    pub fn send(&self, text: String) {
        let _ = self.tx.send(text);
    }

    /// Sends what was handed over (the driver's `stopped` announce) and closes, waiting at most
    /// [`CLOSE_TIMEOUT`].
    pub async fn close(self) {
        let TrackerConn { tx, mut task, .. } = self;
        drop(tx);
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

async fn run(url: String, mut rx: mpsc::UnboundedReceiver<String>, sink: TrackerSink) {
    let mut attempt = 0u32;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_TRACKER_FRAME_BYTES))
        .max_frame_size(Some(MAX_TRACKER_FRAME_BYTES));
    loop {
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false),
        )
        .await;
        let reason = match connected {
            Ok(Ok((ws, _))) => {
                attempt = 0;
                // Frames queued while down are stale (announces with old offers).
                while rx.try_recv().is_ok() {}
                sink(TrackerInput::Connected);
                let (mut write, mut read) = ws.split();
                loop {
                    tokio::select! {
                        out = rx.recv() => match out {
                            Some(text) => {
                                if let Err(e) = write.send(Message::text(text)).await {
                                    break format!("send failed: {e}");
                                }
                            }
                            None => {
                                // Closing: everything handed over has been sent.
                                let _ = write.send(Message::Close(None)).await;
                                let _ = write.flush().await;
                                return;
                            }
                        },
                        incoming = read.next() => match incoming {
                            Some(Ok(Message::Text(text))) => match parse_tracker_events(&text) {
                                Ok(events) => events.into_iter().for_each(|e| sink(TrackerInput::Event(e))),
                                Err(e) => sink(TrackerInput::BadFrame(e.to_string())),
                            },
                            Some(Ok(Message::Close(_))) | None => break "closed by the tracker".to_string(),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => break format!("{e}"),
                        },
                    }
                }
            }
            Ok(Err(e)) => format!("cannot connect: {e}"),
            Err(_) => "cannot connect: timed out".to_string(),
        };
        sink(TrackerInput::Disconnected(reason));
        let delay = Duration::from_millis(reconnect_delay_ms(attempt));
        attempt = attempt.saturating_add(1);
        // Wait for the back-off, but end at once if the driver closes us meanwhile.
        let wait_end = tokio::time::sleep(delay);
        tokio::pin!(wait_end);
        loop {
            tokio::select! {
                _ = &mut wait_end => break,
                out = rx.recv() => if out.is_none() { return },
            }
        }
    }
}
