//! The `Value`-based reading of frames: each frame is parsed into a `serde_json::Value` (after
//! [`parse_object`] has checked its size), then its fields are read with the helpers here.
//!
//! The client side reads what a tracker sends this way (`client.rs`); it is not a hot path. The
//! tracker's own one-pass reader keeps these helpers' rules field for field, and its tests compare
//! it with a reader built from them.

use serde_json::{Map, Value};

use super::{invalid, SignalError, MAX_SDP_BYTES};
use crate::id::{InfoHash, PeerId};

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
