//! A hostile WebRTC peer for the browser tests (tests/browser/hostile.test.mjs, issue 10): it
//! joins one swarm through a WebSocket tracker like the native peer does (one offer with its
//! announce; offers relayed to it are ignored), and once its data channel is open and it has sent
//! a valid BitTorrent handshake for the info-hash, misbehaves as `--attack` says:
//!
//! - `bad-data`: claims every piece (HaveAll + Unchoke) and answers every Request with garbage.
//! - `huge-prefix`: a 4 GiB length prefix.
//! - `flood`: Interested, then tens of thousands of Requests a second, never reading anything.
//! - `oversized-request`: HaveNone, Interested and one 256 KiB Request.
//! - `wrong-infohash`: a handshake for another torrent (instead of the valid one).
//!
//! It prints JSON lines on stdout: `{"event":"open","peerId":HEX}` when the channel to the peer
//! that answered its offer opened, then
//! `{"event":"closed","afterMs":N,"bytesSent":N,"bytesReceived":N,"reason":"…"}` when the victim
//! closed the channel or the connection (`afterMs` counts from `open`), and exits 0. Anything
//! else (no tracker, no connection, the victim still talking at the deadline) is an error:
//! a message on stderr, exit 1. It talks to nothing but the tracker URL and the WebRTC peers
//! the tracker introduces (run it inside the test network namespace, DESIGN.md §5).
//!
//! ```sh
//! cargo build --release --features native --example hostile_peer
//! target/release/examples/hostile_peer --tracker ws://127.0.0.1:PORT/announce \
//!     --info-hash HEX --attack bad-data [--bind IP] [--timeout-s 60]
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seedtab::id::{InfoHash, PeerId};
use seedtab::native::rtc::{self, Channel, ConnEvent, RtcConfig};
use seedtab::native::tracker_client::{TrackerConn, TrackerInput};
use seedtab::rng::Rng;
use seedtab::signal::client::{announce_json, AnnounceEvent, OfferOut, TrackerEvent};
use seedtab::wire::{BlockRef, Decoder, Frame, Handshake, Message, DEFAULT_MAX_MESSAGE_LEN};
use tokio::sync::mpsc;

/// An offer that has not opened a channel by then is replaced by a fresh one.
const OFFER_RETRY: Duration = Duration::from_secs(15);
/// The tracker said nobody else is in the swarm: offer again this soon.
const ALONE_RETRY: Duration = Duration::from_millis(500);
/// Flood: one batch of requests per tick while little is queued (~40,000 requests a second).
const FLOOD_TICK: Duration = Duration::from_millis(10);
const FLOOD_BATCH: usize = 400;
const FLOOD_QUEUE_LIMIT: usize = 512 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attack {
    BadData,
    HugePrefix,
    Flood,
    OversizedRequest,
    WrongInfoHash,
}

impl Attack {
    fn parse(s: &str) -> Option<Attack> {
        Some(match s {
            "bad-data" => Attack::BadData,
            "huge-prefix" => Attack::HugePrefix,
            "flood" => Attack::Flood,
            "oversized-request" => Attack::OversizedRequest,
            "wrong-infohash" => Attack::WrongInfoHash,
            _ => return None,
        })
    }
}

struct Args {
    tracker: String,
    info_hash: InfoHash,
    attack: Attack,
    bind: Option<String>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut tracker = None;
    let mut info_hash = None;
    let mut attack = None;
    let mut bind = None;
    let mut timeout_s = 60u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tracker" => tracker = Some(value()?),
            "--info-hash" => {
                let v = value()?;
                info_hash =
                    Some(InfoHash::from_hex(&v).map_err(|e| format!("--info-hash {v}: {e:?}"))?);
            }
            "--attack" => {
                let v = value()?;
                attack = Some(Attack::parse(&v).ok_or_else(|| format!("unknown --attack {v}"))?);
            }
            "--bind" => bind = Some(value()?),
            "--timeout-s" => {
                let v = value()?;
                timeout_s = v
                    .parse()
                    .map_err(|_| format!("--timeout-s {v}: not a number"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        tracker: tracker.ok_or("--tracker URL is required")?,
        info_hash: info_hash.ok_or("--info-hash HEX is required")?,
        attack: attack.ok_or(
            "--attack NAME is required \
             (bad-data, huge-prefix, flood, oversized-request, wrong-infohash)",
        )?,
        bind,
        timeout: Duration::from_secs(timeout_s),
    })
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fail(msg: &str) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("hostile_peer: {msg}");
    std::process::exit(1);
}

enum Input {
    Tracker(TrackerInput),
    /// Events of connection number `.0` (one per offer made).
    Conn(u64, ConnEvent),
}

/// The open channel, with what went through it.
struct Open {
    channel: Channel,
    at: Instant,
    handed: Arc<AtomicU64>,
    received: u64,
    decoder: Decoder,
}

impl Open {
    fn send(&self, bytes: Vec<u8>) {
        self.handed.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.channel.send(bytes);
    }

    fn bytes_sent(&self) -> u64 {
        self.handed
            .load(Ordering::Relaxed)
            .saturating_sub(self.channel.queued() as u64)
    }
}

fn msgs(list: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in list {
        m.encode(&mut out);
    }
    out
}

/// What the attack sends as soon as the channel is open.
fn opening(attack: Attack, info_hash: InfoHash, me: PeerId) -> Vec<u8> {
    let ih = if attack == Attack::WrongInfoHash {
        InfoHash([0x5A; 20])
    } else {
        info_hash
    };
    let mut out = Handshake::new(ih, me).encode().to_vec();
    match attack {
        Attack::BadData => out.extend(msgs(&[Message::HaveAll, Message::Unchoke])),
        Attack::HugePrefix => out.extend([0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0, 0]),
        Attack::Flood => out.extend(msgs(&[Message::HaveNone, Message::Interested])),
        Attack::OversizedRequest => out.extend(msgs(&[
            Message::HaveNone,
            Message::Interested,
            Message::Request(BlockRef {
                index: 0,
                begin: 0,
                length: 256 * 1024,
            }),
        ])),
        Attack::WrongInfoHash => {}
    }
    out
}

/// Writes requests for block 0 of piece 0 (valid in any torrent of pieces ≥ 16 KiB) while the
/// channel's queue is short; never reads.
fn spawn_flood(open: &Open) {
    let channel = open.channel.clone();
    let handed = open.handed.clone();
    let mut batch = Vec::new();
    for _ in 0..FLOOD_BATCH {
        Message::Request(BlockRef {
            index: 0,
            begin: 0,
            length: 16 * 1024,
        })
        .encode(&mut batch);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLOOD_TICK);
        loop {
            tick.tick().await;
            if channel.queued() < FLOOD_QUEUE_LIMIT {
                handed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if !channel.send(batch.clone()) {
                    return;
                }
            }
        }
    });
}

/// Bad data: garbage blocks for every Request the victim sends.
fn answer_requests(open: &mut Open, data: &[u8], rng: &mut Rng) {
    open.decoder.push(data);
    loop {
        match open.decoder.next_frame() {
            Ok(Some(Frame::Message(Message::Request(r)))) => {
                let mut block = vec![0u8; r.length.min(16 * 1024) as usize];
                rng.fill(&mut block);
                let piece = msgs(&[Message::Piece {
                    index: r.index,
                    begin: r.begin,
                    data: block,
                }]);
                open.send(piece);
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                // Nothing more to answer; the victim is the one expected to hang up.
                eprintln!("hostile_peer: stopped decoding the victim: {e}");
                return;
            }
        }
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| fail(&e));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("tokio: {e}")));
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let started = Instant::now();
    let mut rng = Rng::new(seedtab::native::entropy_seed());
    let mut random12 = [0u8; 12];
    rng.fill(&mut random12);
    let mut me = PeerId::generate(random12);
    me.0[..8].copy_from_slice(b"-XX0001-");
    let config = RtcConfig {
        bind: vec![format!("{}:0", args.bind.as_deref().unwrap_or("0.0.0.0"))],
        ice_servers: Vec::new(),
    };
    let left = if args.attack == Attack::BadData {
        Some(0)
    } else {
        None
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let ttx = tx.clone();
    let tracker = TrackerConn::start(
        args.tracker.clone(),
        Arc::new(move |ev| {
            let _ = ttx.send(Input::Tracker(ev));
        }),
    );

    let deadline = tokio::time::sleep(args.timeout);
    tokio::pin!(deadline);
    let mut retry = tokio::time::interval(Duration::from_millis(250));
    let mut connected = false;
    // The connection for the current offer: (number, offer id, conn).
    let mut pending: Option<(u64, [u8; 20], Arc<rtc::Conn>)> = None;
    let mut next_offer_at = Instant::now();
    // Who answered the current offer: the victim, named in the `open` line.
    let mut answered_by: Option<PeerId> = None;
    let mut next_conn = 0u64;
    let mut open: Option<(u64, Open)> = None;
    let mut announced = false;

    loop {
        // Make (or replace) the offer when connected, not open yet, and the last one is stale.
        if connected && open.is_none() && Instant::now() >= next_offer_at {
            next_offer_at = Instant::now() + OFFER_RETRY;
            if let Some((_, _, old)) = pending.take() {
                old.close().await;
            }
            answered_by = None;
            next_conn += 1;
            let n = next_conn;
            let ctx = tx.clone();
            let sink: rtc::EventSink = Arc::new(move |ev| {
                let _ = ctx.send(Input::Conn(n, ev));
            });
            match rtc::offer(&config, sink).await {
                Ok((conn, sdp)) => {
                    let mut offer_id = [0u8; 20];
                    rng.fill(&mut offer_id);
                    let event = if announced {
                        AnnounceEvent::Update
                    } else {
                        AnnounceEvent::Started
                    };
                    announced = true;
                    tracker.send(announce_json(
                        &args.info_hash,
                        &me,
                        event,
                        0,
                        0,
                        left,
                        1,
                        &[OfferOut { offer_id, sdp }],
                    ));
                    eprintln!("hostile_peer: offer {n} announced");
                    pending = Some((n, offer_id, Arc::new(conn)));
                }
                Err(e) => fail(&format!("making an offer: {e}")),
            }
        }

        tokio::select! {
            _ = &mut deadline => {
                let state = match &open {
                    Some((_, o)) => format!(
                        "the channel is still open after {} ms, {} bytes sent",
                        o.at.elapsed().as_millis(),
                        o.bytes_sent()
                    ),
                    None => "no channel ever opened".to_string(),
                };
                fail(&format!("deadline of {} s reached: {state}", args.timeout.as_secs()));
            }
            _ = retry.tick() => {}
            input = rx.recv() => {
                let Some(input) = input else { fail("event channel closed") };
                match input {
                    Input::Tracker(TrackerInput::Connected) => {
                        eprintln!("hostile_peer: tracker connected");
                        connected = true;
                        next_offer_at = Instant::now();
                    }
                    Input::Tracker(TrackerInput::Disconnected(why)) => {
                        // Before the channel is up this peer has nothing to wait for; after, the
                        // tracker no longer matters.
                        if open.is_none() {
                            let ms = started.elapsed().as_millis();
                            fail(&format!("tracker {} after {ms} ms: {why}", args.tracker));
                        }
                        connected = false;
                    }
                    Input::Tracker(TrackerInput::BadFrame(e)) => {
                        eprintln!("hostile_peer: bad tracker frame: {e}")
                    }
                    Input::Tracker(TrackerInput::Event(ev)) => match ev {
                        TrackerEvent::Answer { offer_id, sdp, peer_id, .. } => {
                            if let Some((n, id, conn)) = &pending {
                                if *id == offer_id {
                                    eprintln!("hostile_peer: answer {n} from {peer_id}");
                                    answered_by = Some(peer_id);
                                    if let Err(e) = conn.accept_answer(sdp).await {
                                        eprintln!("hostile_peer: {e}");
                                    }
                                }
                            }
                        }
                        TrackerEvent::AnnounceReply { complete, incomplete, .. } => {
                            // Alone in the swarm: the offer went to nobody. Ask again soon, so
                            // the victim gets the next one as soon as it has announced.
                            let members = complete.unwrap_or(0) + incomplete.unwrap_or(0);
                            if open.is_none() && members <= 1 {
                                next_offer_at = next_offer_at.min(Instant::now() + ALONE_RETRY);
                            }
                        }
                        TrackerEvent::Failure { reason, .. } => {
                            fail(&format!("tracker failure: {reason}"))
                        }
                        // Offers from others (the victim's own among them) are not answered: the
                        // one connection is the one this peer offered.
                        _ => {}
                    },
                    Input::Conn(n, ev) => match ev {
                        ConnEvent::Open(channel) => {
                            if open.is_some() || pending.as_ref().is_none_or(|p| p.0 != n) {
                                // A late channel of a replaced offer: not the one to attack with.
                                continue;
                            }
                            let o = Open {
                                channel,
                                at: Instant::now(),
                                handed: Arc::new(AtomicU64::new(0)),
                                received: 0,
                                decoder: Decoder::new(DEFAULT_MAX_MESSAGE_LEN),
                            };
                            let peer = answered_by.map(|p| p.to_hex());
                            let line = serde_json::json!({ "event": "open", "peerId": peer });
                            emit(&line.to_string());
                            o.send(opening(args.attack, args.info_hash, me));
                            if args.attack == Attack::Flood {
                                spawn_flood(&o);
                            }
                            open = Some((n, o));
                        }
                        ConnEvent::Message(data) => {
                            if let Some((_, o)) = open.as_mut().filter(|(on, _)| *on == n) {
                                o.received += data.len() as u64;
                                if args.attack == Attack::BadData {
                                    answer_requests(o, &data, &mut rng);
                                }
                            }
                        }
                        ConnEvent::Writable => {}
                        ConnEvent::Closed(reason) => {
                            if let Some((on, o)) = &open {
                                if *on == n {
                                    let line = serde_json::json!({
                                        "event": "closed",
                                        "afterMs": o.at.elapsed().as_millis() as u64,
                                        "bytesSent": o.bytes_sent(),
                                        "bytesReceived": o.received,
                                        "reason": reason,
                                    });
                                    emit(&line.to_string());
                                    std::process::exit(0);
                                }
                            } else if pending.as_ref().is_some_and(|p| p.0 == n) {
                                eprintln!("hostile_peer: connection {n} failed: {reason}");
                                if let Some((_, _, old)) = pending.take() {
                                    old.close().await;
                                }
                                let soon = Instant::now() + Duration::from_secs(2);
                                next_offer_at = next_offer_at.min(soon);
                            }
                        }
                    },
                }
            }
        }
    }
}
