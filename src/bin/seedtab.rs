//! The `seedtab` command line: parses arguments and hands over to `seedtab::native`. Thin on
//! purpose; anything worth testing lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seedtab::native::{serve, tracker};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "seedtab",
    version,
    about = "A BitTorrent peer for browser tabs: web app server and WebSocket tracker."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app, its /config.json and a WebSocket tracker at /announce, all on one address.
    ///
    /// Prints `seedtab serving http://ADDR/ (tracker ws://ADDR/announce)` once listening.
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
    },
    /// Run only the WebSocket tracker (WebTorrent-compatible), at /announce and at /.
    ///
    /// Prints `seedtab tracker listening on ws://ADDR/announce` once listening; GET /stats gives counts.
    Tracker {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
    },
}

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
        } => {
            let opts = serve::ServeOptions {
                www,
                ice_servers: ice_server,
                ..Default::default()
            };
            serve::run(addr, opts).await
        }
        Command::Tracker { addr } => tracker::run(addr).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seedtab: {e}");
            ExitCode::FAILURE
        }
    }
}
