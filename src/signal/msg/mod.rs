//! The JSON text frames of the WebSocket tracker protocol as WebTorrent and bittorrent-tracker 11
//! speak it: limits, errors, the parsed form of what clients send, and the frames the tracker
//! sends back. 20-byte values travel as latin-1 strings (one char per byte, U+0000..U+00FF).
//!
//! What the tracker reads and writes per announce is its hot path, so neither side builds a JSON
//! tree: client frames are read in one pass that keeps only the protocol's fields (`reader`),
//! SDPs stay the JSON literals clients sent ([`JsonStr`]) and are copied into relayed frames as
//! they are, and the tracker's frames are written straight into a `String` (`writer`). The client
//! side's reading (`value_reader`: `parse_object` and the field helpers, used by `client.rs`) is
//! not hot and stays `Value`-based.
//!
//! This file holds the limits, the error and message types and [`parse_client_message`], which
//! turns the fields the reader kept into a [`ClientMessage`]. What the submodules offer the rest
//! of the crate is re-exported here, so every caller names it `msg::…` wherever it lives.
//!
//! Pure data: never does I/O, never panics on peer input, and checks every size before trusting it.

mod reader;
mod value_reader;
mod writer;

use std::fmt;

use serde_json::Value;

use crate::id::{InfoHash, PeerId};
use reader::{id20_of, id_invalid, sdp_of, Desc, Fields, Hashes, Item, Offers, Text};

pub(crate) use value_reader::{
    count, id20_field, info_hash_field, latin1_info_hash, parse_object, sdp_field,
};
pub use writer::{
    announce_reply_json, announce_reply_warning_json, answer_relay_json, failure_json, json_string,
    latin1, offer_relay_json, scrape_reply_json,
};

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

/// One WebRTC offer inside an announce a client builds: its id (chosen by the offerer, echoed back
/// with the answer) and the full SDP. The tracker reads offers as [`OfferIn`].
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

/// A JSON string literal exactly as a client sent it, quotes and escapes included, and known to
/// be valid JSON: the tracker relays SDPs in this form, copying them into the outgoing frame
/// instead of unescaping and re-escaping a few kilobytes per offer.
#[derive(Clone, Copy)]
pub struct JsonStr<'a>(&'a str);

impl<'a> JsonStr<'a> {
    /// `literal` must be one whole JSON string literal, nothing around it.
    pub fn new(literal: &'a str) -> Option<JsonStr<'a>> {
        let framed = literal.len() >= 2 && literal.starts_with('"') && literal.ends_with('"');
        (framed && serde_json::from_str::<String>(literal).is_ok()).then_some(JsonStr(literal))
    }

    /// The literal, quotes included: what goes on the wire.
    pub fn raw(&self) -> &'a str {
        self.0
    }

    /// The string the literal denotes.
    pub fn decode(&self) -> String {
        match self.unescaped() {
            Some(s) => s.to_owned(),
            // Only ever built from literals serde_json accepted, so this cannot fail.
            None => serde_json::from_str(self.0).unwrap_or_default(),
        }
    }

    /// The content when there is nothing to unescape.
    fn unescaped(&self) -> Option<&'a str> {
        let inner = self.0.get(1..self.0.len().saturating_sub(1))?;
        (!inner.contains('\\')).then_some(inner)
    }

    /// The decoded length, without decoding when the literal itself is within `max` (a literal is
    /// never shorter than what it denotes).
    fn decoded_len_over(&self, max: usize) -> Option<usize> {
        if self.0.len().saturating_sub(2) <= max {
            return None;
        }
        Some(self.decode().len()).filter(|&n| n > max)
    }
}

/// Two literals are equal when they denote the same string, however each was escaped.
impl PartialEq for JsonStr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.decode() == other.decode()
    }
}

impl Eq for JsonStr<'_> {}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One offer of an announce as the tracker reads it: the SDP stays in its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferIn<'a> {
    pub offer_id: [u8; 20],
    pub sdp: JsonStr<'a>,
}

/// An announce as the tracker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce<'a> {
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
    pub offers: Vec<OfferIn<'a>>,
    /// Offers beyond [`MAX_OFFERS`], left unread; the tracker says so in a `warning message`.
    pub offers_ignored: usize,
}

/// An answer to a relayed offer, to be forwarded to `to_peer_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub to_peer_id: PeerId,
    pub offer_id: [u8; 20],
    pub sdp: JsonStr<'a>,
}

/// A frame from a client, validated; borrows the frame's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    Announce(Announce<'a>),
    Answer(Answer<'a>),
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
///
/// One pass over the text with serde_json, keeping only the fields the protocol has (unknown
/// ones are checked and skipped, no tree is built); an SDP is kept as its literal. Accepts and
/// refuses exactly what reading the frame into a `serde_json::Value` first would, with the same
/// messages: whenever that pass meets something wrong, or keeps a raw value it has not checked
/// through, the frame is read again as a `Value` for serde_json's own verdict.
pub fn parse_client_message(text: &str) -> Result<ClientMessage<'_>, ParseFailure> {
    let bare = |error| ParseFailure {
        error,
        action: None,
        info_hash: None,
    };
    if text.len() > MAX_FRAME_BYTES {
        return Err(bare(SignalError::TooLarge {
            len: text.len(),
            max: MAX_FRAME_BYTES,
        }));
    }
    let fields = match reader::read_fields(text) {
        Ok(f) => f,
        Err(e) => {
            let error = value_verdict(text).unwrap_or_else(|| SignalError::Json(e.to_string()));
            return Err(bare(error));
        }
    };
    if !fields.object {
        return Err(bare(SignalError::NotObject));
    }
    if fields.unchecked {
        if let Some(error) = value_verdict(text) {
            return Err(bare(error));
        }
    }
    match &fields.action {
        Some(Text::Str(a)) if a == "announce" => {
            let info_hash = fields.announce_info_hash().map_err(|error| ParseFailure {
                error,
                action: Some(Action::Announce),
                info_hash: None,
            })?;
            parse_announce(fields, info_hash).map_err(|error| ParseFailure {
                error,
                action: Some(Action::Announce),
                info_hash: Some(info_hash),
            })
        }
        Some(Text::Str(a)) if a == "scrape" => parse_scrape(fields).map_err(|error| ParseFailure {
            error,
            action: Some(Action::Scrape),
            info_hash: None,
        }),
        Some(Text::Str(other)) => Err(bare(SignalError::Action(truncate(other, 32)))),
        _ => Err(bare(SignalError::Action("missing".into()))),
    }
}

/// What serde_json says of `text` read as a `Value`: `None` for an object.
fn value_verdict(text: &str) -> Option<SignalError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => None,
        Ok(_) => Some(SignalError::NotObject),
        Err(e) => Some(SignalError::Json(e.to_string())),
    }
}

fn parse_announce<'a>(
    fields: Fields<'a>,
    info_hash: InfoHash,
) -> Result<ClientMessage<'a>, SignalError> {
    let peer_id = PeerId(id20_of(&fields.peer_id, "peer_id")?);
    // bittorrent-tracker keys the answer path on a truthy `answer`; anything else is an announce.
    if let Some(answer) = fields.answer.as_ref().filter(|d| !matches!(d, Desc::Null)) {
        let to_peer_id = PeerId(id20_of(&fields.to_peer_id, "to_peer_id")?);
        let offer_id = id20_of(&fields.offer_id, "offer_id")?;
        let sdp = sdp_of(answer, "answer", "answer")?;
        return Ok(ClientMessage::Answer(Answer {
            info_hash,
            peer_id,
            to_peer_id,
            offer_id,
            sdp,
        }));
    }
    let event = match &fields.event {
        None | Some(Text::Null) => AnnounceEvent::Update,
        Some(Text::Str(s)) => match s.as_ref() {
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
        Some(Text::Other) => return Err(invalid("event", "not a string")),
    };
    let numwant = fields.numwant.map(|n| n.min(MAX_NUMWANT as u64) as u32);
    let mut offers = Vec::new();
    let mut offers_ignored = 0;
    if event != AnnounceEvent::Stopped {
        match &fields.offers {
            None | Some(Offers::Null) => {}
            Some(Offers::List { items, ignored, .. }) => {
                offers_ignored = *ignored;
                offers.reserve_exact(items.len());
                for item in items {
                    let Item::Object {
                        offer_id, offer, ..
                    } = item
                    else {
                        return Err(invalid("offers", "entry is not an object"));
                    };
                    let offer_id = id20_of(offer_id, "offer_id")?;
                    let offer = offer.as_ref().ok_or(SignalError::Missing("offer"))?;
                    let sdp = sdp_of(offer, "offer", "offer")?;
                    offers.push(OfferIn { offer_id, sdp });
                }
            }
            Some(Offers::Other) => return Err(invalid("offers", "not a list")),
        }
    }
    Ok(ClientMessage::Announce(Announce {
        info_hash,
        peer_id,
        event,
        uploaded: fields.uploaded,
        downloaded: fields.downloaded,
        left: fields.left,
        numwant,
        offers,
        offers_ignored,
    }))
}

fn parse_scrape(fields: Fields<'_>) -> Result<ClientMessage<'static>, SignalError> {
    let info_hashes = match fields.info_hash {
        None | Some(Hashes::Null) => None,
        Some(Hashes::One(r)) => Some(vec![InfoHash(r.map_err(|e| id_invalid("info_hash", e))?)]),
        Some(Hashes::List {
            hashes,
            first_error,
            len,
        }) => {
            if len > MAX_SCRAPE_HASHES {
                return Err(invalid(
                    "info_hash",
                    format!("{len} info hashes, at most {MAX_SCRAPE_HASHES} allowed"),
                ));
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            Some(hashes)
        }
        Some(Hashes::Other) => return Err(invalid("info_hash", "not a string or list")),
    };
    Ok(ClientMessage::Scrape { info_hashes })
}

/// A [`SignalError::Invalid`] for `field`; the readers of every side build their errors with it.
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
    use serde_json::json;

    // Frames and ids shared with the tests of the submodules.

    pub(super) fn high_bytes(seed: u8) -> [u8; 20] {
        let mut b = [0u8; 20];
        for (i, x) in b.iter_mut().enumerate() {
            *x = 0x80u8.wrapping_add(seed).wrapping_add(i as u8 * 7);
        }
        b[3] = 0x00; // control chars are escaped as \u0000 by JSON encoders
        b[4] = b'"';
        b[5] = b'\\';
        b
    }

    pub(super) fn announce_text(offers: &str) -> String {
        format!(
            r#"{{"action":"announce","info_hash":{},"peer_id":{},"uploaded":0,"downloaded":0,"left":100,"event":"started","numwant":3,"offers":{offers}}}"#,
            Value::from(latin1(&high_bytes(1))),
            Value::from(latin1(&high_bytes(2))),
        )
    }

    pub(super) fn offer_item(id: u8, sdp: &str) -> String {
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
        assert_eq!(a.offers[0].offer_id, [0xF1; 20]);
        assert_eq!(a.offers[0].sdp.decode(), "v=0 a");
        assert_eq!(a.offers[0].sdp.raw(), r#""v=0 a""#);
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
        assert_eq!(a.sdp.decode(), "v=0 ans");
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
    fn relayed_sdps_are_copied_verbatim_and_read_back_exactly() {
        // Escaped as a browser might, not as serde_json would: `\/`, `\u0041`, a surrogate pair.
        let raw = r#""v=0\r\na=\/x \u0041 \ud83d\ude00 é\t\"q\"""#;
        let text = format!(
            r#"{{"action":"announce","info_hash":"{0}","peer_id":"{0}","offers":[{{"offer_id":"{0}","offer":{{"type":"offer","sdp":{raw}}}}}]}}"#,
            "o".repeat(20)
        );
        let ClientMessage::Announce(a) = parse_client_message(&text).unwrap() else {
            panic!()
        };
        assert_eq!(a.offers[0].sdp.raw(), raw);
        let decoded: String = serde_json::from_str(raw).unwrap();
        assert_eq!(a.offers[0].sdp.decode(), decoded);
        let ih = InfoHash(high_bytes(7));
        let frame = offer_relay_json(&ih, &PeerId(high_bytes(8)), &[0; 20], a.offers[0].sdp);
        assert!(frame.contains(raw));
        let v: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["offer"]["sdp"], decoded.as_str());
        let frame = answer_relay_json(&ih, &PeerId(high_bytes(8)), &[0; 20], a.offers[0].sdp);
        let v: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["answer"]["sdp"], decoded.as_str());
    }
}
