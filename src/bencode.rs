//! Bencode (BEP 3): a strict decoder with resource limits, and a canonical encoder.
//!
//! Input comes from strangers (peers, `.torrent` files), so the decoder must never panic, never
//! recurse on input-controlled depth (it keeps its own stack) and never allocate more than the
//! limits allow. It must never silently "fix" input either: anything that would not re-encode to
//! a well-formed document is an error, with one documented exception (unsorted dict keys).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A bencoded value. Dicts are kept sorted by key, which is what makes [`encode`] canonical.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// The value under `key` if this is a dict holding it.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.as_dict()?.get(key)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, only if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Shorthand for `get(key)?.as_int()`.
    pub fn get_int(&self, key: &[u8]) -> Option<i64> {
        self.get(key)?.as_int()
    }

    /// Shorthand for `get(key)?.as_bytes()`.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        self.get(key)?.as_bytes()
    }

    /// Shorthand for `get(key)?.as_str()`.
    pub fn get_str(&self, key: &[u8]) -> Option<&str> {
        self.get(key)?.as_str()
    }

    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(b.into())
    }

    pub fn int(i: i64) -> Value {
        Value::Int(i)
    }

    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// Starts building a dict: `Value::dict().int("a", 1).bytes("b", "x").build()`.
    pub fn dict() -> DictBuilder {
        DictBuilder::default()
    }

    /// The canonical encoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

impl fmt::Debug for Value {
    // Byte strings are shown as text when they are printable, otherwise as hex, so that dumps of
    // info dicts (20-byte hashes) stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => fmt_bytes(f, b),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => {
                let mut m = f.debug_map();
                for (k, v) in d {
                    m.entry(&DebugBytes(k), v);
                }
                m.finish()
            }
        }
    }
}

struct DebugBytes<'a>(&'a [u8]);

impl fmt::Debug for DebugBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_bytes(f, self.0)
    }
}

fn fmt_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => write!(f, "{s:?}"),
        _ => write!(f, "0x{}", crate::id::to_hex(b)),
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl From<BTreeMap<Vec<u8>, Value>> for Value {
    fn from(d: BTreeMap<Vec<u8>, Value>) -> Value {
        Value::Dict(d)
    }
}

impl From<DictBuilder> for Value {
    fn from(b: DictBuilder) -> Value {
        b.build()
    }
}

/// Chained construction of a dict; a later entry with the same key replaces an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DictBuilder {
    map: BTreeMap<Vec<u8>, Value>,
}

impl DictBuilder {
    pub fn insert(mut self, key: impl AsRef<[u8]>, value: impl Into<Value>) -> Self {
        self.map.insert(key.as_ref().to_vec(), value.into());
        self
    }

    /// Inserts only when `value` is `Some`, for optional fields.
    pub fn insert_opt(self, key: impl AsRef<[u8]>, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.insert(key, v),
            None => self,
        }
    }

    pub fn int(self, key: impl AsRef<[u8]>, value: i64) -> Self {
        self.insert(key, Value::Int(value))
    }

    pub fn bytes(self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) -> Self {
        self.insert(key, Value::Bytes(value.into()))
    }

    pub fn build(self) -> Value {
        Value::Dict(self.map)
    }
}

/// Resource bounds for decoding untrusted input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dicts (a top-level dict is depth 1).
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dicts, dict keys included) in one document.
    pub max_tokens: usize,
    /// Longest single byte string.
    pub max_string_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_tokens: 1 << 20,
            max_string_len: 16 << 20,
        }
    }
}

/// What went wrong while decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    UnexpectedEof,
    /// A byte that cannot start or continue the token being read.
    UnexpectedByte(u8),
    /// `ie` or `i-e`.
    EmptyInteger,
    /// `i03e`, `i-03e`, or a string length `03:`.
    LeadingZero,
    /// `i-0e`.
    NegativeZero,
    /// The integer does not fit in an i64.
    IntegerOverflow,
    /// A string length starting with `-`.
    NegativeLength,
    /// A string length above `Limits::max_string_len` (or beyond `usize`).
    StringTooLong {
        max: usize,
    },
    TooDeep {
        max: usize,
    },
    TooManyTokens {
        max: usize,
    },
    /// A dict key that is not a byte string.
    KeyNotString,
    /// A dict key that already appeared in the same dict.
    DuplicateKey(Vec<u8>),
    /// A dict closed right after a key, before its value.
    MissingValue,
    /// Bytes left after the one value `decode` expects.
    TrailingData,
    /// `raw_dict_value` was given something other than a dict.
    NotADict,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEof => f.write_str("unexpected end of input"),
            DecodeErrorKind::UnexpectedByte(b) => {
                if b.is_ascii_graphic() {
                    write!(f, "unexpected byte '{}'", *b as char)
                } else {
                    write!(f, "unexpected byte 0x{b:02x}")
                }
            }
            DecodeErrorKind::EmptyInteger => f.write_str("integer without digits"),
            DecodeErrorKind::LeadingZero => f.write_str("number with a leading zero"),
            DecodeErrorKind::NegativeZero => f.write_str("negative zero"),
            DecodeErrorKind::IntegerOverflow => f.write_str("integer out of 64-bit range"),
            DecodeErrorKind::NegativeLength => f.write_str("negative string length"),
            DecodeErrorKind::StringTooLong { max } => {
                write!(f, "string longer than the limit of {max} bytes")
            }
            DecodeErrorKind::TooDeep { max } => write!(f, "nesting deeper than {max}"),
            DecodeErrorKind::TooManyTokens { max } => write!(f, "more than {max} values"),
            DecodeErrorKind::KeyNotString => f.write_str("dict key is not a byte string"),
            DecodeErrorKind::DuplicateKey(k) => {
                write!(f, "duplicate dict key {:?}", String::from_utf8_lossy(k))
            }
            DecodeErrorKind::MissingValue => f.write_str("dict key without a value"),
            DecodeErrorKind::TrailingData => f.write_str("trailing data after the value"),
            DecodeErrorKind::NotADict => f.write_str("expected a dict"),
        }
    }
}

/// A decoding failure: what, and the byte offset in the input where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode: {} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value with default limits; anything after it is an error.
///
/// Dict keys out of order are accepted (some real-world torrents have them; their info-hash must
/// then come from [`raw_dict_value`], since re-encoding sorts them). Duplicate keys are rejected:
/// which one wins would be a guess, and a guess could differ from other clients'.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    decode_with(input, &Limits::default())
}

/// [`decode`] with caller-chosen limits.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    let (value, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(DecodeError {
            offset: used,
            kind: DecodeErrorKind::TrailingData,
        });
    }
    Ok(value)
}

/// Decodes one value from the start of `input` and returns it with the number of bytes it took;
/// the rest is left to the caller (ut_metadata data messages carry raw bytes after a dict).
pub fn decode_prefix(input: &[u8], limits: &Limits) -> Result<(Value, usize), DecodeError> {
    let mut p = Parser::new(input, limits);
    let v = p.value(0)?;
    Ok((v, p.pos))
}

/// The original bytes of the value under `key` in the top-level dict that is the whole `input`.
///
/// The info-hash is the SHA-1 of the info dict exactly as it was sent, which re-encoding does not
/// reproduce when the sender's encoding was not canonical. The whole input is validated as for
/// [`decode_with`], including trailing data.
pub fn raw_dict_value<'a>(
    input: &'a [u8],
    key: &[u8],
    limits: &Limits,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let mut p = Parser::new(input, limits);
    if p.peek()? != b'd' {
        return Err(p.err(DecodeErrorKind::NotADict));
    }
    p.count_token()?;
    p.check_depth(1)?;
    p.pos += 1;
    let mut found = None;
    // A set, not a list: a dict with a million keys must not cost a trillion comparisons.
    let mut seen: HashSet<&[u8]> = HashSet::new();
    loop {
        let b = p.peek()?;
        if b == b'e' {
            p.pos += 1;
            break;
        }
        if !b.is_ascii_digit() {
            return Err(p.err(DecodeErrorKind::KeyNotString));
        }
        let key_at = p.pos;
        let k = p.string()?;
        if !seen.insert(k) {
            return Err(DecodeError {
                offset: key_at,
                kind: DecodeErrorKind::DuplicateKey(k.to_vec()),
            });
        }
        if p.peek()? == b'e' {
            return Err(p.err(DecodeErrorKind::MissingValue));
        }
        let start = p.pos;
        // Parsed for validation only; the slice is what the caller wants.
        p.value(1)?;
        if k == key {
            found = Some(&input[start..p.pos]);
        }
    }
    if p.pos != input.len() {
        return Err(p.err(DecodeErrorKind::TrailingData));
    }
    Ok(found)
}

/// The canonical encoding: dict keys in sorted order (guaranteed by `BTreeMap`), shortest numbers.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

/// Appends the canonical encoding of `v` to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(l) => {
            out.push(b'l');
            for item in l {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(d) => {
            out.push(b'd');
            for (k, item) in d {
                encode_bytes(k, out);
                encode_into(item, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// A container being filled; the decoder keeps these on its own stack instead of recursing.
enum Frame {
    List(Vec<Value>),
    /// `key` is the key read whose value has not arrived yet.
    Dict {
        map: BTreeMap<Vec<u8>, Value>,
        key: Option<Vec<u8>>,
    },
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    tokens: usize,
    limits: &'a Limits,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], limits: &'a Limits) -> Self {
        Parser {
            input,
            pos: 0,
            tokens: 0,
            limits,
        }
    }

    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.pos,
            kind,
        }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(DecodeErrorKind::UnexpectedEof))
    }

    fn count_token(&mut self) -> Result<(), DecodeError> {
        self.tokens += 1;
        if self.tokens > self.limits.max_tokens {
            return Err(self.err(DecodeErrorKind::TooManyTokens {
                max: self.limits.max_tokens,
            }));
        }
        Ok(())
    }

    fn check_depth(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.limits.max_depth {
            return Err(self.err(DecodeErrorKind::TooDeep {
                max: self.limits.max_depth,
            }));
        }
        Ok(())
    }

    /// One complete value; `base_depth` is how many containers already enclose it.
    fn value(&mut self, base_depth: usize) -> Result<Value, DecodeError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let b = self.peek()?;
            let value = match stack.last_mut() {
                Some(Frame::Dict {
                    map,
                    key: key @ None,
                }) if b != b'e' => {
                    if !b.is_ascii_digit() {
                        return Err(self.err(DecodeErrorKind::KeyNotString));
                    }
                    let at = self.pos;
                    let k = self.string()?;
                    if map.contains_key(k) {
                        return Err(DecodeError {
                            offset: at,
                            kind: DecodeErrorKind::DuplicateKey(k.to_vec()),
                        });
                    }
                    *key = Some(k.to_vec());
                    continue;
                }
                Some(frame) if b == b'e' => {
                    if let Frame::Dict { key: Some(_), .. } = frame {
                        return Err(self.err(DecodeErrorKind::MissingValue));
                    }
                    self.pos += 1;
                    match stack.pop() {
                        Some(Frame::List(l)) => Value::List(l),
                        Some(Frame::Dict { map, .. }) => Value::Dict(map),
                        None => continue, // not reachable: the arm matched a frame
                    }
                }
                _ => match b {
                    b'i' => Value::Int(self.int()?),
                    b'0'..=b'9' => Value::Bytes(self.string()?.to_vec()),
                    b'l' | b'd' => {
                        self.count_token()?;
                        self.check_depth(base_depth + stack.len() + 1)?;
                        self.pos += 1;
                        stack.push(if b == b'l' {
                            Frame::List(Vec::new())
                        } else {
                            Frame::Dict {
                                map: BTreeMap::new(),
                                key: None,
                            }
                        });
                        continue;
                    }
                    b'-' => return Err(self.err(DecodeErrorKind::NegativeLength)),
                    _ => return Err(self.err(DecodeErrorKind::UnexpectedByte(b))),
                },
            };
            match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::List(l)) => l.push(value),
                Some(Frame::Dict { map, key }) => {
                    if let Some(k) = key.take() {
                        map.insert(k, value);
                    }
                }
            }
        }
    }

    /// `i<digits>e` at `pos`.
    fn int(&mut self) -> Result<i64, DecodeError> {
        self.count_token()?;
        let start = self.pos;
        self.pos += 1;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_at = self.pos;
        // Accumulated towards the sign so that i64::MIN is representable.
        let mut n: i64 = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    if self.pos > digits_at && n == 0 {
                        return Err(DecodeError {
                            offset: digits_at,
                            kind: DecodeErrorKind::LeadingZero,
                        });
                    }
                    let d = i64::from(b - b'0');
                    n = n
                        .checked_mul(10)
                        .and_then(|n| {
                            if negative {
                                n.checked_sub(d)
                            } else {
                                n.checked_add(d)
                            }
                        })
                        .ok_or(DecodeError {
                            offset: start,
                            kind: DecodeErrorKind::IntegerOverflow,
                        })?;
                    self.pos += 1;
                }
                b'e' => break,
                _ => return Err(self.err(DecodeErrorKind::UnexpectedByte(b))),
            }
        }
        if self.pos == digits_at {
            return Err(self.err(DecodeErrorKind::EmptyInteger));
        }
        if negative && n == 0 {
            return Err(DecodeError {
                offset: start,
                kind: DecodeErrorKind::NegativeZero,
            });
        }
        self.pos += 1;
        Ok(n)
    }

    /// `<len>:<bytes>` at `pos`; borrows from the input so keys can be checked before copying.
    fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        self.count_token()?;
        let start = self.pos;
        let max = self.limits.max_string_len;
        let mut len: usize = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    if self.pos > start && len == 0 {
                        return Err(DecodeError {
                            offset: start,
                            kind: DecodeErrorKind::LeadingZero,
                        });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .filter(|&l| l <= max)
                        .ok_or(DecodeError {
                            offset: start,
                            kind: DecodeErrorKind::StringTooLong { max },
                        })?;
                    self.pos += 1;
                }
                b':' => break,
                _ => return Err(self.err(DecodeErrorKind::UnexpectedByte(b))),
            }
        }
        self.pos += 1;
        let data = self.input.get(self.pos..).unwrap_or(&[]);
        if data.len() < len {
            self.pos = self.input.len();
            return Err(self.err(DecodeErrorKind::UnexpectedEof));
        }
        let s = &data[..len];
        self.pos += len;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(input: &[u8]) -> DecodeErrorKind {
        decode(input).expect_err("should fail").kind
    }

    #[test]
    fn decodes_each_type() {
        assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-42e").unwrap(), Value::Int(-42));
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(decode(b"4:spam").unwrap(), Value::bytes("spam"));
        assert_eq!(decode(b"0:").unwrap(), Value::bytes(""));
        assert_eq!(
            decode(b"l4:spami1ee").unwrap(),
            Value::list([Value::bytes("spam"), Value::Int(1)])
        );
        let d = decode(b"d3:cow3:moo4:spamle1:xdee").unwrap();
        assert_eq!(d.get_str(b"cow"), Some("moo"));
        assert_eq!(d.get(b"spam").and_then(Value::as_list), Some(&[][..]));
        assert!(d.get(b"x").and_then(Value::as_dict).unwrap().is_empty());
        assert_eq!(d.get(b"none"), None);
    }

    #[test]
    fn integer_extremes() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap(),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            kind(b"i9223372036854775808e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind(b"i-9223372036854775809e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind(b"i99999999999999999999999e"),
            DecodeErrorKind::IntegerOverflow
        );
    }

    #[test]
    fn each_error_kind() {
        use DecodeErrorKind::*;
        assert_eq!(kind(b""), UnexpectedEof);
        assert_eq!(kind(b"i12"), UnexpectedEof);
        assert_eq!(kind(b"5:abc"), UnexpectedEof);
        assert_eq!(kind(b"l"), UnexpectedEof);
        assert_eq!(kind(b"d1:a"), UnexpectedEof);
        assert_eq!(kind(b"x"), UnexpectedByte(b'x'));
        assert_eq!(kind(b"i1x2e"), UnexpectedByte(b'x'));
        assert_eq!(kind(b"i--1e"), UnexpectedByte(b'-'));
        assert_eq!(kind(b"3x:abc"), UnexpectedByte(b'x'));
        assert_eq!(kind(b"e"), UnexpectedByte(b'e'));
        assert_eq!(kind(b"ie"), EmptyInteger);
        assert_eq!(kind(b"i-e"), EmptyInteger);
        assert_eq!(kind(b"i03e"), LeadingZero);
        assert_eq!(kind(b"i-03e"), LeadingZero);
        assert_eq!(kind(b"i00e"), LeadingZero);
        assert_eq!(kind(b"03:abc"), LeadingZero);
        assert_eq!(kind(b"i-0e"), NegativeZero);
        assert_eq!(kind(b"-3:abc"), NegativeLength);
        assert_eq!(kind(b"l-3:abce"), NegativeLength);
        assert_eq!(
            kind(b"99999999999999999999999:"),
            StringTooLong { max: 16 << 20 }
        );
        assert_eq!(kind(b"di1e1:ae"), KeyNotString);
        assert_eq!(kind(b"dle1:ae"), KeyNotString);
        assert_eq!(kind(b"d1:ai1e1:ai2ee"), DuplicateKey(b"a".to_vec()));
        assert_eq!(kind(b"d1:ae"), MissingValue);
        assert_eq!(kind(b"i1ei2e"), TrailingData);
        assert_eq!(kind(b"4:spamx"), TrailingData);
    }

    #[test]
    fn error_offsets_and_display() {
        let e = decode(b"l4:spami03ee").unwrap_err();
        assert_eq!(e.offset, 8);
        assert_eq!(
            e.to_string(),
            "bencode: number with a leading zero at byte 8"
        );
        let e = decode(b"d1:ai1e1:ai2ee").unwrap_err();
        assert_eq!(e.offset, 7);
        assert_eq!(e.to_string(), "bencode: duplicate dict key \"a\" at byte 7");
        let e = decode(b"i1ei2e").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bencode: trailing data after the value at byte 3"
        );
        assert_eq!(
            decode(b"\x01").unwrap_err().to_string(),
            "bencode: unexpected byte 0x01 at byte 0"
        );
    }

    #[test]
    fn unsorted_keys_are_accepted_and_re_encoded_sorted() {
        let v = decode(b"d1:bi2e1:ai1ee").unwrap();
        assert_eq!(v.get_int(b"a"), Some(1));
        assert_eq!(encode(&v), b"d1:ai1e1:bi2ee");
    }

    #[test]
    fn depth_limit() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        assert!(decode_with(b"llleee", &limits).is_ok());
        let e = decode_with(b"lllleeee", &limits).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooDeep { max: 3 });
        assert_eq!(e.offset, 3);
        // dict > dict > list is depth 3; siblings do not add depth.
        assert!(decode_with(b"d1:ad1:aleee", &limits).is_ok());
        assert!(decode_with(b"d1:ad1:ale1:blee1:clee", &limits).is_ok());
        assert!(decode_with(b"d1:ad1:ad1:aleeee", &limits).is_err());
        // Deep nesting of the default limit is refused without exhausting the stack.
        let deep = [vec![b'l'; 100_000], vec![b'e'; 100_000]].concat();
        assert_eq!(
            decode(&deep).unwrap_err().kind,
            DecodeErrorKind::TooDeep { max: 64 }
        );
    }

    #[test]
    fn token_limit_counts_keys_and_containers() {
        let limits = Limits {
            max_tokens: 4,
            ..Limits::default()
        };
        // dict + key + int + key  = 4, the 5th token (an int) is refused.
        assert!(decode_with(b"d1:ai1ee", &limits).is_ok());
        assert!(decode_with(b"li1ei2ei3ee", &limits).is_ok());
        let e = decode_with(b"li1ei2ei3ei4ee", &limits).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooManyTokens { max: 4 });
        assert_eq!(e.to_string(), "bencode: more than 4 values at byte 10");
    }

    #[test]
    fn string_limit() {
        let limits = Limits {
            max_string_len: 4,
            ..Limits::default()
        };
        assert!(decode_with(b"4:abcd", &limits).is_ok());
        let e = decode_with(b"5:abcde", &limits).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::StringTooLong { max: 4 });
        assert_eq!(e.offset, 0);
        // The limit is checked before the data is looked for.
        assert_eq!(
            decode_with(b"100:", &limits).unwrap_err().kind,
            DecodeErrorKind::StringTooLong { max: 4 }
        );
    }

    #[test]
    fn round_trip() {
        let v = Value::dict()
            .int("n", -7)
            .bytes("bin", vec![0u8, 255, 10])
            .insert(
                "list",
                Value::list([Value::Int(0), Value::bytes(""), Value::dict().build()]),
            )
            .insert(
                "nested",
                Value::dict().insert("deeper", Value::list([Value::Int(i64::MIN)])),
            )
            .insert_opt("absent", None::<i64>)
            .insert_opt("present", Some("yes"))
            .build();
        let bytes = encode(&v);
        assert_eq!(decode(&bytes).unwrap(), v);
        assert_eq!(encode(&decode(&bytes).unwrap()), bytes);
        assert_eq!(v.get(b"absent"), None);
        assert_eq!(v.get_str(b"present"), Some("yes"));
        assert_eq!(
            encode(&Value::dict().int("b", 1).bytes("a", "x").build()),
            b"d1:a1:x1:bi1ee"
        );
    }

    #[test]
    fn every_split_of_a_document_is_either_incomplete_or_trailing() {
        let doc = b"d4:infod6:lengthi100e4:name3:abc12:piece lengthi16384ee1:xli-1e0:ee";
        assert!(decode(doc).is_ok());
        for cut in 0..doc.len() {
            let e = decode(&doc[..cut]).unwrap_err();
            assert_eq!(e.kind, DecodeErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    #[test]
    fn prefix_decoding_reports_bytes_used() {
        let msg = b"d8:msg_typei1e5:piecei0eeRAWDATA";
        let (v, used) = decode_prefix(msg, &Limits::default()).unwrap();
        assert_eq!(v.get_int(b"msg_type"), Some(1));
        assert_eq!(&msg[used..], b"RAWDATA");
    }

    #[test]
    fn raw_dict_value_returns_original_bytes() {
        // Inner dict has unsorted keys: re-encoding would change it, the raw slice must not.
        let doc = b"d8:announce3:url4:infod4:name1:a1:ai1ee1:zi0ee";
        let raw = raw_dict_value(doc, b"info", &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(raw, b"d4:name1:a1:ai1ee");
        assert_ne!(encode(&decode(raw).unwrap()), raw);
        assert_eq!(
            raw_dict_value(doc, b"z", &Limits::default()).unwrap(),
            Some(&b"i0e"[..])
        );
        assert_eq!(
            raw_dict_value(doc, b"missing", &Limits::default()).unwrap(),
            None
        );
        let lim = Limits::default();
        assert_eq!(
            raw_dict_value(b"li1ee", b"a", &lim).unwrap_err().kind,
            DecodeErrorKind::NotADict
        );
        assert_eq!(
            raw_dict_value(b"d1:ai1e1:ai2ee", b"a", &lim)
                .unwrap_err()
                .kind,
            DecodeErrorKind::DuplicateKey(b"a".to_vec())
        );
        assert_eq!(
            raw_dict_value(b"d1:ai1eex", b"a", &lim).unwrap_err().kind,
            DecodeErrorKind::TrailingData
        );
        assert_eq!(
            raw_dict_value(b"d1:ae", b"a", &lim).unwrap_err().kind,
            DecodeErrorKind::MissingValue
        );
        assert_eq!(
            raw_dict_value(b"di1ei1ee", b"a", &lim).unwrap_err().kind,
            DecodeErrorKind::KeyNotString
        );
        assert_eq!(
            raw_dict_value(b"d1:ai1e", b"a", &lim).unwrap_err().kind,
            DecodeErrorKind::UnexpectedEof
        );
        let shallow = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        assert_eq!(
            raw_dict_value(b"d1:alee", b"a", &shallow).unwrap_err().kind,
            DecodeErrorKind::TooDeep { max: 1 }
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: mutations of a valid document.
        let base = b"d4:infod6:lengthi100e4:name3:abc12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let alphabet = b"ide0123456789:-lx";
        let mut state: u32 = 1;
        for _ in 0..20_000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut doc = base.to_vec();
            let at = (state >> 8) as usize % doc.len();
            doc[at] = alphabet[(state >> 20) as usize % alphabet.len()];
            if let Ok(v) = decode(&doc) {
                assert_eq!(decode(&encode(&v)).unwrap(), v);
            }
            let _ = raw_dict_value(&doc, b"info", &Limits::default());
        }
    }

    #[test]
    fn debug_is_readable() {
        let v = Value::dict()
            .bytes("a", "x")
            .bytes("h", vec![0u8, 1])
            .build();
        assert_eq!(format!("{v:?}"), "{\"a\": \"x\", \"h\": 0x0001}");
    }
}
