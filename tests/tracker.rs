#![cfg(all(feature = "native", not(target_arch = "wasm32")))]
//! End to end: the real axum tracker and app server on 127.0.0.1:0, driven by tokio-tungstenite
//! clients speaking the WebTorrent tracker protocol, and plain HTTP for files and /config.json.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
mod common;

use common::http::{http_get, stats};
use seedtab::id::{InfoHash, PeerId};
use seedtab::native::serve::{serve_app, ServeOptions};
use seedtab::native::tracker::{serve_tracker, serve_tracker_with, ConnLimits};
use seedtab::signal::client::{
    announce_json, answer_json, parse_tracker_message, scrape_json, AnnounceEvent, OfferOut,
    TrackerEvent,
};
use seedtab::signal::msg::MAX_FRAME_BYTES;
use seedtab::signal::server::TrackerConfig;
use seedtab::signal::ws_frame;
use seedtab::testdir::TempDir;
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
    assert_eq!(stats(addr).await["rejections"]["frame_too_big"], 1);
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

    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("seedtab_tracker_connections 0"),
        "{metrics}"
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

/// A tracker with explicit limits; returns its address and the stop switch.
async fn start_tracker_with(
    config: TrackerConfig,
    limits: ConnLimits,
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_tracker_with(listener, config, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// GET with extra request headers; status, response head and body.
async fn http_get_with(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Waits for the server's close frame; returns its code and reason.
async fn close_frame(ws: &mut Ws) -> (u16, String) {
    loop {
        match timeout(WAIT, ws.next())
            .await
            .expect("socket not closed in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) | Some(Err(_)) | None => {
                panic!("closed without a frame")
            }
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn connections_per_ip_are_limited_with_a_policy_close() {
    let limits = ConnLimits {
        max_conns_per_ip: 3,
        ..ConnLimits::default()
    };
    let (addr, _stop) = start_tracker_with(TrackerConfig::default(), limits).await;
    let url = format!("ws://{addr}/announce");
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&url).await);
    }
    wait_stat(addr, "connections", 3).await;
    // Many more from the same address: each is told why and closed; none is counted as open.
    for _ in 0..5 {
        let mut extra = connect(&url).await;
        let (code, reason) = close_frame(&mut extra).await;
        assert_eq!(code, 1008);
        assert!(
            reason.contains("too many connections") && reason.contains("limit 3"),
            "{reason}"
        );
    }
    let s = stats(addr).await;
    assert_eq!(s["connections"], 3);
    assert_eq!(s["rejections"]["conns_per_ip"], 5);
    // The ones inside the limit still work, and closing one frees a slot.
    let (ih, peer, _) = ids();
    send(
        &mut open[0],
        announce_json(&ih, &peer, AnnounceEvent::Started, 0, 0, Some(1), 0, &[]),
    )
    .await;
    assert!(matches!(
        next_event(&mut open[0]).await,
        TrackerEvent::AnnounceReply { .. }
    ));
    open.pop().unwrap().close(None).await.unwrap();
    wait_stat(addr, "connections", 2).await;
    let mut again = connect(&url).await;
    send(&mut again, scrape_json(&[ih])).await;
    assert!(matches!(
        next_event(&mut again).await,
        TrackerEvent::Scrape { .. }
    ));
}

#[tokio::test]
async fn silent_sockets_and_slow_requests_are_timed_out() {
    let limits = ConnLimits {
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(800),
        ..ConnLimits::default()
    };
    let (addr, _stop) = start_tracker_with(TrackerConfig::default(), limits).await;
    let url = format!("ws://{addr}/announce");

    // Upgraded, but never a message.
    let mut mute = connect(&url).await;
    let (code, reason) = close_frame(&mut mute).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("no message within 0.3 s"), "{reason}");

    // Talks in time, keeps talking, then goes quiet.
    let (ih, peer, _) = ids();
    let mut chatty = connect(&url).await;
    let started = tokio::time::Instant::now();
    send(
        &mut chatty,
        announce_json(&ih, &peer, AnnounceEvent::Started, 0, 0, Some(1), 0, &[]),
    )
    .await;
    next_event(&mut chatty).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        send(&mut chatty, scrape_json(&[ih])).await;
        next_event(&mut chatty).await;
    }
    let (code, reason) = close_frame(&mut chatty).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_800),
        "messages reset the idle timer"
    );
    assert_eq!(code, 1000);
    assert!(reason.contains("idle"), "{reason}");
    // Its peer left with it.
    wait_stat(addr, "peers", 0).await;

    // A raw TCP client that never finishes its request headers is cut off.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = timeout(WAIT, slow.read_to_end(&mut buf))
        .await
        .expect("not cut off");
    assert!(
        read.is_err() || buf.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&buf)
    );

    // Requests that do arrive in time are served however long they stay open afterwards.
    assert_eq!(http_get(addr, "/stats").await.0, 200);
    let s = stats(addr).await;
    assert_eq!(s["rejections"]["handshake_timeout"], 2, "{s}");
    assert_eq!(s["rejections"]["idle_timeout"], 1, "{s}");
}

#[tokio::test]
async fn rate_limit_and_garbage_over_a_real_socket() {
    let config = TrackerConfig {
        messages_per_s: 1,
        message_burst: 4,
        ..TrackerConfig::default()
    };
    let (addr, _stop) = start_tracker_with(config, ConnLimits::default()).await;
    let mut ws = connect(&format!("ws://{addr}/announce")).await;
    let (ih, peer, _) = ids();
    let ann = || announce_json(&ih, &peer, AnnounceEvent::Started, 0, 0, Some(1), 0, &[]);
    for _ in 0..4 {
        send(&mut ws, ann()).await;
        assert!(matches!(
            next_event(&mut ws).await,
            TrackerEvent::AnnounceReply { .. }
        ));
    }
    send(&mut ws, ann()).await;
    let TrackerEvent::Failure { info_hash, reason } = next_event(&mut ws).await else {
        panic!()
    };
    assert_eq!(info_hash, Some(ih), "labelled with the torrent");
    assert!(reason.contains("rate limit"), "{reason}");

    // Garbage from many sockets: refused one by one, the server stays up and keeps nothing.
    let garbage = [
        "[".repeat(60_000),
        r#"{"action":"announce","info_hash":"\u0100\u0100","peer_id":1e400}"#.into(),
        format!(
            r#"{{"action":"announce","info_hash":"{}","peer_id":"short"}}"#,
            "a".repeat(20)
        ),
        format!(
            r#"{{"action":"announce","info_hash":"{0}","peer_id":"{0}","to_peer_id":"{0}","offer_id":"{1}","answer":{{"sdp":"x"}}}}"#,
            "a".repeat(20),
            "b".repeat(21)
        ),
    ];
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut g = connect(&format!("ws://{addr}/announce")).await;
        for frame in &garbage {
            send(&mut g, frame.clone()).await;
            assert!(matches!(
                next_event(&mut g).await,
                TrackerEvent::Failure { .. }
            ));
        }
        sockets.push(g);
    }
    // Half say goodbye, half just vanish: neither is a rejection.
    for (i, mut g) in sockets.into_iter().enumerate() {
        if i % 2 == 0 {
            g.close(None).await.unwrap();
        }
    }
    wait_stat(addr, "connections", 1).await;
    let s = stats(addr).await;
    assert_eq!(s["rejections"]["malformed"], 80, "{s}");
    assert_eq!(s["rejections"]["rate_limited"], 1, "{s}");
    assert_eq!(s["rejections"]["protocol_error"], 0, "{s}");
    assert_eq!(
        (s["swarms"].as_u64(), s["peers"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn stats_page_escapes_client_data_and_json_stays_the_default() {
    let (addr, _stop) = start_tracker().await;
    // An info-hash and peer id that are markup when read as latin-1.
    let ih = InfoHash(*b"<script>alert(1)</s>");
    let peer = PeerId(*b"\"><img src=x onerr>&");
    let mut ws = connect(&format!("ws://{addr}/announce")).await;
    send(
        &mut ws,
        announce_json(&ih, &peer, AnnounceEvent::Started, 0, 0, Some(3), 0, &[]),
    )
    .await;
    next_event(&mut ws).await;

    let browser = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";
    let (status, head, page) = http_get_with(addr, "/stats", browser).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(page.contains(&ih.to_hex()), "info-hash shown as hex");
    for raw in ["<script", "<img", "onerr>", "alert(1)</s"] {
        assert!(!page.contains(raw), "{raw} leaked into the page");
    }
    assert!(page.contains("<td>1</td>"), "one leecher listed");

    // Scripts (fetch and curl send */*) keep the JSON, with the old fields and the new one.
    for accept in ["", "Accept: */*\r\n", "Accept: application/json\r\n"] {
        let (status, head, body) = http_get_with(addr, "/stats", accept).await;
        assert_eq!(status, 200);
        assert!(head.contains("application/json"), "{head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["peers"].as_u64(), v["announces"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(v["rejections"].is_object());
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (addr, _stop) = start_tracker().await;
    let (ih, seeder, leecher) = ids();
    let mut a = connect(&format!("ws://{addr}/announce")).await;
    send(
        &mut a,
        announce_json(&ih, &seeder, AnnounceEvent::Started, 0, 0, Some(0), 0, &[]),
    )
    .await;
    next_event(&mut a).await;
    let mut b = connect(&format!("ws://{addr}/announce")).await;
    let offer = OfferOut {
        offer_id: [9; 20],
        sdp: "v=0\r\n".into(),
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
            &[offer],
        ),
    )
    .await;
    next_event(&mut b).await;
    next_event(&mut a).await;
    send(&mut b, "garbage".into()).await;
    next_event(&mut b).await;

    let (status, head, body) = http_get_with(addr, "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // Parse every sample line: name{labels} value, each preceded by its TYPE.
    let mut samples = std::collections::BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "gauge" || kind == "counter", "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "{name} has no TYPE line");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
        samples.insert(series.to_owned(), value.parse::<f64>().unwrap());
    }
    let get = |k: &str| samples.get(k).copied().unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("seedtab_tracker_connections"), 2.0);
    assert_eq!(get("seedtab_tracker_swarms"), 1.0);
    assert_eq!(get("seedtab_tracker_peers"), 2.0);
    assert_eq!(get("seedtab_tracker_announces_total"), 2.0);
    assert_eq!(get("seedtab_tracker_offers_relayed_total"), 1.0);
    assert_eq!(get("seedtab_tracker_answers_forwarded_total"), 0.0);
    assert_eq!(get("seedtab_tracker_dropped_frames_total"), 0.0);
    assert_eq!(
        get(r#"seedtab_tracker_rejections_total{reason="malformed"}"#),
        1.0
    );
    assert_eq!(
        get(r#"seedtab_tracker_rejections_total{reason="conns_per_ip"}"#),
        0.0
    );
    assert!(get("seedtab_tracker_announces_per_second") >= 0.0);
}

/// Opens a WebSocket by hand and returns the socket after the 101 response.
async fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /announce HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        timeout(WAIT, s.read_exact(&mut b)).await.unwrap().unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The RFC 6455 example key and its answer.
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    s
}

/// A client frame: masked, with the given first byte (FIN and opcode).
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    ws_frame::push_raw_frame(&mut f, first, payload, Some([0x12, 0x34, 0x56, 0x78]));
    f
}

/// The next server frame: (first byte, payload).
async fn raw_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    timeout(WAIT, s.read_exact(&mut h)).await.unwrap().unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7F {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.unwrap();
            usize::from(u16::from_be_bytes(l))
        }
        127 => panic!("no frame here is that long"),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    timeout(WAIT, s.read_exact(&mut payload))
        .await
        .unwrap()
        .unwrap();
    (h[0], payload)
}

#[tokio::test]
async fn websocket_framing_fragments_pings_close_and_protocol_errors() {
    let (addr, _stop) = start_tracker().await;
    let (ih, _, _) = ids();

    // A scrape split over three fragments with a ping between them: the pong comes first, then
    // the reply to the whole message.
    let mut s = raw_websocket(addr).await;
    let text = scrape_json(&[ih]);
    let (a, rest) = text.as_bytes().split_at(10);
    let (b, c) = rest.split_at(5);
    let mut wire = masked(0x01, a);
    wire.extend(masked(0x89, b"are you there"));
    wire.extend(masked(0x00, b));
    wire.extend(masked(0x80, c));
    s.write_all(&wire).await.unwrap();
    assert_eq!(raw_frame(&mut s).await, (0x8A, b"are you there".to_vec()));
    let (first, reply) = raw_frame(&mut s).await;
    assert_eq!(first, 0x81);
    assert!(matches!(
        parse_tracker_message(std::str::from_utf8(&reply).unwrap())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&reply))),
        TrackerEvent::Scrape { .. }
    ));

    // A clean close is echoed with the client's code.
    s.write_all(&masked(0x88, &4000u16.to_be_bytes()))
        .await
        .unwrap();
    let (first, payload) = raw_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &4000u16.to_be_bytes()[..]));
    wait_stat(addr, "connections", 0).await;

    // An unmasked client frame breaks RFC 6455: close 1002, counted.
    let mut s = raw_websocket(addr).await;
    s.write_all(b"\x81\x02{}").await.unwrap();
    let (first, payload) = raw_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &1002u16.to_be_bytes()[..]));
    // Text that is not UTF-8: close 1007.
    let mut s = raw_websocket(addr).await;
    s.write_all(&masked(0x81, &[0xC3, 0x28])).await.unwrap();
    let (first, payload) = raw_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &1007u16.to_be_bytes()[..]));
    // A length over the limit is refused from the header alone, before any payload is sent.
    let mut s = raw_websocket(addr).await;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    s.write_all(&header).await.unwrap();
    let (first, payload) = raw_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &1009u16.to_be_bytes()[..]));
    wait_stat(addr, "connections", 0).await;
    let st = stats(addr).await;
    assert_eq!(st["rejections"]["protocol_error"], 2, "{st}");
    assert_eq!(st["rejections"]["frame_too_big"], 1, "{st}");

    // A WebSocket request of another version is refused before the upgrade.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET /announce HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    timeout(WAIT, s.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}
