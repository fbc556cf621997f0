//! The JSON text frames of the WebSocket tracker protocol as WebTorrent and bittorrent-tracker 11
//! speak it: limits, errors, the parsed form of what clients send, and the frames the tracker
//! sends back. 20-byte values travel as latin-1 strings (one char per byte, U+0000..U+00FF).
//!
//! What the tracker reads and writes per announce is its hot path, so neither side builds a JSON
//! tree: client frames are read in one pass that keeps only the protocol's fields, SDPs stay the
//! JSON literals clients sent ([`JsonStr`]) and are copied into relayed frames as they are, and
//! the tracker's frames are written straight into a `String`. The client side's reading
//! (`parse_object` and the field helpers, used by `client.rs`) is not hot and stays `Value`-based.
//!
//! Pure data: never does I/O, never panics on peer input, and checks every size before trusting it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::id::{IdError, InfoHash, PeerId};

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
    let fields = match serde_json::from_str::<De<Fields>>(text) {
        Ok(De(f)) => f,
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

// ---- the one-pass reader ----------------------------------------------------------------------
//
// Every value goes through `deserialize_any`, as it does when serde_json builds a `Value`, so the
// same checks run in the same order (string escapes, number ranges, the nesting limit) and an
// error carries the same position. The one exception is an SDP, taken as a `RawValue` so it can
// be relayed verbatim: serde_json skips over those without checking `\u` escapes or number
// ranges, so a frame holding one that is not a plain string goes to serde_json for its verdict
// (`Fields::unchecked`).

/// What one scalar or already-skipped value was. `'de` is the frame's text; `'s` a string
/// serde_json unescaped into its scratch buffer.
enum Atom<'de, 's> {
    Null,
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'s str),
    Borrowed(&'de str),
    /// A boolean, or a list or object that has been read through.
    Other,
}

/// A shape the reader knows how to keep; lists and objects are read through unless overridden.
trait Shape<'de>: Sized {
    fn atom(a: Atom<'de, '_>) -> Self;

    fn seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<De<Skip>>()?.is_some() {}
        Ok(Self::atom(Atom::Other))
    }

    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<De<Skip>, De<Skip>>()?.is_some() {}
        Ok(Self::atom(Atom::Other))
    }
}

/// Deserializes any [`Shape`] (a local wrapper, since serde's trait is foreign).
struct De<T>(T);

impl<'de, T: Shape<'de>> Deserialize<'de> for De<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor(PhantomData)).map(De)
    }
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: Shape<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::atom(Atom::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::atom(Atom::Other))
    }
    fn visit_u64<E>(self, n: u64) -> Result<T, E> {
        Ok(T::atom(Atom::U64(n)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<T, E> {
        Ok(T::atom(Atom::I64(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<T, E> {
        Ok(T::atom(Atom::F64(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<T, E> {
        Ok(T::atom(Atom::Str(s)))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<T, E> {
        Ok(T::atom(Atom::Borrowed(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::map(map)
    }
}

/// A value nobody reads, checked all the same.
struct Skip;

impl<'de> Shape<'de> for Skip {
    fn atom(_: Atom<'de, '_>) -> Self {
        Skip
    }
}

/// A string field, borrowed from the frame when it has no escapes.
enum Text<'de> {
    Null,
    Str(Cow<'de, str>),
    Other,
}

impl<'de> Shape<'de> for Text<'de> {
    fn atom(a: Atom<'de, '_>) -> Self {
        match a {
            Atom::Null => Text::Null,
            Atom::Borrowed(s) => Text::Str(Cow::Borrowed(s)),
            Atom::Str(s) => Text::Str(Cow::Owned(s.to_owned())),
            _ => Text::Other,
        }
    }
}

/// A 20-byte id field, converted from latin-1 as it is read.
enum Id {
    Null,
    Str(Result<[u8; 20], IdError>),
    Other,
}

impl<'de> Shape<'de> for Id {
    fn atom(a: Atom<'de, '_>) -> Self {
        match a {
            Atom::Null => Id::Null,
            Atom::Str(s) | Atom::Borrowed(s) => Id::Str(PeerId::from_latin1(s).map(|p| p.0)),
            _ => Id::Other,
        }
    }
}

/// A count, read leniently (see [`count`]); `None` for anything that is not one.
struct Count(Option<u64>);

impl<'de> Shape<'de> for Count {
    fn atom(a: Atom<'de, '_>) -> Self {
        Count(match a {
            Atom::U64(n) => Some(n),
            Atom::I64(n) => u64::try_from(n).ok(),
            Atom::F64(f) => (f.is_finite() && f >= 0.0).then_some(f as u64),
            Atom::Str(s) | Atom::Borrowed(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        })
    }
}

/// `info_hash`: one id in announces, one id or a list of them in scrapes.
enum Hashes {
    Null,
    One(Result<[u8; 20], IdError>),
    /// `len` counts every entry; only the first [`MAX_SCRAPE_HASHES`] are read.
    List {
        hashes: Vec<InfoHash>,
        first_error: Option<SignalError>,
        len: usize,
    },
    Other,
}

impl<'de> Shape<'de> for Hashes {
    fn atom(a: Atom<'de, '_>) -> Self {
        match Id::atom(a) {
            Id::Null => Hashes::Null,
            Id::Str(r) => Hashes::One(r),
            Id::Other => Hashes::Other,
        }
    }

    fn seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut hashes = Vec::new();
        let mut first_error = None;
        let mut len = 0;
        loop {
            if len < MAX_SCRAPE_HASHES {
                let Some(De(id)) = seq.next_element::<De<Id>>()? else {
                    break;
                };
                match id {
                    Id::Str(Ok(h)) => hashes.push(InfoHash(h)),
                    Id::Str(Err(e)) => {
                        first_error.get_or_insert_with(|| id_invalid("info_hash", e));
                    }
                    Id::Null | Id::Other => {
                        first_error.get_or_insert_with(|| invalid("info_hash", "not a string"));
                    }
                }
            } else if seq.next_element::<De<Skip>>()?.is_none() {
                break;
            }
            len += 1;
        }
        Ok(Hashes::List {
            hashes,
            first_error,
            len,
        })
    }
}

/// An `{"type","sdp"}` description (`offer`, `answer`).
enum Desc<'de> {
    Null,
    NotObject,
    Object {
        kind: Option<Text<'de>>,
        /// Raw, and possibly not a string.
        sdp: Option<&'de RawValue>,
        /// An `sdp` was seen (this one, or one a duplicate key replaced) that [`plain`] cannot
        /// vouch for.
        unchecked: bool,
    },
}

impl Desc<'_> {
    fn unchecked(&self) -> bool {
        matches!(
            self,
            Desc::Object {
                unchecked: true,
                ..
            }
        )
    }
}

/// Whether a raw value is a string serde_json would also have accepted had it decoded it:
/// skipping a value checks its syntax, but not that `\u` escapes pair up into chars, nor (for
/// a value that is not a string) number ranges and the nesting limit.
fn plain(raw: &RawValue) -> bool {
    let raw = raw.get();
    raw.starts_with('"') && !raw.contains("\\u")
}

impl<'de> Shape<'de> for Desc<'de> {
    fn atom(a: Atom<'de, '_>) -> Self {
        match a {
            Atom::Null => Desc::Null,
            _ => Desc::NotObject,
        }
    }

    fn seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<De<Skip>>()?.is_some() {}
        Ok(Desc::NotObject)
    }

    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let (mut kind, mut sdp, mut unchecked) = (None, None, false);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => kind = Some(map.next_value::<De<Text>>()?.0),
                Key::Sdp => {
                    let raw = map.next_value::<&RawValue>()?;
                    unchecked |= !plain(raw);
                    sdp = Some(raw);
                }
                _ => {
                    map.next_value::<De<Skip>>()?;
                }
            }
        }
        Ok(Desc::Object {
            kind,
            sdp,
            unchecked,
        })
    }
}

/// One entry of `offers`.
enum Item<'de> {
    NotObject,
    Object {
        offer_id: Option<Id>,
        offer: Option<Desc<'de>>,
        /// See [`Desc::Object`].
        unchecked: bool,
    },
}

impl<'de> Shape<'de> for Item<'de> {
    fn atom(_: Atom<'de, '_>) -> Self {
        Item::NotObject
    }

    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let (mut offer_id, mut offer, mut unchecked) = (None, None, false);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::OfferId => offer_id = Some(map.next_value::<De<Id>>()?.0),
                Key::Offer => {
                    let desc = map.next_value::<De<Desc>>()?.0;
                    unchecked |= desc.unchecked();
                    offer = Some(desc);
                }
                _ => {
                    map.next_value::<De<Skip>>()?;
                }
            }
        }
        Ok(Item::Object {
            offer_id,
            offer,
            unchecked,
        })
    }
}

/// `offers`: the first [`MAX_OFFERS`] entries kept, the rest only counted.
enum Offers<'de> {
    Null,
    List {
        items: Vec<Item<'de>>,
        ignored: usize,
        /// See [`Desc::Object`].
        unchecked: bool,
    },
    Other,
}

impl Offers<'_> {
    fn unchecked(&self) -> bool {
        matches!(
            self,
            Offers::List {
                unchecked: true,
                ..
            }
        )
    }
}

impl<'de> Shape<'de> for Offers<'de> {
    fn atom(a: Atom<'de, '_>) -> Self {
        match a {
            Atom::Null => Offers::Null,
            _ => Offers::Other,
        }
    }

    fn seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::new();
        let mut unchecked = false;
        let mut ignored = 0;
        loop {
            if items.len() < MAX_OFFERS {
                let Some(De(item)) = seq.next_element::<De<Item>>()? else {
                    break;
                };
                unchecked |= matches!(
                    item,
                    Item::Object {
                        unchecked: true,
                        ..
                    }
                );
                items.push(item);
            } else if seq.next_element::<De<Skip>>()?.is_some() {
                ignored += 1;
            } else {
                break;
            }
        }
        Ok(Offers::List {
            items,
            ignored,
            unchecked,
        })
    }
}

/// The top-level object's fields; a later duplicate key replaces an earlier one, as in
/// JavaScript's `JSON.parse`.
#[derive(Default)]
struct Fields<'de> {
    /// `false`: the frame is JSON but not an object.
    object: bool,
    action: Option<Text<'de>>,
    info_hash: Option<Hashes>,
    peer_id: Option<Id>,
    to_peer_id: Option<Id>,
    offer_id: Option<Id>,
    event: Option<Text<'de>>,
    uploaded: Option<u64>,
    downloaded: Option<u64>,
    left: Option<u64>,
    numwant: Option<u64>,
    answer: Option<Desc<'de>>,
    offers: Option<Offers<'de>>,
    /// Some `answer` or `offers` seen, kept or replaced by a duplicate, holds a raw SDP that
    /// [`plain`] cannot vouch for: serde_json must judge the frame.
    unchecked: bool,
}

impl<'de> Shape<'de> for Fields<'de> {
    fn atom(_: Atom<'de, '_>) -> Self {
        Fields::default()
    }

    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut f = Fields {
            object: true,
            ..Fields::default()
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Action => f.action = Some(map.next_value::<De<Text>>()?.0),
                Key::InfoHash => f.info_hash = Some(map.next_value::<De<Hashes>>()?.0),
                Key::PeerId => f.peer_id = Some(map.next_value::<De<Id>>()?.0),
                Key::ToPeerId => f.to_peer_id = Some(map.next_value::<De<Id>>()?.0),
                Key::OfferId => f.offer_id = Some(map.next_value::<De<Id>>()?.0),
                Key::Event => f.event = Some(map.next_value::<De<Text>>()?.0),
                Key::Uploaded => f.uploaded = map.next_value::<De<Count>>()?.0 .0,
                Key::Downloaded => f.downloaded = map.next_value::<De<Count>>()?.0 .0,
                Key::Left => f.left = map.next_value::<De<Count>>()?.0 .0,
                Key::Numwant => f.numwant = map.next_value::<De<Count>>()?.0 .0,
                Key::Answer => {
                    let desc = map.next_value::<De<Desc>>()?.0;
                    f.unchecked |= desc.unchecked();
                    f.answer = Some(desc);
                }
                Key::Offers => {
                    let offers = map.next_value::<De<Offers>>()?.0;
                    f.unchecked |= offers.unchecked();
                    f.offers = Some(offers);
                }
                _ => {
                    map.next_value::<De<Skip>>()?;
                }
            }
        }
        Ok(f)
    }
}

impl<'de> Fields<'de> {
    fn announce_info_hash(&self) -> Result<InfoHash, SignalError> {
        let id = match &self.info_hash {
            None | Some(Hashes::Null) => None,
            Some(Hashes::One(r)) => Some(Id::Str(r.clone())),
            Some(Hashes::List { .. } | Hashes::Other) => Some(Id::Other),
        };
        id20_of(&id, "info_hash").map(InfoHash)
    }
}

/// The keys the protocol has; everything else is [`Key::Unknown`].
enum Key {
    Action,
    InfoHash,
    PeerId,
    ToPeerId,
    OfferId,
    Event,
    Uploaded,
    Downloaded,
    Left,
    Numwant,
    Answer,
    Offers,
    Offer,
    Type,
    Sdp,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "action" => Key::Action,
                    "info_hash" => Key::InfoHash,
                    "peer_id" => Key::PeerId,
                    "to_peer_id" => Key::ToPeerId,
                    "offer_id" => Key::OfferId,
                    "event" => Key::Event,
                    "uploaded" => Key::Uploaded,
                    "downloaded" => Key::Downloaded,
                    "left" => Key::Left,
                    "numwant" => Key::Numwant,
                    "answer" => Key::Answer,
                    "offers" => Key::Offers,
                    "offer" => Key::Offer,
                    "type" => Key::Type,
                    "sdp" => Key::Sdp,
                    _ => Key::Unknown,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// [`id20_field`]'s rules for a field the one-pass reader kept.
fn id20_of(id: &Option<Id>, field: &'static str) -> Result<[u8; 20], SignalError> {
    match id {
        None | Some(Id::Null) => Err(SignalError::Missing(field)),
        Some(Id::Str(r)) => r.clone().map_err(|e| id_invalid(field, e)),
        Some(Id::Other) => Err(invalid(field, "not a string")),
    }
}

fn id_invalid(field: &'static str, e: IdError) -> SignalError {
    invalid(field, e.to_string())
}

/// [`sdp_field`]'s rules for a description the one-pass reader kept; the SDP stays a literal.
fn sdp_of<'de>(
    desc: &Desc<'de>,
    field: &'static str,
    expected_type: &str,
) -> Result<JsonStr<'de>, SignalError> {
    let Desc::Object { kind, sdp, .. } = desc else {
        return Err(invalid(field, "not an object"));
    };
    match kind {
        None | Some(Text::Null) => {}
        Some(Text::Str(t)) if t == expected_type => {}
        Some(_) => return Err(invalid(field, format!("type is not {expected_type:?}"))),
    }
    let sdp = sdp
        .map(RawValue::get)
        .filter(|raw| raw.starts_with('"'))
        .map(JsonStr)
        .ok_or_else(|| invalid(field, "no sdp string"))?;
    if let Some(len) = sdp.decoded_len_over(MAX_SDP_BYTES) {
        return Err(invalid(
            field,
            format!("sdp of {len} bytes exceeds {MAX_SDP_BYTES}"),
        ));
    }
    Ok(sdp)
}

// ---- frames the tracker sends -----------------------------------------------------------------
//
// Written straight into a `String` sized up front, byte for byte as `serde_json::json!(..)
// .to_string()` wrote them before (compact, keys in sorted order: serde_json's map is a BTreeMap
// here), which tests below check against serde_json itself.

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
    use serde_json::json;

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

    #[test]
    fn duplicate_keys_the_last_one_wins() {
        let a = "a".repeat(20);
        let b = "b".repeat(20);
        let text = format!(
            r#"{{"action":"scrape","action":"announce","info_hash":"{b}","info_hash":"{a}","peer_id":[],"peer_id":"{b}","left":5,"left":"x","event":"stopped","event":"started","offers":7,"offers":[{{"offer_id":"{a}","offer":{{"sdp":"1","sdp":"2","type":"answer","type":null}}}}]}}"#
        );
        let ClientMessage::Announce(m) = parse_client_message(&text).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.info_hash, m.peer_id),
            (InfoHash([b'a'; 20]), PeerId([b'b'; 20]))
        );
        assert_eq!((m.left, m.event), (None, AnnounceEvent::Started));
        assert_eq!(m.offers[0].sdp.decode(), "2");
        let null_answer = format!(
            r#"{{"action":"announce","info_hash":"{a}","peer_id":"{a}","answer":{{}},"answer":null}}"#
        );
        assert!(matches!(
            parse_client_message(&null_answer),
            Ok(ClientMessage::Announce(_))
        ));
    }

    /// serde_json skips values it keeps raw without its nesting limit; that limit must still
    /// hold everywhere, as a clean error.
    #[test]
    fn deep_nesting_is_an_error_wherever_it_is() {
        let a = "a".repeat(20);
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for depth in [126, 127, 128, 5000] {
            for place in [
                format!(r#""x":{}"#, deep(depth)),
                format!(
                    r#""offers":[{{"offer_id":"{a}","offer":{{"sdp":{}}}}}]"#,
                    deep(depth)
                ),
                format!(r#""answer":{{"sdp":{}}}"#, deep(depth)),
            ] {
                let text =
                    format!(r#"{{"action":"announce","info_hash":"{a}","peer_id":"{a}",{place}}}"#);
                let got = parse_client_message(&text).map(|_| ()).map_err(|f| f.error);
                assert_eq!(
                    got,
                    reference::parse(&text).map(|_| ()).map_err(|f| f.error)
                );
                if depth >= 128 {
                    let Err(SignalError::Json(e)) = got else {
                        panic!("{depth}: {got:?}")
                    };
                    assert!(e.contains("recursion limit"), "{e}");
                }
            }
        }
        let unclosed = format!(r#"{{"x":{}"#, "{\"a\":[".repeat(20_000));
        assert!(matches!(
            parse_client_message(&unclosed[..MAX_FRAME_BYTES])
                .unwrap_err()
                .error,
            SignalError::Json(_)
        ));
    }

    #[test]
    fn what_raw_values_hide_is_still_refused() {
        let a = "a".repeat(20);
        for sdp in [r#""\ud800""#, r#""x\udc00""#, "1e999", r#"{"a":"\ud800"}"#] {
            let text = format!(
                r#"{{"action":"announce","info_hash":"{a}","peer_id":"{a}","offers":[{{"offer_id":"{a}","offer":{{"sdp":{sdp}}}}}]}}"#
            );
            let err = parse_client_message(&text).unwrap_err().error;
            assert_eq!(err, reference::parse(&text).unwrap_err().error);
            assert!(matches!(err, SignalError::Json(_)), "{sdp}: {err}");
        }
        for hidden in [
            r#""answer":{"sdp":1e999},"answer":null"#,
            r#""answer":{"sdp":"\udc00","sdp":"x"}"#,
            r#""offers":[{"offer_id":"x","offer":{"sdp":[1e999]},"offer":null}]"#,
            r#""offers":[{"offer":{"sdp":"\ud800"}}],"offers":null"#,
        ] {
            let text =
                format!(r#"{{"action":"announce","info_hash":"{a}","peer_id":"{a}",{hidden}}}"#);
            let err = parse_client_message(&text).unwrap_err().error;
            assert_eq!(err, reference::parse(&text).unwrap_err().error);
            assert!(matches!(err, SignalError::Json(_)), "{hidden}: {err}");
        }
        let fine = format!(
            r#"{{"action":"announce","info_hash":"{a}","peer_id":"{a}","offers":[{{"offer_id":"{a}","offer":{{"sdp":"\\ud800 \ud83d\ude00"}}}}]}}"#
        );
        assert!(parse_client_message(&fine).is_ok());
    }

    /// The one-pass reader against the `Value`-based one it replaced, on hand-made frames and
    /// many mutations of them: same messages, same errors.
    #[test]
    fn agrees_with_the_value_based_reader() {
        let a = latin1(&high_bytes(1));
        let p = latin1(&high_bytes(2));
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n";
        let offers: Vec<String> = (0..12).map(|i| offer_item(i, sdp)).collect();
        let seeds = vec![
            announce_text(&format!("[{}]", offers[..3].join(","))),
            announce_text(&format!("[{}]", offers.join(","))),
            announce_text("null"),
            json!({"action": "announce", "info_hash": a, "peer_id": p, "to_peer_id": a,
                   "offer_id": p, "answer": {"type": "answer", "sdp": sdp}})
            .to_string(),
            json!({"action": "announce", "info_hash": a, "peer_id": p, "event": "paused",
                   "uploaded": 1.5, "downloaded": " 7 ", "left": -0, "numwant": "1e3"})
            .to_string(),
            json!({"action": "scrape", "info_hash": [a, p, 1]}).to_string(),
            json!({"action": "scrape", "info_hash": a}).to_string(),
            json!({"action": "scrape", "info_hash": {}}).to_string(),
            r#"{"action":"ping","x":[1,{"y":null}]}"#.to_string(),
            announce_text(&format!("[{}]", offers[..2].join(",")))
                .replace(r#""started""#, r#""stopped""#),
            json!({"action": "scrape", "info_hash": vec![a.clone(); MAX_SCRAPE_HASHES + 1]})
                .to_string(),
        ];
        const TOKENS: &[&str] = &[
            "\"",
            "\\",
            "\\u0000",
            "\\ud800",
            "\\udc00",
            "\\ud83d\\ude00",
            "1e999",
            "-1",
            "0",
            "2.5",
            "1e2",
            "\"7\"",
            "null",
            "true",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "[]",
            "{}",
            r#""offers":"#,
            r#""answer":"#,
            r#""sdp":"#,
            r#""type":"offer""#,
            r#""type":1"#,
            r#""event":"stopped""#,
            r#""event":7"#,
            r#""info_hash":"#,
            r#""peer_id":"#,
            r#""offer_id":"#,
            r#""action":"scrape""#,
            r#""left":"#,
            r#""numwant":"#,
            "é",
            "\u{100}",
            " ",
            "\\n",
        ];
        let mut rng = crate::rng::Rng::new(9);
        let mut cases = 0;
        for seed in &seeds {
            for _ in 0..2500 {
                let mut text = seed.clone();
                for _ in 0..=rng.below(3) {
                    let mut at = rng.below(text.len() as u64 + 1) as usize;
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    match rng.below(3) {
                        0 => text.insert_str(at, TOKENS[rng.below(TOKENS.len() as u64) as usize]),
                        1 => {
                            let mut end = (at + 1 + rng.below(8) as usize).min(text.len());
                            while !text.is_char_boundary(end) {
                                end += 1;
                            }
                            text.replace_range(at..end, "");
                        }
                        _ => {
                            let mut end = (at + rng.below(40) as usize).min(text.len());
                            while !text.is_char_boundary(end) {
                                end += 1;
                            }
                            let piece = text[at..end].to_string();
                            text.insert_str(at, &piece);
                        }
                    }
                }
                let got = parse_client_message(&text).map(|m| reference::normalize(&m));
                assert_eq!(got, reference::parse(&text), "{text}");
                cases += usize::from(got.is_ok());
            }
        }
        assert!(cases > 1000, "too few mutations parsed: {cases}");
    }

    /// The `Value`-based reader as it was, for the tests above to compare against.
    mod reference {
        use super::super::*;

        /// A parsed frame with its SDPs decoded.
        #[derive(Debug, PartialEq)]
        pub enum Norm {
            Announce {
                ih: InfoHash,
                pid: PeerId,
                event: AnnounceEvent,
                counts: [Option<u64>; 3],
                numwant: Option<u32>,
                offers: Vec<OfferOut>,
                offers_ignored: usize,
            },
            Answer {
                ih: InfoHash,
                pid: PeerId,
                to: PeerId,
                offer_id: [u8; 20],
                sdp: String,
            },
            Scrape(Option<Vec<InfoHash>>),
        }

        pub fn normalize(m: &ClientMessage<'_>) -> Norm {
            match m {
                ClientMessage::Announce(a) => Norm::Announce {
                    ih: a.info_hash,
                    pid: a.peer_id,
                    event: a.event,
                    counts: [a.uploaded, a.downloaded, a.left],
                    numwant: a.numwant,
                    offers: a
                        .offers
                        .iter()
                        .map(|o| OfferOut {
                            offer_id: o.offer_id,
                            sdp: o.sdp.decode(),
                        })
                        .collect(),
                    offers_ignored: a.offers_ignored,
                },
                ClientMessage::Answer(a) => Norm::Answer {
                    ih: a.info_hash,
                    pid: a.peer_id,
                    to: a.to_peer_id,
                    offer_id: a.offer_id,
                    sdp: a.sdp.decode(),
                },
                ClientMessage::Scrape { info_hashes } => Norm::Scrape(info_hashes.clone()),
            }
        }

        pub fn parse(text: &str) -> Result<Norm, ParseFailure> {
            let bare = |error| ParseFailure {
                error,
                action: None,
                info_hash: None,
            };
            let obj = parse_object(text, MAX_FRAME_BYTES).map_err(bare)?;
            match obj.get("action").and_then(Value::as_str) {
                Some("announce") => {
                    let info_hash =
                        info_hash_field(&obj, "info_hash").map_err(|error| ParseFailure {
                            error,
                            action: Some(Action::Announce),
                            info_hash: None,
                        })?;
                    announce(&obj, info_hash).map_err(|error| ParseFailure {
                        error,
                        action: Some(Action::Announce),
                        info_hash: Some(info_hash),
                    })
                }
                Some("scrape") => scrape(&obj).map_err(|error| ParseFailure {
                    error,
                    action: Some(Action::Scrape),
                    info_hash: None,
                }),
                Some(other) => Err(bare(SignalError::Action(truncate(other, 32)))),
                None => Err(bare(SignalError::Action("missing".into()))),
            }
        }

        fn announce(obj: &Map<String, Value>, ih: InfoHash) -> Result<Norm, SignalError> {
            let pid = PeerId(id20_field(obj, "peer_id")?);
            if let Some(answer) = obj.get("answer").filter(|v| !v.is_null()) {
                let to = PeerId(id20_field(obj, "to_peer_id")?);
                let offer_id = id20_field(obj, "offer_id")?;
                let sdp = sdp_field(answer, "answer", "answer")?;
                return Ok(Norm::Answer {
                    ih,
                    pid,
                    to,
                    offer_id,
                    sdp,
                });
            }
            let event = match obj.get("event") {
                None | Some(Value::Null) => AnnounceEvent::Update,
                Some(Value::String(s)) => match s.as_str() {
                    "started" => AnnounceEvent::Started,
                    "completed" => AnnounceEvent::Completed,
                    "stopped" => AnnounceEvent::Stopped,
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
            let c = |k| obj.get(k).and_then(count);
            Ok(Norm::Announce {
                ih,
                pid,
                event,
                counts: [c("uploaded"), c("downloaded"), c("left")],
                numwant,
                offers,
                offers_ignored,
            })
        }

        fn scrape(obj: &Map<String, Value>) -> Result<Norm, SignalError> {
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
            Ok(Norm::Scrape(info_hashes))
        }
    }
}
