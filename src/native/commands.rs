//! The native peer's commands, `create`, `seed` and `get`, from parsed arguments to an exit
//! code: finds the files and trackers, opens the store (checking what is already on disk), and
//! hands over to the driver (`peer`). The command line itself lives in `bin/seedtab.rs`.
//!
//! Errors here are for people: each says what was wrong with which argument or path. Nothing
//! here talks to the network itself.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::create::{collect_files, create_from_disk, default_state_path, open_seed_store};
use super::peer::{self, NativeRewards, Outcome, Start};
use super::report::{Mode, Reporter};
use super::rtc::RtcConfig;
use crate::create::CreateOptions;
use crate::engine::Config;
use crate::id::InfoHash;
use crate::magnet::Magnet;
use crate::metainfo::Metainfo;
use crate::receipt;
use crate::store::FileStore;

/// Exit code of a download stopped by a signal before it completed (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// What `seed` and `get` share.
#[derive(Clone, Debug, Default)]
pub struct PeerArgs {
    /// WebSocket tracker URLs; the torrent's own ws:// and wss:// trackers are used when empty.
    pub trackers: Vec<String>,
    /// Local address for WebRTC (e.g. 127.0.0.1); every interface when None.
    pub bind: Option<String>,
    pub ice_servers: Vec<String>,
    pub mode: Option<Mode>,
    /// Ed25519 seed file for reward receipts (created if missing).
    pub reward_key: Option<PathBuf>,
    /// Where receipts received for our uploads are appended (JSON lines).
    pub receipts: Option<PathBuf>,
}

impl PeerArgs {
    fn reporter(&self) -> Reporter {
        Reporter::new(
            self.mode.unwrap_or(Mode::Human),
            std::io::stderr().is_terminal(),
        )
    }

    fn options(&self, known: Vec<String>, keep_seeding: bool) -> Result<peer::Options, String> {
        let trackers = if self.trackers.is_empty() {
            known
                .into_iter()
                .filter(|u| u.starts_with("ws://") || u.starts_with("wss://"))
                .collect()
        } else {
            self.trackers.clone()
        };
        if trackers.is_empty() {
            return Err("no WebSocket tracker: give one with --tracker ws://HOST/announce".into());
        }
        for t in &trackers {
            if !(t.starts_with("ws://") || t.starts_with("wss://")) {
                return Err(format!(
                    "--tracker {t}: only WebSocket trackers (ws:// or wss://) reach browsers"
                ));
            }
        }
        let rtc = RtcConfig {
            bind: vec![match &self.bind {
                Some(ip)
                    if ip.contains(':')
                        && !ip.starts_with('[')
                        && ip.parse::<std::net::Ipv6Addr>().is_ok() =>
                {
                    format!("[{ip}]:0")
                }
                Some(ip) if ip.parse::<std::net::IpAddr>().is_ok() => format!("{ip}:0"),
                Some(other) => return Err(format!("--bind {other}: not an IP address")),
                None => "0.0.0.0:0".into(),
            }],
            ice_servers: self.ice_servers.clone(),
        };
        let rewards = match &self.reward_key {
            Some(path) => Some(NativeRewards {
                seed: load_or_create_key(path)?,
                receipts_file: self.receipts.clone(),
            }),
            None if self.receipts.is_some() => {
                return Err(
                    "--receipts needs --reward-key: receipts name the uploader's key".into(),
                )
            }
            None => None,
        };
        Ok(peer::Options {
            trackers,
            rtc,
            keep_seeding,
            rewards,
            engine: Config::default(),
        })
    }
}

/// `seedtab create`: hashes the files and writes the .torrent; returns its magnet link.
pub fn create(
    paths: &[PathBuf],
    out: &Path,
    opts: CreateOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<String, String> {
    let meta = torrent_from_paths(paths, opts, progress)?.0;
    fs::write(out, meta.to_torrent_bytes())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(meta.magnet().to_uri())
}

fn torrent_from_paths(
    paths: &[PathBuf],
    mut opts: CreateOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Metainfo, Vec<super::create::DiskFile>), String> {
    let (default_name, files) = collect_files(paths).map_err(|e| e.to_string())?;
    if opts.name.is_none() {
        opts.name = default_name;
    }
    if opts.creation_date.is_none() {
        opts.creation_date = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64);
    }
    let meta = create_from_disk(&files, opts, progress).map_err(|e| e.to_string())?;
    Ok((meta, files))
}

/// `seedtab seed PATH...` or `seedtab seed FILE.torrent --dir DIR`: seeds until a signal.
pub async fn seed(
    paths: Vec<PathBuf>,
    dir: Option<PathBuf>,
    opts: CreateOptions,
    args: PeerArgs,
) -> Result<u8, String> {
    let mut reporter = args.reporter();
    let is_torrent = paths.len() == 1
        && paths[0].extension().is_some_and(|e| e == "torrent")
        && paths[0].is_file();
    let (meta, store, have) = if is_torrent {
        let meta = read_torrent(&paths[0])?;
        let dir = dir.unwrap_or_else(|| PathBuf::from("."));
        let dir_shown = dir.display().to_string();
        let m = meta.clone();
        let (store, have) = tokio::task::spawn_blocking(move || FileStore::open_verify(&dir, &m))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot open the files of {}: {e}", meta.info.name))?;
        if have.count() == 0 {
            return Err(format!(
                "none of the pieces of {} are in {} (give the folder that holds it with --dir)",
                meta.info.name, dir_shown
            ));
        }
        (meta, store, have)
    } else {
        if dir.is_some() {
            return Err("--dir is for seeding a .torrent; files are seeded where they are".into());
        }
        let (meta, store, have) = tokio::task::spawn_blocking(move || {
            let (meta, files) = torrent_from_paths(&paths, opts, &mut |_, _| {})?;
            let base = files
                .first()
                .and_then(|f| f.disk_path.parent())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let state = default_state_path(&meta, &base);
            let (store, have) = open_seed_store(&files, &meta, state)
                .map_err(|e| format!("cannot open the files: {e}"))?;
            Ok::<_, String>((meta, store, have))
        })
        .await
        .map_err(|e| e.to_string())??;
        (meta, store, have)
    };
    let options = args.options(meta.trackers(), true)?;
    let outcome = peer::run(
        Start::Torrent { meta, store, have },
        options,
        &mut reporter,
        super::shutdown_signal(),
    )
    .await;
    finish(outcome, &mut reporter, true)
}

/// `seedtab get MAGNET|FILE.torrent -o DIR`: downloads, and exits when complete (or keeps
/// seeding with `keep_seeding`).
pub async fn get(
    source: String,
    out: PathBuf,
    keep_seeding: bool,
    args: PeerArgs,
) -> Result<u8, String> {
    let mut reporter = args.reporter();
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (start_meta, info_hash, known_trackers) = parse_source(&source)?;
    // A magnet download that already fetched its metadata resumes like a .torrent one.
    let meta = start_meta.or_else(|| peer::saved_metainfo(&out, &info_hash));
    let start = match meta {
        Some(meta) => {
            let m = meta.clone();
            let dir = out.clone();
            // Whatever is on disk is hashed again: the resume state may lag behind the files (a
            // kill), and files may have been touched since.
            let (store, have) =
                tokio::task::spawn_blocking(move || FileStore::open_verify(&dir, &m))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| {
                        format!("cannot keep {} in {}: {e}", meta.info.name, out.display())
                    })?;
            Start::Torrent { meta, store, have }
        }
        None => Start::Magnet {
            info_hash,
            dir: out.clone(),
        },
    };
    let options = args.options(known_trackers, keep_seeding)?;
    let outcome = peer::run(start, options, &mut reporter, super::shutdown_signal()).await;
    finish(outcome, &mut reporter, keep_seeding)
}

fn finish(
    outcome: Outcome,
    reporter: &mut Reporter,
    stopping_is_success: bool,
) -> Result<u8, String> {
    match outcome {
        Outcome::Complete { .. } => Ok(0),
        Outcome::Stopped => {
            reporter.report(&super::report::Report::Stopped);
            Ok(if stopping_is_success {
                0
            } else {
                EXIT_INTERRUPTED
            })
        }
        Outcome::Failed(reason) => Err(reason),
    }
}

fn parse_source(source: &str) -> Result<(Option<Metainfo>, InfoHash, Vec<String>), String> {
    if source.len() >= 7 && source[..7].eq_ignore_ascii_case("magnet:") {
        let m = Magnet::parse(source).map_err(|e| format!("bad magnet link: {e}"))?;
        return Ok((None, m.info_hash, m.trackers));
    }
    if let Ok(ih) = InfoHash::from_hex(source) {
        return Ok((None, ih, Vec::new()));
    }
    let meta = read_torrent(Path::new(source))?;
    let trackers = meta.trackers();
    Ok((Some(meta.clone()), meta.info_hash, trackers))
}

fn read_torrent(path: &Path) -> Result<Metainfo, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Metainfo::from_torrent_bytes(&bytes)
        .map_err(|e| format!("{} is not a usable .torrent: {e}", path.display()))
}

/// The reward key's secret seed: 64 hex digits in `path`, created (mode 0600) if missing.
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32], String> {
    match fs::read_to_string(path) {
        Ok(text) => receipt::from_hex::<32>(text.trim())
            .ok_or_else(|| format!("{}: not a reward key (64 hex digits)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| format!("no entropy for a new key: {e}"))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            write_private(path, &receipt::hex(&seed))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(seed)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    writeln!(f, "{text}")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_magnets_info_hashes_or_torrent_files() {
        let ih = "0123456789abcdef0123456789abcdef01234567";
        let (meta, got, trackers) =
            parse_source(&format!("magnet:?xt=urn:btih:{ih}&tr=ws%3A%2F%2Fh%2Fa")).unwrap();
        assert!(meta.is_none());
        assert_eq!(got.to_hex(), ih);
        assert_eq!(trackers, vec!["ws://h/a".to_string()]);
        assert_eq!(parse_source(ih).unwrap().1.to_hex(), ih);
        let err = parse_source("/nonexistent/x.torrent").unwrap_err();
        assert!(err.contains("cannot read /nonexistent/x.torrent"), "{err}");
        assert!(parse_source("magnet:?xt=urn:btih:zz")
            .unwrap_err()
            .contains("bad magnet"));
    }

    #[test]
    fn trackers_must_reach_browsers() {
        let a = PeerArgs::default();
        let err = a.options(vec!["udp://t:1".into()], false).err().unwrap();
        assert!(err.contains("--tracker"), "{err}");
        let o = a
            .options(vec!["udp://t:1".into(), "wss://t/a".into()], false)
            .unwrap();
        assert_eq!(o.trackers, vec!["wss://t/a".to_string()]);
        let bad = PeerArgs {
            trackers: vec!["http://t/announce".into()],
            ..PeerArgs::default()
        };
        assert!(bad
            .options(vec![], false)
            .err()
            .unwrap()
            .contains("only WebSocket"));
        let bind = PeerArgs {
            trackers: vec!["ws://t".into()],
            bind: Some("127.0.0.1".into()),
            ..PeerArgs::default()
        };
        assert_eq!(
            bind.options(vec![], false).unwrap().rtc.bind,
            vec!["127.0.0.1:0"]
        );
        let v6 = PeerArgs {
            bind: Some("::1".into()),
            ..bind.clone()
        };
        assert_eq!(v6.options(vec![], false).unwrap().rtc.bind, vec!["[::1]:0"]);
        let junk = PeerArgs {
            bind: Some("eth0".into()),
            ..bind
        };
        assert!(junk.options(vec![], false).is_err());
    }

    #[test]
    fn reward_key_is_created_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("seedtab-key-{}", std::process::id()));
        let path = dir.join("k").join("reward.key");
        let _ = fs::remove_dir_all(&dir);
        let a = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        fs::write(&path, "nope").unwrap();
        assert!(load_or_create_key(&path)
            .unwrap_err()
            .contains("not a reward key"));
        let _ = fs::remove_dir_all(&dir);
    }
}
