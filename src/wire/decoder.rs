//! Incremental decoder for one peer's incoming byte stream: the handshake, then length-prefixed
//! messages, from input split at arbitrary points (WebTorrent splits and packs messages freely
//! over data-channel messages).
//!
//! Never buffers a message whose length prefix exceeds the limit, never moves buffered bytes more
//! than a constant number of times on average (no O(n²) shifting on big transfers), and after the
//! first error returns that same error forever: once out of step, nothing after can be trusted.

use super::handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL_STRING};
use super::message::Message;
use super::WireError;

/// Largest message body (after the 4-byte prefix) accepted by default: 256 KiB plus 16 bytes of
/// headroom for a message's own header.
///
/// What has to fit: a 16 KiB block (9-byte header) — and up to the 128 KiB some clients still
/// send; a `ut_metadata` data message (16 KiB piece plus a short dict); an extended handshake; and
/// bitfields, one bit per piece: 256 KiB covers two million pieces, far beyond the ~400,000 that
/// WebTorrent itself is prepared to track.
pub const DEFAULT_MAX_MESSAGE_LEN: u32 = 256 * 1024 + 16;

/// What the decoder yields: the handshake exactly once, first; then messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Handshake(Handshake),
    Message(Message),
}

/// Feed bytes with [`push`](Decoder::push), then call [`next_frame`](Decoder::next_frame) until it
/// returns `Ok(None)`. Memory held is what has been pushed and not yet decoded, so a driver that
/// drains after every push holds at most one partial message (≤ the limit) plus one chunk.
///
/// Unknown message ids are skipped silently (BEP 3: "ignore unknown messages"), after the same
/// length check as any other message; [`skipped_unknown`](Decoder::skipped_unknown) counts them
/// for diagnostics. This keeps [`Message`] to what we can also encode.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the undecoded bytes in `buf`; the prefix before it is dead and dropped lazily.
    pos: usize,
    max_message_len: u32,
    handshake_done: bool,
    error: Option<WireError>,
    skipped_unknown: u64,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl Decoder {
    /// A decoder expecting the handshake first. `max_message_len` bounds a message's length
    /// prefix (the body after the prefix: id plus payload).
    pub fn new(max_message_len: u32) -> Decoder {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            max_message_len,
            handshake_done: false,
            error: None,
            skipped_unknown: 0,
        }
    }

    /// A decoder for a stream whose handshake was already read by other means.
    pub fn after_handshake(max_message_len: u32) -> Decoder {
        Decoder {
            handshake_done: true,
            ..Decoder::new(max_message_len)
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let live = self.buf.len() - self.pos;
        if live == 0 {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= live {
            // Moving `live` bytes is paid for by the at-least-as-many bytes already consumed, so
            // each byte is moved at most once on average however the input is chunked.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` if more input is needed, or the error that ended the
    /// stream (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        loop {
            let avail = &self.buf[self.pos..];
            if !self.handshake_done {
                // Checking the prefix as it arrives refuses a non-BitTorrent peer at its first
                // wrong byte instead of after 68.
                let n = avail.len().min(PROTOCOL_STRING.len());
                if avail[..n] != PROTOCOL_STRING[..n] {
                    return Err(self.fail(WireError::BadProtocolString));
                }
                if avail.len() < HANDSHAKE_LEN {
                    return Ok(None);
                }
                let mut raw = [0u8; HANDSHAKE_LEN];
                raw.copy_from_slice(&avail[..HANDSHAKE_LEN]);
                let hs = match Handshake::decode(&raw) {
                    Ok(hs) => hs,
                    Err(e) => return Err(self.fail(e)),
                };
                self.pos += HANDSHAKE_LEN;
                self.handshake_done = true;
                return Ok(Some(Frame::Handshake(hs)));
            }
            let Some(prefix) = avail.first_chunk::<4>() else {
                return Ok(None);
            };
            let len = u32::from_be_bytes(*prefix);
            if len > self.max_message_len {
                let max = self.max_message_len;
                return Err(self.fail(WireError::MessageTooLong { len, max }));
            }
            // Saturating: with a limit near u32::MAX on wasm32 the sum would not fit usize; such a
            // message can then never complete, which is what that limit asked for.
            let end = (len as usize).saturating_add(4);
            if avail.len() < end {
                return Ok(None);
            }
            match Message::decode(&avail[4..end]) {
                Ok(m) => {
                    self.pos += end;
                    return Ok(Some(Frame::Message(m)));
                }
                Err(WireError::UnknownId(_)) => {
                    self.pos += end;
                    self.skipped_unknown += 1;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Bytes pushed but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// How many messages with unknown ids were skipped.
    pub fn skipped_unknown(&self) -> u64 {
        self.skipped_unknown
    }

    pub fn max_message_len(&self) -> u32 {
        self.max_message_len
    }

    fn fail(&mut self, e: WireError) -> WireError {
        self.error = Some(e.clone());
        // Nothing more will be decoded: free the buffer rather than hold a dead peer's bytes.
        self.buf = Vec::new();
        self.pos = 0;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::every_message;
    use super::super::BlockRef;
    use super::*;
    use crate::id::{InfoHash, PeerId};
    use crate::rng::Rng;

    fn handshake() -> Handshake {
        Handshake::new(InfoHash([7; 20]), PeerId([8; 20]))
    }

    fn stream_of(msgs: &[Message]) -> Vec<u8> {
        let mut out = handshake().encode().to_vec();
        for m in msgs {
            m.encode(&mut out);
        }
        out
    }

    fn expected_frames(msgs: &[Message]) -> Vec<Frame> {
        let mut v = vec![Frame::Handshake(handshake())];
        v.extend(msgs.iter().cloned().map(Frame::Message));
        v
    }

    fn decode_chunks<'a>(
        d: &mut Decoder,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Frame>, WireError> {
        let mut frames = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame()? {
                frames.push(f);
            }
        }
        Ok(frames)
    }

    #[test]
    fn every_message_at_every_split_point() {
        let msgs = every_message();
        let bytes = stream_of(&msgs);
        let want = expected_frames(&msgs);
        for at in 0..=bytes.len() {
            let mut d = Decoder::default();
            let (a, b) = bytes.split_at(at);
            assert_eq!(
                decode_chunks(&mut d, [a, b]).unwrap(),
                want,
                "split at {at}"
            );
            assert_eq!(d.buffered(), 0);
        }
        let mut d = Decoder::default();
        assert_eq!(decode_chunks(&mut d, bytes.chunks(1)).unwrap(), want);
    }

    #[test]
    fn unknown_ids_are_skipped_and_counted() {
        let mut bytes = stream_of(&[Message::Have(1)]);
        bytes.extend_from_slice(&[0, 0, 0, 4, 0x55, 1, 2, 3]);
        bytes.extend_from_slice(&[0, 0, 0, 1, 0x0A]);
        Message::Have(2).encode(&mut bytes);
        let mut d = Decoder::default();
        let frames = decode_chunks(&mut d, [bytes.as_slice()]).unwrap();
        assert_eq!(
            frames,
            expected_frames(&[Message::Have(1), Message::Have(2)])
        );
        assert_eq!(d.skipped_unknown(), 2);
    }

    #[test]
    fn too_long_is_refused_from_the_prefix_alone() {
        let mut d = Decoder::new(100);
        d.push(&handshake().encode());
        assert!(matches!(d.next_frame(), Ok(Some(Frame::Handshake(_)))));
        d.push(&[0, 0, 0, 101]);
        let e = WireError::MessageTooLong { len: 101, max: 100 };
        assert_eq!(d.next_frame(), Err(e.clone()));
        // Sticky, and later input is neither decoded nor kept.
        d.push(&[0; 1000]);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.next_frame(), Err(e));

        let mut d = Decoder::after_handshake(DEFAULT_MAX_MESSAGE_LEN);
        d.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(WireError::MessageTooLong { .. })
        ));

        // A caller-chosen limit of u32::MAX must not overflow the end offset on 32-bit targets.
        let mut d = Decoder::after_handshake(u32::MAX);
        d.push(&u32::MAX.to_be_bytes());
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn message_at_exactly_the_limit_is_accepted() {
        let mut d = Decoder::after_handshake(1 + 16);
        let m = Message::Bitfield(vec![0xAB; 16]);
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        d.push(&bytes);
        assert_eq!(d.next_frame(), Ok(Some(Frame::Message(m))));
    }

    #[test]
    fn bad_handshake_is_refused_at_the_first_wrong_byte() {
        let mut d = Decoder::default();
        d.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(d.next_frame(), Err(WireError::BadProtocolString));

        let mut d = Decoder::default();
        d.push(&[19, b'B', b'i', b't']);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b"Coin");
        assert_eq!(d.next_frame(), Err(WireError::BadProtocolString));

        let mut d = Decoder::default();
        d.push(&[]);
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn wrong_fixed_length_in_stream_is_an_error() {
        let mut bytes = handshake().encode().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 2, 1, 0]); // unchoke with a payload byte
        let mut d = Decoder::default();
        let r = decode_chunks(&mut d, [bytes.as_slice()]);
        assert_eq!(r, Err(WireError::BadLength { id: 1, len: 2 }));
    }

    #[test]
    fn handshake_then_messages_in_the_same_push() {
        let msgs = [
            Message::Unchoke,
            Message::Request(BlockRef {
                index: 1,
                begin: 0,
                length: 16384,
            }),
        ];
        let bytes = stream_of(&msgs);
        let mut d = Decoder::default();
        d.push(&bytes);
        assert!(matches!(d.next_frame(), Ok(Some(Frame::Handshake(_)))));
        assert!(d.handshake_done());
        assert_eq!(d.next_frame(), Ok(Some(Frame::Message(msgs[0].clone()))));
        assert_eq!(d.next_frame(), Ok(Some(Frame::Message(msgs[1].clone()))));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn big_transfer_in_large_chunks_does_not_shift_quadratically() {
        // 4 MiB of 16 KiB blocks in 200 KiB chunks (not a multiple of the message size).
        let block: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8).collect();
        let mut bytes = handshake().encode().to_vec();
        let n = 256u32;
        for i in 0..n {
            Message::Piece {
                index: i / 16,
                begin: (i % 16) * 16384,
                data: block.clone(),
            }
            .encode(&mut bytes);
        }
        let mut d = Decoder::default();
        let mut pieces = 0u32;
        let mut max_buffered = 0;
        for chunk in bytes.chunks(200 * 1024) {
            d.push(chunk);
            max_buffered = max_buffered.max(d.buf.len());
            while let Some(f) = d.next_frame().unwrap() {
                if let Frame::Message(Message::Piece { index, begin, data }) = f {
                    assert_eq!((index, begin), (pieces / 16, (pieces % 16) * 16384));
                    assert_eq!(data, block);
                    pieces += 1;
                }
            }
        }
        assert_eq!(pieces, n);
        // Dead bytes are dropped: the buffer never holds much more than two chunks.
        assert!(
            max_buffered <= 2 * 200 * 1024 + 16384 + 13,
            "{max_buffered}"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(0x05EE_D7AB);
        let valid = stream_of(&every_message());
        for round in 0..2000 {
            let mut d = if round % 2 == 0 {
                Decoder::new(1 + rng.below(4096) as u32)
            } else {
                Decoder::after_handshake(DEFAULT_MAX_MESSAGE_LEN)
            };
            // Mix pure noise with mutated valid streams so decoding gets past the first bytes.
            let mut input = if round % 3 == 0 {
                let mut v = vec![0u8; rng.below(512) as usize];
                rng.fill(&mut v);
                v
            } else {
                let mut v = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(v.len() as u64) as usize;
                    v[i] = rng.next_u64() as u8;
                }
                v.truncate(rng.below(v.len() as u64 + 1) as usize);
                v
            };
            if round % 5 == 0 {
                // Small length prefixes make many short messages with random ids.
                for i in (0..input.len()).step_by(7) {
                    input[i] = 0;
                }
            }
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let take = 1 + rng.below(rest.len() as u64) as usize;
                d.push(&rest[..take]);
                rest = &rest[take..];
                while let Ok(Some(_)) = d.next_frame() {}
            }
            assert!(d.buffered() <= input.len());
        }
    }
}
