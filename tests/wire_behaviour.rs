#![cfg(not(target_arch = "wasm32"))]
//! Wire details that real peers (WebTorrent's bittorrent-protocol above all) exercise, checked
//! against the sans-IO `Session` with a scripted fake peer: the test writes the peer's bytes by
//! hand with `seedtab::wire` and reads back everything the session sends.
//!
//! - BEP 6 HaveAll / HaveNone, and which of HaveAll / HaveNone / Bitfield we send;
//! - keep-alives received (they keep a peer alive) and sent (after 55 s of silence);
//! - 16 KiB blocks: our requests never exceed 16 KiB, we serve 16 KiB (and up to 128 KiB)
//!   requests, and we drop a peer that asks for more than 128 KiB, as WebTorrent does;
//! - a peer that sends its bitfield late (after Have messages, after unchoking us) or never
//!   (only Have messages, with and without the metadata known);
//! - several messages in one data-channel message, and one message across several.

mod common;

use common::{leecher, magnet_leecher, seeder, torrent};
use seedtab::bitfield::Bitfield;
use seedtab::engine::{Config, Event, PeerKey, Session};
use seedtab::id::PeerId;
use seedtab::metainfo::Metainfo;
use seedtab::wire::{
    BlockRef, Decoder, ExtendedHandshake, Frame, Handshake, Message, MetadataMsg, BLOCK_SIZE,
    DEFAULT_MAX_MESSAGE_LEN, METADATA_PIECE_SIZE, UT_METADATA_LOCAL_ID,
};

const KEY: PeerKey = 7;
const THEIR_ID: PeerId = PeerId(*b"-WW0300-fakepeer0001");
/// The id our fake peer wants ut_metadata messages under (WebTorrent uses 1..=n as well).
const THEIR_UT_METADATA: u8 = 3;

/// A session and one scripted peer connected to it as `KEY`, on a virtual clock.
struct Fake {
    s: Session,
    now: u64,
    decoder: Decoder,
    /// Our handshake, once read.
    our_handshake: Option<Handshake>,
    /// Messages the session sent and the test has not taken yet, in order.
    sent: Vec<Message>,
    /// Every message the session ever sent.
    history: Vec<Message>,
    events: Vec<Event>,
}

impl Fake {
    fn connect(mut s: Session) -> Fake {
        let now = 1_000;
        s.peer_connected(KEY, now);
        let mut f = Fake {
            s,
            now,
            decoder: Decoder::new(DEFAULT_MAX_MESSAGE_LEN),
            our_handshake: None,
            sent: Vec::new(),
            history: Vec::new(),
            events: Vec::new(),
        };
        f.pump();
        f
    }

    /// The fake peer's handshake, with or without the fast extension (extension protocol on).
    fn handshake(&self, fast: bool) -> Vec<u8> {
        let mut h = Handshake::new(self.s.info_hash(), THEIR_ID);
        if !fast {
            h.reserved[7] &= !0x04;
        }
        h.encode().to_vec()
    }

    /// Hands the session one data-channel message.
    fn deliver(&mut self, bytes: &[u8]) {
        self.s.peer_data(KEY, bytes, self.now);
        self.pump();
    }

    fn deliver_msgs(&mut self, msgs: &[Message]) {
        self.deliver(&encode(msgs));
    }

    /// Reads everything the session has for the peer and every event.
    fn pump(&mut self) {
        self.s.fill_all_requests(self.now);
        while let Some(bytes) = self.s.transmit(KEY, 64 * 1024, self.now) {
            self.decoder.push(&bytes);
            while let Some(frame) = self.decoder.next_frame().expect("we send valid frames") {
                match frame {
                    Frame::Handshake(h) => {
                        assert!(self.our_handshake.is_none(), "a second handshake");
                        assert!(self.sent.is_empty(), "handshake must come first");
                        self.our_handshake = Some(h);
                    }
                    Frame::Message(m) => {
                        self.history.push(m.clone());
                        self.sent.push(m);
                    }
                }
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn tick(&mut self, now: u64) {
        self.now = now;
        self.s.tick(now);
        self.pump();
    }

    /// Messages sent since the last call.
    fn take_sent(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.sent)
    }

    fn closed(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::ClosePeer { key, reason } if *key == KEY => Some(reason.as_str()),
            _ => None,
        })
    }

    fn done(&self) -> bool {
        self.events.contains(&Event::Done)
    }

    /// Answers every request the session sent with the block from `all`; each piece message is
    /// delivered through `split` (which cuts the stream into data-channel messages).
    /// Returns the requests seen.
    fn serve(
        &mut self,
        all: &[u8],
        piece_length: u32,
        split: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
    ) -> Vec<BlockRef> {
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            let reqs: Vec<BlockRef> = self
                .take_sent()
                .into_iter()
                .filter_map(|m| match m {
                    Message::Request(r) => Some(r),
                    _ => None,
                })
                .collect();
            if reqs.is_empty() {
                return seen;
            }
            let mut stream = Vec::new();
            for r in &reqs {
                let start = r.index as usize * piece_length as usize + r.begin as usize;
                Message::Piece {
                    index: r.index,
                    begin: r.begin,
                    data: all[start..start + r.length as usize].to_vec(),
                }
                .encode(&mut stream);
            }
            seen.extend(reqs);
            for chunk in split(&stream) {
                self.deliver(&chunk);
            }
        }
        panic!("still requesting after 100000 rounds");
    }
}

fn encode(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out);
    }
    out
}

fn whole(b: &[u8]) -> Vec<Vec<u8>> {
    vec![b.to_vec()]
}

/// Cuts at a fixed stride that lines up with nothing in particular.
fn chunks_of(n: usize) -> impl Fn(&[u8]) -> Vec<Vec<u8>> {
    move |b: &[u8]| b.chunks(n).map(<[u8]>::to_vec).collect()
}

fn read_all(s: &Session) -> Vec<u8> {
    s.read(0, s.metainfo().unwrap().info.total_length)
        .expect("every piece verified")
}

fn requests_in(msgs: &[Message]) -> Vec<BlockRef> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn pieces_requested(msgs: &[Message]) -> Vec<u32> {
    let mut v: Vec<u32> = requests_in(msgs).iter().map(|r| r.index).collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---- BEP 6 HaveAll / HaveNone ------------------------------------------------------------

#[test]
fn have_all_from_a_fast_peer_is_a_full_bitfield() {
    let (meta, all) = torrent(300_000, 32 * 1024);
    let mut f = Fake::connect(leecher(&meta));
    let hs = f.handshake(true);
    f.deliver(&hs);
    assert!(f.our_handshake.unwrap().supports_fast());
    // A leecher with nothing says HaveNone to a fast peer (never a bitfield of zeros).
    let first = f.take_sent();
    assert_eq!(first.first(), Some(&Message::HaveNone), "{first:?}");
    assert!(!first.iter().any(|m| matches!(m, Message::Bitfield(_))));

    f.deliver_msgs(&[Message::HaveAll]);
    assert!(f.take_sent().contains(&Message::Interested));
    f.deliver_msgs(&[Message::Unchoke]);
    f.serve(&all, meta.info.piece_length, &whole);
    assert!(f.done(), "{:?}", f.events);
    assert_eq!(read_all(&f.s), all);
    assert_eq!(f.closed(), None);
}

#[test]
fn have_none_then_have_messages_asks_only_for_what_the_peer_has() {
    let (meta, all) = torrent(8 * 16384, 16384);
    let mut f = Fake::connect(leecher(&meta));
    let mut first = f.handshake(true);
    first.extend(encode(&[Message::HaveNone, Message::Unchoke]));
    f.deliver(&first);
    let sent = f.take_sent();
    assert!(
        !sent.contains(&Message::Interested),
        "nothing to want yet: {sent:?}"
    );
    assert!(requests_in(&sent).is_empty());

    f.deliver_msgs(&[Message::Have(5), Message::Have(2)]);
    let sent = f.take_sent();
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    assert_eq!(pieces_requested(&sent), vec![2, 5]);
    f.sent = sent; // let serve() answer them
    f.serve(&all, meta.info.piece_length, &whole);
    assert!(f.s.have().get(2) && f.s.have().get(5));
    assert_eq!(f.s.have().count(), 2);
    assert_eq!(f.history.last(), Some(&Message::NotInterested));
}

#[test]
fn a_complete_seeder_says_have_all_to_fast_peers_and_bitfield_to_others() {
    let (meta, all) = torrent(100_000, 16384);
    let mut fast = Fake::connect(seeder(&meta, &all));
    let hs = fast.handshake(true);
    fast.deliver(&hs);
    let sent = fast.take_sent();
    assert_eq!(sent.first(), Some(&Message::HaveAll), "{sent:?}");

    let mut plain = Fake::connect(seeder(&meta, &all));
    let hs = plain.handshake(false);
    plain.deliver(&hs);
    let sent = plain.take_sent();
    let n = meta.info.num_pieces() as usize;
    assert_eq!(
        sent.first(),
        Some(&Message::Bitfield(Bitfield::full(n).as_wire().to_vec())),
        "{sent:?}"
    );
    assert!(!sent
        .iter()
        .any(|m| matches!(m, Message::HaveAll | Message::HaveNone)));
}

#[test]
fn fast_messages_from_a_peer_without_the_fast_bit_drop_it() {
    let (meta, _) = torrent(100_000, 16384);
    let mut f = Fake::connect(leecher(&meta));
    let mut bytes = f.handshake(false);
    bytes.extend(encode(&[Message::HaveAll]));
    f.deliver(&bytes);
    assert!(f.closed().is_some(), "{:?}", f.events);
}

#[test]
fn have_all_before_the_metadata_is_kept_until_it_arrives() {
    let (meta, all) = torrent(70_000, 16384);
    let mut f = Fake::connect(magnet_leecher(meta.info_hash));
    let mut bytes = f.handshake(true);
    let mut ext = ExtendedHandshake::with_ut_metadata(Some(meta.info_bytes.len() as u64));
    ext.m.clear();
    ext.m.insert("ut_metadata".into(), THEIR_UT_METADATA);
    bytes.extend(encode(&[
        Message::Extended {
            id: 0,
            payload: ext.encode(),
        },
        Message::HaveAll,
        Message::Unchoke,
    ]));
    f.deliver(&bytes);
    serve_metadata(&mut f, &meta);
    assert!(f.events.contains(&Event::MetadataReady), "{:?}", f.events);
    let sent = f.take_sent();
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    assert!(!requests_in(&sent).is_empty(), "{sent:?}");
    f.sent = sent;
    f.serve(&all, meta.info.piece_length, &whole);
    assert_eq!(read_all(&f.s), all);
}

/// Answers the session's ut_metadata requests (sent to our id `THEIR_UT_METADATA`).
fn serve_metadata(f: &mut Fake, meta: &Metainfo) {
    for _ in 0..100 {
        let mut answered = false;
        let mut keep = Vec::new();
        for m in f.take_sent() {
            match m {
                Message::Extended { id, payload } if id == THEIR_UT_METADATA => {
                    let MetadataMsg::Request { piece } = MetadataMsg::decode(&payload).unwrap()
                    else {
                        panic!("unexpected ut_metadata message");
                    };
                    let start = piece as usize * METADATA_PIECE_SIZE;
                    let end = (start + METADATA_PIECE_SIZE).min(meta.info_bytes.len());
                    let reply = MetadataMsg::Data {
                        piece,
                        total_size: meta.info_bytes.len() as u64,
                        data: meta.info_bytes[start..end].to_vec(),
                    };
                    f.deliver_msgs(&[Message::Extended {
                        id: UT_METADATA_LOCAL_ID,
                        payload: reply.encode(),
                    }]);
                    answered = true;
                }
                other => keep.push(other),
            }
        }
        f.sent.splice(0..0, keep);
        if !answered {
            return;
        }
    }
}

// ---- keep-alives ----------------------------------------------------------------------------

#[test]
fn keepalives_are_sent_after_55_seconds_of_silence_and_not_before() {
    let (meta, all) = torrent(16384, 16384);
    let mut f = Fake::connect(seeder(&meta, &all));
    let hs = f.handshake(true);
    f.deliver(&hs);
    f.take_sent();
    let start = f.now;
    f.tick(start + 54_000);
    assert!(f.take_sent().is_empty(), "nothing to say before 55 s");
    f.tick(start + 55_000);
    assert_eq!(f.take_sent(), vec![Message::KeepAlive]);
    // And again 55 s after that one, not every tick in between.
    f.tick(start + 60_000);
    assert!(f.take_sent().is_empty());
    // The peer's own keep-alives keep it connected well past the idle time-out.
    for t in (start + 60_000..start + 600_000).step_by(30_000) {
        f.now = t;
        f.deliver_msgs(&[Message::KeepAlive]);
        f.tick(t + 1);
    }
    assert_eq!(f.closed(), None, "{:?}", f.events);
    assert!(f.take_sent().iter().all(|m| *m == Message::KeepAlive));
}

#[test]
fn a_silent_peer_is_dropped_after_the_idle_timeout() {
    let (meta, all) = torrent(16384, 16384);
    let mut f = Fake::connect(seeder(&meta, &all));
    let hs = f.handshake(true);
    f.deliver(&hs);
    let idle = Config::default().idle_timeout_ms;
    f.tick(f.now + idle - 1_000);
    assert_eq!(f.closed(), None);
    f.tick(f.now + 2_000);
    assert!(f.closed().is_some());
}

// ---- 16 KiB blocks ----------------------------------------------------------------------------

#[test]
fn our_requests_are_16_kib_blocks_within_each_piece() {
    // Pieces of 64 KiB and a short last piece with a short last block.
    let (meta, all) = torrent(5 * 65536 + 20_000, 65536);
    let mut f = Fake::connect(leecher(&meta));
    let mut first = f.handshake(true);
    first.extend(encode(&[Message::HaveAll, Message::Unchoke]));
    f.deliver(&first);
    let reqs = f.serve(&all, meta.info.piece_length, &whole);
    assert_eq!(read_all(&f.s), all);
    let mut blocks = reqs.clone();
    blocks.sort_by_key(|r| (r.index, r.begin));
    blocks.dedup();
    let expected = (meta.info.total_length as usize).div_ceil(BLOCK_SIZE as usize);
    assert_eq!(blocks.len(), expected, "every block asked for once");
    for r in &reqs {
        assert!(r.length <= BLOCK_SIZE, "{r:?}");
        assert_eq!(r.begin % BLOCK_SIZE, 0, "{r:?}");
        assert!(r.begin + r.length <= meta.info.piece_len(r.index), "{r:?}");
        let last_of_piece = r.begin + BLOCK_SIZE >= meta.info.piece_len(r.index);
        assert!(r.length == BLOCK_SIZE || last_of_piece, "{r:?}");
    }
}

/// A seeder with one interested, unchoked fake peer.
fn unchoked_by_seeder(meta: &Metainfo, all: &[u8]) -> Fake {
    let mut f = Fake::connect(seeder(meta, all));
    let mut bytes = f.handshake(true);
    bytes.extend(encode(&[Message::HaveNone, Message::Interested]));
    f.deliver(&bytes);
    assert!(f.take_sent().contains(&Message::Unchoke));
    f
}

#[test]
fn we_serve_16_kib_requests_and_requests_up_to_128_kib() {
    let pl = 256 * 1024;
    let (meta, all) = torrent(2 * pl as usize, pl);
    let mut f = unchoked_by_seeder(&meta, &all);
    let asks = [
        BlockRef {
            index: 1,
            begin: 3 * BLOCK_SIZE,
            length: BLOCK_SIZE,
        },
        BlockRef {
            index: 0,
            begin: pl - 1000,
            length: 1000,
        },
        BlockRef {
            index: 0,
            begin: 0,
            length: 128 * 1024,
        },
    ];
    f.deliver_msgs(&asks.map(Message::Request));
    let sent = f.take_sent();
    let pieces: Vec<&Message> = sent
        .iter()
        .filter(|m| matches!(m, Message::Piece { .. }))
        .collect();
    assert_eq!(pieces.len(), 3, "{sent:?}");
    for (m, r) in pieces.into_iter().zip(asks) {
        let start = (r.index * pl + r.begin) as usize;
        assert_eq!(
            *m,
            Message::Piece {
                index: r.index,
                begin: r.begin,
                data: all[start..start + r.length as usize].to_vec()
            }
        );
    }
    assert_eq!(f.closed(), None);
}

#[test]
fn a_peer_asking_for_more_than_128_kib_at_once_is_dropped() {
    let pl = 256 * 1024;
    let (meta, all) = torrent(pl as usize, pl);
    let mut f = unchoked_by_seeder(&meta, &all);
    f.deliver_msgs(&[Message::Request(BlockRef {
        index: 0,
        begin: 0,
        length: 128 * 1024 + 1,
    })]);
    assert!(f.closed().is_some(), "{:?}", f.events);
    assert!(!f
        .take_sent()
        .iter()
        .any(|m| matches!(m, Message::Piece { .. })));
}

// ---- late or missing bitfields ----------------------------------------------------------------

#[test]
fn bitfield_after_have_messages_adds_to_them() {
    // WebTorrent sends Have to every wire when a piece verifies, which can come before the
    // bitfield it sends once its own metadata is set up.
    let (meta, all) = torrent(6 * 16384, 16384);
    let mut f = Fake::connect(leecher(&meta));
    let mut bytes = f.handshake(false);
    bytes.extend(encode(&[Message::Have(4)]));
    f.deliver(&bytes);
    let mut bf = Bitfield::new(6);
    bf.set(0);
    bf.set(1);
    f.deliver_msgs(&[Message::Bitfield(bf.as_wire().to_vec()), Message::Unchoke]);
    let sent = f.take_sent();
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    assert_eq!(pieces_requested(&sent), vec![0, 1, 4]);
    f.sent = sent;
    f.serve(&all, meta.info.piece_length, &whole);
    assert_eq!(f.s.have().count(), 3);
}

#[test]
fn bitfield_after_unchoke_starts_the_download() {
    let (meta, all) = torrent(200_000, 32768);
    let mut f = Fake::connect(leecher(&meta));
    let mut bytes = f.handshake(false);
    bytes.extend(encode(&[Message::Unchoke]));
    f.deliver(&bytes);
    assert!(requests_in(&f.take_sent()).is_empty());
    let n = meta.info.num_pieces() as usize;
    f.deliver_msgs(&[Message::Bitfield(Bitfield::full(n).as_wire().to_vec())]);
    let sent = f.take_sent();
    assert!(sent.contains(&Message::Interested));
    assert!(
        !requests_in(&sent).is_empty(),
        "already unchoked: ask at once"
    );
    f.sent = sent;
    f.serve(&all, meta.info.piece_length, &whole);
    assert_eq!(read_all(&f.s), all);
}

#[test]
fn a_peer_that_never_sends_a_bitfield_but_says_have_is_downloaded_from() {
    let (meta, all) = torrent(150_000, 16384);
    let n = meta.info.num_pieces();
    let mut f = Fake::connect(leecher(&meta));
    let mut bytes = f.handshake(false);
    bytes.extend(encode(&[Message::Unchoke]));
    f.deliver(&bytes);
    // Have messages one at a time, answering requests as they come.
    for i in (0..n).rev() {
        f.deliver_msgs(&[Message::Have(i)]);
        f.serve(&all, meta.info.piece_length, &whole);
    }
    assert!(f.done());
    assert_eq!(read_all(&f.s), all);
}

#[test]
fn magnet_download_from_a_peer_that_only_sends_have() {
    let (meta, all) = torrent(100_000, 16384);
    let n = meta.info.num_pieces();
    let mut f = Fake::connect(magnet_leecher(meta.info_hash));
    let mut bytes = f.handshake(false);
    let mut ext = ExtendedHandshake::with_ut_metadata(Some(meta.info_bytes.len() as u64));
    ext.m.clear();
    ext.m.insert("ut_metadata".into(), THEIR_UT_METADATA);
    bytes.extend(encode(&[Message::Extended {
        id: 0,
        payload: ext.encode(),
    }]));
    for i in 0..n {
        Message::Have(i).encode(&mut bytes);
    }
    Message::Unchoke.encode(&mut bytes);
    f.deliver(&bytes);
    serve_metadata(&mut f, &meta);
    assert!(f.events.contains(&Event::MetadataReady));
    f.serve(&all, meta.info.piece_length, &whole);
    assert_eq!(read_all(&f.s), all);
}

// ---- framing: many messages per data-channel message, one message over many --------------

#[test]
fn everything_in_one_data_channel_message() {
    let (meta, all) = torrent(40_000, 16384);
    let mut f = Fake::connect(leecher(&meta));
    // Handshake, extended handshake, HaveAll, keep-alive, an unknown extension message and
    // unchoke, all in one message.
    let mut bytes = f.handshake(true);
    let ext = ExtendedHandshake::with_ut_metadata(Some(meta.info_bytes.len() as u64));
    bytes.extend(encode(&[
        Message::Extended {
            id: 0,
            payload: ext.encode(),
        },
        Message::HaveAll,
        Message::KeepAlive,
        Message::Extended {
            id: 42,
            payload: b"d5:addedi0ee".to_vec(),
        },
        Message::Unchoke,
    ]));
    f.deliver(&bytes);
    let sent = f.take_sent();
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    let reqs = requests_in(&sent);
    assert_eq!(reqs.len(), 3, "all three blocks asked at once: {sent:?}");
    // All three pieces in one message.
    let mut reply = Vec::new();
    for r in &reqs {
        let start = (r.index * 16384 + r.begin) as usize;
        Message::Piece {
            index: r.index,
            begin: r.begin,
            data: all[start..start + r.length as usize].to_vec(),
        }
        .encode(&mut reply);
    }
    f.deliver(&reply);
    assert!(f.done());
    assert_eq!(read_all(&f.s), all);
    assert_eq!(f.closed(), None);
}

#[test]
fn one_message_across_many_data_channel_messages() {
    let (meta, all) = torrent(300_000, 65536);
    for split in [1usize, 7, 1000, 16397, 65536] {
        let mut f = Fake::connect(leecher(&meta));
        // Even the handshake arrives in pieces.
        let mut bytes = f.handshake(true);
        bytes.extend(encode(&[Message::HaveAll, Message::Unchoke]));
        for c in bytes.chunks(split.min(13)) {
            f.deliver(c);
        }
        f.serve(&all, meta.info.piece_length, &chunks_of(split));
        assert!(f.done(), "split {split}: {:?}", f.events);
        assert_eq!(read_all(&f.s), all, "split {split}");
        assert_eq!(f.closed(), None, "split {split}");
    }
}

#[test]
fn our_output_is_a_byte_stream_any_transmit_size_works() {
    // What we send can be cut anywhere by `transmit(max)`: a peer reassembles it.
    let (meta, all) = torrent(200_000, 32768);
    let mut s = seeder(&meta, &all);
    s.peer_connected(KEY, 0);
    let mut bytes = Handshake::new(meta.info_hash, THEIR_ID).encode().to_vec();
    bytes.extend(encode(&[Message::HaveNone, Message::Interested]));
    let reqs: Vec<Message> = (0..meta.info.num_pieces())
        .flat_map(|i| {
            (0..meta.info.num_blocks(i)).map(move |b| BlockRef {
                index: i,
                begin: b * BLOCK_SIZE,
                length: 0,
            })
        })
        .map(|mut r| {
            r.length = meta.info.block_len(r.index, r.begin / BLOCK_SIZE);
            Message::Request(r)
        })
        .collect();
    bytes.extend(encode(&reqs));
    s.peer_data(KEY, &bytes, 0);
    let mut dec = Decoder::new(DEFAULT_MAX_MESSAGE_LEN);
    let mut got = vec![0u8; all.len()];
    let mut max = 1;
    while let Some(out) = s.transmit(KEY, max, 0) {
        assert!(
            out.len() <= max.max(1),
            "transmit({max}) gave {}",
            out.len()
        );
        dec.push(&out);
        while let Some(frame) = dec.next_frame().unwrap() {
            if let Frame::Message(Message::Piece { index, begin, data }) = frame {
                let at = (index * 32768 + begin) as usize;
                got[at..at + data.len()].copy_from_slice(&data);
            }
        }
        max = max * 3 % 70_001 + 1;
    }
    assert_eq!(got, all);
}
