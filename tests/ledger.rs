#![cfg(all(feature = "native", not(target_arch = "wasm32")))]
//! End to end: the ledger's HTTP API on 127.0.0.1:0 with a SQLite file in a temp directory,
//! receipts signed with fixed seeds, submitted and read over real HTTP/1.1 (a few lines of client
//! below: no HTTP client among the dev-dependencies). Every rejection code, idempotence, the
//! highest-receipt rule, exact totals, persistence across a reopen, CORS, the mount in
//! `seedtab serve`, and the `seedtab ledger` command's line and errors.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seedtab::native::ledger::{serve_ledger, Ledger, MAX_BATCH, MAX_BODY_BYTES};
use seedtab::native::serve::{serve_app, ServeOptions};
use seedtab::receipt::{hex, public_key, sign, Receipt, SignedReceipt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

const DL_A: [u8; 32] = [11; 32];
const DL_B: [u8; 32] = [12; 32];
const UL_X: [u8; 32] = [21; 32];
const UL_Y: [u8; 32] = [22; 32];
const IH_1: [u8; 20] = [0x11; 20];
const IH_2: [u8; 20] = [0x22; 20];
const LEN_1: u64 = 1_000_000;
const LEN_2: u64 = 5_000_000;

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "seedtab-ledger-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("ledger.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `serve_ledger`; `stop` shuts it down and hands back the ledger.
struct Server {
    addr: SocketAddr,
    ledger: Arc<Ledger>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(db: &Path) -> Server {
        let ledger = Arc::new(Ledger::open(db).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_ledger(listener, ledger.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            ledger,
            stop,
            task,
        }
    }

    /// Stops serving and closes the database: nothing else holds the ledger afterwards.
    async fn stop(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        let ledger = Arc::try_unwrap(self.ledger).expect("the server let go of the ledger");
        drop(ledger);
    }
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`, so the body ends at EOF). The body
/// is written while the response is read: a server refusing a big body answers before reading
/// it all.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let stream = timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let write = async {
        // The server may close before taking everything; its answer is what matters.
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(body).await;
        wr
    };
    let read = async {
        let mut raw = Vec::new();
        rd.read_to_end(&mut raw).await.map(|_| raw)
    };
    let (_wr, raw) = timeout(WAIT, async { tokio::join!(write, read) })
        .await
        .expect("no response in time");
    let raw = raw.expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status: status.parse().unwrap(),
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], b"").await
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> HttpResponse {
    let body = body.to_string();
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

/// Submits hex strings; asserts a 200 and returns the report.
async fn submit_hex(addr: SocketAddr, receipts: &[String]) -> Value {
    let resp = post_json(addr, "/api/receipts", &json!({ "receipts": receipts })).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

async fn submit(addr: SocketAddr, receipts: &[SignedReceipt]) -> Value {
    submit_hex(addr, &receipts.iter().map(enc).collect::<Vec<_>>()).await
}

fn enc(r: &SignedReceipt) -> String {
    hex(&r.encode())
}

/// The status of each result, or its code when rejected.
fn outcomes(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let status = r["status"].as_str().unwrap();
            if status == "rejected" {
                assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
                r["code"].as_str().unwrap().to_owned()
            } else {
                assert!(r.get("code").is_none() && r.get("message").is_none(), "{r}");
                status.to_owned()
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn receipt(
    dl: [u8; 32],
    ul: [u8; 32],
    ih: [u8; 20],
    length: u64,
    sid: u8,
    seq: u64,
    bytes: u64,
) -> SignedReceipt {
    sign(
        Receipt {
            downloader: public_key(&dl),
            uploader: public_key(&ul),
            info_hash: ih,
            length,
            session: [sid; 16],
            seq,
            bytes,
            timestamp_ms: 1_790_000_000_000 + seq,
        },
        &dl,
    )
}

/// The canonical encoding with one run of bytes replaced (same length: still a valid dict).
fn swapped(r: &SignedReceipt, from: &[u8], to: &[u8]) -> String {
    let e = r.encode();
    let at = e.windows(from.len()).position(|w| w == from).unwrap();
    hex(&[&e[..at], to, &e[at + from.len()..]].concat())
}

async fn uploader(addr: SocketAddr, seed: &[u8; 32]) -> Value {
    let resp = get(addr, &format!("/api/uploaders/{}", hex(&public_key(seed)))).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

async fn torrent(addr: SocketAddr, ih: &[u8; 20]) -> Value {
    let resp = get(addr, &format!("/api/torrents/{}", hex(ih))).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

#[tokio::test]
async fn every_rejection_has_its_own_code() {
    let dir = TempDir::new("codes");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;

    // What the ledger holds first: session 1 at seq 5 / 500 bytes fixes IH_1's length.
    let base = receipt(DL_A, UL_X, IH_1, LEN_1, 1, 5, 500);
    assert_eq!(
        outcomes(&submit(addr, std::slice::from_ref(&base)).await),
        ["stored"]
    );

    let mut bad_sig = receipt(DL_A, UL_X, IH_1, LEN_1, 2, 1, 10);
    bad_sig.signature[10] ^= 0x40;
    let forged = sign(
        receipt(DL_A, UL_X, IH_1, LEN_1, 2, 1, 10).receipt,
        &DL_B, // signed by someone other than the downloader it names
    );
    let fresh = receipt(DL_A, UL_X, IH_1, LEN_1, 3, 1, 10);
    let mut own = receipt(DL_A, UL_X, IH_1, LEN_1, 4, 1, 10).receipt;
    own.uploader = own.downloader;
    let mut over = receipt(DL_A, UL_X, IH_1, LEN_1, 4, 1, 10).receipt;
    over.bytes = LEN_1 + 1;

    let batch: Vec<(String, &str)> = vec![
        (enc(&bad_sig), "bad_signature"),
        (enc(&forged), "bad_signature"),
        (
            swapped(&fresh, b"15:seedtab-receipt", b"15:seedtab-receiqt"),
            "wrong_domain",
        ),
        (swapped(&fresh, b"1:vi1e", b"1:vi2e"), "unsupported_version"),
        (enc(&sign(over, &DL_A)), "exceeds_length"),
        (enc(&sign(own, &DL_A)), "self_receipt"),
        (
            enc(&receipt(DL_A, UL_X, IH_1, LEN_1, 1, 4, 900)),
            "sequence_regressed",
        ),
        (
            enc(&receipt(DL_A, UL_X, IH_1, LEN_1, 1, 6, 499)),
            "bytes_decreased",
        ),
        (
            enc(&receipt(DL_A, UL_X, IH_1, LEN_1, 1, 5, 600)),
            "sequence_conflict",
        ),
        (
            enc(&receipt(DL_B, UL_Y, IH_1, LEN_1 + 1, 9, 1, 10)),
            "length_mismatch",
        ),
        ("not hex at all".into(), "malformed"),
        ("abc".into(), "malformed"),
        (hex(b"i42e"), "malformed"),
        (hex(b"d3:dom15:seedtab-receipte"), "malformed"),
        (String::new(), "malformed"),
        (enc(&base), "duplicate"),
    ];
    let (hexes, want): (Vec<String>, Vec<&str>) = batch.into_iter().unzip();
    let report = submit_hex(addr, &hexes).await;
    assert_eq!(outcomes(&report), want, "{report}");
    assert_eq!(
        (&report["stored"], &report["duplicate"], &report["rejected"]),
        (&json!(0), &json!(1), &json!(want.len() - 1))
    );
    let r = &report["results"][9];
    assert!(
        r["message"].as_str().unwrap().contains("1000000"),
        "the message names the known length: {r}"
    );

    // Nothing rejected counted.
    assert_eq!(
        uploader(addr, &UL_X).await,
        json!({"uploader": hex(&public_key(&UL_X)), "bytes": 500, "receipts": 1, "torrents": [
            {"info_hash": hex(&IH_1), "length": LEN_1, "bytes": 500, "receipts": 1}
        ]})
    );
    assert_eq!(uploader(addr, &UL_Y).await["receipts"], 0);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_an_error_object() {
    let dir = TempDir::new("requests");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;
    let error_code =
        |resp: &HttpResponse| resp.json()["error"]["code"].as_str().unwrap().to_owned();

    for body in [
        &b"{\"receipts\": [\"00\""[..],
        b"not json",
        b"{\"receipts\": \"00\"}",
        b"{\"receipts\": [1, 2]}",
        b"{}",
        b"",
    ] {
        let resp = request(addr, "POST", "/api/receipts", &[], body).await;
        assert_eq!(resp.status, 400, "{}", resp.body);
        assert_eq!(error_code(&resp), "malformed_request");
        assert!(resp.json()["error"]["message"].as_str().unwrap().len() > 5);
    }

    let r = enc(&receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 1));
    let too_many = vec![r.clone(); MAX_BATCH + 1];
    let resp = post_json(addr, "/api/receipts", &json!({ "receipts": too_many })).await;
    assert_eq!(
        (resp.status, error_code(&resp)),
        (413, "batch_too_large".into())
    );

    let big = format!(
        "{{\"receipts\": [\"{}\"]}}",
        "0".repeat(MAX_BODY_BYTES + 10)
    );
    let resp = request(addr, "POST", "/api/receipts", &[], big.as_bytes()).await;
    assert_eq!(
        (resp.status, error_code(&resp)),
        (413, "body_too_large".into())
    );

    // Exactly the limit is fine: one stored, the same receipt 999 more times a duplicate.
    let full = vec![r.clone(); MAX_BATCH];
    let report = submit_hex(addr, &full).await;
    assert_eq!(
        (&report["stored"], &report["duplicate"]),
        (&json!(1), &json!(MAX_BATCH - 1))
    );

    // Bad keys in paths and queries; upper case is accepted and answered in lower case.
    let key = hex(&public_key(&UL_X));
    for (path, code) in [
        ("/api/uploaders/zz".to_owned(), "bad_key"),
        ("/api/uploaders/abcd".to_owned(), "bad_key"),
        (format!("/api/uploaders/{key}00"), "bad_key"),
        ("/api/torrents/abcd".to_owned(), "bad_info_hash"),
        ("/api/receipts?uploader=zz".to_owned(), "bad_key"),
        (
            format!("/api/receipts?uploader={key}&info_hash=12"),
            "bad_info_hash",
        ),
        (
            format!("/api/receipts?uploader={key}&limit=x"),
            "malformed_request",
        ),
        ("/api/receipts".to_owned(), "malformed_request"),
    ] {
        let resp = get(addr, &path).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        assert_eq!(error_code(&resp), code, "{path}");
    }
    let upper = hex(&public_key(&UL_X)).to_uppercase();
    let resp = get(addr, &format!("/api/uploaders/{upper}")).await;
    assert_eq!(resp.json()["uploader"], hex(&public_key(&UL_X)));
    assert_eq!(resp.json()["bytes"], 1);

    let resp = get(addr, "/api/nowhere").await;
    assert_eq!((resp.status, error_code(&resp)), (404, "not_found".into()));
    let resp = request(addr, "DELETE", "/api/receipts", &[], b"").await;
    assert_eq!(resp.status, 405);
    server.stop().await;
}

#[tokio::test]
async fn resubmission_is_idempotent() {
    let dir = TempDir::new("idem");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;
    let batch = [
        receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 100),
        receipt(DL_A, UL_X, IH_2, LEN_2, 1, 1, 2000),
        receipt(DL_B, UL_X, IH_1, LEN_1, 1, 1, 300),
    ];
    let first = submit(addr, &batch).await;
    assert_eq!(outcomes(&first), ["stored"; 3]);
    let before = (
        uploader(addr, &UL_X).await,
        torrent(addr, &IH_1).await,
        torrent(addr, &IH_2).await,
    );
    assert_eq!(before.0["bytes"], 2400);
    for _ in 0..2 {
        let again = submit(addr, &batch).await;
        assert_eq!(outcomes(&again), ["duplicate"; 3]);
        assert_eq!(
            (&again["stored"], &again["duplicate"], &again["rejected"]),
            (&json!(0), &json!(3), &json!(0))
        );
    }
    let after = (
        uploader(addr, &UL_X).await,
        torrent(addr, &IH_1).await,
        torrent(addr, &IH_2).await,
    );
    assert_eq!(before, after);
    server.stop().await;
}

#[tokio::test]
async fn only_the_highest_receipt_of_a_session_counts() {
    let dir = TempDir::new("highest");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;
    let seq = |n: u64| receipt(DL_A, UL_X, IH_1, LEN_1, 7, n, n * 1000);

    // Out of order, across requests and inside one.
    assert_eq!(outcomes(&submit(addr, &[seq(3)]).await), ["stored"]);
    assert_eq!(
        outcomes(&submit(addr, &[seq(1), seq(5), seq(4), seq(5)]).await),
        [
            "sequence_regressed",
            "stored",
            "sequence_regressed",
            "duplicate"
        ]
    );
    // Same bytes under a higher seq is a legitimate re-signing.
    let resigned = receipt(DL_A, UL_X, IH_1, LEN_1, 7, 9, 5000);
    assert_eq!(
        outcomes(&submit(addr, std::slice::from_ref(&resigned)).await),
        ["stored"]
    );

    let t = torrent(addr, &IH_1).await;
    assert_eq!(
        t,
        json!({"info_hash": hex(&IH_1), "length": LEN_1, "bytes": 5000, "receipts": 1,
               "uploaders": [{"uploader": hex(&public_key(&UL_X)), "bytes": 5000, "receipts": 1}]})
    );
    // The audit list holds exactly the receipt that counts, byte for byte.
    let resp = get(
        addr,
        &format!("/api/receipts?uploader={}", hex(&public_key(&UL_X))),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json(),
        json!({"uploader": hex(&public_key(&UL_X)), "receipts": [enc(&resigned)]})
    );
    server.stop().await;
}

#[tokio::test]
async fn totals_per_uploader_and_per_torrent_are_exact() {
    let dir = TempDir::new("totals");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;

    let downloaders: Vec<[u8; 32]> = (0..6u8).map(|i| [100 + i; 32]).collect();
    let uploaders: Vec<[u8; 32]> = (0..4u8).map(|i| [150 + i; 32]).collect();
    let torrents: Vec<([u8; 20], u64)> = (0..3u8)
        .map(|i| ([200 + i; 20], 10_000_000 * (i as u64 + 1)))
        .collect();

    // Every (dl, ul, ih) gets two sessions; each session several receipts, the last highest.
    let mut all = Vec::new();
    let mut model: HashMap<(usize, usize, usize, u8), u64> = HashMap::new();
    let mut n = 0u64;
    for (d, dl) in downloaders.iter().enumerate() {
        for (u, ul) in uploaders.iter().enumerate() {
            for (t, (ih, len)) in torrents.iter().enumerate() {
                for sid in 0..2u8 {
                    n += 1;
                    let steps = 1 + n % 3;
                    let mut bytes = 0;
                    for s in 1..=steps {
                        bytes += (n * 7919 + s * 104_729) % 50_000;
                        all.push(receipt(*dl, *ul, *ih, *len, sid, s * 2, bytes));
                    }
                    model.insert((d, u, t, sid), bytes);
                }
            }
        }
    }
    // Batches of 50, the whole list twice (the second time everything is a duplicate or an
    // older receipt).
    for pass in 0..2 {
        for chunk in all.chunks(50) {
            let report = submit(addr, chunk).await;
            if pass == 1 {
                assert_eq!(report["stored"], 0);
            }
        }
    }

    for (u, ul) in uploaders.iter().enumerate() {
        let mut per_torrent: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        for (&(_, mu, t, _), &bytes) in &model {
            if mu == u {
                let e = per_torrent.entry(t).or_default();
                e.0 += bytes;
                e.1 += 1;
            }
        }
        let mut list: Vec<Value> = per_torrent
            .iter()
            .map(|(&t, &(bytes, count))| {
                json!({"info_hash": hex(&torrents[t].0), "length": torrents[t].1,
                       "bytes": bytes, "receipts": count})
            })
            .collect();
        list.sort_by_key(|v| {
            (
                std::cmp::Reverse(v["bytes"].as_u64().unwrap()),
                v["info_hash"].as_str().unwrap().to_owned(),
            )
        });
        let total: u64 = per_torrent.values().map(|v| v.0).sum();
        let count: u64 = per_torrent.values().map(|v| v.1).sum();
        assert_eq!(
            uploader(addr, ul).await,
            json!({"uploader": hex(&public_key(ul)), "bytes": total, "receipts": count,
                   "torrents": list})
        );
    }
    for (t, (ih, len)) in torrents.iter().enumerate() {
        let mut per_uploader: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        for (&(_, u, mt, _), &bytes) in &model {
            if mt == t {
                let e = per_uploader.entry(u).or_default();
                e.0 += bytes;
                e.1 += 1;
            }
        }
        let mut list: Vec<Value> = per_uploader
            .iter()
            .map(|(&u, &(bytes, count))| {
                json!({"uploader": hex(&public_key(&uploaders[u])), "bytes": bytes,
                       "receipts": count})
            })
            .collect();
        list.sort_by_key(|v| {
            (
                std::cmp::Reverse(v["bytes"].as_u64().unwrap()),
                v["uploader"].as_str().unwrap().to_owned(),
            )
        });
        let total: u64 = per_uploader.values().map(|v| v.0).sum();
        let count: u64 = per_uploader.values().map(|v| v.1).sum();
        assert_eq!(
            torrent(addr, ih).await,
            json!({"info_hash": hex(ih), "length": len, "bytes": total, "receipts": count,
                   "uploaders": list})
        );
    }
    // An unknown torrent and an unknown uploader are zeros, not errors.
    assert_eq!(
        torrent(addr, &[0xee; 20]).await,
        json!({"info_hash": hex(&[0xee; 20]), "length": null, "bytes": 0, "receipts": 0,
               "uploaders": []})
    );
    assert_eq!(
        uploader(addr, &[0xee; 32]).await,
        json!({"uploader": hex(&public_key(&[0xee; 32])), "bytes": 0, "receipts": 0,
               "torrents": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn data_survives_closing_and_reopening_the_file() {
    let dir = TempDir::new("reopen");
    let batch = [
        receipt(DL_A, UL_X, IH_1, LEN_1, 1, 2, 4000),
        receipt(DL_B, UL_X, IH_2, LEN_2, 1, 1, 70_000),
    ];
    let server = Server::start(&dir.db()).await;
    assert_eq!(outcomes(&submit(server.addr, &batch).await), ["stored"; 2]);
    let before = uploader(server.addr, &UL_X).await;
    server.stop().await;

    let server = Server::start(&dir.db()).await;
    let addr = server.addr;
    assert_eq!(uploader(addr, &UL_X).await, before);
    assert_eq!(before["bytes"], 74_000);
    // The receipts themselves are back, not only the sums, and so is IH_1's length.
    assert_eq!(outcomes(&submit(addr, &batch).await), ["duplicate"; 2]);
    assert_eq!(
        outcomes(
            &submit(
                addr,
                &[
                    receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 1),
                    receipt(DL_B, UL_Y, IH_1, 77, 1, 1, 1)
                ]
            )
            .await
        ),
        ["sequence_regressed", "length_mismatch"]
    );
    server.stop().await;
}

#[tokio::test]
async fn any_origin_may_call_the_api() {
    let dir = TempDir::new("cors");
    let server = Server::start(&dir.db()).await;
    let addr = server.addr;
    let origin = ("Origin", "http://page.example");

    let pre = request(
        addr,
        "OPTIONS",
        "/api/receipts",
        &[
            origin,
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert!(pre.status == 200 || pre.status == 204, "{}", pre.status);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert!(pre
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    assert!(pre
        .header("access-control-allow-headers")
        .is_some_and(|h| h.to_ascii_lowercase().contains("content-type")));

    let body = json!({ "receipts": [enc(&receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 1))] });
    let post = request(
        addr,
        "POST",
        "/api/receipts",
        &[origin, ("Content-Type", "text/plain")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(post.header("access-control-allow-origin"), Some("*"));
    assert_eq!(post.json()["stored"], 1);

    for path in [
        format!("/api/uploaders/{}", hex(&public_key(&UL_X))),
        "/api/uploaders/zz".to_owned(),
    ] {
        let resp = request(addr, "GET", &path, &[origin], b"").await;
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    }
    server.stop().await;
}

#[tokio::test]
async fn seedtab_serve_mounts_the_api() {
    let dir = TempDir::new("serve");
    std::fs::write(dir.0.join("index.html"), "app").unwrap();
    let opts = ServeOptions {
        www: dir.0.clone(),
        db: dir.db(),
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_app(listener, opts, async move {
        let _ = stopped.await;
    }));

    let report = submit(addr, &[receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 123)]).await;
    assert_eq!(outcomes(&report), ["stored"]);
    assert_eq!(torrent(addr, &IH_1).await["bytes"], 123);
    // The app's own routes are as before; unknown API paths are JSON, not the app's index.
    assert_eq!(get(addr, "/").await.body, "app");
    assert_eq!(get(addr, "/some/route").await.body, "app");
    let resp = get(addr, "/api/nowhere").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["error"]["code"], "not_found");

    let _ = stop.send(());
    timeout(WAIT, task).await.unwrap().unwrap().unwrap();
    assert!(dir.db().is_file());
}

/// Runs `seedtab ARGS...` to the end (the cases that must fail at once).
fn run_seedtab(args: &[std::ffi::OsString]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seedtab"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_command_prints_its_address_or_a_clear_error() {
    use std::io::BufRead;
    let dir = TempDir::new("cli");
    let ledger_args = |db: &Path| -> Vec<std::ffi::OsString> {
        ["ledger", "--addr", "127.0.0.1:0", "--db"]
            .into_iter()
            .map(Into::into)
            .chain([db.as_os_str().to_owned()])
            .collect()
    };

    let missing = ledger_args(&dir.0.join("missing-dir").join("x.sqlite"));
    let out = run_seedtab(&missing);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open ledger database"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing listens, nothing is announced"
    );

    std::fs::write(
        dir.0.join("not.sqlite"),
        "this is not a database, just text",
    )
    .unwrap();
    let out = run_seedtab(&ledger_args(&dir.0.join("not.sqlite")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a database"));

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seedtab"))
        .args(ledger_args(&dir.db()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The child is killed (by its own handle) whatever the checks below do.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let rest = line
        .trim_end()
        .strip_prefix("seedtab ledger http://")
        .unwrap_or_else(|| panic!("{line}"));
    let (addr, db) = rest.split_once("/api (db ").unwrap();
    assert_eq!(db, format!("{})", dir.db().display()));
    let addr: SocketAddr = addr.parse().unwrap();
    let report = submit(addr, &[receipt(DL_A, UL_X, IH_1, LEN_1, 1, 1, 9)]).await;
    assert_eq!(outcomes(&report), ["stored"]);
}
