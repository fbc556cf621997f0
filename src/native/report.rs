//! What the native peer tells the person or script running it: progress bars (indicatif) on a
//! terminal, plain lines when stderr is not one, JSON lines on stdout with `--json`, nothing but
//! errors with `--quiet`.
//!
//! Only formats what the driver reports; it never decides anything about the torrent, and it
//! never prints anything that came from the swarm (names come from verified metadata) without
//! escaping control characters first.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// One look at a torrent's transfer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub have: u32,
    pub pieces: u32,
    pub verified: u64,
    pub length: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub download_speed: f64,
    pub upload_speed: f64,
    pub peers: usize,
}

/// The torrent as known once its metadata is.
#[derive(Debug, Clone, PartialEq)]
pub struct About {
    pub info_hash: String,
    pub name: String,
    pub length: u64,
    pub pieces: u32,
    /// Pieces already stored when the run began.
    pub have: u32,
    pub magnet: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Seeding: the torrent is ready and announced.
    Ready(About),
    /// Downloading: the metadata is known (at once from a .torrent, later from a magnet link).
    Metadata(About),
    Progress(Snapshot),
    Peer {
        connected: bool,
        peer_id: String,
    },
    Done {
        info_hash: String,
        length: u64,
        downloaded: u64,
        seconds: f64,
    },
    /// Something went wrong that the run survives (a tracker refused us, a peer was banned).
    Warning(String),
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Quiet,
}

/// How often plain (non-terminal) output prints a progress line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Reporter {
    mode: Mode,
    /// A terminal: draw a bar rather than lines.
    tty: bool,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    seeding: bool,
}

impl Reporter {
    pub fn new(mode: Mode, tty: bool) -> Reporter {
        Reporter {
            mode,
            tty,
            bar: None,
            last_line: None,
            seeding: false,
        }
    }

    pub fn report(&mut self, r: &Report) {
        match self.mode {
            Mode::Json => json_line(r),
            Mode::Quiet => {
                // A seeder's magnet link is its result: printed even when quiet.
                if let Report::Ready(a) = r {
                    println!("{}", a.magnet);
                }
            }
            Mode::Human => self.human(r),
        }
    }

    fn human(&mut self, r: &Report) {
        match r {
            Report::Ready(a) => {
                self.seeding = true;
                println!("{}", a.magnet);
                self.say(&format!(
                    "seeding {} ({}, {} pieces, info-hash {})",
                    printable(&a.name),
                    size(a.length),
                    a.pieces,
                    a.info_hash
                ));
                self.start_bar(a);
            }
            Report::Metadata(a) => {
                self.say(&format!(
                    "downloading {} ({}, {} pieces{})",
                    printable(&a.name),
                    size(a.length),
                    a.pieces,
                    if a.have > 0 {
                        format!(", {} already here", a.have)
                    } else {
                        String::new()
                    }
                ));
                self.start_bar(a);
            }
            Report::Progress(s) => {
                let line = progress_line(s, self.seeding);
                if let Some(bar) = &self.bar {
                    bar.set_length(s.length.max(1));
                    bar.set_position(s.verified);
                    bar.set_message(line);
                } else if self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    self.last_line = Some(Instant::now());
                    eprintln!("{line}");
                }
            }
            Report::Peer { .. } => {}
            Report::Done {
                length,
                downloaded,
                seconds,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(*length);
                }
                self.say(&format!(
                    "done: {} in {:.1} s ({}/s), {} received",
                    size(*length),
                    seconds,
                    size((*length as f64 / seconds.max(0.001)) as u64),
                    size(*downloaded)
                ));
            }
            Report::Warning(w) => self.say(&format!("warning: {}", printable(w))),
            Report::Stopped => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("stopped");
            }
        }
    }

    fn start_bar(&mut self, a: &About) {
        if !self.tty || self.bar.is_some() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(a.length), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        self.bar = Some(bar);
    }

    /// A line above the bar (or on its own without one).
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn json_line(r: &Report) {
    let v = match r {
        Report::Ready(a) => about_json("ready", a),
        Report::Metadata(a) => about_json("metadata", a),
        Report::Progress(s) => json!({
            "event": "progress",
            "have": s.have,
            "pieces": s.pieces,
            "verified": s.verified,
            "length": s.length,
            "downloaded": s.downloaded,
            "uploaded": s.uploaded,
            "downloadSpeed": s.download_speed.round(),
            "uploadSpeed": s.upload_speed.round(),
            "peers": s.peers,
        }),
        Report::Peer { connected, peer_id } => json!({
            "event": "peer",
            "op": if *connected { "connected" } else { "closed" },
            "peerId": peer_id,
        }),
        Report::Done {
            info_hash,
            length,
            downloaded,
            seconds,
        } => json!({
            "event": "done",
            "infoHash": info_hash,
            "length": length,
            "downloaded": downloaded,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        }),
        Report::Warning(w) => json!({ "event": "warning", "message": w }),
        Report::Stopped => json!({ "event": "stopped" }),
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (the script stopped reading) must not kill a seeder.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn about_json(event: &str, a: &About) -> serde_json::Value {
    json!({
        "event": event,
        "infoHash": a.info_hash,
        "magnet": a.magnet,
        "name": a.name,
        "length": a.length,
        "pieces": a.pieces,
        "have": a.have,
    })
}

fn progress_line(s: &Snapshot, seeding: bool) -> String {
    let pct = if s.length == 0 {
        100.0
    } else {
        s.verified as f64 * 100.0 / s.length as f64
    };
    if seeding && s.have == s.pieces {
        format!(
            "{} peers, up {}/s, {} sent",
            s.peers,
            size(s.upload_speed as u64),
            size(s.uploaded)
        )
    } else {
        format!(
            "{pct:.1}% {}/{} pieces, {} peers, down {}/s, up {}/s",
            s.have,
            s.pieces,
            s.peers,
            size(s.download_speed as u64),
            size(s.upload_speed as u64)
        )
    }
}

/// Bytes for people: 1.5 MiB.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Text from the swarm with control characters (terminal escapes among them) shown as `?`.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(100 << 20), "100.0 MiB");
    }

    #[test]
    fn terminal_escapes_from_the_swarm_are_neutralised() {
        assert_eq!(printable("a\x1b[2Jb\nc"), "a?[2Jb?c");
        assert_eq!(printable("été.mp4"), "été.mp4");
    }

    #[test]
    fn progress_line_says_what_a_seeder_and_a_downloader_care_about() {
        let s = Snapshot {
            have: 3,
            pieces: 4,
            verified: 3 << 20,
            length: 4 << 20,
            peers: 2,
            ..Snapshot::default()
        };
        assert!(progress_line(&s, false).starts_with("75.0% 3/4 pieces, 2 peers"));
        let done = Snapshot { have: 4, ..s };
        assert!(progress_line(&done, true).starts_with("2 peers, up"));
    }
}
