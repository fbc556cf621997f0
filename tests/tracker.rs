#![cfg(all(feature = "native", not(target_arch = "wasm32")))]
//! End to end: the real axum tracker and app server on 127.0.0.1:0, driven by tokio-tungstenite
//! clients speaking the WebTorrent tracker protocol, and plain HTTP for files and /config.json.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seedtab::id::{InfoHash, PeerId};
use seedtab::native::serve::{serve_app, ServeOptions};
use seedtab::native::tracker::serve_tracker;
use seedtab::signal::client::{
    announce_json, answer_json, parse_tracker_message, scrape_json, AnnounceEvent, OfferOut,
    TrackerEvent,
};
use seedtab::signal::msg::MAX_FRAME_BYTES;
use seedtab::signal::server::TrackerConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start_tracker() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_tracker(
        listener,
        TrackerConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

async fn connect(url: &str) -> Ws {
    timeout(WAIT, connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text frame, skipping control frames.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        match timeout(WAIT, ws.next()).await.expect("no frame in time") {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn next_event(ws: &mut Ws) -> TrackerEvent {
    let text = next_text(ws).await;
    parse_tracker_message(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits until the server closes the socket; returns the close code if one was sent.
async fn closed(ws: &mut Ws) -> Option<u16> {
    loop {
        match timeout(WAIT, ws.next())
            .await
            .expect("socket not closed in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// GET over a bare TCP connection (no HTTP client among the dev-dependencies); status and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn stats(addr: SocketAddr) -> Value {
    let (status, body) = http_get(addr, "/stats").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls /stats until `field` reaches `want` (the server updates it after the socket closes).
async fn wait_stat(addr: SocketAddr, field: &str, want: u64) {
    for _ in 0..200 {
        if stats(addr).await[field].as_u64() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{field} never reached {want}: {}", stats(addr).await);
}

fn ids() -> (InfoHash, PeerId, PeerId) {
    // Bytes >= 0x80 and control bytes exercise the latin-1 encoding over a real socket.
    let mut ih = [0u8; 20];
    for (i, b) in ih.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(0x85);
    }
    (
        InfoHash(ih),
        PeerId([0xA7; 20]),
        PeerId(*b"-WW0300-\x01\x02\xfe\xffabcdefgh"),
    )
}

#[tokio::test]
async fn announce_offer_answer_scrape_and_disconnect() {
    let (addr, _stop) = start_tracker().await;
    let (ih, seeder, leecher) = ids();

    let mut a = connect(&format!("ws://{addr}/announce")).await;
    send(
        &mut a,
        announce_json(&ih, &seeder, AnnounceEvent::Started, 0, 0, Some(0), 0, &[]),
    )
    .await;
    assert_eq!(
        next_event(&mut a).await,
        TrackerEvent::AnnounceReply {
            info_hash: ih,
            interval: Some(120),
            complete: Some(1),
            incomplete: Some(0)
        }
    );

    // The second client uses the bare `ws://host:port` form WebTorrent users often configure.
    let mut b = connect(&format!("ws://{addr}")).await;
    let offer = OfferOut {
        offer_id: [0xD4; 20],
        sdp: "v=0\r\no=- 4 2 IN IP4 127.0.0.1\r\n".into(),
    };
    send(
        &mut b,
        announce_json(
            &ih,
            &leecher,
            AnnounceEvent::Started,
            0,
            0,
            None,
            1,
            std::slice::from_ref(&offer),
        ),
    )
    .await;
    assert_eq!(
        next_event(&mut b).await,
        TrackerEvent::AnnounceReply {
            info_hash: ih,
            interval: Some(120),
            complete: Some(1),
            incomplete: Some(1)
        }
    );
    assert_eq!(
        next_event(&mut a).await,
        TrackerEvent::Offer {
            info_hash: ih,
            peer_id: leecher,
            offer_id: offer.offer_id,
            sdp: offer.sdp.clone()
        }
    );

    send(
        &mut a,
        answer_json(&ih, &seeder, &leecher, &offer.offer_id, "v=0\r\nanswer\r\n"),
    )
    .await;
    assert_eq!(
        next_event(&mut b).await,
        TrackerEvent::Answer {
            info_hash: ih,
            peer_id: seeder,
            offer_id: offer.offer_id,
            sdp: "v=0\r\nanswer\r\n".into()
        }
    );

    let mut c = connect(&format!("ws://{addr}/announce")).await;
    send(&mut c, scrape_json(&[ih])).await;
    assert_eq!(
        next_event(&mut c).await,
        TrackerEvent::Scrape {
            files: vec![(ih, 1, 1, 0)]
        }
    );
    send(&mut c, scrape_json(&[])).await;
    assert_eq!(
        next_event(&mut c).await,
        TrackerEvent::Scrape {
            files: vec![(ih, 1, 1, 0)]
        }
    );

    let s = stats(addr).await;
    assert_eq!(
        (
            s["swarms"].as_u64(),
            s["peers"].as_u64(),
            s["connections"].as_u64()
        ),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(s["offers_relayed"], 1);
    assert_eq!(s["answers_forwarded"], 1);

    // Closing the seeder's socket takes it out of the swarm without any `stopped`.
    a.close(None).await.unwrap();
    wait_stat(addr, "peers", 1).await;
    send(&mut c, scrape_json(&[ih])).await;
    assert_eq!(
        next_event(&mut c).await,
        TrackerEvent::Scrape {
            files: vec![(ih, 0, 1, 0)]
        }
    );

    send(
        &mut b,
        announce_json(&ih, &leecher, AnnounceEvent::Stopped, 0, 0, None, 0, &[]),
    )
    .await;
    assert!(matches!(
        next_event(&mut b).await,
        TrackerEvent::AnnounceReply {
            complete: Some(0),
            incomplete: Some(0),
            ..
        }
    ));
    wait_stat(addr, "swarms", 0).await;
}

#[tokio::test]
async fn bad_frames_get_failures_and_oversized_ones_close_the_socket() {
    let (addr, _stop) = start_tracker().await;
    let mut ws = connect(&format!("ws://{addr}/announce")).await;

    send(&mut ws, "this is not json".into()).await;
    let TrackerEvent::Failure {
        info_hash: None,
        reason,
    } = next_event(&mut ws).await
    else {
        panic!()
    };
    assert!(reason.contains("invalid JSON"), "{reason}");

    send(
        &mut ws,
        r#"{"action":"announce","info_hash":"short"}"#.into(),
    )
    .await;
    let TrackerEvent::Failure { reason, .. } = next_event(&mut ws).await else {
        panic!()
    };
    assert!(reason.contains("info_hash"), "{reason}");

    ws.send(Message::binary(vec![0xFFu8, 0xFE, 0x00]))
        .await
        .unwrap();
    let TrackerEvent::Failure { reason, .. } = next_event(&mut ws).await else {
        panic!()
    };
    assert!(reason.contains("UTF-8"), "{reason}");

    // Binary frames holding UTF-8 JSON are served like text, as bittorrent-tracker does.
    let (ih, _, _) = ids();
    ws.send(Message::binary(scrape_json(&[ih]).into_bytes()))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut ws).await,
        TrackerEvent::Scrape { .. }
    ));

    // The connection survives all of that...
    assert_eq!(stats(addr).await["failures"], 3);
    // ...but not a frame over the limit.
    send(&mut ws, "x".repeat(MAX_FRAME_BYTES + 1)).await;
    let code = closed(&mut ws).await;
    assert!(code.is_none() || code == Some(1009), "close code {code:?}");
    wait_stat(addr, "connections", 0).await;
}

#[tokio::test]
async fn plain_http_to_the_tracker_is_told_to_upgrade() {
    let (addr, _stop) = start_tracker().await;
    let (status, body) = http_get(addr, "/announce").await;
    assert_eq!(status, 426);
    assert!(body.contains("WebSocket"), "{body}");
}

#[tokio::test]
async fn shutdown_closes_open_websockets() {
    let (addr, stop) = start_tracker().await;
    let mut ws = connect(&format!("ws://{addr}/announce")).await;
    wait_stat(addr, "connections", 1).await;
    stop.send(()).unwrap();
    assert_eq!(closed(&mut ws).await, Some(1001));
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("seedtab-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn serve_gives_files_config_and_tracker_on_one_address() {
    let www = TempDir::new("www");
    std::fs::write(
        www.0.join("index.html"),
        "<!doctype html><title>seedtab</title>",
    )
    .unwrap();
    std::fs::write(www.0.join("hello.txt"), "hello from www").unwrap();
    std::fs::write(
        www.0.join("embed.html"),
        "<!doctype html><title>seedtab player</title>",
    )
    .unwrap();
    let opts = ServeOptions {
        www: www.0.clone(),
        ice_servers: vec![
            "stun:stun.example.invalid:3478".into(),
            "turn:turn.example.invalid".into(),
        ],
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_app(listener, opts, async move {
        let _ = stopped.await;
    }));

    assert_eq!(
        http_get(addr, "/hello.txt").await,
        (200, "hello from www".into())
    );
    let (status, index) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(index.contains("<title>seedtab</title>"));
    let (status, fallback) = http_get(addr, "/torrent/abc").await;
    assert_eq!(
        (status, fallback),
        (200, index),
        "client-side routes get index.html"
    );

    let (status, embed) = http_get(addr, "/embed").await;
    assert_eq!(status, 200);
    assert!(
        embed.contains("seedtab player"),
        "/embed is the player page"
    );

    let (status, config) = http_get(addr, "/config.json").await;
    assert_eq!(status, 200);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config,
        serde_json::json!({
            "iceServers": [{"urls": "stun:stun.example.invalid:3478"}, {"urls": "turn:turn.example.invalid"}],
            "trackers": []
        })
    );

    let mut ws = connect(&format!("ws://{addr}/announce")).await;
    let (ih, peer, _) = ids();
    send(
        &mut ws,
        announce_json(&ih, &peer, AnnounceEvent::Started, 0, 0, Some(5), 0, &[]),
    )
    .await;
    assert!(matches!(
        next_event(&mut ws).await,
        TrackerEvent::AnnounceReply {
            incomplete: Some(1),
            ..
        }
    ));
}
