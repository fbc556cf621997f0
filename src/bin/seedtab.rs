//! The `seedtab` command line: parses arguments and hands over to `seedtab::native`. Thin on
//! purpose; anything worth testing lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seedtab::native::{ledger, serve, tracker};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "seedtab",
    version,
    about = "A BitTorrent peer for browser tabs: web app server, WebSocket tracker, receipt ledger."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app, its /config.json, a WebSocket tracker at /announce and the receipt
    /// ledger's API at /api, all on one address.
    ///
    /// Prints `seedtab serving http://ADDR/ (tracker ws://ADDR/announce)` once listening, then
    /// `seedtab ledger http://ADDR/api (db FILE)`.
    Serve {
        /// Address to listen on; port 0 picks a free port (the printed line shows which).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Directory of the built web app; its index.html answers paths that are not files.
        #[arg(long, value_name = "DIR", default_value = "www/dist")]
        www: PathBuf,
        /// STUN or TURN server URL for browsers, listed in /config.json; repeat for several.
        #[arg(long = "ice-server", value_name = "URL")]
        ice_server: Vec<String>,
        /// SQLite file of the receipt ledger (created if missing); `:memory:` keeps nothing.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
        db: PathBuf,
    },
    /// Run only the WebSocket tracker (WebTorrent-compatible), at /announce and at /.
    ///
    /// Prints `seedtab tracker listening on ws://ADDR/announce` once listening; GET /stats gives counts.
    Tracker {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
    },
    /// Run only the receipt ledger: uploaders submit signed receipts, anyone reads the totals.
    ///
    /// Prints `seedtab ledger http://ADDR/api (db FILE)` once listening; the API is in
    /// docs/ledger.md.
    Ledger {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: SocketAddr,
        /// SQLite file of the ledger (created if missing); `:memory:` keeps nothing.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
        db: PathBuf,
    },
}

/// In the working directory, like any file a command writes by default.
const DEFAULT_DB: &str = "seedtab-ledger.sqlite";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person watching; log files and test harnesses get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Serve {
            addr,
            www,
            ice_server,
            db,
        } => {
            let opts = serve::ServeOptions {
                www,
                ice_servers: ice_server,
                db,
                ..Default::default()
            };
            serve::run(addr, opts).await
        }
        Command::Tracker { addr } => tracker::run(addr).await,
        Command::Ledger { addr, db } => ledger::run(addr, db).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seedtab: {e}");
            ExitCode::FAILURE
        }
    }
}
