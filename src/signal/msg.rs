//! The JSON text frames of the WebSocket tracker protocol as WebTorrent and bittorrent-tracker 11
//! speak it: limits, errors, the parsed form of what clients send, and the frames the tracker
//! sends back. 20-byte values travel as latin-1 strings (one char per byte, U+0000..U+00FF).
//!
//! Pure data: never does I/O, never panics on peer input, and checks every size before trusting it.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::id::{InfoHash, PeerId};

/// Largest text frame accepted (client → tracker here; the native driver also tells the WebSocket
/// layer). A full-gathering (non-trickle) SDP offer is 1–3 KB and WebTorrent sends at most 5 offers
/// per announce (older versions 10), so ~30 KB is the realistic worst case; 64 KiB leaves room for
/// JSON escaping (`\r\n` in every SDP line) and unusual candidate lists without letting one socket
/// make the tracker parse megabytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest frame a client accepts from a tracker. Larger than [`MAX_FRAME_BYTES`] because a scrape
/// of every swarm can be long; still bounded so a hostile tracker cannot make a tab parse forever.
pub const MAX_TRACKER_FRAME_BYTES: usize = 1024 * 1024;

/// Largest SDP accepted in one offer or answer. Real ones are a few KB; a description with dozens
/// of candidates stays well under this.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

/// Offers relayed from one announce; any beyond are ignored, not rejected (bittorrent-tracker also
/// silently drops offers it has no peers for). WebTorrent sends at most 5.
pub const MAX_OFFERS: usize = 10;

/// bittorrent-tracker's `MAX_ANNOUNCE_PEERS`: the most peers any announce may ask for.
pub const MAX_NUMWANT: u32 = 82;

/// Info-hashes one scrape request may name; bounds the reply a single frame can cause.
pub const MAX_SCRAPE_HASHES: usize = 256;

/// The announce interval WebSocket trackers advertise (bittorrent-tracker: 10 min / 5), seconds.
pub const DEFAULT_INTERVAL_S: u64 = 120;

/// Why a frame could not be read. `Display` gives the text sent as `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalError {
    /// The frame is larger than the limit for its direction.
    TooLarge { len: usize, max: usize },
    /// Not JSON at all (serde_json's message).
    Json(String),
    /// JSON, but not an object.
    NotObject,
    /// `action` missing or not one this side understands.
    Action(String),
    /// A required field is absent.
    Missing(&'static str),
    /// A field is present but wrong (bad type, bad length, non-latin-1 char, too long).
    Invalid { field: &'static str, reason: String },
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max} bytes")
            }
            SignalError::Json(e) => write!(f, "invalid JSON: {e}"),
            SignalError::NotObject => f.write_str("message is not a JSON object"),
            SignalError::Action(a) => write!(f, "invalid action: {a}"),
            SignalError::Missing(field) => write!(f, "missing {field}"),
            SignalError::Invalid { field, reason } => write!(f, "invalid {field}: {reason}"),
        }
    }
}

impl std::error::Error for SignalError {}

/// The `event` of an announce. `Update` is the periodic re-announce and has no `event` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
    Update,
}

impl AnnounceEvent {
    /// The wire value, `None` for updates (WebTorrent omits the field then).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Stopped => Some("stopped"),
            AnnounceEvent::Update => None,
        }
    }
}

/// One WebRTC offer inside an announce: its id (chosen by the offerer, echoed back with the
/// answer) and the full SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferOut {
    pub offer_id: [u8; 20],
    pub sdp: String,
}

/// The two request kinds; used to label failures so WebTorrent treats them as warnings for one
/// torrent instead of tearing the socket down (it does that for frames without `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Announce,
    Scrape,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }
}

/// An announce as the tracker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub event: AnnounceEvent,
    pub uploaded: Option<u64>,
    pub downloaded: Option<u64>,
    /// `None` when absent, `null` or not a number: unknown, so counted as incomplete.
    pub left: Option<u64>,
    /// Clamped to [`MAX_NUMWANT`].
    pub numwant: Option<u32>,
    /// At most [`MAX_OFFERS`]; always empty for `stopped`.
    pub offers: Vec<OfferOut>,
    /// Offers beyond [`MAX_OFFERS`], left unread; the tracker says so in a `warning message`.
    pub offers_ignored: usize,
}

/// An answer to a relayed offer, to be forwarded to `to_peer_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub to_peer_id: PeerId,
    pub offer_id: [u8; 20],
    pub sdp: String,
}

/// A frame from a client, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Announce(Announce),
    Answer(Answer),
    /// `None`: no `info_hash` at all, meaning "every swarm".
    Scrape {
        info_hashes: Option<Vec<InfoHash>>,
    },
}

/// A rejected client frame, with what was understood of it so the failure reply can name the
/// request and torrent it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub error: SignalError,
    pub action: Option<Action>,
    pub info_hash: Option<InfoHash>,
}

/// Reads a client → tracker frame (announce, answer or scrape).
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseFailure> {
    let bare = |error| ParseFailure {
        error,
        action: None,
        info_hash: None,
    };
    let obj = parse_object(text, MAX_FRAME_BYTES).map_err(bare)?;
    match obj.get("action").and_then(Value::as_str) {
        Some("announce") => {
            let info_hash = info_hash_field(&obj, "info_hash").map_err(|error| ParseFailure {
                error,
                action: Some(Action::Announce),
                info_hash: None,
            })?;
            parse_announce(&obj, info_hash).map_err(|error| ParseFailure {
                error,
                action: Some(Action::Announce),
                info_hash: Some(info_hash),
            })
        }
        Some("scrape") => parse_scrape(&obj).map_err(|error| ParseFailure {
            error,
            action: Some(Action::Scrape),
            info_hash: None,
        }),
        Some(other) => Err(bare(SignalError::Action(truncate(other, 32)))),
        None => Err(bare(SignalError::Action("missing".into()))),
    }
}

fn parse_announce(
    obj: &Map<String, Value>,
    info_hash: InfoHash,
) -> Result<ClientMessage, SignalError> {
    let peer_id = PeerId(id20_field(obj, "peer_id")?);
    // bittorrent-tracker keys the answer path on a truthy `answer`; anything else is an announce.
    if let Some(answer) = obj.get("answer").filter(|v| !v.is_null()) {
        let to_peer_id = PeerId(id20_field(obj, "to_peer_id")?);
        let offer_id = id20_field(obj, "offer_id")?;
        let sdp = sdp_field(answer, "answer", "answer")?;
        return Ok(ClientMessage::Answer(Answer {
            info_hash,
            peer_id,
            to_peer_id,
            offer_id,
            sdp,
        }));
    }
    let event = match obj.get("event") {
        None | Some(Value::Null) => AnnounceEvent::Update,
        Some(Value::String(s)) => match s.as_str() {
            "started" => AnnounceEvent::Started,
            "completed" => AnnounceEvent::Completed,
            "stopped" => AnnounceEvent::Stopped,
            // "paused" (bittorrent-tracker 11) keeps the peer listed, as an update does.
            "" | "update" | "empty" | "paused" => AnnounceEvent::Update,
            other => {
                return Err(invalid(
                    "event",
                    format!("unknown event {:?}", truncate(other, 32)),
                ))
            }
        },
        Some(_) => return Err(invalid("event", "not a string")),
    };
    let numwant = obj
        .get("numwant")
        .and_then(count)
        .map(|n| n.min(MAX_NUMWANT as u64) as u32);
    let mut offers = Vec::new();
    let mut offers_ignored = 0;
    if event != AnnounceEvent::Stopped {
        match obj.get("offers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                offers_ignored = list.len().saturating_sub(MAX_OFFERS);
                for item in list.iter().take(MAX_OFFERS) {
                    let Value::Object(o) = item else {
                        return Err(invalid("offers", "entry is not an object"));
                    };
                    let offer_id = id20_field(o, "offer_id")?;
                    let offer = o.get("offer").ok_or(SignalError::Missing("offer"))?;
                    let sdp = sdp_field(offer, "offer", "offer")?;
                    offers.push(OfferOut { offer_id, sdp });
                }
            }
            Some(_) => return Err(invalid("offers", "not a list")),
        }
    }
    Ok(ClientMessage::Announce(Announce {
        info_hash,
        peer_id,
        event,
        uploaded: obj.get("uploaded").and_then(count),
        downloaded: obj.get("downloaded").and_then(count),
        left: obj.get("left").and_then(count),
        numwant,
        offers,
        offers_ignored,
    }))
}

fn parse_scrape(obj: &Map<String, Value>) -> Result<ClientMessage, SignalError> {
    let info_hashes = match obj.get("info_hash") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![latin1_info_hash(s)?]),
        Some(Value::Array(list)) => {
            if list.len() > MAX_SCRAPE_HASHES {
                return Err(invalid(
                    "info_hash",
                    format!(
                        "{} info hashes, at most {MAX_SCRAPE_HASHES} allowed",
                        list.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(list.len());
            for v in list {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid("info_hash", "not a string"))?;
                out.push(latin1_info_hash(s)?);
            }
            Some(out)
        }
        Some(_) => return Err(invalid("info_hash", "not a string or list")),
    };
    Ok(ClientMessage::Scrape { info_hashes })
}

/// `{"action":"announce","info_hash","interval","complete","incomplete"}`: the tracker's reply.
pub fn announce_reply_json(
    info_hash: &InfoHash,
    interval_s: u64,
    complete: u64,
    incomplete: u64,
) -> String {
    json!({
        "action": "announce",
        "info_hash": info_hash.to_latin1(),
        "interval": interval_s,
        "complete": complete,
        "incomplete": incomplete,
    })
    .to_string()
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
    json!({
        "action": "announce",
        "info_hash": info_hash.to_latin1(),
        "interval": interval_s,
        "complete": complete,
        "incomplete": incomplete,
        "warning message": warning,
    })
    .to_string()
}

/// An offer relayed to one peer; `peer_id` is the offerer's, so the answer can find its way back.
pub fn offer_relay_json(
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &[u8; 20],
    sdp: &str,
) -> String {
    json!({
        "action": "announce",
        "info_hash": info_hash.to_latin1(),
        "peer_id": from.to_latin1(),
        "offer_id": latin1(offer_id),
        "offer": { "type": "offer", "sdp": sdp },
    })
    .to_string()
}

/// An answer forwarded to the offerer; `peer_id` is the answerer's.
pub fn answer_relay_json(
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &[u8; 20],
    sdp: &str,
) -> String {
    json!({
        "action": "announce",
        "info_hash": info_hash.to_latin1(),
        "peer_id": from.to_latin1(),
        "offer_id": latin1(offer_id),
        "answer": { "type": "answer", "sdp": sdp },
    })
    .to_string()
}

/// `{"action":"scrape","files":{ih:{complete,incomplete,downloaded}},"flags":{...}}`; entries are
/// `(info_hash, complete, incomplete, downloaded)`.
pub fn scrape_reply_json(
    files: &[(InfoHash, u64, u64, u64)],
    min_request_interval_s: u64,
) -> String {
    let mut map = Map::new();
    for (ih, complete, incomplete, downloaded) in files {
        map.insert(
            ih.to_latin1(),
            json!({ "complete": complete, "incomplete": incomplete, "downloaded": downloaded }),
        );
    }
    json!({
        "action": "scrape",
        "files": map,
        "flags": { "min_request_interval": min_request_interval_s },
    })
    .to_string()
}

/// `{"failure reason": ...}`, labelled with the request's action and torrent when they are known.
pub fn failure_json(reason: &str, action: Option<Action>, info_hash: Option<&InfoHash>) -> String {
    let mut map = Map::new();
    if let Some(a) = action {
        map.insert("action".into(), a.as_str().into());
    }
    if let Some(ih) = info_hash {
        map.insert("info_hash".into(), ih.to_latin1().into());
    }
    map.insert("failure reason".into(), reason.into());
    Value::Object(map).to_string()
}

/// A 20-byte value in the protocol's latin-1 form.
pub fn latin1(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Size check, JSON parse and "is an object" in one step, so no caller forgets the size check.
pub(crate) fn parse_object(text: &str, max: usize) -> Result<Map<String, Value>, SignalError> {
    if text.len() > max {
        return Err(SignalError::TooLarge {
            len: text.len(),
            max,
        });
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SignalError::NotObject),
        Err(e) => Err(SignalError::Json(e.to_string())),
    }
}

pub(crate) fn id20_field(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<[u8; 20], SignalError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(SignalError::Missing(field)),
        Some(Value::String(s)) => id20(s, field),
        Some(_) => Err(invalid(field, "not a string")),
    }
}

pub(crate) fn info_hash_field(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<InfoHash, SignalError> {
    id20_field(obj, field).map(InfoHash)
}

pub(crate) fn latin1_info_hash(s: &str) -> Result<InfoHash, SignalError> {
    id20(s, "info_hash").map(InfoHash)
}

fn id20(s: &str, field: &'static str) -> Result<[u8; 20], SignalError> {
    PeerId::from_latin1(s)
        .map(|p| p.0)
        .map_err(|e| invalid(field, e.to_string()))
}

/// The `sdp` of an `{"type","sdp"}` description, checking `type` when present.
pub(crate) fn sdp_field(
    desc: &Value,
    field: &'static str,
    expected_type: &str,
) -> Result<String, SignalError> {
    let Value::Object(o) = desc else {
        return Err(invalid(field, "not an object"));
    };
    match o.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == expected_type => {}
        Some(_) => return Err(invalid(field, format!("type is not {expected_type:?}"))),
    }
    let sdp = o
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(field, "no sdp string"))?;
    if sdp.len() > MAX_SDP_BYTES {
        return Err(invalid(
            field,
            format!("sdp of {} bytes exceeds {MAX_SDP_BYTES}", sdp.len()),
        ));
    }
    Ok(sdp.to_owned())
}

/// A non-negative count, read as leniently as JavaScript's `Number()` would for the values real
/// clients send (integers, floats, numeric strings); anything else is "unknown".
pub(crate) fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> SignalError {
    SignalError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Peer-supplied text echoed into an error is cut short so errors stay small.
fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn high_bytes(seed: u8) -> [u8; 20] {
        let mut b = [0u8; 20];
        for (i, x) in b.iter_mut().enumerate() {
            *x = 0x80u8.wrapping_add(seed).wrapping_add(i as u8 * 7);
        }
        b[3] = 0x00; // control chars are escaped as \u0000 by JSON encoders
        b[4] = b'"';
        b[5] = b'\\';
        b
    }

    fn announce_text(offers: &str) -> String {
        format!(
            r#"{{"action":"announce","info_hash":{},"peer_id":{},"uploaded":0,"downloaded":0,"left":100,"event":"started","numwant":3,"offers":{offers}}}"#,
            Value::from(latin1(&high_bytes(1))),
            Value::from(latin1(&high_bytes(2))),
        )
    }

    fn offer_item(id: u8, sdp: &str) -> String {
        json!({"offer_id": latin1(&[id; 20]), "offer": {"type": "offer", "sdp": sdp}}).to_string()
    }

    #[test]
    fn announce_with_offers_parses_with_high_latin1_bytes() {
        let text = announce_text(&format!(
            "[{},{}]",
            offer_item(0xF1, "v=0 a"),
            offer_item(0x80, "v=0 b")
        ));
        let ClientMessage::Announce(a) = parse_client_message(&text).unwrap() else {
            panic!()
        };
        assert_eq!(a.info_hash, InfoHash(high_bytes(1)));
        assert_eq!(a.peer_id, PeerId(high_bytes(2)));
        assert_eq!(a.event, AnnounceEvent::Started);
        assert_eq!((a.left, a.numwant), (Some(100), Some(3)));
        assert_eq!(a.offers.len(), 2);
        assert_eq!(
            a.offers[0],
            OfferOut {
                offer_id: [0xF1; 20],
                sdp: "v=0 a".into()
            }
        );
        assert_eq!(a.offers[1].offer_id, [0x80; 20]);
    }

    #[test]
    fn answer_parses() {
        let text = json!({
            "action": "announce", "info_hash": latin1(&[0xFF; 20]), "peer_id": latin1(&[1; 20]),
            "to_peer_id": latin1(&[0xE9; 20]), "offer_id": latin1(&[0xAA; 20]),
            "answer": {"type": "answer", "sdp": "v=0 ans"}
        })
        .to_string();
        let ClientMessage::Answer(a) = parse_client_message(&text).unwrap() else {
            panic!()
        };
        assert_eq!(a.to_peer_id, PeerId([0xE9; 20]));
        assert_eq!(a.offer_id, [0xAA; 20]);
        assert_eq!(a.sdp, "v=0 ans");
    }

    #[test]
    fn events_and_lenient_numbers() {
        let base = |extra: &str| {
            format!(
                r#"{{"action":"announce","info_hash":"{0}","peer_id":"{0}"{extra}}}"#,
                "a".repeat(20)
            )
        };
        let ev = |extra: &str| match parse_client_message(&base(extra)).unwrap() {
            ClientMessage::Announce(a) => (a.event, a.left, a.numwant),
            other => panic!("{other:?}"),
        };
        assert_eq!(ev(""), (AnnounceEvent::Update, None, None));
        assert_eq!(
            ev(r#","event":"completed","left":0"#),
            (AnnounceEvent::Completed, Some(0), None)
        );
        assert_eq!(
            ev(r#","event":"stopped","left":null"#),
            (AnnounceEvent::Stopped, None, None)
        );
        assert_eq!(
            ev(r#","event":"paused","left":"12""#),
            (AnnounceEvent::Update, Some(12), None)
        );
        assert_eq!(
            ev(r#","left":1.5e3,"numwant":1000"#),
            (AnnounceEvent::Update, Some(1500), Some(82))
        );
        assert_eq!(
            ev(r#","left":-4,"numwant":-1"#),
            (AnnounceEvent::Update, None, None)
        );
        let err = parse_client_message(&base(r#","event":"bogus""#)).unwrap_err();
        assert_eq!(err.action, Some(Action::Announce));
        assert_eq!(err.info_hash, Some(InfoHash([b'a'; 20])));
        assert!(err.error.to_string().contains("event"), "{}", err.error);
    }

    #[test]
    fn stopped_carries_no_offers_and_extra_offers_are_ignored() {
        let many: Vec<String> = (0..MAX_OFFERS + 5)
            .map(|i| offer_item(i as u8, "v=0"))
            .collect();
        let text = announce_text(&format!("[{}]", many.join(",")));
        let ClientMessage::Announce(a) = parse_client_message(&text).unwrap() else {
            panic!()
        };
        assert_eq!(a.offers.len(), MAX_OFFERS);
        assert_eq!(a.offers_ignored, 5);
        let stopped = text.replace(r#""started""#, r#""stopped""#);
        let ClientMessage::Announce(a) = parse_client_message(&stopped).unwrap() else {
            panic!()
        };
        assert!(a.offers.is_empty());
    }

    #[test]
    fn malformed_input_gives_clear_errors() {
        let e = |t: &str| parse_client_message(t).unwrap_err().error;
        assert!(matches!(e("not json"), SignalError::Json(_)));
        assert_eq!(e("[1,2]"), SignalError::NotObject);
        assert_eq!(e("{}"), SignalError::Action("missing".into()));
        assert_eq!(
            e(r#"{"action":"dance"}"#),
            SignalError::Action("dance".into())
        );
        assert_eq!(
            e(r#"{"action":"announce"}"#),
            SignalError::Missing("info_hash")
        );
        let short = r#"{"action":"announce","info_hash":"abc"}"#;
        assert_eq!(
            e(short).to_string(),
            "invalid info_hash: expected 20 characters, found 3"
        );
        let wide = format!(
            r#"{{"action":"announce","info_hash":"{}"}}"#,
            "\u{100}".repeat(20)
        );
        assert!(e(&wide)
            .to_string()
            .starts_with("invalid info_hash: unexpected character"));
        let no_peer = format!(
            r#"{{"action":"announce","info_hash":"{}"}}"#,
            "x".repeat(20)
        );
        assert_eq!(e(&no_peer), SignalError::Missing("peer_id"));
        let bad_offer =
            announce_text(r#"[{"offer_id":"short","offer":{"type":"offer","sdp":"x"}}]"#);
        assert!(e(&bad_offer).to_string().starts_with("invalid offer_id"));
        let wrong_type = announce_text(&format!(
            r#"[{{"offer_id":{},"offer":{{"type":"answer","sdp":"x"}}}}]"#,
            Value::from(latin1(&[1; 20]))
        ));
        assert!(e(&wrong_type).to_string().contains("type is not"));
        let answer_no_to = format!(
            r#"{{"action":"announce","info_hash":"{0}","peer_id":"{0}","answer":{{"type":"answer","sdp":"x"}}}}"#,
            "y".repeat(20)
        );
        assert_eq!(e(&answer_no_to), SignalError::Missing("to_peer_id"));
    }

    #[test]
    fn limits_are_enforced() {
        let huge = " ".repeat(MAX_FRAME_BYTES + 1);
        assert_eq!(
            parse_client_message(&huge).unwrap_err().error,
            SignalError::TooLarge {
                len: MAX_FRAME_BYTES + 1,
                max: MAX_FRAME_BYTES
            }
        );
        let long_sdp = "s".repeat(MAX_SDP_BYTES + 1);
        let text = announce_text(&format!("[{}]", offer_item(1, &long_sdp)));
        assert!(text.len() < MAX_FRAME_BYTES);
        assert!(parse_client_message(&text)
            .unwrap_err()
            .error
            .to_string()
            .contains("exceeds"));
        let hashes: Vec<String> = (0..=MAX_SCRAPE_HASHES).map(|_| "h".repeat(20)).collect();
        let scrape = json!({"action": "scrape", "info_hash": hashes}).to_string();
        let err = parse_client_message(&scrape).unwrap_err();
        assert_eq!(err.action, Some(Action::Scrape));
    }

    #[test]
    fn scrape_forms() {
        let one = json!({"action": "scrape", "info_hash": latin1(&[0xC3; 20])}).to_string();
        assert_eq!(
            parse_client_message(&one).unwrap(),
            ClientMessage::Scrape {
                info_hashes: Some(vec![InfoHash([0xC3; 20])])
            }
        );
        let list = json!({"action": "scrape", "info_hash": [latin1(&[1; 20]), latin1(&[2; 20])]});
        let ClientMessage::Scrape {
            info_hashes: Some(v),
        } = parse_client_message(&list.to_string()).unwrap()
        else {
            panic!()
        };
        assert_eq!(v, vec![InfoHash([1; 20]), InfoHash([2; 20])]);
        assert_eq!(
            parse_client_message(r#"{"action":"scrape"}"#).unwrap(),
            ClientMessage::Scrape { info_hashes: None }
        );
    }

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
}
