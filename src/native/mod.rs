//! Drivers that give the sans-IO core real I/O on an operating system (feature `native`): the
//! WebSocket tracker server (`tracker`, shared between instances through Redis by
//! `tracker_redis`), the receipt ledger's SQLite store and HTTP API (`ledger`), the one-process web app server (`serve`), on tokio and axum; and the native peer
//! (`commands`, driving `peer` over `rtc` data channels, `tracker_client`, files on disk from
//! `create` and `store::FileStore`, and `report` for what people and scripts see).
//!
//! Protocol decisions belong in the core (`signal`, ...); code here only moves bytes, reads the
//! clock and entropy, and must never block the async runtime while holding a lock.

pub mod commands;
pub mod create;
pub mod ledger;
pub mod peer;
pub mod report;
pub mod rtc;
pub mod serve;
pub mod tracker;
pub mod tracker_client;
pub mod tracker_conn;
pub mod tracker_redis;

use std::time::{SystemTime, UNIX_EPOCH};

/// A seed for [`crate::rng::Rng`] from the OS entropy source. Falls back to the wall clock if
/// the OS refuses: the tracker's randomness only spreads offers, it guards no secret.
pub fn entropy_seed() -> u64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5EED, |d| d.as_nanos() as u64),
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (what `docker stop` and systemd send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: never resolve rather than shut down at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
