//! The frames the tracker sends (announce replies, relayed offers and answers, scrape replies,
//! failures) and the JSON escaping they need.
//!
//! Each frame is written straight into a `String` sized up front, byte for byte as
//! `serde_json::json!(..).to_string()` wrote it before (compact, keys in sorted order:
//! serde_json's map is a BTreeMap here); the tests check both the bytes, against serde_json
//! itself, and that the size computed up front is exact. Relayed SDPs are copied as the
//! [`JsonStr`] literals clients sent, never unescaped and escaped again.

use super::{Action, JsonStr};
use crate::id::{InfoHash, PeerId};

/// `{"action":"announce","info_hash","interval","complete","incomplete"}`: the tracker's reply.
pub fn announce_reply_json(
    info_hash: &InfoHash,
    interval_s: u64,
    complete: u64,
    incomplete: u64,
) -> String {
    announce_reply(info_hash, interval_s, complete, incomplete, None)
}

/// [`announce_reply_json`] with a `warning message`: the announce was served, but not all of it
/// (bittorrent-tracker clients and WebTorrent surface it as a `warning` event).
pub fn announce_reply_warning_json(
    info_hash: &InfoHash,
    interval_s: u64,
    complete: u64,
    incomplete: u64,
    warning: &str,
) -> String {
    announce_reply(info_hash, interval_s, complete, incomplete, Some(warning))
}

fn announce_reply(
    info_hash: &InfoHash,
    interval_s: u64,
    complete: u64,
    incomplete: u64,
    warning: Option<&str>,
) -> String {
    const A: &str = r#"{"action":"announce","complete":"#;
    const B: &str = r#","incomplete":"#;
    const C: &str = r#","info_hash":"#;
    const D: &str = r#","interval":"#;
    const W: &str = r#","warning message":"#;
    let len = A.len()
        + digits(complete)
        + B.len()
        + digits(incomplete)
        + C.len()
        + id_json_len(&info_hash.0)
        + D.len()
        + digits(interval_s)
        + warning.map_or(0, |w| W.len() + str_json_len(w))
        + 1;
    let mut out = String::with_capacity(len);
    out.push_str(A);
    push_u64(&mut out, complete);
    out.push_str(B);
    push_u64(&mut out, incomplete);
    out.push_str(C);
    push_id_json(&mut out, &info_hash.0);
    out.push_str(D);
    push_u64(&mut out, interval_s);
    if let Some(w) = warning {
        out.push_str(W);
        push_str_json(&mut out, w);
    }
    out.push('}');
    out
}

/// An offer relayed to one peer; `peer_id` is the offerer's, so the answer can find its way back.
/// The SDP is copied as the offerer wrote it.
pub fn offer_relay_json(
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &[u8; 20],
    sdp: JsonStr<'_>,
) -> String {
    const A: &str = r#"{"action":"announce","info_hash":"#;
    const B: &str = r#","offer":{"sdp":"#;
    const C: &str = r#","type":"offer"},"offer_id":"#;
    const D: &str = r#","peer_id":"#;
    let len = A.len()
        + id_json_len(&info_hash.0)
        + B.len()
        + sdp.raw().len()
        + C.len()
        + id_json_len(offer_id)
        + D.len()
        + id_json_len(&from.0)
        + 1;
    let mut out = String::with_capacity(len);
    out.push_str(A);
    push_id_json(&mut out, &info_hash.0);
    out.push_str(B);
    out.push_str(sdp.raw());
    out.push_str(C);
    push_id_json(&mut out, offer_id);
    out.push_str(D);
    push_id_json(&mut out, &from.0);
    out.push('}');
    out
}

/// An answer forwarded to the offerer; `peer_id` is the answerer's. The SDP is copied as the
/// answerer wrote it.
pub fn answer_relay_json(
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &[u8; 20],
    sdp: JsonStr<'_>,
) -> String {
    const A: &str = r#"{"action":"announce","answer":{"sdp":"#;
    const B: &str = r#","type":"answer"},"info_hash":"#;
    const C: &str = r#","offer_id":"#;
    const D: &str = r#","peer_id":"#;
    let len = A.len()
        + sdp.raw().len()
        + B.len()
        + id_json_len(&info_hash.0)
        + C.len()
        + id_json_len(offer_id)
        + D.len()
        + id_json_len(&from.0)
        + 1;
    let mut out = String::with_capacity(len);
    out.push_str(A);
    out.push_str(sdp.raw());
    out.push_str(B);
    push_id_json(&mut out, &info_hash.0);
    out.push_str(C);
    push_id_json(&mut out, offer_id);
    out.push_str(D);
    push_id_json(&mut out, &from.0);
    out.push('}');
    out
}

/// `{"action":"scrape","files":{ih:{complete,incomplete,downloaded}},"flags":{...}}`; entries are
/// `(info_hash, complete, incomplete, downloaded)`. Listed by info-hash, once each (the last entry
/// for a hash named twice), as a JSON object would have them.
pub fn scrape_reply_json(
    files: &[(InfoHash, u64, u64, u64)],
    min_request_interval_s: u64,
) -> String {
    const A: &str = r#"{"action":"scrape","files":{"#;
    const B: &str = r#":{"complete":"#;
    const C: &str = r#","downloaded":"#;
    const D: &str = r#","incomplete":"#;
    const E: &str = r#"},"flags":{"min_request_interval":"#;
    let mut order: Vec<&(InfoHash, u64, u64, u64)> = files.iter().collect();
    // Stable, so of equal hashes the last given stays last, and is the one kept.
    order.sort_by_key(|f| f.0);
    let mut entries = Vec::with_capacity(order.len());
    for (i, f) in order.iter().enumerate() {
        if order.get(i + 1).is_none_or(|next| next.0 != f.0) {
            entries.push(*f);
        }
    }
    let len = A.len()
        + entries
            .iter()
            .map(|(ih, c, i, d)| {
                id_json_len(&ih.0)
                    + B.len()
                    + digits(*c)
                    + C.len()
                    + digits(*d)
                    + D.len()
                    + digits(*i)
                    + 1
            })
            .sum::<usize>()
        + entries.len().saturating_sub(1)
        + E.len()
        + digits(min_request_interval_s)
        + 2;
    let mut out = String::with_capacity(len);
    out.push_str(A);
    for (n, (ih, complete, incomplete, downloaded)) in entries.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_id_json(&mut out, &ih.0);
        out.push_str(B);
        push_u64(&mut out, *complete);
        out.push_str(C);
        push_u64(&mut out, *downloaded);
        out.push_str(D);
        push_u64(&mut out, *incomplete);
        out.push('}');
    }
    out.push_str(E);
    push_u64(&mut out, min_request_interval_s);
    out.push_str("}}");
    out
}

/// `{"failure reason": ...}`, labelled with the request's action and torrent when they are known.
pub fn failure_json(reason: &str, action: Option<Action>, info_hash: Option<&InfoHash>) -> String {
    const ACTION: &str = r#""action":"#;
    const REASON: &str = r#""failure reason":"#;
    const IH: &str = r#","info_hash":"#;
    let len = 2
        + action.map_or(0, |a| ACTION.len() + a.as_str().len() + 3)
        + REASON.len()
        + str_json_len(reason)
        + info_hash.map_or(0, |ih| IH.len() + id_json_len(&ih.0));
    let mut out = String::with_capacity(len);
    out.push('{');
    if let Some(a) = action {
        out.push_str(ACTION);
        out.push('"');
        out.push_str(a.as_str());
        out.push_str("\",");
    }
    out.push_str(REASON);
    push_str_json(&mut out, reason);
    if let Some(ih) = info_hash {
        out.push_str(IH);
        push_id_json(&mut out, &ih.0);
    }
    out.push('}');
    out
}

/// `s` as a JSON string literal, escaped as serde_json escapes it.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(str_json_len(s));
    push_str_json(&mut out, s);
    out
}

/// A 20-byte value in the protocol's latin-1 form.
pub fn latin1(bytes: &[u8; 20]) -> String {
    let mut s = String::with_capacity(40);
    s.extend(bytes.iter().map(|&b| b as char));
    s
}

/// How serde_json escapes an ASCII byte inside a string: `Some(c)` for `\c`, `Some('u')` for
/// `\u00XX`, `None` when it goes as is.
fn ascii_escape(b: u8) -> Option<u8> {
    match b {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        0x08 => Some(b'b'),
        0x09 => Some(b't'),
        0x0A => Some(b'n'),
        0x0C => Some(b'f'),
        0x0D => Some(b'r'),
        0x00..=0x1F => Some(b'u'),
        _ => None,
    }
}

/// Bytes one byte of a string takes once escaped (a non-ASCII byte is part of a char that goes
/// as is).
fn escaped_len(b: u8) -> usize {
    match ascii_escape(b) {
        None => 1,
        Some(b'u') => 6,
        Some(_) => 2,
    }
}

fn push_escape(out: &mut String, b: u8, esc: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push(esc as char);
    if esc == b'u' {
        out.push_str("00");
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
}

fn str_json_len(s: &str) -> usize {
    2 + s.bytes().map(escaped_len).sum::<usize>()
}

fn push_str_json(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        if let Some(esc) = ascii_escape(b) {
            // `b` is ASCII, so both ends of the run are char boundaries.
            out.push_str(&s[run..i]);
            push_escape(out, b, esc);
            run = i + 1;
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Length of a 20-byte value as a JSON latin-1 literal: bytes from 0x80 are 2-byte chars.
fn id_json_len(bytes: &[u8; 20]) -> usize {
    2 + bytes
        .iter()
        .map(|&b| if b >= 0x80 { 2 } else { escaped_len(b) })
        .sum::<usize>()
}

/// A 20-byte value as a JSON latin-1 literal, without building the latin-1 `String` first.
fn push_id_json(out: &mut String, bytes: &[u8; 20]) {
    out.push('"');
    for &b in bytes {
        match ascii_escape(b) {
            Some(esc) => push_escape(out, b, esc),
            None => out.push(char::from(b)),
        }
    }
    out.push('"');
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::signal::msg::tests::high_bytes;

    #[test]
    fn outgoing_frames_round_trip_latin1() {
        let ih = InfoHash(high_bytes(9));
        let v: Value = serde_json::from_str(&announce_reply_json(&ih, 120, 2, 3)).unwrap();
        assert_eq!(
            v["info_hash"].as_str().map(InfoHash::from_latin1),
            Some(Ok(ih))
        );
        assert_eq!(
            (
                v["interval"].as_u64(),
                v["complete"].as_u64(),
                v["incomplete"].as_u64()
            ),
            (Some(120), Some(2), Some(3))
        );
        let f: Value =
            serde_json::from_str(&failure_json("nope", Some(Action::Announce), Some(&ih))).unwrap();
        assert_eq!(f["failure reason"], "nope");
        assert_eq!(f["action"], "announce");
        let bare: Value = serde_json::from_str(&failure_json("bad", None, None)).unwrap();
        assert_eq!(bare.as_object().unwrap().len(), 1);
        let s: Value = serde_json::from_str(&scrape_reply_json(&[(ih, 1, 2, 3)], 120)).unwrap();
        assert_eq!(s["files"][ih.to_latin1()]["downloaded"], 3);
    }

    #[test]
    fn ids_are_written_as_serde_json_writes_them_for_every_byte() {
        let mut ids: Vec<[u8; 20]> = (0..=255u8).map(|b| [b; 20]).collect();
        for start in (0..256).step_by(20) {
            ids.push(std::array::from_fn(|i| (start + i) as u8));
        }
        for id in ids {
            let mut out = String::new();
            push_id_json(&mut out, &id);
            assert_eq!(out, serde_json::to_string(&latin1(&id)).unwrap(), "{id:?}");
            assert_eq!(out.len(), id_json_len(&id));
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0..0x80u8).map(char::from).collect();
        all.push_str("é\u{7f}\u{2028}😀\"\\");
        for s in [&all[..], "", "plain", "a\"b\\c\r\n", "\u{0}\u{1f}"] {
            assert_eq!(json_string(s), serde_json::to_string(s).unwrap());
            assert_eq!(json_string(s).len(), str_json_len(s));
            assert_eq!(JsonStr::new(&json_string(s)).unwrap().decode(), s);
        }
        for bad in [
            "",
            "\"",
            "x",
            "\"a\" ",
            " \"a\"",
            "\"\\ud800\"",
            "1",
            "\"a\"\"b\"",
        ] {
            assert!(JsonStr::new(bad).is_none(), "{bad}");
        }
    }

    /// Byte for byte what the `json!` encoders wrote before, and sized exactly.
    #[test]
    fn frames_match_the_serde_json_encoding() {
        let ih = InfoHash(high_bytes(3));
        let from = PeerId(high_bytes(4));
        let oid = high_bytes(5);
        let exact = |frame: String| {
            assert_eq!(frame.len(), frame.capacity(), "{frame}");
            frame
        };
        for (c, i, n) in [(0, 0, 0), (1, 22, 120), (u64::MAX, 9, 10)] {
            assert_eq!(
                exact(announce_reply_json(&ih, n, c, i)),
                json!({"action": "announce", "info_hash": ih.to_latin1(), "interval": n,
                       "complete": c, "incomplete": i})
                .to_string()
            );
            let w = "3 offers ignored: \"quoted\"\n";
            assert_eq!(
                exact(announce_reply_warning_json(&ih, n, c, i, w)),
                json!({"action": "announce", "info_hash": ih.to_latin1(), "interval": n,
                       "complete": c, "incomplete": i, "warning message": w})
                .to_string()
            );
        }
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=x:\"q\" \\ é\r\n";
        let lit = json_string(sdp);
        let offer = exact(offer_relay_json(
            &ih,
            &from,
            &oid,
            JsonStr::new(&lit).unwrap(),
        ));
        assert_eq!(
            offer,
            json!({"action": "announce", "info_hash": ih.to_latin1(), "peer_id": from.to_latin1(),
                   "offer_id": latin1(&oid), "offer": {"type": "offer", "sdp": sdp}})
            .to_string()
        );
        assert!(offer.contains(r#""offer":{"#) && offer.contains(r#""peer_id":""#));
        let answer = exact(answer_relay_json(
            &ih,
            &from,
            &oid,
            JsonStr::new(&lit).unwrap(),
        ));
        assert_eq!(
            answer,
            json!({"action": "announce", "info_hash": ih.to_latin1(), "peer_id": from.to_latin1(),
                   "offer_id": latin1(&oid), "answer": {"type": "answer", "sdp": sdp}})
            .to_string()
        );
        assert!(answer.contains(r#""answer":{"#) && answer.contains(r#""offer_id":""#));
        for action in [None, Some(Action::Announce), Some(Action::Scrape)] {
            for info_hash in [None, Some(&ih)] {
                let reason = "bad \"thing\"\t\u{1}";
                let mut m = Map::new();
                if let Some(a) = action {
                    m.insert("action".into(), a.as_str().into());
                }
                if let Some(h) = info_hash {
                    m.insert("info_hash".into(), h.to_latin1().into());
                }
                m.insert("failure reason".into(), reason.into());
                assert_eq!(
                    exact(failure_json(reason, action, info_hash)),
                    Value::Object(m).to_string()
                );
            }
        }
        let files = [
            (InfoHash([0xF0; 20]), 1, 2, 3),
            (ih, 4, 5, 6),
            (InfoHash([0x01; 20]), 7, 8, 9),
            (ih, 10, 11, 12),
        ];
        for n in 0..=files.len() {
            let mut map = Map::new();
            for (h, c, i, d) in &files[..n] {
                map.insert(
                    h.to_latin1(),
                    json!({"complete": c, "incomplete": i, "downloaded": d}),
                );
            }
            let want = json!({"action": "scrape", "files": map,
                              "flags": {"min_request_interval": 60}});
            assert_eq!(exact(scrape_reply_json(&files[..n], 60)), want.to_string());
        }
    }
}
