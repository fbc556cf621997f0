//! The tracker's one-pass reader of client frames: serde_json walks the text once and only the
//! protocol's fields are kept ([`Fields`]), in shapes that hold just what `parse_client_message`
//! needs to interpret them; every other value is checked and skipped, and no `Value` tree is
//! built. Of `offers` only the first [`MAX_OFFERS`] entries are read (the rest are counted), of a
//! scrape's `info_hash` list only the first [`MAX_SCRAPE_HASHES`] (the rest are skipped).
//!
//! What it must never do is let `parse_client_message` accept, refuse or word an error differently
//! from reading the frame into a `serde_json::Value` first. Every value goes through
//! `deserialize_any`, as it does when serde_json builds a `Value`, so the same checks run in the
//! same order (string escapes, number ranges, the nesting limit) and an error carries the same
//! position. The one exception is an SDP, taken as a `RawValue` so it can be relayed verbatim:
//! serde_json skips over those without checking `\u` escapes or number ranges, so a frame holding
//! one that is not a plain string is flagged (`Fields::unchecked`) and goes to serde_json for its
//! verdict. The tests compare it with the `Value`-based reader it replaced on many mutated frames.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{invalid, JsonStr, SignalError, MAX_OFFERS, MAX_SCRAPE_HASHES, MAX_SDP_BYTES};
use crate::id::{IdError, InfoHash, PeerId};

/// Reads a frame in one pass into the fields the protocol has. An error is serde_json's (for
/// text that is not JSON); a frame that is JSON but not an object gives `object: false`.
pub(super) fn read_fields(text: &str) -> Result<Fields<'_>, serde_json::Error> {
    serde_json::from_str::<De<Fields>>(text).map(|De(f)| f)
}

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
pub(super) enum Text<'de> {
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
pub(super) enum Id {
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

/// A count, read leniently (see [`count`](super::value_reader::count)); `None` for anything that
/// is not one.
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
pub(super) enum Hashes {
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
pub(super) enum Desc<'de> {
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
pub(super) enum Item<'de> {
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
pub(super) enum Offers<'de> {
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
pub(super) struct Fields<'de> {
    /// `false`: the frame is JSON but not an object.
    pub(super) object: bool,
    pub(super) action: Option<Text<'de>>,
    pub(super) info_hash: Option<Hashes>,
    pub(super) peer_id: Option<Id>,
    pub(super) to_peer_id: Option<Id>,
    pub(super) offer_id: Option<Id>,
    pub(super) event: Option<Text<'de>>,
    pub(super) uploaded: Option<u64>,
    pub(super) downloaded: Option<u64>,
    pub(super) left: Option<u64>,
    pub(super) numwant: Option<u64>,
    pub(super) answer: Option<Desc<'de>>,
    pub(super) offers: Option<Offers<'de>>,
    /// Some `answer` or `offers` seen, kept or replaced by a duplicate, holds a raw SDP that
    /// [`plain`] cannot vouch for: serde_json must judge the frame.
    pub(super) unchecked: bool,
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
    pub(super) fn announce_info_hash(&self) -> Result<InfoHash, SignalError> {
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

/// [`id20_field`](super::value_reader::id20_field)'s rules for a field the one-pass reader kept.
pub(super) fn id20_of(id: &Option<Id>, field: &'static str) -> Result<[u8; 20], SignalError> {
    match id {
        None | Some(Id::Null) => Err(SignalError::Missing(field)),
        Some(Id::Str(r)) => r.clone().map_err(|e| id_invalid(field, e)),
        Some(Id::Other) => Err(invalid(field, "not a string")),
    }
}

pub(super) fn id_invalid(field: &'static str, e: IdError) -> SignalError {
    invalid(field, e.to_string())
}

/// [`sdp_field`](super::value_reader::sdp_field)'s rules for a description the one-pass reader
/// kept; the SDP stays a literal.
pub(super) fn sdp_of<'de>(
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::id::{InfoHash, PeerId};
    use crate::signal::msg::tests::{announce_text, high_bytes, offer_item};
    use crate::signal::msg::{
        latin1, parse_client_message, AnnounceEvent, ClientMessage, SignalError, MAX_FRAME_BYTES,
        MAX_SCRAPE_HASHES,
    };

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
        use serde_json::{Map, Value};

        use crate::id::{InfoHash, PeerId};
        use crate::signal::msg::{
            count, id20_field, info_hash_field, invalid, latin1_info_hash, parse_object, sdp_field,
            truncate, Action, AnnounceEvent, ClientMessage, OfferOut, ParseFailure, SignalError,
            MAX_FRAME_BYTES, MAX_NUMWANT, MAX_OFFERS, MAX_SCRAPE_HASHES,
        };

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
