//! Load benchmark for WebSocket trackers (issue 9, part 3; run by `bash bench/tracker.sh`):
//! seedtab's tracker (`seedtab tracker`, spawned) against bittorrent-tracker 11's server (spawned
//! as its own Node process by `bench/tracker-ref-server.mjs`), the same workload in the same run.
//!
//! K simulated WebTorrent peers (one WebSocket each) spread over S swarms connect, announce
//! `started` with N offers (fake ~600-byte SDPs, numwant N), answer every offer relayed to them
//! (an answer frame with `to_peer_id`/`offer_id`), and then, per tracker:
//!
//! 1. **idle / connect**: the tracker's VmRSS before any connection, then after K peers have
//!    connected and announced (and 2 s to settle): memory per connection = ΔRSS / K.
//! 2. **paced**: every peer re-announces (with N fresh offers) so that the K peers together send
//!    `--rate` announces/s, for `--seconds`; latencies at a load both trackers sustain: relay
//!    (peer A stamps its announce → peer B receives the relayed offer), answer (B stamps its answer
//!    → A receives it), reply (announce → its reply) and signalling round trip (A's announce →
//!    B's answer back at A). The stamp is an `a=x-ts:<µs>` line in the SDP.
//! 3. **saturation**: closed loop, each peer sends its next announce as soon as the reply to the
//!    previous one arrives (`--window` in flight per peer), still answering every offer, for
//!    `--seconds`: announces/s = replies received / s, checked against the tracker's own counter.
//! 4. **ramp**, on a fresh tracker process (a heap that went through the load phases hides new
//!    connections in memory it already holds): `--ramp-step` more peers at a time (connect +
//!    `started` with offers) up to `--max-peers` (capped below the open-file limit), until a
//!    connection fails or closes, the tracker dies, or the budget runs out: the largest number of
//!    connections held, the RSS at each step, and (RSS at the top − idle) / connections.
//!
//! Both trackers run without abuse limits: flags of `seedtab tracker --help` that look like rate or
//! per-IP limits are set to 1,000,000 (`limit_flags`; `--keep-limits` to keep the defaults).
//! Failure replies (`failure reason`) are counted and the first one is printed.
//!
//! Why Rust and not Node for the generator: per announce the generator handles as many frames as
//! the tracker does (1 announce + N answers out; 1 reply + N offers + N answers in), so a Node
//! generator would need about as much CPU as bittorrent-tracker itself and would cap seedtab's
//! figure. This one builds frames by string formatting and reads them by substring search (peer
//! ids, offer ids and SDPs are generated so that no JSON escaping is ever needed: ids are latin-1
//! chars without quotes/backslashes/control chars, ~half of them above U+007F as real binary ids
//! are). Each peer is one task owning a plain `tokio::net::TcpStream` (TCP_NODELAY) and speaking
//! WebSocket through the minimal client below rather than a WebSocket library: the HTTP/1.1
//! upgrade (status 101 and `Sec-WebSocket-Accept` checked), masked client frames (RFC 6455; a
//! fresh mask key per frame, XORed 8 bytes at a time), unmasked server frames of any length
//! (text/binary, fragmented or not; ping answered with pong; close echoed). Per wake-up a peer
//! reads what is there into its reusable buffer (grown only for a bigger frame), handles every
//! complete frame in place (no per-message allocation) and writes everything that produced (its
//! answers, a pong, in saturation its next announce) with one `write_all`. With one generator
//! thread (the pinned default) the runtime is tokio's current-thread one: no cross-thread
//! wake-ups. Against the tokio-tungstenite client it replaced this takes about 20-25 % less
//! generator CPU per announce (seedtab at ~7,500 announces/s: ~70 instead of ~87 µs; the user-space
//! part is about halved); what is left is mostly the kernel's: loopback TCP send and receive (one
//! `recv` per wake-up, one `send` per wake-up that produced frames) and epoll sleeps and wake-ups,
//! which fall per announce as the load rises and wake-ups find more frames waiting.
//!
//! The machine has 2 cores. By default (`--pin`) the tracker runs on CPU 0 and the generator on
//! CPU 1 (`taskset`), so neither steals the other's core and a generator-bound run is visible (its
//! CPU time ≈ the phase's wall time); seedtab's tracker then has one core, like Node's single
//! thread. `--no-pin` lets the scheduler place everything. Every phase reports the tracker's and
//! the generator's CPU time (/proc/PID/stat) and the CPU time of every other process on the
//! machine: if "other processes" is not near 0 another job took CPU from the run (other jobs are
//! not pinned away from CPU 0), and the tracker's CPU µs per announce is then the steadier figure.
//!
//! Bounded: loopback only (127.0.0.x), at most 100,000 peers, every wait has a deadline, and the
//! whole run gives up after `--budget-s` (the wrapper adds a hard `timeout`).
//!
//! ```sh
//! # or: cargo build --release --features native --bin seedtab --example tracker_load, then
//! #     target/release/examples/tracker_load (from the repository root) with the same options
//! bash bench/tracker.sh [--peers 2000] [--swarms 200] [--offers 5] [--sdp-bytes 600]
//!     [--seconds 10] [--rate 500] [--window 1] [--max-peers 20000] [--ramp-step 4000]
//!     [--only seedtab|bittorrent-tracker] [--no-pin] [--gen-threads T] [--source-ips N]
//!     [--tracker-arg ARG]... [--keep-limits] [--seedtab-bin PATH] [--node PATH]
//!     [--wait-quiet 60] [--out bench/results/tracker.json] [--budget-s 900]
//! ```

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seedtab::signal::ws_frame;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};

const MAX_PEERS: usize = 100_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections being opened (and waiting for their `started` reply) at once.
const CONNECTS_IN_FLIGHT: usize = 200;

const HOLD: u8 = 0;
const PACED: u8 = 1;
const SATURATE: u8 = 2;
const QUIT: u8 = 3;

#[derive(Clone)]
struct Args {
    peers: usize,
    swarms: usize,
    offers: usize,
    sdp_bytes: usize,
    seconds: f64,
    rate: f64,
    window: usize,
    max_peers: usize,
    ramp_step: usize,
    only: Option<String>,
    pin: bool,
    gen_threads: usize,
    source_ips: u8,
    tracker_args: Vec<String>,
    keep_limits: bool,
    wait_quiet: Duration,
    seedtab_bin: String,
    ref_script: String,
    node: String,
    out: String,
    budget: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        peers: 2000,
        swarms: 200,
        offers: 5,
        sdp_bytes: 600,
        seconds: 10.0,
        rate: 500.0,
        window: 1,
        max_peers: 20_000,
        ramp_step: 4000,
        only: None,
        pin: true,
        gen_threads: 0,
        source_ips: 1,
        tracker_args: Vec::new(),
        keep_limits: false,
        wait_quiet: Duration::from_secs(60),
        seedtab_bin: "target/release/seedtab".into(),
        ref_script: "bench/tracker-ref-server.mjs".into(),
        node: "node".into(),
        out: "bench/results/tracker.json".into(),
        budget: Duration::from_secs(900),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} takes a value"));
        let num = |s: String| -> Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or(format!("{flag}: not a number: {s}"))
        };
        match flag.as_str() {
            "--peers" => a.peers = num(val()?)? as usize,
            "--swarms" => a.swarms = num(val()?)? as usize,
            "--offers" => a.offers = num(val()?)? as usize,
            "--sdp-bytes" => a.sdp_bytes = num(val()?)? as usize,
            "--seconds" => a.seconds = num(val()?)?,
            "--rate" => a.rate = num(val()?)?,
            "--window" => a.window = num(val()?)? as usize,
            "--max-peers" => a.max_peers = num(val()?)? as usize,
            "--ramp-step" => a.ramp_step = num(val()?)? as usize,
            "--only" => a.only = Some(val()?),
            "--pin" => a.pin = true,
            "--no-pin" => a.pin = false,
            "--gen-threads" => a.gen_threads = num(val()?)? as usize,
            "--source-ips" => a.source_ips = (num(val()?)? as u8).max(1),
            "--tracker-arg" => a.tracker_args.push(val()?),
            "--keep-limits" => a.keep_limits = true,
            "--wait-quiet" => a.wait_quiet = Duration::from_secs_f64(num(val()?)?),
            "--seedtab-bin" => a.seedtab_bin = val()?,
            "--ref-script" => a.ref_script = val()?,
            "--node" => a.node = val()?,
            "--out" => a.out = val()?,
            "--budget-s" => a.budget = Duration::from_secs_f64(num(val()?)?),
            "-h" | "--help" => {
                let doc = include_str!("tracker_load.rs");
                for line in doc.lines().take_while(|l| l.starts_with("//!")) {
                    println!("{}", line.trim_start_matches("//!").trim_start_matches(' '));
                }
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other} (--help)")),
        }
    }
    if a.peers == 0 || a.peers > MAX_PEERS || a.swarms == 0 || a.offers > 10 || a.window == 0 {
        return Err(
            "need 1 <= --peers <= 100000, --swarms >= 1, --offers <= 10, --window >= 1".into(),
        );
    }
    if a.seconds <= 0.0 || a.seconds > 600.0 || a.rate <= 0.0 {
        return Err("need 0 < --seconds <= 600 and --rate > 0".into());
    }
    a.max_peers = a.max_peers.clamp(a.peers, MAX_PEERS);
    if let Some(o) = &a.only {
        if o != "seedtab" && o != "bittorrent-tracker" {
            return Err("--only seedtab or --only bittorrent-tracker".into());
        }
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// Small helpers: rng, ids, SDP, /proc.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// 126 chars that JSON never escapes: ASCII alphanumerics and U+00C0..U+00FF (2 bytes in UTF-8,
/// one latin-1 byte on the wire as the protocol wants).
fn id_char(i: u64) -> char {
    const ASCII: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let i = (i % 126) as usize;
    if i < ASCII.len() {
        ASCII[i] as char
    } else {
        char::from_u32(0xC0 + (i - ASCII.len()) as u32).unwrap_or('x')
    }
}

/// A 20-char id: `prefix`, then `n` in base 126, then random chars.
fn make_id(prefix: &str, n: u64, rng: &mut Rng) -> String {
    let mut s: String = prefix.into();
    let mut n = n;
    for _ in 0..4 {
        s.push(id_char(n % 126));
        n /= 126;
    }
    while s.chars().count() < 20 {
        s.push(id_char(rng.next()));
    }
    s
}

/// The part of a Chrome data-channel SDP after `v=0` and our timestamp lines, JSON-escaped (`\r\n`
/// as the 4 chars `\r\n`, as in real announces), padded so the raw SDP is about `bytes` long.
fn sdp_tail(setup: &str, bytes: usize) -> String {
    let lines = [
        "o=- 7158394619212387411 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=candidate:1467250027 1 udp 2122260223 10.213.0.2 54321 typ host generation 0 network-id 1",
        "a=ice-ufrag:Xk3d",
        "a=ice-pwd:4XoQv1bJ2ZtN0yFqR8cW7m9p",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 5B:1C:9A:27:E4:0D:73:B8:C1:56:2F:AA:08:9E:D3:41:6C:B7:25:F0:19:8D:E2:34:A5:7B:C8:03:5E:91:D6:4F",
        &format!("a=setup:{setup}"),
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ];
    // v=0 + x-ts line (+ x-ots) take ~40 bytes.
    let mut raw: usize = 40;
    let mut out = String::new();
    for l in lines {
        out.push_str(l);
        out.push_str("\\r\\n");
        raw += l.len() + 2;
    }
    if raw + 12 < bytes {
        out.push_str("a=x-pad:");
        for i in 0..(bytes - raw - 12) {
            out.push((b'a' + (i % 26) as u8) as char);
        }
        out.push_str("\\r\\n");
    }
    out
}

/// The value of `"key":"VALUE"` (no escapes inside, by construction).
fn str_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let i = frame.find(key)? + key.len();
    let rest = &frame[i..];
    rest.find('"').map(|j| &rest[..j])
}

fn num_after(frame: &str, marker: &str) -> Option<u64> {
    let i = frame.find(marker)? + marker.len();
    let digits: &str = &frame[i..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, seconds.
fn cpu_s(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime, stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clk_tck()
}

fn clk_tck() -> f64 {
    100.0
}

/// CPU seconds used by every process on the machine so far: utime + stime + cutime + cstime over
/// /proc/*/stat (a child's time moves into its parent's c-fields when reaped, so the sum only
/// loses processes that are never waited for). /proc/stat's busy jiffies are not used: on this VM
/// they undercount busy time for I/O-heavy processes (the tracker and generator alone showed 1.5
/// cores of process time in a phase where /proc/stat said 0.9).
fn all_processes_cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut total = 0.0;
    for e in dir.flatten().take(100_000) {
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{n}/stat")) else {
            continue;
        };
        let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
            continue;
        };
        total += rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse::<f64>().ok())
            .sum::<f64>();
    }
    total / clk_tck()
}

fn nofile_limit() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn http_get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.take(1 << 20).read_to_string(&mut buf).ok()?;
    let body = buf.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

async fn stats(addr: SocketAddr) -> Value {
    tokio::task::spawn_blocking(move || http_get_json(addr, "/stats"))
        .await
        .ok()
        .flatten()
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: lock-free, log-linear (64 sub-buckets per power of two, ~1.6 % resolution).

const BUCKETS: usize = 2048;

struct Hist(Vec<AtomicU64>);

impl Hist {
    fn new() -> Hist {
        Hist((0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
    }
    fn index(v: u64) -> usize {
        if v < 128 {
            return v as usize;
        }
        let b = 63 - v.leading_zeros() as u64;
        let shift = b - 6;
        let mantissa = v >> shift;
        (128 + (shift - 1) * 64 + (mantissa - 64)).min(BUCKETS as u64 - 1) as usize
    }
    fn value(i: usize) -> u64 {
        if i < 128 {
            return i as u64;
        }
        let shift = (i as u64 - 128) / 64 + 1;
        let mantissa = (i as u64 - 128) % 64 + 64;
        (mantissa << shift) + (1 << shift) / 2
    }
    fn record(&self, us: u64) {
        self.0[Self::index(us)].fetch_add(1, Relaxed);
    }
    fn reset(&self) {
        for b in &self.0 {
            b.store(0, Relaxed);
        }
    }
    /// (count, p50, p99, max) in milliseconds.
    fn summary(&self) -> Value {
        let counts: Vec<u64> = self.0.iter().map(|b| b.load(Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return json!({ "n": 0 });
        }
        let q = |p: f64| {
            let want = ((n as f64) * p).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (i, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= want {
                    return Hist::value(i) as f64 / 1000.0;
                }
            }
            f64::NAN
        };
        json!({ "n": n, "p50_ms": r3(q(0.5)), "p99_ms": r3(q(0.99)), "max_ms": r3(q(1.0)) })
    }
}

fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

// ---------------------------------------------------------------------------------------------
// The simulated peers.

#[derive(Default)]
struct Counters {
    announces_sent: AtomicU64,
    replies: AtomicU64,
    failures: AtomicU64,
    warnings: AtomicU64,
    offers_rx: AtomicU64,
    answers_sent: AtomicU64,
    answers_rx: AtomicU64,
    connect_errors: AtomicU64,
    /// Connections that ended while the benchmark still wanted them.
    closed: AtomicU64,
    open: AtomicU64,
    /// Peers whose connect failed or whose `started` got its reply.
    started_done: AtomicU64,
    paced_late: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> [u64; 7] {
        [
            self.announces_sent.load(Relaxed),
            self.replies.load(Relaxed),
            self.failures.load(Relaxed),
            self.offers_rx.load(Relaxed),
            self.answers_sent.load(Relaxed),
            self.answers_rx.load(Relaxed),
            self.warnings.load(Relaxed),
        ]
    }
}

struct Shared {
    epoch: Instant,
    tracker: SocketAddr,
    offers: usize,
    window: usize,
    source_ips: u8,
    offer_tail: String,
    answer_tail: String,
    paced_interval_us: AtomicU64,
    c: Counters,
    relay: Hist,
    answer: Hist,
    reply: Hist,
    rtt: Hist,
    first_failure: Mutex<Option<String>>,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn reset_hists(&self) {
        for h in [&self.relay, &self.answer, &self.reply, &self.rtt] {
            h.reset();
        }
    }
}

struct PeerSpec {
    index: usize,
    info_hash: String,
    peer_id: String,
    left: u64,
}

fn announce_frame(sh: &Shared, p: &PeerSpec, event: Option<&str>, rng: &mut Rng, buf: &mut String) {
    let ts = sh.now_us();
    buf.clear();
    let _ = write!(
        buf,
        r#"{{"action":"announce","info_hash":"{}","peer_id":"{}","uploaded":0,"downloaded":0,"left":{},"numwant":{}"#,
        p.info_hash, p.peer_id, p.left, sh.offers
    );
    if let Some(e) = event {
        let _ = write!(buf, r#","event":"{e}""#);
    }
    buf.push_str(r#","offers":["#);
    for k in 0..sh.offers {
        if k > 0 {
            buf.push(',');
        }
        let _ = write!(
            buf,
            r#"{{"offer":{{"type":"offer","sdp":"v=0\r\na=x-ts:{ts}\r\n{}"}},"offer_id":""#,
            sh.offer_tail
        );
        for _ in 0..20 {
            buf.push(id_char(rng.next()));
        }
        buf.push_str("\"}");
    }
    buf.push_str("]}");
}

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client (RFC 6455) on a raw TcpStream: the HTTP/1.1 upgrade, masked client
// frames, unmasked server frames (text/binary, fragmented or not; ping answered with pong; close).

/// Largest message (or fragmented message) taken from a tracker; a bigger one closes the peer.
const MAX_MESSAGE: usize = 16 << 20;
/// A peer's read buffer to begin with; it grows to hold a whole frame when one is bigger.
const READ_BUF: usize = 16 * 1024;
/// Free room wanted in the read buffer before a read (it is compacted or grown below that).
const MIN_READ: usize = 4 * 1024;
/// Longest HTTP response head accepted in the handshake.
const MAX_HEAD: usize = 8 * 1024;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Appends one final, masked client frame (`key` is the mask) carrying `payload` to `out`.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: u32) {
    ws_frame::push_raw_frame(out, 0x80 | opcode, payload, Some(key.to_be_bytes()));
}

/// Connects, sends the upgrade request for `/announce` and reads the response head: status 101
/// and the right `Sec-WebSocket-Accept`. Returns the stream and whatever came after the head
/// (the start of the peer's read buffer).
async fn connect(sh: &Shared, index: usize, rng: &mut Rng) -> Result<(TcpStream, Vec<u8>), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if sh.source_ips > 1 {
        let ip = Ipv4Addr::new(127, 0, 0, 1 + (index % sh.source_ips as usize) as u8);
        socket
            .bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
            .map_err(|e| e.to_string())?;
    }
    let mut stream = socket
        .connect(sh.tracker)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next().to_le_bytes());
    nonce[8..].copy_from_slice(&rng.next().to_le_bytes());
    let key = ws_frame::client_key(&nonce);
    let request = format!(
        "GET /announce HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        sh.tracker
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("handshake: response head too long".into());
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Err("handshake: connection closed".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("handshake: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake: {status}"));
    }
    let accept = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| v.trim())
    });
    if accept != Some(ws_frame::accept_key(key.as_bytes()).as_str()) {
        return Err(format!("handshake: bad Sec-WebSocket-Accept {accept:?}"));
    }
    buf.drain(..head_end);
    Ok((stream, buf))
}

enum Step {
    Continue,
    Closed,
}

/// One peer's connection state besides the stream: the read buffer (bytes `rpos..` not parsed
/// yet), a fragmented message being put together, and what the peer sends (`tx`).
struct Conn {
    rbuf: Vec<u8>,
    rpos: usize,
    /// Length of the incomplete frame at `rpos` when known (header read), else 0.
    need: usize,
    frag: Vec<u8>,
    /// Opcode of the fragmented message being assembled, 0 if none.
    frag_op: u8,
    tx: Tx,
}

/// The sending side: frames produced in a wake-up are appended to `out`, which goes out in one
/// `write_all` at the end of the wake-up.
struct Tx {
    out: Vec<u8>,
    /// Mask keys (a stream apart from the peer's own rng, so ids are as before).
    mask: Rng,
    /// Send times of announces waiting for their reply, oldest first.
    pending: VecDeque<u64>,
    /// Scratch for the JSON of one frame.
    buf: String,
}

impl Tx {
    /// Appends `buf` as a text frame.
    fn text(&mut self) {
        let key = self.mask.next() as u32;
        push_frame(&mut self.out, OP_TEXT, self.buf.as_bytes(), key);
    }

    fn control(&mut self, opcode: u8, payload: &[u8]) {
        let key = self.mask.next() as u32;
        push_frame(&mut self.out, opcode, payload, key);
    }

    fn announce(&mut self, sh: &Shared, p: &PeerSpec, event: Option<&str>, rng: &mut Rng) {
        announce_frame(sh, p, event, rng, &mut self.buf);
        self.pending.push_back(sh.now_us());
        sh.c.announces_sent.fetch_add(1, Relaxed);
        self.text();
    }

    /// Saturation: announces until `--window` are in flight.
    fn top_up(&mut self, sh: &Shared, p: &PeerSpec, rng: &mut Rng) {
        while self.pending.len() < sh.window {
            self.announce(sh, p, None, rng);
        }
    }
}

impl Conn {
    /// Makes room in the read buffer: at least MIN_READ bytes free, and room for all of the
    /// incomplete frame at `rpos`.
    fn prepare_read(&mut self) {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        let want = self.need.max(self.rbuf.len() - self.rpos + MIN_READ);
        if self.rbuf.capacity() - self.rpos < want {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
            if self.rbuf.capacity() < want {
                self.rbuf.reserve(want - self.rbuf.len());
            }
        }
    }

    /// Parses and handles every complete frame in the read buffer.
    fn process(&mut self, sh: &Shared, p: &PeerSpec) -> Step {
        self.need = 0;
        loop {
            let avail = &self.rbuf[self.rpos..];
            if avail.len() < 2 {
                return Step::Continue;
            }
            let (b0, b1) = (avail[0], avail[1]);
            let (len, mut hlen) = match b1 & 0x7f {
                126 if avail.len() >= 4 => (u16::from_be_bytes([avail[2], avail[3]]) as u64, 4),
                127 if avail.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&avail[2..10]);
                    (u64::from_be_bytes(l), 10)
                }
                126 | 127 => return Step::Continue,
                n => (n as u64, 2),
            };
            let masked = b1 & 0x80 != 0;
            if masked {
                hlen += 4;
            }
            if len > MAX_MESSAGE as u64 {
                note_failure(sh, &format!("frame of {len} bytes from the tracker"));
                return Step::Closed;
            }
            let total = hlen + len as usize;
            if avail.len() < total {
                self.need = total;
                return Step::Continue;
            }
            let (start, end) = (self.rpos + hlen, self.rpos + total);
            if masked {
                let mut key = [0u8; 4];
                key.copy_from_slice(&self.rbuf[start - 4..start]);
                ws_frame::apply_mask(&mut self.rbuf[start..end], key);
            }
            self.rpos = end;
            let fin = b0 & 0x80 != 0;
            let op = b0 & 0x0f;
            let step = match op {
                OP_TEXT | OP_BINARY if self.frag_op == 0 => {
                    if fin {
                        handle(sh, p, &self.rbuf[start..end], &mut self.tx)
                    } else {
                        self.frag.clear();
                        self.frag.extend_from_slice(&self.rbuf[start..end]);
                        self.frag_op = op;
                        Step::Continue
                    }
                }
                OP_CONT if self.frag_op != 0 => {
                    if self.frag.len() + (end - start) > MAX_MESSAGE {
                        note_failure(sh, "fragmented message too long");
                        return Step::Closed;
                    }
                    self.frag.extend_from_slice(&self.rbuf[start..end]);
                    if fin {
                        self.frag_op = 0;
                        let msg = std::mem::take(&mut self.frag);
                        let step = handle(sh, p, &msg, &mut self.tx);
                        self.frag = msg;
                        self.frag.clear();
                        step
                    } else {
                        Step::Continue
                    }
                }
                OP_PING => {
                    self.tx.control(OP_PONG, &self.rbuf[start..end]);
                    Step::Continue
                }
                OP_PONG => Step::Continue,
                OP_CLOSE => {
                    // Echo the status code, as the protocol wants; the caller writes it and ends.
                    self.tx
                        .control(OP_CLOSE, &self.rbuf[start..end.min(start + 2)]);
                    Step::Closed
                }
                _ => {
                    note_failure(sh, &format!("unexpected WebSocket frame (opcode {op})"));
                    Step::Closed
                }
            };
            if let Step::Closed = step {
                return Step::Closed;
            }
        }
    }
}

/// Handles one message; frames produced (answers) go to `c.out`.
fn handle(sh: &Shared, p: &PeerSpec, msg: &[u8], c: &mut Tx) -> Step {
    let Ok(f) = std::str::from_utf8(msg) else {
        note_failure(sh, "a message that is not UTF-8");
        return Step::Continue;
    };
    let now = sh.now_us();
    if f.contains(r#""offer":{"#) {
        sh.c.offers_rx.fetch_add(1, Relaxed);
        let ots = num_after(f, "a=x-ts:").unwrap_or(now);
        sh.relay.record(now.saturating_sub(ots));
        let (Some(from), Some(offer_id)) = (
            str_field(f, r#""peer_id":""#),
            str_field(f, r#""offer_id":""#),
        ) else {
            note_failure(sh, &format!("unreadable offer: {}", &f[..f.len().min(200)]));
            return Step::Continue;
        };
        c.buf.clear();
        let _ = write!(
            c.buf,
            r#"{{"action":"announce","info_hash":"{}","peer_id":"{}","to_peer_id":"{from}","offer_id":"{offer_id}","answer":{{"type":"answer","sdp":"v=0\r\na=x-ts:{}\r\na=x-ots:{ots}\r\n{}"}}}}"#,
            p.info_hash,
            p.peer_id,
            sh.now_us(),
            sh.answer_tail
        );
        sh.c.answers_sent.fetch_add(1, Relaxed);
        c.text();
    } else if f.contains(r#""answer":{"#) {
        sh.c.answers_rx.fetch_add(1, Relaxed);
        if let Some(ts) = num_after(f, "a=x-ts:") {
            sh.answer.record(now.saturating_sub(ts));
        }
        if let Some(ots) = num_after(f, "a=x-ots:") {
            sh.rtt.record(now.saturating_sub(ots));
        }
    } else if f.contains("failure reason") {
        sh.c.failures.fetch_add(1, Relaxed);
        note_failure(sh, f);
        c.pending.pop_front();
    } else if f.contains(r#""interval""#) {
        sh.c.replies.fetch_add(1, Relaxed);
        if f.contains("warning message") {
            sh.c.warnings.fetch_add(1, Relaxed);
        }
        if let Some(t) = c.pending.pop_front() {
            sh.reply.record(now.saturating_sub(t));
        }
    }
    Step::Continue
}

/// Writes (and empties) `out`; false if the connection is gone.
async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    let ok = stream.write_all(out).await.is_ok();
    out.clear();
    ok
}

async fn run_peer(
    p: PeerSpec,
    sh: Arc<Shared>,
    mut mode_rx: watch::Receiver<u8>,
    sem: Arc<Semaphore>,
) {
    let mut permit = sem.acquire_owned().await.ok();
    if *mode_rx.borrow() == QUIT {
        sh.c.started_done.fetch_add(1, Relaxed);
        return;
    }
    let mut rng = Rng(0x5EED ^ (p.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut mask = Rng(rng.0.rotate_left(32) ^ 0x6D61_736B);
    let (mut stream, rbuf) =
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&sh, p.index, &mut mask)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                note_failure(&sh, &format!("connect: {e}"));
                sh.c.connect_errors.fetch_add(1, Relaxed);
                sh.c.started_done.fetch_add(1, Relaxed);
                return;
            }
            Err(_) => {
                note_failure(&sh, "connect: timed out");
                sh.c.connect_errors.fetch_add(1, Relaxed);
                sh.c.started_done.fetch_add(1, Relaxed);
                return;
            }
        };
    sh.c.open.fetch_add(1, Relaxed);
    let mut c = Conn {
        rbuf,
        rpos: 0,
        need: 0,
        frag: Vec::new(),
        frag_op: 0,
        tx: Tx {
            out: Vec::with_capacity(8 * 1024),
            mask,
            pending: VecDeque::new(),
            buf: String::with_capacity(8 * 1024),
        },
    };
    let mut started_pending = true;

    c.tx.announce(&sh, &p, Some("started"), &mut rng);
    let mut alive = flush(&mut stream, &mut c.tx.out).await;

    let mut mode = *mode_rx.borrow_and_update();
    let mut interval = Duration::from_micros(sh.paced_interval_us.load(Relaxed).max(1000));
    let mut next_at = tokio::time::Instant::now() + interval;
    let started_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    // One timer, reset only when its deadline changes.
    let sleep = tokio::time::sleep_until(started_deadline);
    tokio::pin!(sleep);
    let mut armed = Some(started_deadline);
    if alive && mode == SATURATE {
        c.tx.top_up(&sh, &p, &mut rng);
        alive = flush(&mut stream, &mut c.tx.out).await;
    }

    while alive {
        let wake = match mode {
            PACED => Some(next_at),
            _ if started_pending => Some(started_deadline),
            _ => None,
        };
        if wake != armed {
            if let Some(w) = wake {
                sleep.as_mut().reset(w);
            }
            armed = wake;
        }
        c.prepare_read();
        tokio::select! {
            biased;
            r = mode_rx.changed() => {
                if r.is_err() {
                    break;
                }
                mode = *mode_rx.borrow_and_update();
                if mode == QUIT {
                    break;
                }
                if mode == PACED {
                    interval = Duration::from_micros(sh.paced_interval_us.load(Relaxed).max(1000));
                    let offset = rng.below(interval.as_micros() as u64);
                    next_at = tokio::time::Instant::now() + Duration::from_micros(offset);
                }
                if mode == SATURATE {
                    c.tx.top_up(&sh, &p, &mut rng);
                    alive = flush(&mut stream, &mut c.tx.out).await;
                }
            }
            r = stream.read_buf(&mut c.rbuf) => {
                match r {
                    Ok(n) if n > 0 => {
                        if let Step::Closed = c.process(&sh, &p) {
                            alive = false;
                        }
                        if started_pending && c.tx.pending.is_empty() {
                            started_pending = false;
                            sh.c.started_done.fetch_add(1, Relaxed);
                            permit = None;
                        }
                        if alive && mode == SATURATE {
                            c.tx.top_up(&sh, &p, &mut rng);
                        }
                    }
                    _ => alive = false,
                }
                // Everything this wake-up produced (answers, pongs, the next announce), at once.
                if !flush(&mut stream, &mut c.tx.out).await {
                    alive = false;
                }
            }
            _ = &mut sleep, if armed.is_some() => {
                armed = None;
                if mode == PACED {
                    c.tx.announce(&sh, &p, None, &mut rng);
                    alive = flush(&mut stream, &mut c.tx.out).await;
                    next_at += interval;
                    let now = tokio::time::Instant::now();
                    if next_at + interval < now {
                        sh.c.paced_late.fetch_add(1, Relaxed);
                        next_at = now + interval;
                    }
                } else if started_pending {
                    // The `started` reply never came: count the peer as done (failed) and go on.
                    started_pending = false;
                    note_failure(&sh, "no reply to started within the connect timeout");
                    sh.c.started_done.fetch_add(1, Relaxed);
                    permit = None;
                }
            }
        }
    }
    drop(permit);
    if started_pending {
        sh.c.started_done.fetch_add(1, Relaxed);
    }
    sh.c.open.fetch_sub(1, Relaxed);
    if *mode_rx.borrow() != QUIT {
        sh.c.closed.fetch_add(1, Relaxed);
        note_failure(&sh, "connection closed by the tracker");
    } else {
        // Close handshake, best effort: our close frame (1000, normal), then the FIN on drop.
        c.tx.out.clear();
        c.tx.control(OP_CLOSE, &1000u16.to_be_bytes());
        let _ =
            tokio::time::timeout(Duration::from_secs(1), flush(&mut stream, &mut c.tx.out)).await;
    }
}

fn note_failure(sh: &Shared, what: &str) {
    let mut f = sh.first_failure.lock().unwrap_or_else(|e| e.into_inner());
    if f.is_none() {
        *f = Some(what.chars().take(300).collect());
    }
}

// ---------------------------------------------------------------------------------------------
// Trackers.

struct Tracker {
    /// Arguments given beyond the address (limits raised, --tracker-arg).
    args: Vec<String>,
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_tracker(name: &'static str, a: &Args) -> Result<Tracker, String> {
    let mut argv: Vec<String> = Vec::new();
    if a.pin {
        argv.extend(["taskset".into(), "-c".into(), "0".into()]);
    }
    if name == "seedtab" {
        argv.extend([
            a.seedtab_bin.clone(),
            "tracker".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
        ]);
        if !a.keep_limits {
            argv.extend(limit_flags(&a.seedtab_bin));
        }
        argv.extend(a.tracker_args.iter().cloned());
    } else {
        argv.extend([a.node.clone(), a.ref_script.clone()]);
    }
    let log = std::env::temp_dir().join(format!("tracker-load-{name}.log"));
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let mut sent = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if !sent {
                if let Some(i) = line.find("ws://") {
                    let rest = &line[i + 5..];
                    let hostport = rest
                        .split(['/', ' ', '\n'])
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(hostport);
                    sent = true;
                }
            }
            line.clear();
        }
    });
    let extra: Vec<String> = if name == "seedtab" {
        argv.iter()
            .skip_while(|x| *x != "127.0.0.1:0")
            .skip(1)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let mut t = Tracker {
        args: extra,
        child,
        pid,
        addr: "127.0.0.1:1".parse().expect("addr"),
    };
    let hostport = rx.recv_timeout(Duration::from_secs(20)).map_err(|_| {
        format!(
            "{name}: no listening line within 20 s (log: {})",
            log.display()
        )
    })?;
    t.addr = hostport
        .parse()
        .map_err(|_| format!("{name}: bad address {hostport:?}"))?;
    if !t.addr.ip().is_loopback() {
        return Err(format!("{name} listens on {}, not loopback", t.addr));
    }
    Ok(t)
}

/// Flags of `seedtab tracker` (read from its `--help`) that look like abuse limits a load test
/// trips by design (per-connection message rates and bursts, per-IP connection caps), each set to
/// 1,000,000 so both trackers run unlimited; `--no-…` switches are passed bare. `--keep-limits`
/// turns this off.
fn limit_flags(bin: &str) -> Vec<String> {
    let Ok(out) = Command::new(bin).args(["tracker", "--help"]).output() else {
        return Vec::new();
    };
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags: Vec<String> = Vec::new();
    for tok in help.split_whitespace() {
        let name: String = tok
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.starts_with("--") || flags.contains(&name) {
            continue;
        }
        let n = name.as_str();
        let limit = ["per-s", "burst", "per-ip", "max-conn", "rate"]
            .iter()
            .any(|k| n.contains(k));
        if limit {
            flags.push(name);
        }
    }
    let mut argv = Vec::new();
    for f in flags {
        if f.starts_with("--no-") {
            argv.push(f);
        } else {
            argv.push(f);
            argv.push("1000000".into());
        }
    }
    argv
}

/// CPU seconds of tracker, generator, and the whole machine (busy, total jiffies), at one instant.
struct Cpu {
    at: Instant,
    tracker: f64,
    gen: f64,
    all: f64,
}

impl Cpu {
    fn now(pid: u32) -> Cpu {
        Cpu {
            at: Instant::now(),
            tracker: cpu_s(&pid.to_string()),
            gen: cpu_s("self"),
            all: all_processes_cpu_s(),
        }
    }
    fn since(&self, before: &Cpu) -> Value {
        let wall = self.at.duration_since(before.at).as_secs_f64();
        let tr = self.tracker - before.tracker;
        let gen = self.gen - before.gen;
        let all_cores = (self.all - before.all) / wall;
        let others = (all_cores - (tr + gen) / wall).max(0.0);
        json!({
            "wall_s": r3(wall),
            "tracker_cpu_s": r3(tr),
            "generator_cpu_s": r3(gen),
            "tracker_cores": r3(tr / wall),
            "generator_cores": r3(gen / wall),
            "all_processes_cores": r3(all_cores),
            "others_cores": r3(others),
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Phase {
    counters: [u64; 7],
    cpu: Cpu,
    stats: Value,
}

async fn phase_start(sh: &Shared, t: &Tracker) -> Phase {
    let stats = stats(t.addr).await;
    sh.reset_hists();
    Phase {
        counters: sh.c.snapshot(),
        cpu: Cpu::now(t.pid),
        stats,
    }
}

fn stat_num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

async fn phase_end(sh: &Shared, t: &Tracker, start: Phase) -> Value {
    let cpu = Cpu::now(t.pid);
    let c = sh.c.snapshot();
    let wall = cpu.at.duration_since(start.cpu.at).as_secs_f64();
    let d = |i: usize| (c[i] - start.counters[i]) as f64;
    let after = stats(t.addr).await;
    let tracker_announces = match (
        stat_num(&after, "announces"),
        stat_num(&start.stats, "announces"),
    ) {
        (Some(a), Some(b)) => json!(r1((a - b) / wall)),
        _ => Value::Null,
    };
    let tracker_answers = match (
        stat_num(&after, "answers_forwarded"),
        stat_num(&start.stats, "answers_forwarded"),
    ) {
        (Some(a), Some(b)) => json!(r1((a - b) / wall)),
        _ => Value::Null,
    };
    let cpu_v = cpu.since(&start.cpu);
    let tracker_cpu = cpu_v["tracker_cpu_s"].as_f64().unwrap_or(f64::NAN);
    json!({
        "seconds": r3(wall),
        "announces_sent_per_s": r1(d(0) / wall),
        "announce_replies_per_s": r1(d(1) / wall),
        "tracker_announces_per_s": tracker_announces,
        "failures": d(2),
        "reply_warnings": d(6),
        "offers_received_per_s": r1(d(3) / wall),
        "answers_sent_per_s": r1(d(4) / wall),
        "answers_received_per_s": r1(d(5) / wall),
        "tracker_answers_forwarded_per_s": tracker_answers,
        "tracker_cpu_us_per_announce": if d(1) > 0.0 { json!(r1(tracker_cpu * 1e6 / d(1))) } else { Value::Null },
        "latency": {
            "relay": sh.relay.summary(),
            "answer": sh.answer.summary(),
            "reply": sh.reply.summary(),
            "round_trip": sh.rtt.summary(),
        },
        "cpu": cpu_v,
    })
}

struct Run {
    sh: Arc<Shared>,
    mode: watch::Sender<u8>,
    sem: Arc<Semaphore>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    spawned: usize,
    nonce: u64,
}

impl Run {
    /// Spawns peers up to `total` and waits until each has connected and had its `started`
    /// answered (or failed), or the deadline passes. Returns seconds taken.
    async fn grow(&mut self, a: &Args, total: usize, deadline: Instant) -> f64 {
        let t0 = Instant::now();
        let target = total.min(MAX_PEERS);
        let mut rng = Rng(self.nonce);
        while self.spawned < target {
            let i = self.spawned;
            let swarm = (i % a.swarms) as u64;
            let mut swarm_rng = Rng(self.nonce ^ swarm.wrapping_mul(0xA24B_AED4_963E_E407));
            let spec = PeerSpec {
                index: i,
                info_hash: make_id("", swarm, &mut swarm_rng),
                peer_id: make_id("-WW0300-", i as u64, &mut rng),
                left: if i % 5 == 0 { 0 } else { 1 << 20 },
            };
            let task = tokio::spawn(run_peer(
                spec,
                self.sh.clone(),
                self.mode.subscribe(),
                self.sem.clone(),
            ));
            self.tasks.push(task);
            self.spawned += 1;
        }
        while (self.sh.c.started_done.load(Relaxed) as usize) < self.spawned
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        t0.elapsed().as_secs_f64()
    }

    async fn stop(self) {
        let _ = self.mode.send(QUIT);
        let until = Instant::now() + Duration::from_secs(10);
        for t in &self.tasks {
            while !t.is_finished() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn settle(d: Duration) {
    tokio::time::sleep(d).await;
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn new_run(a: &Args, tracker: SocketAddr, nonce: u64) -> Run {
    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        tracker,
        offers: a.offers,
        window: a.window,
        source_ips: a.source_ips,
        offer_tail: sdp_tail("actpass", a.sdp_bytes),
        answer_tail: sdp_tail("active", a.sdp_bytes),
        paced_interval_us: AtomicU64::new(0),
        c: Counters::default(),
        relay: Hist::new(),
        answer: Hist::new(),
        reply: Hist::new(),
        rtt: Hist::new(),
        first_failure: Mutex::new(None),
    });
    Run {
        sh,
        mode: watch::channel(HOLD).0,
        sem: Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT)),
        tasks: Vec::new(),
        spawned: 0,
        nonce,
    }
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn first_failure(sh: &Shared) -> Value {
    json!(sh
        .first_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone())
}

/// Waits (at most `a.wait_quiet`) until other processes use under 0.3 cores over 2 s; returns the
/// last reading.
async fn wait_quiet(a: &Args) -> f64 {
    let until = Instant::now() + a.wait_quiet;
    let mut said = false;
    loop {
        let (c0, t0) = (all_processes_cpu_s() - cpu_s("self"), Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let others = (all_processes_cpu_s() - cpu_s("self") - c0) / t0.elapsed().as_secs_f64();
        if others < 0.3 || Instant::now() >= until {
            if said || others >= 0.3 {
                println!(
                    "  other processes use {others:.2} cores{}",
                    if others >= 0.3 {
                        " (giving up waiting: figures will be disturbed)"
                    } else {
                        "; going on"
                    }
                );
            }
            return others;
        }
        if !said {
            println!("  other processes use {others:.2} cores; waiting up to {:.0} s for quiet (--wait-quiet)", a.wait_quiet.as_secs_f64());
            said = true;
        }
    }
}

async fn bench_tracker(
    name: &'static str,
    a: &Args,
    deadline: Instant,
    nonce: u64,
) -> Result<Value, String> {
    let others_before = wait_quiet(a).await;
    let t = spawn_tracker(name, a)?;
    println!(
        "== {name}: pid {}, ws://{}/announce{}{}",
        t.pid,
        t.addr,
        if a.pin { ", pinned to CPU 0" } else { "" },
        if t.args.is_empty() {
            String::new()
        } else {
            format!(", args {}", t.args.join(" "))
        }
    );
    settle(Duration::from_secs(1)).await;
    let idle_rss = vm_rss_kb(t.pid).ok_or("tracker gone")?;
    let mut run = new_run(a, t.addr, nonce);
    let sh = run.sh.clone();
    let mut out = json!({ "tracker": name, "pid": t.pid, "args": t.args, "idle_rss_kb": idle_rss, "others_cores_before": r3(others_before) });

    // 1. connect K peers.
    let phase = phase_start(&sh, &t).await;
    let connect_deadline =
        Instant::now() + remaining(deadline).min(Duration::from_secs(60 + a.peers as u64 / 50));
    let took = run.grow(a, a.peers, connect_deadline).await;
    let mut connect = phase_end(&sh, &t, phase).await;
    settle(Duration::from_secs(2)).await;
    let open = sh.c.open.load(Relaxed);
    let rss = vm_rss_kb(t.pid).ok_or("tracker gone")?;
    let st = stats(t.addr).await;
    let per_conn = (rss.saturating_sub(idle_rss)) as f64 * 1024.0 / open.max(1) as f64;
    connect["connect_s"] = json!(r3(took));
    connect["open"] = json!(open);
    connect["connect_errors"] = json!(sh.c.connect_errors.load(Relaxed));
    connect["rss_kb"] = json!(rss);
    connect["bytes_per_connection"] = json!(per_conn.round());
    connect["tracker_stats"] = st;
    println!(
        "  connect: {open}/{} open in {took:.1} s; RSS idle {:.1} MiB -> {:.1} MiB: {:.1} KiB per connection",
        a.peers,
        idle_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        per_conn / 1024.0
    );
    out["connect"] = connect;

    // 2. paced.
    if remaining(deadline) > Duration::from_secs_f64(a.seconds + 5.0) {
        let interval_us = (open.max(1) as f64 * 1e6 / a.rate) as u64;
        sh.paced_interval_us.store(interval_us, Relaxed);
        let phase = phase_start(&sh, &t).await;
        let _ = run.mode.send(PACED);
        tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
        let _ = run.mode.send(HOLD);
        let mut paced = phase_end(&sh, &t, phase).await;
        paced["target_announces_per_s"] = json!(a.rate);
        paced["late_ticks"] = json!(sh.c.paced_late.load(Relaxed));
        print_phase("paced", &paced);
        out["paced"] = paced;
        settle(Duration::from_secs(1)).await;
    }

    // 3. saturation.
    if remaining(deadline) > Duration::from_secs_f64(a.seconds + 5.0) {
        let phase = phase_start(&sh, &t).await;
        let _ = run.mode.send(SATURATE);
        tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
        let _ = run.mode.send(HOLD);
        let sat = phase_end(&sh, &t, phase).await;
        print_phase("saturation", &sat);
        out["saturation"] = sat;
        // Let the queues drain before the ramp measures memory.
        settle(Duration::from_secs(2)).await;
    }
    out["rss_after_load_kb"] = json!(vm_rss_kb(t.pid));

    out["first_failure"] = first_failure(&sh);
    if let Some(f) = out["first_failure"].as_str() {
        println!("  first failure: {f}");
    }
    out["tracker_stats_end"] = stats(t.addr).await;
    out["tracker_peak_rss_kb"] = json!(peak_rss_kb(t.pid));
    run.stop().await;
    drop(t);

    // 4. ramp, on a fresh tracker process (a heap that just went through the load phases would
    // hide new connections in memory it already holds).
    if a.ramp_step > 0 && remaining(deadline) > Duration::from_secs(30) {
        settle(Duration::from_secs(1)).await;
        out["ramp"] = ramp(name, a, deadline, nonce ^ 0x00AB_CDEF).await?;
    }
    Ok(out)
}

async fn ramp(
    name: &'static str,
    a: &Args,
    deadline: Instant,
    nonce: u64,
) -> Result<Value, String> {
    let t = spawn_tracker(name, a)?;
    settle(Duration::from_secs(1)).await;
    let idle_rss = vm_rss_kb(t.pid).ok_or("tracker gone")?;
    let mut run = new_run(a, t.addr, nonce);
    let sh = run.sh.clone();
    let mut steps = Vec::new();
    let mut held = 0u64;
    let mut held_rss = idle_rss;
    let mut first: Option<(u64, u64)> = None;
    let mut stop_reason = "reached --max-peers";
    let mut total = 0;
    while total < a.max_peers {
        if remaining(deadline) < Duration::from_secs(15) {
            stop_reason = "time budget";
            break;
        }
        total = (total + a.ramp_step).min(a.max_peers);
        let errs_before = sh.c.connect_errors.load(Relaxed) + sh.c.closed.load(Relaxed);
        let step_deadline = Instant::now()
            + remaining(deadline).min(Duration::from_secs(60 + a.ramp_step as u64 / 50));
        let took = run.grow(a, total, step_deadline).await;
        settle(Duration::from_secs(1)).await;
        let open = sh.c.open.load(Relaxed);
        let rss = vm_rss_kb(t.pid);
        let st = stats(t.addr).await;
        let errs = sh.c.connect_errors.load(Relaxed) + sh.c.closed.load(Relaxed) - errs_before;
        println!(
            "  ramp: {open}/{total} open ({errs} failed/closed) in {took:.1} s, RSS {}, tracker says {} connections",
            rss.map_or("-".into(), |r| format!("{:.1} MiB", r as f64 / 1024.0)),
            st.get("connections").map_or("-".into(), |c| c.to_string())
        );
        steps.push(json!({ "peers": total, "open": open, "failed": errs, "connect_s": r3(took), "rss_kb": rss, "tracker_stats": st }));
        let Some(rss) = rss else {
            stop_reason = "tracker process died";
            break;
        };
        if open > held {
            held = open;
            held_rss = rss;
        }
        if first.is_none() {
            first = Some((open, rss));
        }
        if errs > 0 || (open as usize) < total {
            stop_reason = "connections failed or closed";
            break;
        }
    }
    let per_conn = (held > 0)
        .then(|| ((held_rss.saturating_sub(idle_rss)) as f64 * 1024.0 / held as f64).round());
    let slope = first
        .filter(|(n, _)| held > *n)
        .map(|(n, r)| ((held_rss as f64 - r as f64) * 1024.0 / (held - n) as f64).round());
    println!(
        "  ramp: held {held} connections ({stop_reason}); RSS idle {:.1} MiB -> {:.1} MiB: {} per connection, {} per connection after the first step",
        idle_rss as f64 / 1024.0,
        held_rss as f64 / 1024.0,
        per_conn.map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0)),
        slope.map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0))
    );
    if let Some(f) = first_failure(&sh).as_str() {
        println!("  ramp: first failure: {f}");
    }
    let v = json!({
        "idle_rss_kb": idle_rss,
        "steps": steps,
        "max_held": held,
        "stop_reason": stop_reason,
        "bytes_per_connection": per_conn,
        "bytes_per_added_connection": slope,
        "first_failure": first_failure(&sh),
        "tracker_peak_rss_kb": peak_rss_kb(t.pid),
    });
    run.stop().await;
    drop(t);
    Ok(v)
}

fn print_phase(label: &str, v: &Value) {
    let l = &v["latency"];
    let ms = |k: &str, q: &str| l[k][q].as_f64().map_or("-".into(), |x| format!("{x:.2}"));
    println!(
        "  {label}: {} announces/s (tracker counts {}), {} offers/s in, {} answers/s back, {} failures",
        v["announce_replies_per_s"],
        v["tracker_announces_per_s"],
        v["offers_received_per_s"],
        v["answers_received_per_s"],
        v["failures"]
    );
    println!(
        "    latency p50/p99 ms: relay {}/{}, answer {}/{}, reply {}/{}, round trip {}/{}",
        ms("relay", "p50_ms"),
        ms("relay", "p99_ms"),
        ms("answer", "p50_ms"),
        ms("answer", "p99_ms"),
        ms("reply", "p50_ms"),
        ms("reply", "p99_ms"),
        ms("round_trip", "p50_ms"),
        ms("round_trip", "p99_ms"),
    );
    let c = &v["cpu"];
    println!(
        "    CPU: tracker {} cores, generator {} cores, other processes {} cores; tracker {} µs CPU per announce",
        c["tracker_cores"], c["generator_cores"], c["others_cores"], v["tracker_cpu_us_per_announce"]
    );
    if c["others_cores"].as_f64().is_some_and(|o| o > 0.2) {
        println!(
            "    DISTURBED: other processes took {} cores during this phase",
            c["others_cores"]
        );
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => json!(r3(a / b)),
        _ => Value::Null,
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tracker_load: {e}");
            std::process::exit(2);
        }
    };
    let mut a = a;
    if cores() < 2 {
        a.pin = false;
    }
    if let Some(limit) = nofile_limit() {
        let need = a.max_peers + 200;
        if limit < need {
            let cap = limit
                .saturating_sub(200)
                .max(a.peers.min(limit.saturating_sub(200)));
            eprintln!("tracker_load: open-file limit {limit}: --max-peers lowered to {cap} (raise `ulimit -n`: bench/tracker.sh tries 65536, which needs CAP_SYS_RESOURCE above the hard limit)");
            a.max_peers = cap.max(1);
            a.peers = a.peers.min(a.max_peers);
        }
    }
    if a.pin {
        // Before the runtime exists, so every thread it makes inherits the mask.
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("tracker_load: taskset failed; running unpinned");
            a.pin = false;
        }
    }
    let threads = if a.gen_threads > 0 {
        a.gen_threads
    } else if a.pin {
        1
    } else {
        cores()
    };
    // One thread: a current-thread runtime (the peers and the phase logic on the one pinned CPU,
    // no cross-thread wake-ups); more: a multi-thread runtime with that many workers.
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let code = rt.block_on(async_main(a, threads));
    rt.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(code);
}

async fn async_main(a: Args, threads: usize) -> i32 {
    let started = Instant::now();
    let deadline = started + a.budget;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "tracker load: {} peers over {} swarms, {} offers of ~{} B SDP per announce; paced {} announces/s then saturation, {} s each; ramp to {} by {}; generator: {} thread(s){}; load average {}",
        a.peers, a.swarms, a.offers, a.sdp_bytes, a.rate, a.seconds, a.max_peers, a.ramp_step, threads,
        if a.pin { ", pinned to CPU 1" } else { "" },
        loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let names: Vec<&'static str> = ["seedtab", "bittorrent-tracker"]
        .into_iter()
        .filter(|n| a.only.as_deref().is_none_or(|o| o == *n))
        .collect();
    let nonce = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64))
        | 1;
    let mut results = serde_json::Map::new();
    let mut failed = false;
    for (k, name) in names.iter().enumerate() {
        // Each tracker gets an equal share of what is left of the budget.
        let share = remaining(deadline) / (names.len() - k) as u32;
        match bench_tracker(
            name,
            &a,
            Instant::now() + share,
            nonce.wrapping_add(k as u64),
        )
        .await
        {
            Ok(v) => {
                results.insert((*name).into(), v);
            }
            Err(e) => {
                eprintln!("{name}: FAILED: {e}");
                results.insert((*name).into(), json!({ "error": e }));
                failed = true;
            }
        }
        // Sockets closing, TIME_WAIT, the other tracker's memory returned.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let get = |t: &str, path: &[&str]| -> Option<f64> {
        let mut v = results.get(t)?;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_f64()
    };
    let thr = |t: &str| get(t, &["saturation", "announce_replies_per_s"]);
    let mem = |t: &str| get(t, &["connect", "bytes_per_connection"]);
    let mem_ramp = |t: &str| get(t, &["ramp", "bytes_per_connection"]);
    let cpu_per = |t: &str| get(t, &["saturation", "tracker_cpu_us_per_announce"]);
    let relay99 = |t: &str| get(t, &["paced", "latency", "relay", "p99_ms"]);
    let mut disturbed = Vec::new();
    for (t, v) in &results {
        for ph in ["paced", "saturation"] {
            if let Some(o) = v
                .get(ph)
                .and_then(|p| p["cpu"]["others_cores"].as_f64())
                .filter(|o| *o > 0.2)
            {
                disturbed.push(format!("{t} {ph} (others {o:.2} cores)"));
            }
        }
    }
    let summary = json!({
        "disturbed_phases": disturbed,
        "throughput_ratio": ratio(thr("seedtab"), thr("bittorrent-tracker")),
        "throughput_target": 5.0,
        "memory_per_connection_ratio": ratio(mem("seedtab"), mem("bittorrent-tracker")),
        "memory_per_connection_at_max_ratio": ratio(mem_ramp("seedtab"), mem_ramp("bittorrent-tracker")),
        "memory_target": 1.0 / 3.0,
        "cpu_per_announce_ratio": ratio(cpu_per("bittorrent-tracker"), cpu_per("seedtab")),
        "paced_relay_p99_ratio": ratio(relay99("seedtab"), relay99("bittorrent-tracker")),
    });
    if names.len() == 2 {
        let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2}"));
        println!("== summary (seedtab vs bittorrent-tracker 11, same workload, same run)");
        println!(
            "  saturation announces/s: {} vs {} -> {}x (target >= 5x)",
            thr("seedtab").map_or("-".into(), |v| format!("{v:.0}")),
            thr("bittorrent-tracker").map_or("-".into(), |v| format!("{v:.0}")),
            f(&summary["throughput_ratio"])
        );
        println!(
            "  tracker CPU per announce: {} vs {} µs -> bittorrent-tracker needs {}x the CPU",
            cpu_per("seedtab").map_or("-".into(), |v| format!("{v:.1}")),
            cpu_per("bittorrent-tracker").map_or("-".into(), |v| format!("{v:.1}")),
            f(&summary["cpu_per_announce_ratio"])
        );
        println!(
            "  memory per connection: {} vs {} KiB -> {} (target <= 0.33); at the ramp's top {} vs {} KiB -> {}",
            mem("seedtab").map_or("-".into(), |v| format!("{:.1}", v / 1024.0)),
            mem("bittorrent-tracker").map_or("-".into(), |v| format!("{:.1}", v / 1024.0)),
            f(&summary["memory_per_connection_ratio"]),
            mem_ramp("seedtab").map_or("-".into(), |v| format!("{:.1}", v / 1024.0)),
            mem_ramp("bittorrent-tracker").map_or("-".into(), |v| format!("{:.1}", v / 1024.0)),
            f(&summary["memory_per_connection_at_max_ratio"]),
        );
        if !disturbed.is_empty() {
            println!(
                "  WARNING: other jobs took CPU during {}: rerun on a quiet machine",
                disturbed.join(", ")
            );
        }
        println!(
            "  paced relay p99: {} vs {} ms; connections held: {} vs {}",
            relay99("seedtab").map_or("-".into(), |v| format!("{v:.2}")),
            relay99("bittorrent-tracker").map_or("-".into(), |v| format!("{v:.2}")),
            get("seedtab", &["ramp", "max_held"]).map_or("-".into(), |v| v.to_string()),
            get("bittorrent-tracker", &["ramp", "max_held"]).map_or("-".into(), |v| v.to_string()),
        );
    }
    let doc = json!({
        "benchmark": "tracker load (issue 9)",
        "config": {
            "peers": a.peers, "swarms": a.swarms, "offers": a.offers, "sdp_bytes": a.sdp_bytes,
            "seconds": a.seconds, "paced_rate": a.rate, "window": a.window, "max_peers": a.max_peers,
            "ramp_step": a.ramp_step, "pinned": a.pin, "generator_threads": threads,
            "source_ips": a.source_ips, "tracker_args": a.tracker_args,
        },
        "env": {
            "cores": cores(),
            "loadavg_before": loadavg.trim(),
            "loadavg_after": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
            "node": Command::new(&a.node).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
            "wall_s": r1(started.elapsed().as_secs_f64()),
        },
        "results": results,
        "summary": summary,
    });
    if let Some(dir) = std::path::Path::new(&a.out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &a.out,
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    ) {
        Ok(()) => println!("wrote {}", a.out),
        Err(e) => {
            eprintln!("{}: {e}", a.out);
            failed = true;
        }
    }
    i32::from(failed)
}
