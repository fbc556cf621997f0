//! The `seedtab` command line: parses arguments and hands over to `seedtab::native`. Thin on
//! purpose; anything worth testing lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use seedtab::create::CreateOptions;
use seedtab::native::commands::{self, PeerArgs};
use seedtab::native::report::Mode;
use seedtab::native::{ledger, serve, tracker, tracker_redis};
use seedtab::signal::server::TrackerConfig;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "seedtab",
    version,
    about = "A BitTorrent peer for browser tabs: web app server, WebSocket tracker, receipt ledger, \
             and a native peer that seeds to and downloads from browsers over WebRTC."
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
        #[command(flatten)]
        limits: TrackerLimits,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// Run only the WebSocket tracker (WebTorrent-compatible), at /announce and at /.
    ///
    /// Prints `seedtab tracker listening on ws://ADDR/announce` once listening; GET /stats gives counts.
    Tracker {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
        #[command(flatten)]
        limits: TrackerLimits,
        #[command(flatten)]
        cluster: ClusterFlags,
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
    /// Make a .torrent from files or folders (hidden and junk files are left out).
    ///
    /// Prints the magnet link.
    Create {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Where to write the .torrent.
        #[arg(short = 'o', long = "out", value_name = "FILE.torrent")]
        out: PathBuf,
        #[command(flatten)]
        torrent: TorrentArgs,
        /// Tracker URL to list in the torrent; repeat for several.
        #[arg(long = "tracker", value_name = "URL")]
        trackers: Vec<String>,
        /// Web seed URL (BEP 19 url-list); repeat for several.
        #[arg(long = "webseed", value_name = "URL")]
        webseeds: Vec<String>,
    },
    /// Seed files or folders (or the data of a .torrent) to browsers and other peers until
    /// stopped with Ctrl-C or SIGTERM; announces `stopped` on the way out.
    ///
    /// The first line on stdout is the magnet link (with --json: a `ready` JSON line).
    Seed {
        /// Files or folders, seeded where they are; or one FILE.torrent whose data is in --dir.
        #[arg(required = true, value_name = "PATH|FILE.torrent")]
        paths: Vec<PathBuf>,
        /// Folder holding the data of a .torrent (default: the working directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        torrent: TorrentArgs,
        #[command(flatten)]
        peer: PeerFlags,
    },
    /// Download a torrent from a browser swarm into a folder; exits 0 once every piece is
    /// verified and on disk. Run it again on the same folder to resume.
    Get {
        /// A magnet link, a 40-hex info-hash, or a .torrent file.
        #[arg(value_name = "MAGNET|FILE.torrent")]
        source: String,
        /// Download folder (created if missing): DIR/NAME for one file, DIR/NAME/... for several.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Keep seeding once complete, until stopped.
        #[arg(long)]
        seed: bool,
        #[command(flatten)]
        peer: PeerFlags,
    },
}

/// The tracker's limits (serve, tracker); docs/tracker.md explains each. 0 turns one off.
#[derive(Args)]
struct TrackerLimits {
    /// Open WebSockets per IPv4 address or IPv6 /64 (set 0 behind a reverse proxy).
    #[arg(long, value_name = "N", default_value_t = tracker::ConnLimits::default().max_conns_per_ip)]
    max_conns_per_ip: usize,
    /// Seconds a connection may take to send its first HTTP request, and then its first message.
    #[arg(long, value_name = "SECS", default_value_t = tracker::ConnLimits::default().handshake_timeout.as_secs())]
    handshake_timeout: u64,
    /// Seconds without a message before a WebSocket is closed (keep above the 120 s interval).
    #[arg(long, value_name = "SECS", default_value_t = tracker::ConnLimits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Messages per second one connection may send, sustained.
    #[arg(long, value_name = "N", default_value_t = TrackerConfig::default().messages_per_s)]
    max_messages_per_s: u32,
    /// Messages one connection may send at once (the rate limit's burst).
    #[arg(long, value_name = "N", default_value_t = TrackerConfig::default().message_burst)]
    message_burst: u32,
    /// Offers relayed from one announce (at most 10).
    #[arg(long, value_name = "N", default_value_t = TrackerConfig::default().max_offers_per_announce)]
    max_offers: usize,
    /// Largest numwant honoured (at most 82).
    #[arg(long, value_name = "N", default_value_t = TrackerConfig::default().max_numwant)]
    max_numwant: u32,
    /// (torrent, peer id) registrations one connection may hold.
    #[arg(long, value_name = "N", default_value_t = TrackerConfig::default().max_swarms_per_conn)]
    max_swarms_per_conn: usize,
}

impl TrackerLimits {
    fn split(self) -> (TrackerConfig, tracker::ConnLimits) {
        let config = TrackerConfig {
            messages_per_s: self.max_messages_per_s,
            message_burst: self.message_burst,
            max_offers_per_announce: self.max_offers,
            max_numwant: self.max_numwant,
            max_swarms_per_conn: self.max_swarms_per_conn,
            ..TrackerConfig::default()
        };
        let limits = tracker::ConnLimits {
            max_conns_per_ip: self.max_conns_per_ip,
            handshake_timeout: std::time::Duration::from_secs(self.handshake_timeout),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout),
        };
        (config, limits)
    }
}

/// Several tracker instances sharing swarms (serve, tracker); docs/scaling.md.
#[derive(Args)]
struct ClusterFlags {
    /// Share swarms with the other instances on this Redis (redis://HOST:PORT), so peers behind
    /// a load balancer find each other whichever instance they reach.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// This instance's id among those on the Redis (default: random); letters, digits, - _ .
    #[arg(long, value_name = "ID", requires = "redis")]
    instance_id: Option<String>,
}

impl ClusterFlags {
    fn options(self) -> Result<Option<tracker_redis::ClusterOptions>, String> {
        self.redis
            .map(|url| tracker_redis::ClusterOptions::new(&url, self.instance_id))
            .transpose()
    }
}

/// How a new torrent is made (create, seed PATH...).
#[derive(Args)]
struct TorrentArgs {
    /// Piece length in bytes, a power of two of at least 16384 (default: by total size, as
    /// WebTorrent chooses).
    #[arg(long, value_name = "BYTES")]
    piece_length: Option<u32>,
    /// The torrent's name (default: the file's or folder's name).
    #[arg(long)]
    name: Option<String>,
}

/// What seed and get share.
#[derive(Args)]
struct PeerFlags {
    /// WebSocket tracker (ws:// or wss://); repeat for several. Default: the torrent's own.
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Local IP address for WebRTC (default: every interface but loopback).
    #[arg(long, value_name = "IP")]
    bind: Option<String>,
    /// STUN or TURN server URL; repeat for several.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_server: Vec<String>,
    /// JSON lines on stdout instead of text (ready/metadata, progress, peer, done, stopped).
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// Print nothing but errors (and, for seed, the magnet link).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Reward receipts: the Ed25519 key file (64 hex digits, created with mode 0600 if
    /// missing). Downloads sign receipts for uploaders; uploads collect them.
    #[arg(long, value_name = "FILE")]
    reward_key: Option<PathBuf>,
    /// Append receipts received for our uploads to this file (JSON lines; needs --reward-key).
    #[arg(long, value_name = "FILE")]
    receipts: Option<PathBuf>,
}

impl PeerFlags {
    fn into_args(self) -> PeerArgs {
        PeerArgs {
            trackers: self.trackers,
            bind: self.bind,
            ice_servers: self.ice_server,
            mode: Some(if self.json {
                Mode::Json
            } else if self.quiet {
                Mode::Quiet
            } else {
                Mode::Human
            }),
            reward_key: self.reward_key,
            receipts: self.receipts,
        }
    }
}

impl TorrentArgs {
    fn options(self) -> CreateOptions {
        CreateOptions {
            name: self.name,
            piece_length: self.piece_length,
            ..CreateOptions::default()
        }
    }
}

/// In the working directory, like any file a command writes by default.
const DEFAULT_DB: &str = "seedtab-ledger.sqlite";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The WebRTC stack (the `rtc*` crates) logs every state change at info and harmless
            // oddities of ICE handshakes as warnings: only its errors by default.
            EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new(
                    "warn,seedtab=info,rtc=error,rtc_ice=error,rtc_dtls=error,webrtc=error",
                )
            }),
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
            limits,
            cluster,
        } => {
            let (tracker, limits) = limits.split();
            let cluster = match cluster.options() {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let opts = serve::ServeOptions {
                www,
                ice_servers: ice_server,
                db,
                tracker,
                limits,
                cluster,
            };
            serve::run(addr, opts).await
        }
        Command::Tracker {
            addr,
            limits,
            cluster,
        } => {
            let (config, limits) = limits.split();
            let cluster = match cluster.options() {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            tracker::run(addr, config, limits, cluster).await
        }
        Command::Ledger { addr, db } => ledger::run(addr, db).await,
        Command::Create {
            paths,
            out,
            torrent,
            trackers,
            webseeds,
        } => {
            let mut opts = torrent.options();
            opts.announce_list = trackers.into_iter().map(|t| vec![t]).collect();
            opts.url_list = webseeds;
            let made = tokio::task::spawn_blocking(move || {
                commands::create(&paths, &out, opts, &mut |_, _| {})
            })
            .await;
            return match made {
                Ok(Ok(magnet)) => {
                    println!("{magnet}");
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => fail(&e),
                Err(e) => fail(&e.to_string()),
            };
        }
        Command::Seed {
            paths,
            dir,
            torrent,
            peer,
        } => return exit(commands::seed(paths, dir, torrent.options(), peer.into_args()).await),
        Command::Get {
            source,
            out,
            seed,
            peer,
        } => return exit(commands::get(source, out, seed, peer.into_args()).await),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn exit(result: Result<u8, String>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("seedtab: {message}");
    ExitCode::FAILURE
}
