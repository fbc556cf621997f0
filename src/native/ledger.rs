//! The reward ledger (docs/ledger.md): uploaders submit the receipts downloaders signed for them,
//! the ledger keeps the highest receipt per (downloader, uploader, info-hash, session) in SQLite
//! and answers totals per uploader and per torrent over a small JSON API, mounted at `/api` by
//! `seedtab ledger` and `seedtab serve`.
//!
//! The rules are the core's (`crate::ledger::decide`); this file only verifies in parallel,
//! stores and sums. It must never touch the database with a receipt whose signature has not been
//! verified, never verify while holding the database lock, and never run SQLite or signature
//! checks on the async runtime's threads (`spawn_blocking` for both).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::cors::{Any, CorsLayer};

use crate::ledger::{decide, verify_hex, Accepted, Key, Rejection, Verified};
use crate::receipt::{from_hex, hex, Receipt, SignedReceipt};

/// Receipts in one `POST /api/receipts`.
pub const MAX_BATCH: usize = 1000;
/// Bytes in one request body: 1000 receipts of at most 512 bytes, as hex in JSON, just fit.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Rows in one list of a totals answer or the audit list (largest first).
pub const MAX_LIST: usize = 1000;
/// The schema this code reads and writes (table `schema_version`).
pub const SCHEMA_VERSION: i64 = 1;
/// What `--db` takes for a database that lives only as long as the process.
pub const IN_MEMORY: &str = ":memory:";

/// Fewer receipts than this per thread are checked on the calling thread: spawning costs more
/// than a few dozen signature checks.
const MIN_PER_THREAD: usize = 32;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
-- The length of each torrent, fixed by the first receipt stored for it.
CREATE TABLE IF NOT EXISTS torrents (
    ih  BLOB PRIMARY KEY NOT NULL,
    len INTEGER NOT NULL
) WITHOUT ROWID;
-- The highest receipt per key. The canonical encoding is rebuilt from the columns
-- (SignedReceipt::encode), so the submitted bytes are not stored twice.
CREATE TABLE IF NOT EXISTS receipts (
    dl    BLOB NOT NULL,
    ul    BLOB NOT NULL,
    ih    BLOB NOT NULL,
    sid   BLOB NOT NULL,
    seq   INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    len   INTEGER NOT NULL,
    ts    INTEGER NOT NULL,
    sig   BLOB NOT NULL,
    PRIMARY KEY (dl, ul, ih, sid)
);
-- Covering indexes for the two totals: by uploader (then torrent) and by torrent (then uploader).
CREATE INDEX IF NOT EXISTS receipts_by_uploader ON receipts (ul, ih, bytes);
CREATE INDEX IF NOT EXISTS receipts_by_torrent ON receipts (ih, ul, bytes);
";

/// A database failure: the batch or query it happened in had no effect.
#[derive(Debug)]
pub struct LedgerError(String);

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LedgerError {}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> LedgerError {
        LedgerError(format!("ledger database: {e}"))
    }
}

impl From<LedgerError> for io::Error {
    fn from(e: LedgerError) -> io::Error {
        io::Error::other(e.0)
    }
}

/// The answer to a batch, in the order the receipts came.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SubmitReport {
    pub stored: usize,
    pub duplicate: usize,
    pub rejected: usize,
    pub results: Vec<ItemResult>,
}

/// One receipt's outcome: `status` is `stored`, `duplicate` or `rejected`; `code` and `message`
/// only for rejected ones.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ItemResult {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SubmitReport {
    fn push(&mut self, outcome: Result<Accepted, Rejection>) {
        let item = match outcome {
            Ok(a) => {
                match a {
                    Accepted::Stored => self.stored += 1,
                    Accepted::Duplicate => self.duplicate += 1,
                }
                ItemResult {
                    status: a.status(),
                    code: None,
                    message: None,
                }
            }
            Err(r) => {
                self.rejected += 1;
                ItemResult {
                    status: "rejected",
                    code: Some(r.code()),
                    message: Some(r.message()),
                }
            }
        };
        self.results.push(item);
    }
}

/// `GET /api/uploaders/{key}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UploaderTotals {
    pub uploader: String,
    pub bytes: u64,
    pub receipts: u64,
    /// Per torrent, most bytes first, at most [`MAX_LIST`].
    pub torrents: Vec<UploaderTorrent>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UploaderTorrent {
    pub info_hash: String,
    pub length: u64,
    pub bytes: u64,
    pub receipts: u64,
}

/// `GET /api/torrents/{info_hash}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TorrentTotals {
    pub info_hash: String,
    /// `None` until a receipt for the torrent is stored.
    pub length: Option<u64>,
    pub bytes: u64,
    pub receipts: u64,
    /// Per uploader, most bytes first, at most [`MAX_LIST`].
    pub uploaders: Vec<TorrentUploader>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TorrentUploader {
    pub uploader: String,
    pub bytes: u64,
    pub receipts: u64,
}

/// The store: one SQLite connection behind a mutex. Writes are batches of a few milliseconds and
/// reads are indexed sums, so one connection is not the bottleneck; signature checks, which are,
/// happen before the lock is taken.
pub struct Ledger {
    conn: Mutex<Connection>,
    location: String,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("location", &self.location)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if need be) the database at `path`, or an in-memory one for
    /// [`IN_MEMORY`]. Blocking: call it from `spawn_blocking` or before the server starts.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let location = path.display().to_string();
        let fail = |e: &dyn fmt::Display| {
            LedgerError(format!("cannot open ledger database {location}: {e}"))
        };
        let conn = if path.as_os_str() == IN_MEMORY {
            Connection::open_in_memory()
        } else {
            Connection::open(path)
        }
        .map_err(|e| fail(&e))?;
        init(&conn).map_err(|e| fail(&e))?;
        Ok(Ledger {
            conn: Mutex::new(conn),
            location,
        })
    }

    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        Ledger::open(Path::new(IN_MEMORY))
    }

    /// The path given to [`open`](Self::open), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-batch dropped its transaction, which rolled back: the connection is fine.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A batch as the API receives it: hex strings, checked in parallel, then stored in one
    /// transaction. Blocking.
    pub fn submit_hex<S: AsRef<str> + Sync>(
        &self,
        receipts: &[S],
    ) -> Result<SubmitReport, LedgerError> {
        self.submit_checked(verify_all(receipts))
    }

    /// Stores a batch checked by [`verify_all`] (or [`verify_hex`], [`Verified::check`]): the
    /// `Err` items are reported as they are, the others decided against the store in order, in
    /// one transaction. Nothing is stored if the database fails. Blocking.
    pub fn submit_checked(
        &self,
        checked: Vec<Result<Verified, Rejection>>,
    ) -> Result<SubmitReport, LedgerError> {
        let mut report = SubmitReport {
            results: Vec::with_capacity(checked.len()),
            ..SubmitReport::default()
        };
        if checked.iter().all(Result::is_err) {
            // Nothing to decide: the database is not even locked.
            for rejection in checked.into_iter().filter_map(Result::err) {
                report.push(Err(rejection));
            }
            return Ok(report);
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut get = tx.prepare_cached(
                "SELECT seq, bytes, len, ts, sig FROM receipts
                 WHERE dl = ?1 AND ul = ?2 AND ih = ?3 AND sid = ?4",
            )?;
            let mut get_len = tx.prepare_cached("SELECT len FROM torrents WHERE ih = ?1")?;
            let mut put = tx.prepare_cached(
                "INSERT INTO receipts (dl, ul, ih, sid, seq, bytes, len, ts, sig)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (dl, ul, ih, sid) DO UPDATE SET
                   seq = excluded.seq, bytes = excluded.bytes, len = excluded.len,
                   ts = excluded.ts, sig = excluded.sig",
            )?;
            let mut put_len = tx.prepare_cached(
                "INSERT INTO torrents (ih, len) VALUES (?1, ?2) ON CONFLICT (ih) DO NOTHING",
            )?;
            for item in checked {
                let incoming = match item {
                    Ok(r) => r,
                    Err(rejection) => {
                        report.push(Err(rejection));
                        continue;
                    }
                };
                let key = Key::of(&incoming);
                let r = &incoming.receipt;
                let stored = get
                    .query_row(
                        params![key.downloader, key.uploader, key.info_hash, key.session],
                        |row| stored_receipt(&key, row),
                    )
                    .optional()?;
                let known_length = get_len
                    .query_row([key.info_hash], |row| uint_col(row, 0))
                    .optional()?;
                let outcome = decide(&incoming, stored.as_ref(), known_length);
                if outcome == Ok(Accepted::Stored) {
                    put.execute(params![
                        key.downloader,
                        key.uploader,
                        key.info_hash,
                        key.session,
                        to_i64(r.seq),
                        to_i64(r.bytes),
                        to_i64(r.length),
                        to_i64(r.timestamp_ms),
                        incoming.signature,
                    ])?;
                    if known_length.is_none() {
                        put_len.execute(params![key.info_hash, to_i64(r.length)])?;
                    }
                }
                report.push(outcome);
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// Totals of one uploader: the sum of the highest receipt of every session, overall and per
    /// torrent. Blocking.
    pub fn uploader(&self, uploader: &[u8; 32]) -> Result<UploaderTotals, LedgerError> {
        let mut conn = self.lock();
        // One read transaction: the overall sums and the list agree.
        let tx = conn.transaction()?;
        let (bytes, receipts) = with_sum(|sum| {
            tx.prepare_cached(&format!(
                "SELECT {sum}(bytes), COUNT(*) FROM receipts WHERE ul = ?1"
            ))?
            .query_row([uploader], |row| Ok((sum_col(row, 0)?, uint_col(row, 1)?)))
        })?;
        let torrents = with_sum(|sum| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT r.ih, t.len, {sum}(r.bytes) AS b, COUNT(*)
                 FROM receipts r JOIN torrents t ON t.ih = r.ih
                 WHERE r.ul = ?1 GROUP BY r.ih ORDER BY b DESC, r.ih LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![uploader, MAX_LIST as i64], |row| {
                Ok(UploaderTorrent {
                    info_hash: hex(&row.get::<_, [u8; 20]>(0)?),
                    length: uint_col(row, 1)?,
                    bytes: sum_col(row, 2)?,
                    receipts: uint_col(row, 3)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })?;
        Ok(UploaderTotals {
            uploader: hex(uploader),
            bytes,
            receipts,
            torrents,
        })
    }

    /// Totals of one torrent, overall and per uploader. Blocking.
    pub fn torrent(&self, info_hash: &[u8; 20]) -> Result<TorrentTotals, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let length = tx
            .prepare_cached("SELECT len FROM torrents WHERE ih = ?1")?
            .query_row([info_hash], |row| uint_col(row, 0))
            .optional()?;
        let (bytes, receipts) = with_sum(|sum| {
            tx.prepare_cached(&format!(
                "SELECT {sum}(bytes), COUNT(*) FROM receipts WHERE ih = ?1"
            ))?
            .query_row([info_hash], |row| Ok((sum_col(row, 0)?, uint_col(row, 1)?)))
        })?;
        let uploaders = with_sum(|sum| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT ul, {sum}(bytes) AS b, COUNT(*) FROM receipts
                 WHERE ih = ?1 GROUP BY ul ORDER BY b DESC, ul LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![info_hash, MAX_LIST as i64], |row| {
                Ok(TorrentUploader {
                    uploader: hex(&row.get::<_, [u8; 32]>(0)?),
                    bytes: sum_col(row, 1)?,
                    receipts: uint_col(row, 2)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })?;
        Ok(TorrentTotals {
            info_hash: hex(info_hash),
            length,
            bytes,
            receipts,
            uploaders,
        })
    }

    /// The stored receipts of one uploader (optionally of one torrent), for audit: anyone can
    /// check every signature and recompute the totals. At most `limit` (capped at
    /// [`MAX_LIST`]), ordered by info-hash, downloader, session. Blocking.
    pub fn receipts(
        &self,
        uploader: &[u8; 32],
        info_hash: Option<&[u8; 20]>,
        limit: usize,
    ) -> Result<Vec<SignedReceipt>, LedgerError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT dl, ih, sid, seq, bytes, len, ts, sig FROM receipts
             WHERE ul = ?1 AND (?2 IS NULL OR ih = ?2)
             ORDER BY ih, dl, sid LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![uploader, info_hash, limit.min(MAX_LIST) as i64],
            |row| {
                let key = Key {
                    downloader: row.get(0)?,
                    uploader: *uploader,
                    info_hash: row.get(1)?,
                    session: row.get(2)?,
                };
                Ok(SignedReceipt {
                    receipt: Receipt {
                        downloader: key.downloader,
                        uploader: key.uploader,
                        info_hash: key.info_hash,
                        length: uint_col(row, 5)?,
                        session: key.session,
                        seq: uint_col(row, 3)?,
                        bytes: uint_col(row, 4)?,
                        timestamp_ms: uint_col(row, 6)?,
                    },
                    signature: row.get(7)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// Pragmas and schema, on every open. WAL lets readers (another process, `sqlite3`) look while
/// a batch is written; `synchronous = NORMAL` is WAL's usual pairing: a power cut may lose the
/// last batches but never corrupts, and uploaders keep their receipts to submit again.
fn init(conn: &Connection) -> Result<(), String> {
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // Returns the mode it ended in ("memory" for :memory:), which needs no check.
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 64 MiB of page cache instead of 2: keys are random, so inserts touch pages all over
        // the primary key and both indexes; at a million receipts the default cache thrashes.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(32);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        conn.execute_batch(SCHEMA)
    };
    setup().map_err(|e| e.to_string())?;
    // Inside the transaction: two processes opening a new file agree on one version row.
    let version = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .map_err(|e| e.to_string());
    let result = match version {
        Ok(None) => conn
            .execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [SCHEMA_VERSION],
            )
            .map(drop)
            .map_err(|e| e.to_string()),
        Ok(Some(SCHEMA_VERSION)) => Ok(()),
        Ok(Some(other)) => Err(format!(
            "schema version {other}, this seedtab reads version {SCHEMA_VERSION}"
        )),
        Err(e) => Err(e),
    };
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.execute_batch(end).map_err(|e| e.to_string());
    result.and(ended)
}

/// The stored receipt under `key`, rebuilt from its row (columns seq, bytes, len, ts, sig).
fn stored_receipt(key: &Key, row: &rusqlite::Row<'_>) -> rusqlite::Result<SignedReceipt> {
    Ok(SignedReceipt {
        receipt: Receipt {
            downloader: key.downloader,
            uploader: key.uploader,
            info_hash: key.info_hash,
            length: uint_col(row, 2)?,
            session: key.session,
            seq: uint_col(row, 0)?,
            bytes: uint_col(row, 1)?,
            timestamp_ms: uint_col(row, 3)?,
        },
        signature: row.get(4)?,
    })
}

/// Receipts keep integers within 2^53 - 1 (`receipt::MAX_INT`), so they fit SQLite's i64.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A non-negative integer column; a negative one (a database edited by hand) is an error
/// rather than a huge number.
fn uint_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(i)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, n))
}

/// A column made by `SUM` (an integer, or NULL over no rows) or by the `TOTAL` fallback (a
/// float that saturates when cast).
fn sum_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => n.max(0) as u64,
        ValueRef::Real(f) => f as u64,
        _ => 0,
    })
}

/// Runs a query with `SUM`, and again with `TOTAL` if SQLite reports an integer overflow: each
/// receipt may claim up to 2^53 - 1 bytes, so about a thousand made-up receipts crediting one
/// uploader would otherwise make its totals an error forever. Exact below 2^53, saturating above.
fn with_sum<T>(query: impl Fn(&str) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    match query("SUM") {
        Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.contains("integer overflow") => {
            query("TOTAL")
        }
        other => other,
    }
}

/// How many threads verification may use: the cores this process is allowed, read once (on
/// Linux the answer comes from cgroup files).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// Decodes and verifies hex receipts ([`verify_hex`]) on all available cores, results in input
/// order. Touches no shared state, so it runs with no lock held. Blocking.
pub fn verify_all<S: AsRef<str> + Sync>(inputs: &[S]) -> Vec<Result<Verified, Rejection>> {
    let check = |chunk: &[S]| -> Vec<Result<Verified, Rejection>> {
        chunk.iter().map(|s| verify_hex(s.as_ref())).collect()
    };
    let threads = cores().min(inputs.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return check(inputs);
    }
    let chunk_len = inputs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = inputs.chunks(chunk_len);
        // The calling thread takes the first chunk itself.
        let first = chunks.next().unwrap_or(&[]);
        let spawned: Vec<_> = chunks
            .map(|chunk| {
                // If the OS refuses a thread, the chunk is checked here afterwards.
                let handle = std::thread::Builder::new()
                    .name("ledger-verify".into())
                    .spawn_scoped(scope, move || check(chunk));
                (chunk, handle)
            })
            .collect();
        let mut out = check(first);
        for (chunk, handle) in spawned {
            match handle {
                Ok(h) => match h.join() {
                    Ok(results) => out.extend(results),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => out.extend(check(chunk)),
            }
        }
        out
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The API's routes, to be nested at `/api`: `POST`/`GET /receipts`, `GET /uploaders/{key}`,
/// `GET /torrents/{info_hash}`. Open to every origin (CORS `*`): the data is public and no
/// credentials are involved, so a page anywhere can submit its receipts.
pub fn router(ledger: Arc<Ledger>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(86_400));
    Router::new()
        .route("/receipts", post(submit).get(list_receipts))
        .route("/uploaders/{key}", get(uploader))
        .route("/torrents/{info_hash}", get(torrent))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .with_state(Arc::new(Api {
            ledger,
            submissions: Semaphore::new(cores()),
        }))
}

/// What the handlers share.
struct Api {
    ledger: Arc<Ledger>,
    /// Batches being verified and stored at once. Each batch already uses every core, so more
    /// would only add threads; the rest wait here, off the runtime's threads.
    submissions: Semaphore,
}

/// What `seedtab ledger` serves: the API at `/api`, JSON 404s elsewhere.
pub fn app(ledger: Arc<Ledger>) -> Router {
    Router::new()
        .nest("/api", router(ledger))
        .fallback(not_found)
}

/// Opens the database off the async runtime.
pub async fn open(path: PathBuf) -> Result<Arc<Ledger>, LedgerError> {
    tokio::task::spawn_blocking(move || Ledger::open(&path).map(Arc::new))
        .await
        .map_err(|e| LedgerError(format!("opening the ledger database failed: {e}")))?
}

/// Serves [`app`] on `listener` until `shutdown` resolves.
pub async fn serve_ledger(
    listener: TcpListener,
    ledger: Arc<Ledger>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, app(ledger))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `seedtab ledger`: opens the database (a clear error if it cannot), binds `addr`, prints
/// `seedtab ledger http://ADDR/api (db FILE)`, serves until Ctrl-C or SIGTERM.
pub async fn run(addr: SocketAddr, db: PathBuf) -> io::Result<()> {
    let ledger = open(db).await?;
    let listener = super::serve::bind(addr).await?;
    let local = listener.local_addr()?;
    super::serve::announce_line(&format!(
        "seedtab ledger http://{local}/api (db {})",
        ledger.location()
    ));
    serve_ledger(listener, ledger, super::shutdown_signal()).await
}

/// `{"error": {"code": ..., "message": ...}}` with `status`.
fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

fn internal(e: impl fmt::Display) -> Response {
    tracing::error!(error = %e, "ledger failure");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the ledger failed and changed nothing: {e}"),
    )
}

/// Runs blocking ledger work off the runtime and turns its failure into a 500.
async fn blocking<T: Serialize + Send + 'static>(
    work: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct SubmitBody {
    receipts: Vec<String>,
}

async fn submit(State(api): State<Arc<Api>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over {MAX_BODY_BYTES} bytes"),
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_request", e.body_text()),
    };
    // Any content type: a page may send text/plain to spare itself a CORS preflight.
    let req: SubmitBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                format!("expected {{\"receipts\": [\"<hex>\", ...]}}: {e}"),
            )
        }
    };
    if req.receipts.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} receipts in one batch; at most {MAX_BATCH}",
                req.receipts.len()
            ),
        );
    }
    // The semaphore is never closed, so acquiring only waits.
    let Ok(_permit) = api.submissions.acquire().await else {
        return internal("submissions closed");
    };
    let ledger = api.ledger.clone();
    blocking(move || {
        let report = ledger.submit_hex(&req.receipts)?;
        tracing::debug!(
            stored = report.stored,
            duplicate = report.duplicate,
            rejected = report.rejected,
            "receipts submitted"
        );
        Ok(report)
    })
    .await
}

async fn uploader(State(api): State<Arc<Api>>, UrlPath(key): UrlPath<String>) -> Response {
    let Some(key) = from_hex::<32>(&key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_key",
            "an uploader key is 64 hex digits",
        );
    };
    let ledger = api.ledger.clone();
    blocking(move || ledger.uploader(&key)).await
}

async fn torrent(State(api): State<Arc<Api>>, UrlPath(ih): UrlPath<String>) -> Response {
    let Some(ih) = from_hex::<20>(&ih) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_info_hash",
            "an info-hash is 40 hex digits",
        );
    };
    let ledger = api.ledger.clone();
    blocking(move || ledger.torrent(&ih)).await
}

#[derive(Deserialize)]
struct ListQuery {
    uploader: Option<String>,
    info_hash: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/receipts?uploader=<hex>[&info_hash=<hex>][&limit=N]`.
async fn list_receipts(
    State(api): State<Arc<Api>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "expected ?uploader=<hex>[&info_hash=<hex>][&limit=N]",
        );
    };
    let Some(ul) = q.uploader.as_deref() else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "?uploader=<hex> is required",
        );
    };
    let Some(ul) = from_hex::<32>(ul) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_key",
            "?uploader= must be an uploader key of 64 hex digits",
        );
    };
    let ih = match q.info_hash.as_deref().map(from_hex::<20>) {
        None => None,
        Some(Some(ih)) => Some(ih),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_info_hash",
                "?info_hash= must be 40 hex digits",
            )
        }
    };
    let limit = q.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    let ledger = api.ledger.clone();
    blocking(move || {
        let list = ledger.receipts(&ul, ih.as_ref(), limit)?;
        Ok(json!({
            "uploader": hex(&ul),
            "receipts": list.iter().map(|r| hex(&r.encode())).collect::<Vec<_>>(),
        }))
    })
    .await
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such ledger endpoint (see docs/ledger.md)",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this ledger endpoint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{public_key, sign};

    fn receipt(dl_seed: u8, ul_seed: u8, ih: u8, sid: u8, seq: u64, bytes: u64) -> SignedReceipt {
        sign(
            Receipt {
                downloader: public_key(&[dl_seed; 32]),
                uploader: public_key(&[ul_seed; 32]),
                info_hash: [ih; 20],
                length: 1 << 40,
                session: [sid; 16],
                seq,
                bytes,
                timestamp_ms: 1_790_000_000_000,
            },
            &[dl_seed; 32],
        )
    }

    fn hexes(rs: &[SignedReceipt]) -> Vec<String> {
        rs.iter().map(|r| hex(&r.encode())).collect()
    }

    #[test]
    fn parallel_verification_keeps_input_order() {
        let mut inputs = hexes(
            &(1..=200)
                .map(|i| receipt(1, 2, 3, 4, i, i * 10))
                .collect::<Vec<_>>(),
        );
        inputs[150] = "nothex".into();
        let out = verify_all(&inputs);
        assert_eq!(out.len(), 200);
        for (i, r) in out.iter().enumerate() {
            if i == 150 {
                assert_eq!(
                    r,
                    &Err(crate::receipt::ReceiptError::Malformed("not hex").into())
                );
            } else {
                assert_eq!(r.as_ref().unwrap().receipt.seq, i as u64 + 1);
            }
        }
    }

    #[test]
    fn a_batch_is_decided_in_order_against_itself() {
        let ledger = Ledger::open_in_memory().unwrap();
        let batch = [
            receipt(1, 2, 3, 4, 1, 100),
            receipt(1, 2, 3, 4, 3, 300),
            receipt(1, 2, 3, 4, 2, 200),
            receipt(1, 2, 3, 4, 3, 300),
        ];
        let report = ledger.submit_hex(&hexes(&batch)).unwrap();
        let statuses: Vec<_> = report
            .results
            .iter()
            .map(|r| r.code.unwrap_or(r.status))
            .collect();
        assert_eq!(
            statuses,
            ["stored", "stored", "sequence_regressed", "duplicate"]
        );
        let totals = ledger.uploader(&public_key(&[2; 32])).unwrap();
        assert_eq!((totals.bytes, totals.receipts), (300, 1));
        let audit = ledger.receipts(&public_key(&[2; 32]), None, 10).unwrap();
        assert_eq!(audit, vec![batch[1].clone()]);
    }

    #[test]
    fn sums_saturate_instead_of_failing() {
        let ledger = Ledger::open_in_memory().unwrap();
        let ul = public_key(&[2; 32]);
        {
            let conn = ledger.lock();
            conn.execute(
                "INSERT INTO torrents VALUES (?1, ?2)",
                params![[9u8; 20], 1],
            )
            .unwrap();
            // Two rows whose sum passes i64::MAX: only reachable with ~1000 maximal receipts.
            for dl in [[1u8; 32], [3u8; 32]] {
                conn.execute(
                    "INSERT INTO receipts VALUES (?1, ?2, ?3, ?4, 1, ?5, 1, 0, ?6)",
                    params![dl, ul, [9u8; 20], [0u8; 16], i64::MAX - 1, [0u8; 64]],
                )
                .unwrap();
            }
        }
        let totals = ledger.uploader(&ul).unwrap();
        assert!(totals.bytes > i64::MAX as u64);
        assert!(totals.torrents[0].bytes > i64::MAX as u64);
        assert!(ledger.torrent(&[9; 20]).unwrap().bytes > i64::MAX as u64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("seedtab-ledger-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v2.sqlite");
        let _ = std::fs::remove_file(&path);
        drop(Ledger::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_version SET version = 2", [])
            .unwrap();
        let err = Ledger::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 2"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
