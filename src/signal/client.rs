//! The client half of the WebSocket tracker protocol, sans-IO: the frames a peer sends (announce
//! with offers, answer, scrape), reading what a tracker sends back into [`TrackerEvent`]s, and
//! the timing rules (re-announce schedule, reconnect back-off) WebTorrent follows. Used by the
//! browser driver (`web/`) and by the native peer.
//!
//! Never touches a socket, a clock or a random source: times are milliseconds passed in.

use serde_json::{json, Map, Value};

use super::msg::{self, latin1, SignalError, MAX_NUMWANT, MAX_TRACKER_FRAME_BYTES};
use crate::id::{InfoHash, PeerId};

pub use super::msg::{AnnounceEvent, OfferOut};

/// `left` sent when the size is not known yet (magnet link before metadata). WebTorrent computes
/// `Math.max(length - downloaded, 0)` with `length` undefined, which serialises as `null`, and
/// bittorrent-tracker reads `Number(null)` as 0, listing the downloader as a seed. A large value
/// keeps us counted as incomplete everywhere; 2^53 − 1 is the largest integer a JavaScript tracker
/// holds exactly.
pub const UNKNOWN_LEFT: u64 = (1 << 53) - 1;

/// WebTorrent's `RECONNECT_MINIMUM`: first reconnect delay.
pub const RECONNECT_MIN_MS: u64 = 10_000;
/// WebTorrent's `RECONNECT_MAXIMUM`: the back-off stops growing here.
pub const RECONNECT_MAX_MS: u64 = 60 * 60 * 1000;

/// An announce frame. Offers go with `Started` and `Update` only (WebTorrent sends none with
/// `stopped` or `completed`, and a tracker would relay them to peers we just left). `numwant` is
/// clamped to [`MAX_NUMWANT`]; the tracker relays at most `min(numwant, offers)` offers, so
/// callers normally pass `offers.len()`. Counts above 2^53 − 1 are clamped (JavaScript numbers).
#[allow(clippy::too_many_arguments)] // the protocol's own field list; a struct would only rename it
pub fn announce_json(
    info_hash: &InfoHash,
    peer_id: &PeerId,
    event: AnnounceEvent,
    uploaded: u64,
    downloaded: u64,
    left: Option<u64>,
    numwant: u32,
    offers: &[OfferOut],
) -> String {
    let mut m = Map::new();
    m.insert("action".into(), "announce".into());
    m.insert("info_hash".into(), info_hash.to_latin1().into());
    m.insert("peer_id".into(), peer_id.to_latin1().into());
    m.insert("uploaded".into(), uploaded.min(UNKNOWN_LEFT).into());
    m.insert("downloaded".into(), downloaded.min(UNKNOWN_LEFT).into());
    m.insert(
        "left".into(),
        left.unwrap_or(UNKNOWN_LEFT).min(UNKNOWN_LEFT).into(),
    );
    if let Some(e) = event.as_str() {
        m.insert("event".into(), e.into());
    }
    m.insert("numwant".into(), numwant.min(MAX_NUMWANT).into());
    if !matches!(event, AnnounceEvent::Stopped | AnnounceEvent::Completed) {
        let list: Vec<Value> = offers
            .iter()
            .map(|o| json!({ "offer_id": latin1(&o.offer_id), "offer": { "type": "offer", "sdp": o.sdp } }))
            .collect();
        m.insert("offers".into(), list.into());
    }
    Value::Object(m).to_string()
}

/// The answer to an offer received from `to_peer_id`, echoing its `offer_id`.
pub fn answer_json(
    info_hash: &InfoHash,
    peer_id: &PeerId,
    to_peer_id: &PeerId,
    offer_id: &[u8; 20],
    sdp: &str,
) -> String {
    json!({
        "action": "announce",
        "info_hash": info_hash.to_latin1(),
        "peer_id": peer_id.to_latin1(),
        "to_peer_id": to_peer_id.to_latin1(),
        "offer_id": latin1(offer_id),
        "answer": { "type": "answer", "sdp": sdp },
    })
    .to_string()
}

/// A scrape: one info-hash is sent as a string (as WebTorrent does), several as a list, none by
/// leaving `info_hash` out, which asks the tracker for every swarm it has.
pub fn scrape_json(info_hashes: &[InfoHash]) -> String {
    match info_hashes {
        [] => json!({ "action": "scrape" }),
        [one] => json!({ "action": "scrape", "info_hash": one.to_latin1() }),
        many => {
            let list: Vec<String> = many.iter().map(InfoHash::to_latin1).collect();
            json!({ "action": "scrape", "info_hash": list })
        }
    }
    .to_string()
}

/// What a tracker frame means to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerEvent {
    /// The tracker's reply to our announce. `interval` is in seconds, as sent.
    AnnounceReply {
        info_hash: InfoHash,
        interval: Option<u64>,
        complete: Option<u64>,
        incomplete: Option<u64>,
    },
    /// Another peer's offer: answer it with [`answer_json`] to `peer_id`, echoing `offer_id`.
    Offer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: [u8; 20],
        sdp: String,
    },
    /// The answer to one of our offers, from `peer_id`.
    Answer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: [u8; 20],
        sdp: String,
    },
    /// `(info_hash, complete, incomplete, downloaded)` per torrent; missing counts read as 0.
    Scrape {
        files: Vec<(InfoHash, u64, u64, u64)>,
    },
    /// `failure reason`; `info_hash` names the torrent when the tracker said which.
    Failure {
        info_hash: Option<InfoHash>,
        reason: String,
    },
    /// `warning message`: informational, the request was still served.
    Warning { message: String },
}

/// Reads one tracker frame. A frame carrying both a warning and a reply yields the reply (the
/// part that drives behaviour); [`parse_tracker_events`] yields both.
///
/// The driver should still drop offers and answers whose `peer_id` is its own (a tracker may echo
/// them, as WebTorrent guards against) and events for torrents it does not have.
pub fn parse_tracker_message(text: &str) -> Result<TrackerEvent, SignalError> {
    let mut events = parse_tracker_events(text)?;
    // Non-empty by construction; the warning, when there are two, comes first.
    Ok(events.pop().unwrap_or(TrackerEvent::Warning {
        message: String::new(),
    }))
}

/// Like [`parse_tracker_message`] but keeps a `warning message` that rides along a reply, as a
/// separate event before it.
pub fn parse_tracker_events(text: &str) -> Result<Vec<TrackerEvent>, SignalError> {
    let obj = msg::parse_object(text, MAX_TRACKER_FRAME_BYTES)?;
    if let Some(reason) = obj.get("failure reason") {
        let info_hash = obj
            .get("info_hash")
            .and_then(Value::as_str)
            .and_then(|s| InfoHash::from_latin1(s).ok());
        return Ok(vec![TrackerEvent::Failure {
            info_hash,
            reason: text_of(reason),
        }]);
    }
    let warning = obj.get("warning message").map(|w| TrackerEvent::Warning {
        message: text_of(w),
    });
    let main = match obj.get("action").and_then(Value::as_str) {
        Some("announce") => Some(parse_announce_frame(&obj)?),
        Some("scrape") => Some(parse_scrape_frame(&obj)?),
        // A bare warning is still worth showing; anything else is not this protocol.
        _ if warning.is_some() => None,
        Some(other) => return Err(SignalError::Action(other.chars().take(32).collect())),
        None => return Err(SignalError::Action("missing".into())),
    };
    Ok(warning.into_iter().chain(main).collect())
}

fn parse_announce_frame(obj: &Map<String, Value>) -> Result<TrackerEvent, SignalError> {
    let info_hash = msg::info_hash_field(obj, "info_hash")?;
    if let Some(offer) = obj.get("offer").filter(|v| !v.is_null()) {
        return Ok(TrackerEvent::Offer {
            info_hash,
            peer_id: PeerId(msg::id20_field(obj, "peer_id")?),
            offer_id: msg::id20_field(obj, "offer_id")?,
            sdp: msg::sdp_field(offer, "offer", "offer")?,
        });
    }
    if let Some(answer) = obj.get("answer").filter(|v| !v.is_null()) {
        return Ok(TrackerEvent::Answer {
            info_hash,
            peer_id: PeerId(msg::id20_field(obj, "peer_id")?),
            offer_id: msg::id20_field(obj, "offer_id")?,
            sdp: msg::sdp_field(answer, "answer", "answer")?,
        });
    }
    // WebTorrent falls back to `min interval` when `interval` is absent or zero.
    let interval = obj
        .get("interval")
        .and_then(msg::count)
        .filter(|&i| i > 0)
        .or_else(|| obj.get("min interval").and_then(msg::count));
    Ok(TrackerEvent::AnnounceReply {
        info_hash,
        interval,
        complete: obj.get("complete").and_then(msg::count),
        incomplete: obj.get("incomplete").and_then(msg::count),
    })
}

fn parse_scrape_frame(obj: &Map<String, Value>) -> Result<TrackerEvent, SignalError> {
    let files = match obj.get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => {
            let mut files = Vec::with_capacity(map.len());
            for (key, stats) in map {
                let ih = msg::latin1_info_hash(key)?;
                let n = |k: &str| stats.get(k).and_then(msg::count).unwrap_or(0);
                files.push((ih, n("complete"), n("incomplete"), n("downloaded")));
            }
            files
        }
        Some(_) => return Err(msg::invalid("files", "not an object")),
    };
    Ok(TrackerEvent::Scrape { files })
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Delay before reconnect attempt `attempt` (0 for the first): 10 s · 2^attempt, capped at 1 h,
/// WebTorrent's rule. WebTorrent adds up to 5 min of random jitter on top; a driver that wants
/// it adds its own, so this stays a pure function.
pub fn reconnect_delay_ms(attempt: u32) -> u64 {
    RECONNECT_MIN_MS
        .saturating_mul(1u64 << attempt.min(32))
        .min(RECONNECT_MAX_MS)
}

/// When to re-announce one torrent to one tracker. Starts with the caller's default interval
/// (WebTorrent: 30 s before the tracker speaks), then uses what the tracker says, kept within
/// [`AnnounceSchedule::MIN_INTERVAL_MS`]..[`AnnounceSchedule::MAX_INTERVAL_MS`] so a broken tracker
/// can neither make us hammer it nor go silent for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceSchedule {
    interval_ms: u64,
    last_sent_ms: Option<u64>,
}

impl AnnounceSchedule {
    pub const MIN_INTERVAL_MS: u64 = 10_000;
    pub const MAX_INTERVAL_MS: u64 = 60 * 60 * 1000;

    pub fn new(default_interval_ms: u64) -> AnnounceSchedule {
        AnnounceSchedule {
            interval_ms: default_interval_ms.clamp(Self::MIN_INTERVAL_MS, Self::MAX_INTERVAL_MS),
            last_sent_ms: None,
        }
    }

    /// An announce went out at `now_ms`.
    pub fn on_sent(&mut self, now_ms: u64) {
        self.last_sent_ms = Some(now_ms);
    }

    /// The tracker replied; `interval_s` is [`TrackerEvent::AnnounceReply`]'s `interval`.
    pub fn on_reply(&mut self, interval_s: Option<u64>) {
        if let Some(s) = interval_s.filter(|&s| s > 0) {
            self.interval_ms = s
                .saturating_mul(1000)
                .clamp(Self::MIN_INTERVAL_MS, Self::MAX_INTERVAL_MS);
        }
    }

    /// Forget the last announce, so the next one is due at once (after a reconnect).
    pub fn reset(&mut self) {
        self.last_sent_ms = None;
    }

    /// Absolute time the next announce is due: `now_ms` if none was sent yet; may be in the past.
    pub fn next_due(&self, now_ms: u64) -> u64 {
        self.last_sent_ms
            .map_or(now_ms, |t| t.saturating_add(self.interval_ms))
    }

    pub fn is_due(&self, now_ms: u64) -> bool {
        self.next_due(now_ms) <= now_ms
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::signal::msg::{
        json_string, parse_client_message, Announce, Answer, ClientMessage, JsonStr, OfferIn,
    };
    use crate::signal::server::{ConnId, Tracker, TrackerConfig};

    fn ids() -> (InfoHash, PeerId, PeerId) {
        let mut ih = [0u8; 20];
        for (i, b) in ih.iter_mut().enumerate() {
            *b = 0xEC ^ (i as u8 * 11); // includes bytes >= 0x80 and control chars
        }
        (
            InfoHash(ih),
            PeerId([0xFF; 20]),
            PeerId(*b"-ST0100-abcdefghijkl"),
        )
    }

    #[test]
    fn announce_round_trips_through_the_tracker_parser() {
        let (ih, me, _) = ids();
        let offers = vec![
            OfferOut {
                offer_id: [0x9C; 20],
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            },
            OfferOut {
                offer_id: [0x00; 20],
                sdp: "v=0\r\n".into(),
            },
        ];
        let text = announce_json(&ih, &me, AnnounceEvent::Started, 5, 6, Some(7), 2, &offers);
        let ClientMessage::Announce(a) = parse_client_message(&text).unwrap() else {
            panic!("{text}")
        };
        let literals: Vec<String> = offers.iter().map(|o| json_string(&o.sdp)).collect();
        let offers: Vec<OfferIn> = offers
            .iter()
            .zip(&literals)
            .map(|(o, l)| OfferIn {
                offer_id: o.offer_id,
                sdp: JsonStr::new(l).unwrap(),
            })
            .collect();
        assert_eq!(a.offers[1].sdp.decode(), "v=0\r\n");
        assert_eq!(
            a,
            Announce {
                info_hash: ih,
                peer_id: me,
                event: AnnounceEvent::Started,
                uploaded: Some(5),
                downloaded: Some(6),
                left: Some(7),
                numwant: Some(2),
                offers,
                offers_ignored: 0,
            }
        );
    }

    #[test]
    fn announce_fields_follow_webtorrent() {
        let (ih, me, _) = ids();
        let offer = [OfferOut {
            offer_id: [1; 20],
            sdp: "x".into(),
        }];
        let v: Value = serde_json::from_str(&announce_json(
            &ih,
            &me,
            AnnounceEvent::Update,
            0,
            0,
            None,
            500,
            &offer,
        ))
        .unwrap();
        assert!(v.get("event").is_none(), "updates carry no event");
        assert_eq!(v["left"], UNKNOWN_LEFT);
        assert_eq!(v["numwant"], 82);
        assert_eq!(v["offers"][0]["offer"]["type"], "offer");
        for event in [AnnounceEvent::Stopped, AnnounceEvent::Completed] {
            let v: Value =
                serde_json::from_str(&announce_json(&ih, &me, event, 0, 0, Some(0), 5, &offer))
                    .unwrap();
            assert!(v.get("offers").is_none(), "{event:?}");
            assert_eq!(v["event"], event.as_str().unwrap());
        }
    }

    #[test]
    fn answer_round_trips() {
        let (ih, me, them) = ids();
        let text = answer_json(&ih, &me, &them, &[0xB5; 20], "v=0 answer");
        assert_eq!(
            parse_client_message(&text).unwrap(),
            ClientMessage::Answer(Answer {
                info_hash: ih,
                peer_id: me,
                to_peer_id: them,
                offer_id: [0xB5; 20],
                sdp: JsonStr::new(r#""v=0 answer""#).unwrap()
            })
        );
    }

    #[test]
    fn scrape_forms_round_trip() {
        let (ih, _, _) = ids();
        for hashes in [vec![], vec![ih], vec![ih, InfoHash([0xFE; 20])]] {
            let text = scrape_json(&hashes);
            let parsed = parse_client_message(&text).unwrap();
            let expected = if hashes.is_empty() {
                None
            } else {
                Some(hashes.clone())
            };
            assert_eq!(
                parsed,
                ClientMessage::Scrape {
                    info_hashes: expected
                }
            );
        }
        let v: Value = serde_json::from_str(&scrape_json(&[ih])).unwrap();
        assert!(
            v["info_hash"].is_string(),
            "one hash is sent as a string, as WebTorrent does"
        );
    }

    /// Two clients and the tracker, all sans-IO: the whole signalling exchange end to end.
    #[test]
    fn signalling_exchange_through_the_server() {
        let (ih, a, b) = ids();
        let mut t = Tracker::new(TrackerConfig::default());
        let mut rng = Rng::new(3);
        let out = t.handle_text(
            ConnId(1),
            &announce_json(&ih, &a, AnnounceEvent::Started, 0, 0, Some(0), 0, &[]),
            0,
            &mut rng,
        );
        assert_eq!(
            parse_tracker_message(&out[0].1).unwrap(),
            TrackerEvent::AnnounceReply {
                info_hash: ih,
                interval: Some(120),
                complete: Some(1),
                incomplete: Some(0)
            }
        );
        let offer = OfferOut {
            offer_id: [0x8F; 20],
            sdp: "offer-sdp".into(),
        };
        let out = t.handle_text(
            ConnId(2),
            &announce_json(&ih, &b, AnnounceEvent::Started, 0, 0, None, 1, &[offer]),
            1,
            &mut rng,
        );
        assert_eq!(out.len(), 2);
        let (to, relayed) = &out[1];
        assert_eq!(*to, ConnId(1));
        let TrackerEvent::Offer {
            info_hash,
            peer_id,
            offer_id,
            sdp,
        } = parse_tracker_message(relayed).unwrap()
        else {
            panic!("{relayed}")
        };
        assert_eq!(
            (info_hash, peer_id, offer_id, sdp.as_str()),
            (ih, b, [0x8F; 20], "offer-sdp")
        );

        let out = t.handle_text(
            ConnId(1),
            &answer_json(&ih, &a, &peer_id, &offer_id, "answer-sdp"),
            2,
            &mut rng,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, ConnId(2));
        assert_eq!(
            parse_tracker_message(&out[0].1).unwrap(),
            TrackerEvent::Answer {
                info_hash: ih,
                peer_id: a,
                offer_id: [0x8F; 20],
                sdp: "answer-sdp".into()
            }
        );

        let out = t.handle_text(ConnId(3), &scrape_json(&[ih]), 3, &mut rng);
        assert_eq!(
            parse_tracker_message(&out[0].1).unwrap(),
            TrackerEvent::Scrape {
                files: vec![(ih, 1, 1, 0)]
            }
        );
        let out = t.handle_text(ConnId(3), "{nope", 3, &mut rng);
        let TrackerEvent::Failure {
            info_hash: None,
            reason,
        } = parse_tracker_message(&out[0].1).unwrap()
        else {
            panic!()
        };
        assert!(reason.starts_with("invalid JSON"), "{reason}");
    }

    #[test]
    fn tracker_frames_from_the_wild() {
        let (ih, _, _) = ids();
        let ihs = ih.to_latin1();
        let f = json!({"action": "announce", "info_hash": ihs, "failure reason": "torrent not allowed"});
        assert_eq!(
            parse_tracker_message(&f.to_string()).unwrap(),
            TrackerEvent::Failure {
                info_hash: Some(ih),
                reason: "torrent not allowed".into()
            }
        );
        let w = json!({"action": "announce", "info_hash": ihs, "interval": 0, "min interval": 60, "complete": 3,
                       "warning message": "slow down"});
        assert_eq!(
            parse_tracker_events(&w.to_string()).unwrap(),
            vec![
                TrackerEvent::Warning {
                    message: "slow down".into()
                },
                TrackerEvent::AnnounceReply {
                    info_hash: ih,
                    interval: Some(60),
                    complete: Some(3),
                    incomplete: None
                },
            ]
        );
        assert!(matches!(
            parse_tracker_message(&w.to_string()).unwrap(),
            TrackerEvent::AnnounceReply { .. }
        ));
        assert_eq!(
            parse_tracker_message(r#"{"warning message":"hi"}"#).unwrap(),
            TrackerEvent::Warning {
                message: "hi".into()
            }
        );
        let s = json!({"action": "scrape", "files": {ihs.clone(): {"complete": 2}}});
        assert_eq!(
            parse_tracker_message(&s.to_string()).unwrap(),
            TrackerEvent::Scrape {
                files: vec![(ih, 2, 0, 0)]
            }
        );
    }

    #[test]
    fn bad_tracker_frames_are_errors() {
        let e = |t: &str| parse_tracker_message(t).unwrap_err();
        assert!(matches!(e("<html>"), SignalError::Json(_)));
        assert_eq!(e("{}"), SignalError::Action("missing".into()));
        assert_eq!(
            e(r#"{"action":"dance"}"#),
            SignalError::Action("dance".into())
        );
        assert_eq!(
            e(r#"{"action":"announce"}"#),
            SignalError::Missing("info_hash")
        );
        let bad_offer =
            json!({"action": "announce", "info_hash": "i".repeat(20), "offer": {"sdp": "x"}});
        assert_eq!(e(&bad_offer.to_string()), SignalError::Missing("peer_id"));
        let bad_key = json!({"action": "scrape", "files": {"short": {}}});
        assert!(e(&bad_key.to_string())
            .to_string()
            .starts_with("invalid info_hash"));
        let big = format!(
            r#"{{"action":"scrape","pad":"{}"}}"#,
            "p".repeat(MAX_TRACKER_FRAME_BYTES)
        );
        assert!(matches!(e(&big), SignalError::TooLarge { .. }));
    }

    #[test]
    fn reconnect_backoff_doubles_and_caps() {
        assert_eq!(reconnect_delay_ms(0), 10_000);
        assert_eq!(reconnect_delay_ms(1), 20_000);
        assert_eq!(reconnect_delay_ms(8), 2_560_000);
        assert_eq!(reconnect_delay_ms(9), 3_600_000);
        assert_eq!(reconnect_delay_ms(u32::MAX), 3_600_000);
    }

    #[test]
    fn schedule_uses_the_tracker_interval_within_bounds() {
        let mut s = AnnounceSchedule::new(30_000);
        assert!(s.is_due(5));
        assert_eq!(s.next_due(5), 5);
        s.on_sent(1_000);
        assert_eq!(s.next_due(2_000), 31_000);
        assert!(!s.is_due(30_999));
        s.on_reply(Some(120));
        assert_eq!(s.next_due(2_000), 121_000);
        s.on_reply(None);
        s.on_reply(Some(0));
        assert_eq!(s.interval_ms(), 120_000);
        s.on_reply(Some(1));
        assert_eq!(s.interval_ms(), AnnounceSchedule::MIN_INTERVAL_MS);
        s.on_reply(Some(u64::MAX));
        assert_eq!(s.interval_ms(), AnnounceSchedule::MAX_INTERVAL_MS);
        s.reset();
        assert!(s.is_due(0));
    }
}
