//! `seedtab serve`: one process that serves the built web app (a static directory, with
//! `index.html` as the fallback for client-side routes), its runtime configuration at
//! `GET /config.json`, the WebSocket tracker at `/announce` (with its `/stats` and `/metrics`),
//! the receipt ledger's API at `/api`
//! and the embeddable player at `/embed` — so a single address is all a deployment or a browser
//! test needs.
//!
//! Only wiring: no protocol logic, and nothing outside the `--www` directory is ever served.

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};

use super::ledger::{self, Ledger};
use super::tracker::{self, ConnLimits, TrackerService};
use super::tracker_redis::ClusterOptions;
use crate::signal::server::TrackerConfig;

/// What `seedtab serve` serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The built web app; `index.html` inside it answers every path that is not a file.
    pub www: PathBuf,
    /// STUN/TURN URLs handed to the browser in `/config.json`, in order.
    pub ice_servers: Vec<String>,
    pub tracker: TrackerConfig,
    /// The tracker's per-connection limits; they apply to every HTTP connection of the app (the
    /// handshake timeout bounds how long a request may take to arrive).
    pub limits: ConnLimits,
    /// The ledger's SQLite file; `:memory:` (the default here, so tests leave no file) keeps it
    /// in memory. The command line defaults to `seedtab-ledger.sqlite`.
    pub db: PathBuf,
    /// Share the tracker's swarms with other instances through Redis (docs/scaling.md).
    pub cluster: Option<ClusterOptions>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            www: PathBuf::from("www/dist"),
            ice_servers: Vec::new(),
            tracker: TrackerConfig::default(),
            limits: ConnLimits::default(),
            db: PathBuf::from(ledger::IN_MEMORY),
            cluster: None,
        }
    }
}

/// The body of `GET /config.json`: `{"iceServers":[{"urls":URL}...],"trackers":[]}`. An empty
/// `trackers` list tells the web app to use this origin's `/announce`.
pub fn config_json(ice_servers: &[String]) -> Value {
    let ice: Vec<Value> = ice_servers.iter().map(|u| json!({ "urls": u })).collect();
    json!({ "iceServers": ice, "trackers": [] })
}

/// The whole app: tracker routes (`/announce`, `/stats`, `/metrics`), the ledger API (`/api/...`),
/// `/config.json`, static files.
pub fn app_router(
    opts: &ServeOptions,
    tracker: Arc<TrackerService>,
    ledger: Arc<Ledger>,
) -> Router {
    let config = config_json(&opts.ice_servers).to_string();
    let files = ServeDir::new(&opts.www).fallback(ServeFile::new(opts.www.join("index.html")));
    tracker::router(tracker, false)
        .nest("/api", ledger::router(ledger))
        // The player's own address, as documented for bare iframes: `/embed#magnet=...`.
        .route_service("/embed", ServeFile::new(opts.www.join("embed.html")))
        .route(
            "/config.json",
            get(move || {
                let body = config.clone();
                // The config may change between runs of the same origin; never let it go stale.
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        body,
                    )
                }
            }),
        )
        .fallback_service(files)
        .layer(axum::middleware::map_response(content_security_policy))
}

/// Pages may run only our own scripts and wasm, load nothing from elsewhere but what peers need
/// (trackers, web seeds, a ledger: any ws/wss/http/https URL), and never be framed, except the
/// player, which exists to be embedded. Names from the swarm are set as text everywhere; this is
/// the second line should one ever reach markup.
pub const CSP_APP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
    worker-src 'self' blob:; connect-src 'self' ws: wss: http: https:; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
pub const CSP_EMBED: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
    worker-src 'self' blob:; connect-src 'self' ws: wss: http: https:; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors *";

async fn content_security_policy(
    uri: axum::http::Uri,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let embed = uri.path() == "/embed" || uri.path().ends_with("/embed.html");
        let policy = if embed { CSP_EMBED } else { CSP_APP };
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(policy),
        );
    }
    response
}

/// Serves the app on `listener` until `shutdown` resolves, with the ledger database of
/// `opts.db`.
pub async fn serve_app(
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let ledger = ledger::open(opts.db.clone()).await?;
    serve_app_with(listener, opts, ledger, shutdown).await
}

async fn serve_app_with(
    listener: TcpListener,
    opts: ServeOptions,
    ledger: Arc<Ledger>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if !opts.www.join("index.html").is_file() {
        tracing::warn!(www = %opts.www.display(), "no index.html in the web app directory; build the app or pass --www");
    }
    let service = TrackerService::with_limits(opts.tracker.clone(), opts.limits.clone());
    let app = app_router(&opts, service.clone(), ledger);
    tracker::serve_router(listener, app, service, opts.cluster, shutdown).await
}

/// `seedtab serve`: opens the ledger database (before anything is printed, so a bad `--db` is
/// the only message), binds `addr`, prints
/// `seedtab serving http://ADDR/ (tracker ws://ADDR/announce)` with the real bound address, then
/// `seedtab ledger http://ADDR/api (db FILE)`, and serves until Ctrl-C or SIGTERM.
pub async fn run(addr: SocketAddr, opts: ServeOptions) -> io::Result<()> {
    let ledger = ledger::open(opts.db.clone()).await?;
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    // Scripts match this first line exactly (tests/browser/harness.mjs): keep it as it is.
    announce_line(&format!(
        "seedtab serving http://{local}/ (tracker ws://{local}/announce)"
    ));
    announce_line(&format!(
        "seedtab ledger http://{local}/api (db {})",
        ledger.location()
    ));
    serve_app_with(listener, opts, ledger, super::shutdown_signal()).await
}

/// Binds, with the address in the error (a bare "Address already in use" names no port).
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Prints the line scripts wait for, flushed at once (stdout is block-buffered under a pipe).
pub(crate) fn announce_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_ice_servers_in_order() {
        let v = config_json(&["stun:a:3478".into(), "turn:b".into()]);
        assert_eq!(
            v,
            json!({"iceServers": [{"urls": "stun:a:3478"}, {"urls": "turn:b"}], "trackers": []})
        );
        assert_eq!(config_json(&[]), json!({"iceServers": [], "trackers": []}));
    }
}
