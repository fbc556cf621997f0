//! WebSocket framing (RFC 6455) for the tracker's server side: reading the masked frames clients
//! send, with fragmented messages reassembled, and writing the unmasked frames a server sends. The
//! opening handshake's `Sec-WebSocket-Accept` is here too. No extensions are negotiated, so any
//! RSV bit is an error.
//!
//! Sans-IO: the driver hands in bytes it read and takes back what to write; nothing here touches a
//! socket. Never panics on client input, and never buffers more than one message of at most the
//! configured size: a length over the limit is refused from the frame header alone, before its
//! payload arrives.

use std::fmt;

use sha1::{Digest, Sha1};

/// Close codes (RFC 6455 §7.4.1) the tracker sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const SIZE: u16 = 1009;
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Largest payload of a control frame (ping, pong, close).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest frame header a client can send: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;

/// A complete message from the client. Borrowed from the buffer given to [`Decoder::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong,
    /// The client's close frame: its status code if it sent one. The connection ends after it.
    Close(Option<u16>),
}

/// Why the connection must end; [`WsError::close_code`] is the code to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// A message (whole, or its fragments so far) longer than the limit.
    TooBig { len: u64, max: usize },
    /// A frame breaking the protocol: unmasked, RSV bits, unknown opcode, bad fragmentation or an
    /// oversized or fragmented control frame.
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    NotUtf8,
}

impl WsError {
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooBig { .. } => close_code::SIZE,
            WsError::Protocol(_) => close_code::PROTOCOL,
            WsError::NotUtf8 => close_code::INVALID_DATA,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::TooBig { max, .. } => write!(f, "message over {max} bytes"),
            WsError::Protocol(what) => write!(f, "malformed WebSocket frame: {what}"),
            WsError::NotUtf8 => f.write_str("text message is not UTF-8"),
        }
    }
}

impl std::error::Error for WsError {}

/// Reads client frames. Holds only the fragments of an unfinished message (usually nothing).
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// Opcode of the message being reassembled from fragments, if any.
    fragmented: Option<u8>,
    fragments: Vec<u8>,
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            fragmented: None,
            fragments: Vec::new(),
        }
    }

    /// Reads as many complete frames from `buf` as it holds, unmasking them in place, and hands
    /// each complete message to `on`; stops after a close frame. Returns how many bytes were
    /// used: the rest is the start of a frame, to be passed again with more bytes after it. An
    /// error ends the connection (tell the client [`WsError::close_code`]).
    pub fn feed(
        &mut self,
        buf: &mut [u8],
        on: &mut dyn FnMut(Message<'_>),
    ) -> Result<usize, WsError> {
        let mut at = 0;
        while let Some((header, frame_len)) = self.header(&buf[at..])? {
            let start = at + header.payload_at;
            let payload = &mut buf[start..at + frame_len];
            apply_mask(payload, header.mask);
            at += frame_len;
            let payload = &buf[start..at];
            let closed = self.frame(header.fin, header.opcode, payload, on)?;
            if closed {
                break;
            }
        }
        Ok(at)
    }

    /// Parses one frame header; `None` until the whole frame is in `buf`.
    fn header(&self, buf: &[u8]) -> Result<Option<(Header, usize)>, WsError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frame not masked"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let (len, mut at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(b);
                    (u64::from_be_bytes(n), 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if opcode >= 0x8 {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::Protocol("control frame over 125 bytes"));
            }
        } else {
            // Refused from the header, before its payload is waited for or stored.
            let so_far = if opcode == OP_CONTINUATION {
                self.fragments.len() as u64
            } else {
                0
            };
            if so_far.saturating_add(len) > self.max_message as u64 {
                return Err(WsError::TooBig {
                    len: so_far.saturating_add(len),
                    max: self.max_message,
                });
            }
        }
        let Some(mask) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        at += 4;
        // `len` is at most max_message or 125 here, so it fits a usize.
        let frame_len = at + len as usize;
        if buf.len() < frame_len {
            return Ok(None);
        }
        Ok(Some((
            Header {
                fin,
                opcode,
                mask,
                payload_at: at,
            },
            frame_len,
        )))
    }

    /// Acts on one unmasked frame; `Ok(true)` after a close frame.
    fn frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
        on: &mut dyn FnMut(Message<'_>),
    ) -> Result<bool, WsError> {
        match opcode {
            OP_TEXT | OP_BINARY => {
                if self.fragmented.is_some() {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                if fin {
                    deliver(opcode, payload, on)?;
                } else {
                    self.fragmented = Some(opcode);
                    self.fragments.extend_from_slice(payload);
                }
            }
            OP_CONTINUATION => {
                let Some(first) = self.fragmented else {
                    return Err(WsError::Protocol("continuation without a message"));
                };
                self.fragments.extend_from_slice(payload);
                if fin {
                    let whole = std::mem::take(&mut self.fragments);
                    self.fragmented = None;
                    deliver(first, &whole, on)?;
                }
            }
            OP_PING => on(Message::Ping(payload)),
            OP_PONG => on(Message::Pong),
            OP_CLOSE => {
                let code = match payload {
                    [] => None,
                    [a, b, rest @ ..] => {
                        if std::str::from_utf8(rest).is_err() {
                            return Err(WsError::NotUtf8);
                        }
                        Some(u16::from_be_bytes([*a, *b]))
                    }
                    [_] => return Err(WsError::Protocol("close frame of 1 byte")),
                };
                on(Message::Close(code));
                return Ok(true);
            }
            _ => return Err(WsError::Protocol("unknown opcode")),
        }
        Ok(false)
    }

    /// Bytes held for an unfinished fragmented message.
    pub fn buffered(&self) -> usize {
        self.fragments.capacity()
    }
}

fn deliver(opcode: u8, payload: &[u8], on: &mut dyn FnMut(Message<'_>)) -> Result<(), WsError> {
    if opcode == OP_TEXT {
        let text = std::str::from_utf8(payload).map_err(|_| WsError::NotUtf8)?;
        on(Message::Text(text));
    } else {
        on(Message::Binary(payload));
    }
    Ok(())
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    payload_at: usize,
}

/// XORs `payload` with the 4-byte `mask` repeated (masking and unmasking are the same), eight
/// bytes at a time where it can.
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Whole chunks are a multiple of 4 bytes, so the mask phase restarts at 0 for the tail.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Appends a frame whose first byte is `first` (FIN bit and opcode) carrying `payload`: masked
/// with `mask` as a client must send it (RFC 6455 §5.3), or unmasked as a server does. The
/// tracker writes only unmasked ones; tests, fuzz seeds and load generators write the others.
pub fn push_raw_frame(out: &mut Vec<u8>, first: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(first);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m);
    }
}

/// Appends a server → client frame (unmasked, final).
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    push_raw_frame(out, 0x80 | opcode, payload, None);
}

/// Appends a text frame.
pub fn push_text(out: &mut Vec<u8>, text: &str) {
    push_frame(out, OP_TEXT, text.as_bytes());
}

/// Appends the pong answering a ping with `payload` (at most 125 bytes, as the decoder checked).
pub fn push_pong(out: &mut Vec<u8>, payload: &[u8]) {
    push_frame(
        out,
        OP_PONG,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    );
}

/// Appends a close frame with `code` and a reason, cut (at a char boundary) to fit the 125-byte
/// control frame limit.
pub fn push_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    push_frame(out, OP_CLOSE, &payload);
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha.finalize())
}

/// A client's `Sec-WebSocket-Key` for 16 random bytes (RFC 6455 §4.1).
pub fn client_key(nonce: &[u8; 16]) -> String {
    base64(nonce)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as browsers send it: final, masked.
    fn client_frame(opcode: u8, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        let first = if fin { 0x80 } else { 0 } | opcode;
        push_raw_frame(&mut out, first, payload, Some(mask));
        out
    }

    fn feed_all(d: &mut Decoder, bytes: &[u8]) -> (Result<usize, WsError>, Vec<String>) {
        let mut buf = bytes.to_vec();
        let mut seen = Vec::new();
        let r = d.feed(&mut buf, &mut |m| seen.push(format!("{m:?}")));
        (r, seen)
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn messages_of_every_length_form_split_anywhere() {
        for len in [0usize, 1, 7, 125, 126, 300, 65535, 65536, 70000] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut wire = client_frame(OP_TEXT, true, text.as_bytes(), [1, 2, 3, 0xF4]);
            wire.extend(client_frame(OP_PING, true, b"hi", [9, 9, 9, 9]));
            for split in [0, 1, 2, 5, wire.len() / 2, wire.len() - 1] {
                let mut d = Decoder::new(100_000);
                let mut got = Vec::new();
                let mut pending = wire[..split].to_vec();
                let used = d
                    .feed(&mut pending, &mut |m| got.push(format!("{m:?}")))
                    .unwrap();
                pending.drain(..used);
                pending.extend_from_slice(&wire[split..]);
                let used = d
                    .feed(&mut pending, &mut |m| got.push(format!("{m:?}")))
                    .unwrap();
                assert_eq!(used, pending.len(), "len {len} split {split}");
                assert_eq!(
                    got,
                    [
                        format!("{:?}", Message::Text(&text)),
                        "Ping([104, 105])".into()
                    ]
                );
            }
        }
    }

    #[test]
    fn fragments_are_reassembled_around_control_frames() {
        let mut wire = client_frame(OP_TEXT, false, b"hel", [7, 7, 7, 7]);
        wire.extend(client_frame(OP_PING, true, b"", [1, 1, 1, 1]));
        wire.extend(client_frame(OP_CONTINUATION, false, b"lo ", [2, 2, 2, 2]));
        wire.extend(client_frame(
            OP_CONTINUATION,
            true,
            "wörld".as_bytes(),
            [3; 4],
        ));
        let mut d = Decoder::new(1000);
        let (r, seen) = feed_all(&mut d, &wire);
        assert_eq!(r, Ok(wire.len()));
        assert_eq!(seen, ["Ping([])", "Text(\"hello wörld\")"]);
        assert_eq!(d.buffered(), 0, "fragments freed once delivered");
    }

    #[test]
    fn limits_are_checked_from_the_header() {
        let mut d = Decoder::new(1000);
        // Only the header of a 1 GiB frame: refused without waiting for its payload.
        let mut wire = vec![0x81, 0x80 | 127];
        wire.extend_from_slice(&(1u64 << 30).to_be_bytes());
        let (r, _) = feed_all(&mut d, &wire);
        assert_eq!(
            r,
            Err(WsError::TooBig {
                len: 1 << 30,
                max: 1000
            })
        );
        assert_eq!(r.unwrap_err().close_code(), 1009);
        // Fragments count together.
        let mut d = Decoder::new(1000);
        let mut wire = client_frame(OP_BINARY, false, &[0; 600], [0; 4]);
        wire.extend(client_frame(OP_CONTINUATION, true, &[0; 600], [0; 4]));
        assert!(matches!(
            feed_all(&mut d, &wire).0,
            Err(WsError::TooBig { len: 1200, .. })
        ));
        // u64::MAX length: no overflow.
        let mut d = Decoder::new(1000);
        let mut wire = client_frame(OP_TEXT, false, b"x", [0; 4]);
        wire.extend([0x80, 0x80 | 127]);
        wire.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            feed_all(&mut d, &wire).0,
            Err(WsError::TooBig { .. })
        ));
    }

    #[test]
    fn protocol_errors_are_refused() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (vec![0x81, 0x02, b'h', b'i'], 1002), // unmasked
            (vec![0xC1, 0x80, 0, 0, 0, 0], 1002), // RSV1
            (vec![0x83, 0x80, 0, 0, 0, 0], 1002), // opcode 3
            (client_frame(OP_CONTINUATION, true, b"x", [0; 4]), 1002), // nothing to continue
            (client_frame(OP_PING, false, b"", [0; 4]), 1002), // fragmented ping
            (client_frame(OP_PING, true, &[0; 126], [0; 4]), 1002), // long ping
            (client_frame(OP_CLOSE, true, &[3], [0; 4]), 1002), // 1-byte close
            (client_frame(OP_TEXT, true, &[0xFF, 0xFE], [5; 4]), 1007), // not UTF-8
            (client_frame(OP_CLOSE, true, &[3, 232, 0xFF], [0; 4]), 1007), // reason not UTF-8
            (
                {
                    let mut w = client_frame(OP_TEXT, false, b"a", [0; 4]);
                    w.extend(client_frame(OP_TEXT, true, b"b", [0; 4]));
                    w
                },
                1002,
            ),
        ];
        for (wire, code) in cases {
            let (r, _) = feed_all(&mut Decoder::new(1000), &wire);
            assert_eq!(r.map_err(|e| e.close_code()), Err(code), "{wire:?}");
        }
    }

    #[test]
    fn close_stops_reading_and_binary_passes_through() {
        let mut wire = client_frame(OP_BINARY, true, &[0, 255], [4; 4]);
        wire.extend(client_frame(OP_CLOSE, true, &1000u16.to_be_bytes(), [1; 4]));
        let after = wire.len();
        wire.extend(client_frame(OP_TEXT, true, b"ignored", [1; 4]));
        let (r, seen) = feed_all(&mut Decoder::new(1000), &wire);
        assert_eq!(r, Ok(after));
        assert_eq!(seen, ["Binary([0, 255])", "Close(Some(1000))"]);
    }

    #[test]
    fn server_frames_have_the_right_headers() {
        let mut out = Vec::new();
        push_text(&mut out, "hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        push_text(&mut out, &"x".repeat(300));
        assert_eq!(out[..4], [0x81, 126, 1, 44]);
        assert_eq!(out.len(), 304);
        out.clear();
        push_text(&mut out, &"x".repeat(70_000));
        assert_eq!(out[..2], [0x81, 127]);
        assert_eq!(out[2..10], 70_000u64.to_be_bytes());
        out.clear();
        push_close(&mut out, 1009, &"é".repeat(100));
        assert_eq!(out[0], 0x88);
        assert!(out[1] as usize <= 125);
        assert_eq!(out[2..4], 1009u16.to_be_bytes());
        std::str::from_utf8(&out[4..]).expect("reason cut at a char boundary");
        out.clear();
        push_pong(&mut out, b"abc");
        assert_eq!(out, [0x8A, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn unmask_matches_the_bytewise_rule_for_every_length() {
        for len in 0..40 {
            let original: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let mask = [0xA1, 0x02, 0x7F, 0xEE];
            let mut fast = original.clone();
            apply_mask(&mut fast, mask);
            let slow: Vec<u8> = original
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }
}
