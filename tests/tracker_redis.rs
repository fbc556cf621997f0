#![cfg(all(feature = "native", not(target_arch = "wasm32")))]
//! Two `seedtab tracker` processes sharing swarms through a real `redis-server` (Debian's
//! package, started here on a free port of 127.0.0.1, no persistence), with WebTorrent-protocol
//! peers split across them: offers and answers relayed across instances, counts that include
//! the other instance's peers, leaving peers disappearing from the other's view, both instances
//! serving their own peers while Redis is down and sharing again once it is back, and a clean
//! shutdown removing an instance's peers from the other at once. docs/scaling.md.
//!
//! redis-server missing is a failure, not a skip: CI installs it (scripts/setup.sh).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
mod common;

use common::http::stats;
use seedtab::id::{InfoHash, PeerId};
use seedtab::signal::client::{
    announce_json, answer_json, parse_tracker_message, scrape_json, AnnounceEvent, OfferOut,
    TrackerEvent,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// For one frame or one HTTP answer.
const WAIT: Duration = Duration::from_secs(10);
/// For a view to converge across instances; after a Redis restart this includes the
/// reconnect back-off (at most 5 s).
const CONVERGE: Duration = Duration::from_secs(20);

/// A child process killed (and reaped) when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` on 127.0.0.1:`port`, nothing saved, ready when this returns.
async fn start_redis(port: u16) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}): this test needs it; install the Debian \
                 package `redis-server` (scripts/setup.sh does)"
            )
        });
    let proc = Proc(child);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut buf = [0u8; 7];
            if s.write_all(b"PING\r\n").await.is_ok()
                && timeout(WAIT, s.read_exact(&mut buf)).await.is_ok()
                && &buf == b"+PONG\r\n"
            {
                return proc;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server never answered PING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `seedtab tracker --redis ... --instance-id ID` on a free port; its address.
async fn start_instance(redis_port: u16, id: &str) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedtab"))
        .args(["tracker", "--addr", "127.0.0.1:0"])
        .args(["--redis", &format!("redis://127.0.0.1:{redis_port}")])
        .args(["--instance-id", id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = timeout(WAIT, line)
        .await
        .expect("no listening line")
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("seedtab tracker listening on ws://")
        .and_then(|rest| rest.strip_suffix("/announce"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (proc, addr)
}

/// Polls /stats until `field` equals `want`.
async fn wait_stat(addr: SocketAddr, field: &str, want: Value) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let s = stats(addr).await;
        if s[field] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}: {field} never became {want}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn connect(addr: SocketAddr) -> Ws {
    timeout(WAIT, connect_async(format!("ws://{addr}/announce")))
        .await
        .expect("connect timed out")
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::text(text)).await.unwrap();
}

async fn next_event(ws: &mut Ws) -> TrackerEvent {
    loop {
        match timeout(WAIT, ws.next()).await.expect("no frame in time") {
            Some(Ok(Message::Text(t))) => {
                return parse_tracker_message(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}"))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Nothing arrives on `ws` for a moment (used to show an offer did not go astray).
async fn quiet(ws: &mut Ws) {
    if let Ok(frame) = timeout(Duration::from_millis(300), ws.next()).await {
        panic!("unexpected frame {frame:?}");
    }
}

fn offer(n: u8, sdp: &str) -> OfferOut {
    OfferOut {
        offer_id: [n; 20],
        sdp: sdp.to_owned(),
    }
}

/// Announces and returns the reply's `(complete, incomplete)`.
async fn announce(
    ws: &mut Ws,
    ih: &InfoHash,
    pid: &PeerId,
    left: Option<u64>,
    event: AnnounceEvent,
    offers: &[OfferOut],
) -> (u64, u64) {
    let numwant = offers.len() as u32;
    send(
        ws,
        announce_json(ih, pid, event, 0, 0, left, numwant, offers),
    )
    .await;
    match next_event(ws).await {
        TrackerEvent::AnnounceReply {
            complete,
            incomplete,
            ..
        } => (complete.unwrap_or(0), incomplete.unwrap_or(0)),
        other => panic!("expected an announce reply, got {other:?}"),
    }
}

/// Waits for a relayed offer; `(from peer, offer_id, sdp)`.
async fn next_offer(ws: &mut Ws) -> (PeerId, [u8; 20], String) {
    match next_event(ws).await {
        TrackerEvent::Offer {
            peer_id,
            offer_id,
            sdp,
            ..
        } => (peer_id, offer_id, sdp),
        other => panic!("expected an offer, got {other:?}"),
    }
}

async fn next_answer(ws: &mut Ws) -> (PeerId, [u8; 20], String) {
    match next_event(ws).await {
        TrackerEvent::Answer {
            peer_id,
            offer_id,
            sdp,
            ..
        } => (peer_id, offer_id, sdp),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_swarms_through_redis() {
    let redis_port = free_port();
    let redis = start_redis(redis_port).await;
    let (_one, i1) = start_instance(redis_port, "one").await;
    let (two, i2) = start_instance(redis_port, "two").await;
    for i in [i1, i2] {
        wait_stat(i, "cluster_connected", Value::Bool(true)).await;
    }
    assert_eq!(stats(i1).await["instance_id"], "one");

    let ih = InfoHash([0xC3; 20]);
    let a = PeerId(*b"-WW0300-aaaaaaaaaaaa");
    let b = PeerId(*b"-WW0300-bbbbbbbbbbbb");

    // A, a seed, on instance one; B, a leecher, on instance two.
    let mut wa = connect(i1).await;
    let seed = announce(&mut wa, &ih, &a, Some(0), AnnounceEvent::Started, &[]).await;
    assert_eq!(seed, (1, 0));
    wait_stat(i2, "remote_peers", 1.into()).await;
    let mut wb = connect(i2).await;
    let counts = announce(
        &mut wb,
        &ih,
        &b,
        Some(100),
        AnnounceEvent::Started,
        &[offer(1, "offer-from-b")],
    )
    .await;
    assert_eq!(counts, (1, 1), "instance two counts A, on instance one");

    // B's offer crosses to A; A's answer crosses back to B.
    let (from, offer_id, sdp) = next_offer(&mut wa).await;
    assert_eq!((from, offer_id, sdp.as_str()), (b, [1; 20], "offer-from-b"));
    send(
        &mut wa,
        answer_json(&ih, &a, &b, &offer_id, "answer-from-a"),
    )
    .await;
    let (from, offer_id, sdp) = next_answer(&mut wb).await;
    assert_eq!(
        (from, offer_id, sdp.as_str()),
        (a, [1; 20], "answer-from-a")
    );

    // And the other way: A's offer to B, B's answer to A.
    let counts = announce(
        &mut wa,
        &ih,
        &a,
        Some(0),
        AnnounceEvent::Update,
        &[offer(2, "offer-from-a")],
    )
    .await;
    assert_eq!(counts, (1, 1), "instance one counts B, on instance two");
    let (from, offer_id, _) = next_offer(&mut wb).await;
    assert_eq!((from, offer_id), (a, [2; 20]));
    send(
        &mut wb,
        answer_json(&ih, &b, &a, &offer_id, "answer-from-b"),
    )
    .await;
    let (from, _, sdp) = next_answer(&mut wa).await;
    assert_eq!((from, sdp.as_str()), (b, "answer-from-b"));

    // Scrape on either instance sees both.
    send(&mut wb, scrape_json(&[ih])).await;
    match next_event(&mut wb).await {
        TrackerEvent::Scrape { files } => {
            assert_eq!(files.len(), 1);
            assert_eq!((files[0].1, files[0].2), (1, 1), "{files:?}");
        }
        other => panic!("expected a scrape reply, got {other:?}"),
    }
    let s1 = stats(i1).await;
    assert_eq!(
        (s1["peers"].as_u64(), s1["remote_peers"].as_u64()),
        (Some(1), Some(1))
    );

    // A quiet link stays up past its keep-alive ping (every 5 s): no reconnects so far.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for i in [i1, i2] {
        let s = stats(i).await;
        assert_eq!(s["cluster_joins"], 1, "{s}");
        assert_eq!(s["cluster_dropped"], 0, "{s}");
    }

    // B stops on two: one forgets it.
    announce(&mut wb, &ih, &b, Some(100), AnnounceEvent::Stopped, &[]).await;
    wait_stat(i1, "remote_peers", 0.into()).await;
    let counts = announce(&mut wa, &ih, &a, Some(0), AnnounceEvent::Update, &[]).await;
    assert_eq!(counts, (1, 0));

    // C's socket closing on two: one forgets C too.
    let c = PeerId(*b"-WW0300-cccccccccccc");
    let mut wc = connect(i2).await;
    announce(&mut wc, &ih, &c, Some(5), AnnounceEvent::Started, &[]).await;
    wait_stat(i1, "remote_peers", 1.into()).await;
    drop(wc);
    wait_stat(i1, "remote_peers", 0.into()).await;

    // B back on two, then Redis dies.
    announce(&mut wb, &ih, &b, Some(100), AnnounceEvent::Started, &[]).await;
    wait_stat(i1, "remote_peers", 1.into()).await;
    drop(redis);
    for i in [i1, i2] {
        wait_stat(i, "cluster_connected", Value::Bool(false)).await;
        wait_stat(i, "remote_peers", 0.into()).await;
    }
    // Both still serve their own peers: D joins A on one and their offers and answers flow;
    // B on two is served alone.
    let d = PeerId(*b"-WW0300-dddddddddddd");
    let mut wd = connect(i1).await;
    let counts = announce(
        &mut wd,
        &ih,
        &d,
        Some(7),
        AnnounceEvent::Started,
        &[offer(3, "offer-from-d")],
    )
    .await;
    assert_eq!(counts, (1, 1), "A and D; B is out of sight without Redis");
    let (from, offer_id, _) = next_offer(&mut wa).await;
    assert_eq!((from, offer_id), (d, [3; 20]));
    send(&mut wa, answer_json(&ih, &a, &d, &offer_id, "answer-to-d")).await;
    assert_eq!(next_answer(&mut wd).await.0, a);
    let counts = announce(
        &mut wb,
        &ih,
        &b,
        Some(100),
        AnnounceEvent::Update,
        &[offer(4, "lonely")],
    )
    .await;
    assert_eq!(counts, (0, 1), "B alone on two");
    quiet(&mut wa).await;
    quiet(&mut wd).await;

    // Redis back on the same port: the instances reconnect, say hello and tell each other
    // their peers without waiting for re-announces.
    let _redis = start_redis(redis_port).await;
    for i in [i1, i2] {
        wait_stat(i, "cluster_connected", Value::Bool(true)).await;
        assert_eq!(stats(i).await["cluster_joins"], 2);
    }
    wait_stat(i2, "remote_peers", 2.into()).await;
    wait_stat(i1, "remote_peers", 1.into()).await;
    let counts = announce(
        &mut wb,
        &ih,
        &b,
        Some(100),
        AnnounceEvent::Update,
        &[offer(5, "again-a"), offer(6, "again-d")],
    )
    .await;
    assert_eq!(counts, (1, 2), "A, D and B again");
    let (from_a, id_a, _) = next_offer(&mut wa).await;
    let (from_d, id_d, _) = next_offer(&mut wd).await;
    assert_eq!((from_a, from_d), (b, b));
    let mut ids = [id_a, id_d];
    ids.sort();
    assert_eq!(ids, [[5; 20], [6; 20]], "one offer each");

    // Instance two shuts down cleanly (SIGTERM): it says goodbye, and one drops B at once,
    // well before B would expire.
    let status = Command::new("kill")
        .args(["-TERM", &two.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_stat(i1, "remote_peers", 0.into()).await;
    let counts = announce(&mut wa, &ih, &a, Some(0), AnnounceEvent::Update, &[]).await;
    assert_eq!(counts, (1, 1), "A and D");
}
