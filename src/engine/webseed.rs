//! Web seeds (BEP 19, "GetRight" style) inside a session: which HTTP(S) URLs the torrent's
//! bytes can be fetched from, when to use one (pieces no connected peer has, no peers at all,
//! the urgent head of a streaming window), the ranged requests for a piece (URL and inclusive
//! byte range per file), and what to do with the answer: the bytes are verified like any
//! peer's, a web seed whose data fails a hash check is dropped for good, HTTP errors back off
//! and, repeated, drop it too.
//!
//! Sans-IO like the rest of the engine: it never fetches anything, reads no clock and uses no
//! randomness. The driver performs `Event::WebSeedFetch` and answers with `web_seed_data`;
//! time comes in with the calls. Web seeds are opt-in (`add_web_seed`): a driver that cannot
//! fetch never adds any, so no piece ever waits on a fetch nobody makes.

use std::collections::BTreeMap;

use crate::bitfield::Bitfield;
use crate::metainfo::Info;

use super::{picker, Event, Session};

/// Most web seeds one torrent uses; more in a `.torrent` or a magnet link are ignored.
pub const MAX_WEB_SEEDS: usize = 16;
/// Longest web seed URL accepted.
pub const MAX_WEB_SEED_URL: usize = 2048;
/// Pieces in flight per web seed: enough to hide a round trip, few enough that peers keep the
/// rest of the swarm's work (and that one slow server does not hold many pieces hostage).
pub const WEB_SEED_PIECES_IN_FLIGHT: usize = 3;
/// How many pieces at the head of the streaming window a web seed takes even when peers have
/// them: those are what a player waits on to start.
const URGENT_PIECES: usize = 2;
/// Consecutive failed fetches (HTTP errors, wrong sizes, time-outs) before a web seed is
/// dropped; a success resets the count.
pub const MAX_WEB_SEED_FAILURES: u32 = 5;
/// First back-off after a failure; it doubles with each further failure, up to the maximum.
const BACKOFF_MS: u64 = 1_000;
const MAX_BACKOFF_MS: u64 = 60_000;
/// Without news (an answer, a new web seed) the pieces are scanned for work at most this often:
/// the scan is linear in pieces and peers, and the driver fills requests many times a second.
const RESCAN_MS: u64 = 250;
/// A fetch not answered by then counts as a failure and its piece goes back to the pool (a
/// late answer is ignored).
const FETCH_TIMEOUT_MS: u64 = 60_000;

/// One ranged HTTP request: GET `url` with `Range: bytes=start-end` (`end` inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSeedRequest {
    pub url: String,
    pub start: u64,
    pub end: u64,
    /// The whole file's length: what a `Content-Range` total, or the body of a server that
    /// ignores `Range` (200), must match.
    pub file_length: u64,
}

/// Whether `url` may be used as a web seed: http or https, of bounded length.
pub fn is_web_seed_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    url.len() <= MAX_WEB_SEED_URL
        && (lower.starts_with("http://") || lower.starts_with("https://"))
        && url.len() > lower.find("//").map_or(0, |i| i + 2)
        && !url.chars().any(|c| c.is_control() || c == ' ')
}

/// The usable web seeds among `urls`, in order, without duplicates, at most `MAX_WEB_SEEDS`.
pub fn web_seed_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in urls {
        let u = u.trim();
        if out.len() < MAX_WEB_SEEDS && is_web_seed_url(u) && !out.iter().any(|o| o == u) {
            out.push(u.to_string());
        }
    }
    out
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved characters, so a
/// name holding `/`, `?`, `#`, `%` or non-ASCII cannot change the URL's meaning.
fn encode_segment(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// The URL of file `index` under web seed `base` (BEP 19). Single-file: `base` itself, or
/// `base` + name when it ends with `/`. Multi-file: `base` + name + `/` + path, each segment
/// percent-encoded.
pub fn file_url(info: &Info, base: &str, index: usize) -> String {
    let mut url = base.to_string();
    if !info.multi_file {
        if url.ends_with('/') {
            encode_segment(&info.name, &mut url);
        }
        return url;
    }
    if !url.ends_with('/') {
        url.push('/');
    }
    encode_segment(&info.name, &mut url);
    if let Some(f) = info.files.get(index) {
        for seg in &f.path {
            url.push('/');
            encode_segment(seg, &mut url);
        }
    }
    url
}

/// The requests that fetch piece `piece` from web seed `base`, in stream order: one per file
/// the piece touches. BEP 47 padding files are not fetched (their bytes are zeros; see
/// [`assemble_piece`]).
pub fn piece_requests(info: &Info, base: &str, piece: u32) -> Vec<WebSeedRequest> {
    let len = u64::from(info.piece_len(piece));
    info.file_ranges(info.piece_offset(piece), len)
        .into_iter()
        .filter(|&(i, _, _)| !info.files[i].is_padding())
        .map(|(i, off, n)| WebSeedRequest {
            url: file_url(info, base, i),
            start: off,
            end: off + n - 1,
            file_length: info.files[i].length,
        })
        .collect()
}

/// The piece's bytes from the answers to [`piece_requests`] concatenated in order, with the
/// padding files' zeros put back; None when `data` is not exactly the size asked for.
pub fn assemble_piece(info: &Info, piece: u32, data: &[u8]) -> Option<Vec<u8>> {
    let len = u64::from(info.piece_len(piece));
    let ranges = info.file_ranges(info.piece_offset(piece), len);
    let wanted: u64 = ranges
        .iter()
        .filter(|&&(i, _, _)| !info.files[i].is_padding())
        .map(|&(_, _, n)| n)
        .sum();
    if data.len() as u64 != wanted {
        return None;
    }
    if wanted == len {
        return Some(data.to_vec());
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut at = 0usize;
    for (i, _, n) in ranges {
        let n = n as usize;
        if info.files[i].is_padding() {
            out.resize(out.len() + n, 0);
        } else {
            out.extend_from_slice(&data[at..at + n]);
            at += n;
        }
    }
    Some(out)
}

#[derive(Debug)]
pub(crate) struct WebSeed {
    pub url: String,
    /// Piece -> when its fetch was asked for.
    in_flight: BTreeMap<u32, u64>,
    failures: u32,
    retry_at_ms: u64,
    dropped: bool,
}

/// Every web seed of a session, by id (its index: ids are never reused, dropped seeds stay).
#[derive(Debug, Default)]
pub(crate) struct WebSeeds {
    seeds: Vec<WebSeed>,
    /// Pieces a web seed sent, waiting for their hash check: piece -> seed.
    pending: BTreeMap<u32, u32>,
    /// When the pieces were last scanned for web seed work, and whether something changed
    /// since that calls for a scan now.
    scanned_ms: Option<u64>,
    news: bool,
}

impl Session {
    /// Adds a web seed (BEP 19 `url-list`, magnet `ws=`); its id comes with its events. None
    /// if the URL is not http(s), too long, already known, or `MAX_WEB_SEEDS` are known. Before
    /// the metadata is known it waits: a web seed cannot serve the info dictionary.
    pub fn add_web_seed(&mut self, url: &str) -> Option<u32> {
        let url = url.trim();
        let ws = &mut self.web_seeds.seeds;
        if !is_web_seed_url(url) || ws.len() >= MAX_WEB_SEEDS || ws.iter().any(|s| s.url == url) {
            return None;
        }
        self.web_seeds.news = true;
        let ws = &mut self.web_seeds.seeds;
        ws.push(WebSeed {
            url: url.to_string(),
            in_flight: BTreeMap::new(),
            failures: 0,
            retry_at_ms: 0,
            dropped: false,
        });
        Some(ws.len() as u32 - 1)
    }

    /// Web seeds still in use: `(id, url)`.
    pub fn web_seeds(&self) -> Vec<(u32, String)> {
        self.web_seeds
            .seeds
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.dropped)
            .map(|(i, s)| (i as u32, s.url.clone()))
            .collect()
    }

    /// The answer to `Event::WebSeedFetch`: the bodies of its requests concatenated in order,
    /// or why the fetch failed. The piece is then hashed like any other.
    pub fn web_seed_data(
        &mut self,
        seed: u32,
        piece: u32,
        result: Result<Vec<u8>, String>,
        now_ms: u64,
    ) {
        self.now_ms = self.now_ms.max(now_ms);
        let Some(s) = self.web_seeds.seeds.get_mut(seed as usize) else {
            return;
        };
        if s.in_flight.remove(&piece).is_none() {
            return; // Timed out earlier, or never asked: the piece is someone else's now.
        }
        self.picker.web.remove(&piece);
        self.web_seeds.news = true;
        let Some(meta) = &self.meta else { return };
        let bytes = match result {
            Ok(data) => match assemble_piece(&meta.info, piece, &data) {
                Some(bytes) => bytes,
                None => {
                    let reason = format!("sent {} bytes for piece {piece}", data.len());
                    self.web_seed_failed(seed, reason, now_ms);
                    return;
                }
            },
            Err(reason) => {
                self.web_seed_failed(seed, reason, now_ms);
                return;
            }
        };
        self.download.add(bytes.len() as u64, now_ms);
        if self.have.get(piece as usize)
            || self.picker.verifying.contains(&piece)
            || self.picker.partials.contains_key(&piece)
        {
            return;
        }
        let blocks = meta.info.num_blocks(piece) as usize;
        let partial = picker::Partial {
            buf: bytes,
            received: vec![true; blocks],
            requested: vec![0; blocks],
            // Nobody to credit a receipt to or to smart-ban: a failure is the web seed's.
            contributors: vec![None; blocks],
            received_count: blocks as u32,
        };
        self.web_seeds.pending.insert(piece, seed);
        self.picker.partials.insert(piece, partial);
        self.finish_piece(piece);
    }

    /// After a piece's hash check: a piece a web seed sent alone that failed convicts it.
    pub(super) fn web_seed_checked(&mut self, piece: u32, ok: bool) {
        let Some(seed) = self.web_seeds.pending.remove(&piece) else {
            return;
        };
        if let Some(s) = self.web_seeds.seeds.get_mut(seed as usize) {
            if ok {
                s.failures = 0;
            } else {
                self.drop_web_seed(
                    seed,
                    format!("sent data for piece {piece} that failed its hash check"),
                );
            }
        }
    }

    fn web_seed_failed(&mut self, seed: u32, reason: String, now_ms: u64) {
        let Some(s) = self.web_seeds.seeds.get_mut(seed as usize) else {
            return;
        };
        s.failures += 1;
        if s.failures >= MAX_WEB_SEED_FAILURES {
            let n = s.failures;
            self.drop_web_seed(seed, format!("{n} failed fetches, the last: {reason}"));
            return;
        }
        let backoff = (BACKOFF_MS << (s.failures - 1)).min(MAX_BACKOFF_MS);
        s.retry_at_ms = now_ms + backoff;
    }

    fn drop_web_seed(&mut self, seed: u32, reason: String) {
        let Some(s) = self.web_seeds.seeds.get_mut(seed as usize) else {
            return;
        };
        if s.dropped {
            return;
        }
        s.dropped = true;
        for (piece, _) in std::mem::take(&mut s.in_flight) {
            self.picker.web.remove(&piece);
        }
        let url = s.url.clone();
        self.events
            .push_back(Event::WebSeedDropped { seed, url, reason });
    }

    /// Starts web seed fetches where they help; called with every `fill_all_requests` and
    /// `tick`. Time-outs are handled here too.
    pub(super) fn fill_web_seeds(&mut self, now_ms: u64) {
        if self.web_seeds.seeds.is_empty() {
            return;
        }
        // Fetches nobody answered: failures, and their pieces back to the pool.
        for seed in 0..self.web_seeds.seeds.len() {
            let late: Vec<u32> = self.web_seeds.seeds[seed]
                .in_flight
                .iter()
                .filter(|(_, &at)| now_ms.saturating_sub(at) >= FETCH_TIMEOUT_MS)
                .map(|(&p, _)| p)
                .collect();
            for piece in late {
                self.web_seeds.seeds[seed].in_flight.remove(&piece);
                self.picker.web.remove(&piece);
                self.web_seed_failed(seed as u32, format!("piece {piece} timed out"), now_ms);
                if self.web_seeds.seeds[seed].dropped {
                    break;
                }
            }
        }
        let Some(meta) = &self.meta else { return };
        if self.paused || self.have.is_complete() {
            return;
        }
        let ws = &mut self.web_seeds;
        if !ws.news
            && ws
                .scanned_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < RESCAN_MS)
        {
            return;
        }
        ws.news = false;
        ws.scanned_ms = Some(now_ms);
        let mut servable: Option<Bitfield> = None;
        for seed in 0..self.web_seeds.seeds.len() {
            loop {
                let s = &self.web_seeds.seeds[seed];
                if s.dropped
                    || now_ms < s.retry_at_ms
                    || s.in_flight.len() >= WEB_SEED_PIECES_IN_FLIGHT
                    || self.picker.verifying.len() + self.picker.web.len()
                        >= self.config.max_unstored_pieces
                {
                    break;
                }
                let servable = servable.get_or_insert_with(|| self.servable(&meta.info));
                let Some(piece) = self.web_seed_pick(&meta.info, servable) else {
                    return;
                };
                // A partial nobody is working on (its peer left) is fetched whole.
                self.picker.partials.remove(&piece);
                self.picker.web.insert(piece);
                let s = &mut self.web_seeds.seeds[seed];
                s.in_flight.insert(piece, now_ms);
                let requests = piece_requests(&meta.info, &s.url, piece);
                self.events.push_back(Event::WebSeedFetch {
                    seed: seed as u32,
                    piece,
                    requests,
                });
            }
        }
    }

    /// Pieces some peer that unchokes us has. A peer that has a piece but chokes us (its slots
    /// are full, or it is paused) gives us nothing, so its pieces are fair game for web seeds.
    fn servable(&self, info: &Info) -> Bitfield {
        let mut out = Bitfield::new(info.num_pieces() as usize);
        for p in self.peers.values() {
            if p.handshake_done && !p.peer_choking && p.have.len() == out.len() {
                for i in p.have.iter_set() {
                    out.set(i);
                }
            }
        }
        out
    }

    /// The next piece for a web seed: the urgent head of the streaming window, then any piece
    /// no unchoking peer has (all of them when there are no peers), window first, then lowest
    /// first so a player gets a prefix. Pieces peers are working on are left to them.
    fn web_seed_pick(&self, info: &Info, servable: &Bitfield) -> Option<u32> {
        let free = |i: u32| -> bool {
            !self.have.get(i as usize)
                && !self.picker.verifying.contains(&i)
                && !self.picker.web.contains(&i)
                && self
                    .picker
                    .partials
                    .get(&i)
                    .is_none_or(|p| p.requested.iter().all(|&r| r == 0))
        };
        let urgent = self
            .picker
            .window
            .iter()
            .flat_map(|r| r.clone())
            .filter(|&i| i < info.num_pieces() && !self.have.get(i as usize))
            .take(URGENT_PIECES)
            .find(|&i| free(i));
        if urgent.is_some() {
            return urgent;
        }
        let window_rest = self
            .picker
            .window
            .iter()
            .flat_map(|r| r.clone())
            .filter(|&i| i < info.num_pieces())
            .find(|&i| free(i) && !servable.get(i as usize));
        if window_rest.is_some() {
            return window_rest;
        }
        (0..info.num_pieces()).find(|&i| free(i) && !servable.get(i as usize))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ops::Range;

    use super::*;
    use crate::metainfo::{FileEntry, Metainfo};

    use super::super::PeerKey;

    use super::super::testkit::{leecher, seeder, torrent_files as torrent};

    /// An HTTP server in a map: URL -> file bytes.
    fn server(meta: &Metainfo, base: &str, contents: &[Vec<u8>]) -> HashMap<String, Vec<u8>> {
        (0..meta.info.files.len())
            .map(|i| (file_url(&meta.info, base, i), contents[i].clone()))
            .collect()
    }

    fn serve(
        files: &HashMap<String, Vec<u8>>,
        requests: &[WebSeedRequest],
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for r in requests {
            let f = files.get(&r.url).ok_or(format!("404 {}", r.url))?;
            out.extend_from_slice(&f[r.start as usize..=r.end as usize]);
        }
        Ok(out)
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn fetches(evs: &[Event]) -> Vec<(u32, u32, Vec<WebSeedRequest>)> {
        evs.iter()
            .filter_map(|e| match e {
                Event::WebSeedFetch {
                    seed,
                    piece,
                    requests,
                } => Some((*seed, *piece, requests.clone())),
                _ => None,
            })
            .collect()
    }

    /// Moves bytes between two sessions joined as key 1 on both sides.
    fn pump(a: &mut Session, b: &mut Session, now: u64) {
        for _ in 0..50 {
            let mut moved = false;
            if let Some(d) = a.transmit(1, 1 << 20, now) {
                b.peer_data(1, &d, now);
                moved = true;
            }
            if let Some(d) = b.transmit(1, 1 << 20, now) {
                a.peer_data(1, &d, now);
                moved = true;
            }
            a.fill_all_requests(now);
            b.fill_all_requests(now);
            if !moved {
                break;
            }
        }
    }

    #[test]
    fn urls_are_bounded_and_http_only() {
        assert!(is_web_seed_url("http://a/"));
        assert!(is_web_seed_url("HTTPS://a.example/x"));
        for bad in [
            "ftp://a/",
            "http://",
            "ws://a/",
            "javascript:x",
            "http://a b/",
            "",
        ] {
            assert!(!is_web_seed_url(bad), "{bad}");
        }
        assert!(!is_web_seed_url(&format!("http://a/{}", "x".repeat(2048))));
        let many: Vec<String> = (0..40).map(|i| format!("http://s{i}/")).collect();
        let mut input: Vec<&str> = vec!["http://s0/", "udp://x", " http://s0/ "];
        input.extend(many.iter().map(String::as_str));
        let got = web_seed_urls(input);
        assert_eq!(got.len(), MAX_WEB_SEEDS);
        assert_eq!(got[..2], ["http://s0/", "http://s1/"]);
        let (meta, _) = torrent("f", &[("f", 100)], 16384);
        let mut s = leecher(&meta, 1);
        assert_eq!(s.add_web_seed("http://a/"), Some(0));
        assert_eq!(s.add_web_seed("http://a/"), None);
        assert_eq!(s.add_web_seed("file:///etc/passwd"), None);
        assert_eq!(s.add_web_seed("https://b/x"), Some(1));
    }

    #[test]
    fn single_file_ranges() {
        let (meta, _) = torrent("a b é.bin", &[("a b é.bin", 40_000)], 16384);
        let info = &meta.info;
        assert_eq!(file_url(info, "http://h/x.bin", 0), "http://h/x.bin");
        assert_eq!(
            file_url(info, "http://h/d/", 0),
            "http://h/d/a%20b%20%C3%A9.bin"
        );
        let r = piece_requests(info, "http://h/x.bin", 1);
        assert_eq!(
            r,
            [WebSeedRequest {
                url: "http://h/x.bin".into(),
                start: 16384,
                end: 32767,
                file_length: 40_000,
            }]
        );
        // The short last piece.
        let r = piece_requests(info, "http://h/x.bin", 2);
        assert_eq!((r[0].start, r[0].end), (32768, 39_999));
    }

    #[test]
    fn multi_file_ranges_across_file_boundaries() {
        let (meta, _) = torrent(
            "my folder",
            &[
                ("a.txt", 10_000),
                ("sub/b#1?.bin", 30_000),
                ("empty", 0),
                ("c", 5),
            ],
            16384,
        );
        let info = &meta.info;
        assert!(info.multi_file);
        assert_eq!(
            file_url(info, "http://h/seed", 1),
            "http://h/seed/my%20folder/sub/b%231%3F.bin"
        );
        assert_eq!(
            file_url(info, "http://h/seed/", 0),
            "http://h/seed/my%20folder/a.txt"
        );
        let base = "http://h/";
        let r0 = piece_requests(info, base, 0);
        assert_eq!(r0.len(), 2);
        assert_eq!((r0[0].start, r0[0].end), (0, 9_999));
        assert!(r0[0].url.ends_with("/a.txt"));
        assert_eq!((r0[1].start, r0[1].end), (0, 16384 - 10_000 - 1));
        assert!(r0[1].url.ends_with("/b%231%3F.bin"));
        // Piece 2 ends file b, skips the empty file and takes all of c.
        let r2 = piece_requests(info, base, 2);
        assert_eq!(r2.len(), 2);
        assert_eq!((r2[0].start, r2[0].end), (32768 - 10_000, 29_999));
        assert_eq!((r2[1].start, r2[1].end, r2[1].file_length), (0, 4, 5));
        assert!(r2[1].url.ends_with("/my%20folder/c"));
    }

    #[test]
    fn padding_files_are_not_fetched() {
        let info = Info {
            name: "d".into(),
            piece_length: 16,
            pieces: vec![[0; 20]; 2],
            files: vec![
                FileEntry {
                    path: vec!["a".into()],
                    length: 10,
                    offset: 0,
                },
                FileEntry {
                    path: vec![".pad".into(), "6".into()],
                    length: 6,
                    offset: 10,
                },
                FileEntry {
                    path: vec!["b".into()],
                    length: 8,
                    offset: 16,
                },
            ],
            total_length: 24,
            private: false,
            multi_file: true,
        };
        let r = piece_requests(&info, "http://h", 0);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].start, r[0].end), (0, 9));
        let piece = assemble_piece(&info, 0, &[7; 10]).unwrap();
        assert_eq!(piece, [[7u8; 10].as_slice(), &[0; 6]].concat());
        assert!(assemble_piece(&info, 0, &[7; 16]).is_none());
        assert!(assemble_piece(&info, 0, &[7; 9]).is_none());
    }

    #[test]
    fn completes_from_a_web_seed_alone() {
        let (meta, contents) = torrent("t", &[("a", 50_000), ("d/b", 70_001), ("c", 3)], 16384);
        let files = server(&meta, "http://h/", &contents);
        let mut s = leecher(&meta, 1);
        s.add_web_seed("http://h/").unwrap();
        let mut now = 0;
        let mut done = false;
        let mut most_in_flight = 0;
        for _ in 0..100 {
            s.fill_all_requests(now);
            let evs = events(&mut s);
            done |= evs.contains(&Event::Done);
            let f = fetches(&evs);
            most_in_flight = most_in_flight.max(f.len());
            for (seed, piece, reqs) in f {
                s.web_seed_data(seed, piece, serve(&files, &reqs), now);
            }
            done |= events(&mut s).contains(&Event::Done);
            if done {
                break;
            }
            now += 10;
        }
        assert!(done);
        assert!(s.is_complete());
        assert_eq!(
            s.read(0, meta.info.total_length).unwrap(),
            contents.concat()
        );
        assert!(most_in_flight <= WEB_SEED_PIECES_IN_FLIGHT);
        // Complete: nothing more is fetched.
        s.fill_all_requests(now);
        assert!(fetches(&events(&mut s)).is_empty());
    }

    #[test]
    fn a_lying_web_seed_is_dropped_and_a_peer_finishes() {
        let (meta, contents) = torrent("f", &[("f", 100_000)], 16384);
        let mut files = server(&meta, "http://liar/f", &contents);
        for f in files.values_mut() {
            f[20_000] ^= 1; // Piece 1 is corrupt.
        }
        let mut s = leecher(&meta, 1);
        s.add_web_seed("http://liar/f").unwrap();
        let mut dropped = false;
        for now in 0..20 {
            s.fill_all_requests(now);
            for (seed, piece, reqs) in fetches(&events(&mut s)) {
                s.web_seed_data(seed, piece, serve(&files, &reqs), now);
            }
            for e in events(&mut s) {
                if let Event::WebSeedDropped { seed: 0, url, .. } = e {
                    assert_eq!(url, "http://liar/f");
                    dropped = true;
                }
            }
        }
        assert!(dropped);
        assert!(s.web_seeds().is_empty());
        assert!(!s.have().get(1));
        assert!(!s.is_complete());
        // A peer arrives and brings the rest.
        let mut peer = seeder(&meta, &contents.concat(), 9);
        s.peer_connected(1, 100);
        peer.peer_connected(1, 100);
        pump(&mut s, &mut peer, 100);
        assert!(s.is_complete());
        assert_eq!(
            s.read(0, meta.info.total_length).unwrap(),
            contents.concat()
        );
        assert!(fetches(&events(&mut s)).is_empty());
    }

    #[test]
    fn errors_back_off_then_drop() {
        let (meta, contents) = torrent("f", &[("f", 40_000)], 16384);
        let files = server(&meta, "http://h/f", &contents);
        let mut s = leecher(&meta, 1);
        s.add_web_seed("http://h/f").unwrap();
        s.fill_all_requests(0);
        let f = fetches(&events(&mut s));
        assert_eq!(f.len(), WEB_SEED_PIECES_IN_FLIGHT);
        // One error: back off one second, then ask again.
        s.web_seed_data(0, f[0].1, Err("HTTP 503".into()), 0);
        s.web_seed_data(0, f[1].1, Ok(vec![1, 2, 3]), 0); // Wrong size counts too.
        s.fill_all_requests(1_000);
        assert!(fetches(&events(&mut s)).is_empty(), "backing off");
        s.fill_all_requests(2_000);
        let again = fetches(&events(&mut s));
        assert_eq!(again.len(), 2);
        // A success resets the count: the piece verifies.
        let (seed, piece, reqs) = &again[0];
        s.web_seed_data(*seed, *piece, serve(&files, reqs), 2_000);
        assert!(s.have().get(*piece as usize));
        // Failures until it is dropped; its pieces go back to the pool.
        let mut now = 2_000;
        let mut dropped_at = None;
        for i in 0..20 {
            for (seed, piece, _) in fetches(&events(&mut s)) {
                s.web_seed_data(seed, piece, Err("HTTP 500".into()), now);
            }
            if events(&mut s)
                .iter()
                .any(|e| matches!(e, Event::WebSeedDropped { .. }))
            {
                dropped_at = Some(i);
                break;
            }
            now += MAX_BACKOFF_MS;
            s.fill_all_requests(now);
        }
        assert!(dropped_at.is_some());
        assert!(s.web_seeds().is_empty());
        assert!(s.picker.web.is_empty());
        s.fill_all_requests(now + 1_000_000);
        assert!(fetches(&events(&mut s)).is_empty());
        // A late answer for a dropped seed is ignored.
        s.web_seed_data(
            0,
            2,
            serve(&files, &piece_requests(&meta.info, "http://h/f", 2)),
            now,
        );
        assert!(!s.have().get(2));
    }

    #[test]
    fn unanswered_fetches_time_out() {
        let (meta, _) = torrent("f", &[("f", 20_000)], 16384);
        let mut s = leecher(&meta, 1);
        s.add_web_seed("http://h/f").unwrap();
        s.tick(0);
        assert_eq!(fetches(&events(&mut s)).len(), 2);
        s.tick(FETCH_TIMEOUT_MS);
        assert!(s.picker.web.is_empty());
        // Two failures: two seconds of back-off.
        s.tick(FETCH_TIMEOUT_MS + BACKOFF_MS);
        assert!(fetches(&events(&mut s)).is_empty());
        s.tick(FETCH_TIMEOUT_MS + 2 * BACKOFF_MS);
        assert_eq!(fetches(&events(&mut s)).len(), 2);
    }

    #[test]
    fn peers_and_web_seeds_share_the_work() {
        let (meta, contents) = torrent("f", &[("f", 16384 * 8)], 16384);
        let files = server(&meta, "http://h/f", &contents);
        let mut s = leecher(&meta, 1);
        s.add_web_seed("http://h/f").unwrap();
        let mut peer = seeder(&meta, &contents.concat(), 9);
        s.peer_connected(1, 0);
        peer.peer_connected(1, 0);
        // The player wants pieces 5.. first: the web seed takes the urgent head.
        s.set_window(vec![Range { start: 5, end: 8 }]);
        // Nobody has said what they have yet: the web seed starts on the window at once.
        s.fill_all_requests(0);
        let f = fetches(&events(&mut s));
        assert_eq!(f.iter().map(|x| x.1).collect::<Vec<_>>(), [5, 6, 7]);
        // Handshakes and bitfields, without delivering any piece yet.
        for _ in 0..3 {
            if let Some(d) = s.transmit(1, 1 << 20, 0) {
                peer.peer_data(1, &d, 0);
            }
            if let Some(d) = peer.transmit(1, 1 << 20, 0) {
                s.peer_data(1, &d, 0);
            }
        }
        // The peer has everything: the web seed asks for nothing more while busy.
        s.fill_all_requests(0);
        assert!(fetches(&events(&mut s)).is_empty());
        let web: Vec<u32> = f.iter().map(|x| x.1).collect();
        // Peers never request a piece a web seed is fetching.
        let requested: Vec<u32> = s.peers[&(1 as PeerKey)]
            .outstanding
            .iter()
            .map(|(b, _)| b.index)
            .collect();
        for p in &web {
            assert!(!requested.contains(p), "piece {p} asked twice");
        }
        for (seed, piece, reqs) in f {
            s.web_seed_data(seed, piece, serve(&files, &reqs), 10);
        }
        pump(&mut s, &mut peer, 20);
        for _ in 0..10 {
            s.fill_all_requests(30);
            for (seed, piece, reqs) in fetches(&events(&mut s)) {
                s.web_seed_data(seed, piece, serve(&files, &reqs), 30);
            }
            pump(&mut s, &mut peer, 30);
        }
        assert!(s.is_complete());
        assert_eq!(
            s.read(0, meta.info.total_length).unwrap(),
            contents.concat()
        );
    }

    #[test]
    fn with_a_complete_peer_and_no_window_the_web_seed_rests() {
        let (meta, contents) = torrent("g", &[("g", 16384 * 4)], 16384);
        let mut t = leecher(&meta, 2);
        let mut peer = seeder(&meta, &contents.concat(), 9);
        t.peer_connected(1, 0);
        peer.peer_connected(1, 0);
        // Handshakes and bitfields first, then the web seed.
        for _ in 0..3 {
            if let Some(d) = t.transmit(1, 1 << 20, 0) {
                peer.peer_data(1, &d, 0);
            }
            if let Some(d) = peer.transmit(1, 1 << 20, 0) {
                t.peer_data(1, &d, 0);
            }
        }
        events(&mut t);
        t.add_web_seed("http://h/g").unwrap();
        t.fill_all_requests(0);
        assert!(fetches(&events(&mut t)).is_empty());
        pump(&mut t, &mut peer, 1);
        assert!(t.is_complete());
        assert!(fetches(&events(&mut t)).is_empty());
    }

    #[test]
    fn a_peer_that_chokes_us_leaves_its_pieces_to_the_web_seed() {
        let (meta, contents) = torrent("f", &[("f", 16384 * 4)], 16384);
        let files = server(&meta, "http://h/f", &contents);
        let mut s = leecher(&meta, 1);
        let mut peer = seeder(&meta, &contents.concat(), 9);
        peer.set_paused(true); // Has everything, unchokes nobody.
        s.peer_connected(1, 0);
        peer.peer_connected(1, 0);
        pump(&mut s, &mut peer, 0);
        assert_eq!(s.num_peers(), 1);
        s.add_web_seed("http://h/f").unwrap();
        for now in 0..10 {
            s.fill_all_requests(now);
            for (seed, piece, reqs) in fetches(&events(&mut s)) {
                s.web_seed_data(seed, piece, serve(&files, &reqs), now);
            }
        }
        assert!(s.is_complete());
    }
}
