//! Piece hashing for torrent creation in the browser: the SHA-1 of every piece of a file, as the
//! `pieces` field of a `.torrent` wants them.
//!
//! Creating a torrent hashes every byte once, so its speed is the speed of SHA-1 in WebAssembly.
//! A straight SHA-1 in wasm (the `sha1` crate) runs at well under half of WebCrypto's speed,
//! which uses the CPU's SHA instructions; wasm has none. But the pieces of a torrent are
//! independent messages of the same length, so we hash [`LANES`] of them at once with wasm
//! SIMD (`simd128`): each 32-bit lane of a vector carries the state of a different piece
//! ("multi-buffer" hashing, as in Intel's isa-l_crypto). Every round is then one vector
//! instruction sequence for several pieces. Pieces that do not fill a group (and the shorter
//! last piece) go through the `sha1` crate.
//!
//! JavaScript API (exported by wasm-bindgen; names in camelCase like the rest of the API):
//!
//! - `sha1Pieces(data: Uint8Array, pieceLength: number): Uint8Array` — the 20-byte digests of
//!   `data` cut into `pieceLength` pieces (the last may be shorter), concatenated.
//! - `sha1PiecesScalar(data, pieceLength)` — the same with the plain `sha1` crate, one piece at a
//!   time (what torrent creation used before; kept for comparison in `bench/`).
//! - `new PieceHasher(pieceLength)`, `.update(chunk)` as often as needed with any chunking,
//!   `.bytesHashed`, `.finish(): Uint8Array` — the streaming form, for files read in slices.
//!
//! The same algorithm runs over portable `[u32; 4]` lanes, so its logic is unit-tested on any
//! target against the `sha1` crate; on wasm32 the `simd128` version is used. Using `simd128`
//! makes the module need wasm SIMD (every browser since 2021–2023: Chrome 91, Firefox 89,
//! Safari 16.4).

use sha1::{Digest, Sha1};
use wasm_bindgen::prelude::*;

/// Length of one SHA-1 digest.
pub const DIGEST_LEN: usize = 20;
/// Pieces hashed together by [`sha1_pieces_into`] on wasm32.
pub const LANES: usize = 4;

const BLOCK: usize = 64;
const H0: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];
const K: [u32; 4] = [0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xCA62_C1D6];

/// SHA-1 of each `pieceLength` piece of `data` (the last one may be shorter), concatenated:
/// `ceil(data.length / pieceLength) * 20` bytes.
#[wasm_bindgen(js_name = sha1Pieces)]
pub fn sha1_pieces(data: &[u8], piece_length: u32) -> Result<Vec<u8>, JsError> {
    let piece_len = check_piece_length(piece_length)?;
    let mut out = Vec::with_capacity(data.len().div_ceil(piece_len) * DIGEST_LEN);
    sha1_pieces_into(data, piece_len, &mut out);
    Ok(out)
}

/// [`sha1_pieces`] with the `sha1` crate alone, one piece after the other (for comparison).
#[wasm_bindgen(js_name = sha1PiecesScalar)]
pub fn sha1_pieces_scalar(data: &[u8], piece_length: u32) -> Result<Vec<u8>, JsError> {
    let piece_len = check_piece_length(piece_length)?;
    let mut out = Vec::with_capacity(data.len().div_ceil(piece_len) * DIGEST_LEN);
    for piece in data.chunks(piece_len) {
        out.extend_from_slice(&Sha1::digest(piece));
    }
    Ok(out)
}

fn check_piece_length(piece_length: u32) -> Result<usize, JsError> {
    if piece_length == 0 {
        return Err(JsError::new("pieceLength must be positive"));
    }
    Ok(piece_length as usize)
}

/// Streaming piece hasher: feed the concatenated files in chunks of any size, then `finish`.
/// Keeps at most `LANES` pieces buffered.
#[wasm_bindgen]
pub struct PieceHasher {
    piece_len: usize,
    /// Bytes of pieces not hashed yet (fewer than `LANES` whole pieces plus a partial one).
    pending: Vec<u8>,
    digests: Vec<u8>,
    fed: u64,
}

#[wasm_bindgen]
impl PieceHasher {
    #[wasm_bindgen(constructor)]
    pub fn new(piece_length: u32) -> Result<PieceHasher, JsError> {
        let piece_len = check_piece_length(piece_length)?;
        Ok(PieceHasher::with_piece_len(piece_len))
    }

    /// The next bytes of the data, in order.
    pub fn update(&mut self, data: &[u8]) {
        self.feed(data);
    }

    /// Bytes given to `update` so far.
    #[wasm_bindgen(getter, js_name = bytesHashed)]
    pub fn bytes_hashed(&self) -> f64 {
        self.fed as f64
    }

    #[wasm_bindgen(getter, js_name = pieceLength)]
    pub fn piece_length(&self) -> u32 {
        self.piece_len as u32
    }

    /// Hashes what is left (the last piece may be short) and returns every digest, concatenated.
    /// The hasher is empty afterwards and may be used again.
    pub fn finish(&mut self) -> Vec<u8> {
        let pending = std::mem::take(&mut self.pending);
        sha1_pieces_into(&pending, self.piece_len, &mut self.digests);
        self.fed = 0;
        std::mem::take(&mut self.digests)
    }
}

impl PieceHasher {
    /// A hasher for pieces of `piece_len` (> 0) bytes.
    pub fn with_piece_len(piece_len: usize) -> PieceHasher {
        assert!(piece_len > 0, "piece length must be positive");
        PieceHasher {
            piece_len,
            pending: Vec::new(),
            digests: Vec::new(),
            fed: 0,
        }
    }

    /// [`PieceHasher::update`] for Rust callers.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.fed += data.len() as u64;
        let group = self.piece_len.saturating_mul(LANES);
        if !self.pending.is_empty() {
            // Top up the buffer to a whole group first (it always holds less than one).
            let take = (group - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < group {
                return;
            }
            let pending = std::mem::take(&mut self.pending);
            sha1_pieces_into(&pending, self.piece_len, &mut self.digests);
            self.pending = pending;
            self.pending.clear();
        }
        // Whole groups straight from the input; keep the rest for later.
        let whole = data.len() / group * group;
        sha1_pieces_into(&data[..whole], self.piece_len, &mut self.digests);
        self.pending.extend_from_slice(&data[whole..]);
    }
}

/// Appends the digest of every `piece_len` piece of `data` (the last may be shorter) to `out`.
/// Groups of `LANES` whole pieces are hashed together with SIMD on wasm32.
pub fn sha1_pieces_into(data: &[u8], piece_len: usize, out: &mut Vec<u8>) {
    assert!(piece_len > 0, "piece length must be positive");
    let group = piece_len.saturating_mul(LANES);
    let grouped = data.len() / group * group;
    for chunk in data[..grouped].chunks_exact(group) {
        let mut pieces: [&[u8]; LANES] = [&[]; LANES];
        for (k, p) in chunk.chunks_exact(piece_len).enumerate() {
            pieces[k] = p;
        }
        hash_group_lanes(&pieces, out);
    }
    for piece in data[grouped..].chunks(piece_len) {
        out.extend_from_slice(&Sha1::digest(piece));
    }
}

#[cfg(target_arch = "wasm32")]
fn hash_group_lanes(pieces: &[&[u8]; LANES], out: &mut Vec<u8>) {
    simd::hash_group_simd(pieces, out);
}

/// Elsewhere (the unit tests) the portable lanes do the same work.
#[cfg(not(target_arch = "wasm32"))]
fn hash_group_lanes(pieces: &[&[u8]; LANES], out: &mut Vec<u8>) {
    hash_group::<Portable<LANES>>(pieces, out);
}

/// A vector of `N` independent 32-bit lanes: the operations SHA-1 needs.
trait Lanes: Copy {
    const N: usize;
    fn splat(x: u32) -> Self;
    fn add(self, b: Self) -> Self;
    fn xor(self, b: Self) -> Self;
    /// Bitwise `mask ? a : b`.
    fn select(mask: Self, a: Self, b: Self) -> Self;
    /// Rotate left by `L`; `R` must be `32 - L`.
    fn rotl<const L: u32, const R: u32>(self) -> Self;
    /// The 16 big-endian message words of the block at `offset` of each lane's input.
    fn load_block(inputs: &[&[u8]], offset: usize) -> [Self; 16];
    /// Lane `k`'s value.
    fn lane(self, k: usize) -> u32;
}

/// Portable lanes: the reference the SIMD versions must agree with.
#[derive(Clone, Copy)]
#[cfg_attr(all(target_arch = "wasm32", not(test)), allow(dead_code))]
struct Portable<const N: usize>([u32; N]);

impl<const N: usize> Portable<N> {
    #[inline(always)]
    fn map2(self, b: Self, f: impl Fn(u32, u32) -> u32) -> Self {
        let mut out = self.0;
        for (o, y) in out.iter_mut().zip(b.0) {
            *o = f(*o, y);
        }
        Portable(out)
    }
}

impl<const N: usize> Lanes for Portable<N> {
    const N: usize = N;
    #[inline(always)]
    fn splat(x: u32) -> Self {
        Portable([x; N])
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self.map2(b, u32::wrapping_add)
    }
    #[inline(always)]
    fn xor(self, b: Self) -> Self {
        self.map2(b, |x, y| x ^ y)
    }
    #[inline(always)]
    fn select(mask: Self, a: Self, b: Self) -> Self {
        mask.map2(a, |m, x| m & x).xor(mask.map2(b, |m, y| !m & y))
    }
    #[inline(always)]
    fn rotl<const L: u32, const R: u32>(self) -> Self {
        Portable(self.0.map(|x| x.rotate_left(L)))
    }
    #[inline(always)]
    fn load_block(inputs: &[&[u8]], offset: usize) -> [Self; 16] {
        let mut w = [Portable([0; N]); 16];
        for (k, input) in inputs.iter().enumerate().take(N) {
            let block = &input[offset..offset + BLOCK];
            for (i, word) in block.chunks_exact(4).enumerate() {
                w[i].0[k] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
        }
        w
    }
    #[inline(always)]
    fn lane(self, k: usize) -> u32 {
        self.0[k]
    }
}

/// Hashes `V::N` messages of one common length together, appending their digests in order.
#[inline(always)]
fn hash_group<V: Lanes>(inputs: &[&[u8]], out: &mut Vec<u8>) {
    assert!(inputs.len() == V::N && V::N <= LANES);
    let len = inputs[0].len();
    assert!(
        inputs.iter().all(|p| p.len() == len),
        "pieces differ in length"
    );
    let full = len / BLOCK;
    let mut state = H0.map(V::splat);
    for b in 0..full {
        compress::<V>(&mut state, inputs, b * BLOCK);
    }
    // Padding: the tail, 0x80, zeros, the length in bits; the same shape for every lane.
    let tail = len % BLOCK;
    let tail_len = if tail + 9 <= BLOCK { BLOCK } else { 2 * BLOCK };
    let mut tails = [[0u8; 2 * BLOCK]; LANES];
    for (t, input) in tails.iter_mut().zip(inputs) {
        t[..tail].copy_from_slice(&input[full * BLOCK..]);
        t[tail] = 0x80;
        t[tail_len - 8..tail_len].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    }
    let mut tail_refs: [&[u8]; LANES] = [&[]; LANES];
    for (r, t) in tail_refs.iter_mut().zip(&tails) {
        *r = &t[..tail_len];
    }
    for off in (0..tail_len).step_by(BLOCK) {
        compress::<V>(&mut state, &tail_refs[..V::N], off);
    }
    for k in 0..V::N {
        for s in &state {
            out.extend_from_slice(&s.lane(k).to_be_bytes());
        }
    }
}

/// One SHA-1 compression of the 64-byte block at `offset` of every lane's input.
#[inline(always)]
fn compress<V: Lanes>(state: &mut [V; 5], inputs: &[&[u8]], offset: usize) {
    let mut w = V::load_block(inputs, offset);
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    // The round constants as values (in registers), not constants V8 rebuilds at every use:
    // measured 9 % faster in Chromium 156.
    let kv = K.map(|k| V::splat(core::hint::black_box(k)));

    #[inline(always)]
    fn ch<V: Lanes>(b: V, c: V, d: V) -> V {
        V::select(b, c, d)
    }
    #[inline(always)]
    fn parity<V: Lanes>(b: V, c: V, d: V) -> V {
        b.xor(c).xor(d)
    }
    #[inline(always)]
    fn maj<V: Lanes>(b: V, c: V, d: V) -> V {
        // Where b and d agree the majority is b, else it is c.
        V::select(b.xor(d), c, b)
    }

    // Round t: e += rotl5(a) + f(b, c, d) + K + W[t]; b = rotl30(b); the names rotate instead
    // of the values (five rounds bring them back).
    macro_rules! round {
        ($f:ident, $k:expr, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
            let t: usize = $t;
            if t >= 16 {
                w[t & 15] = w[(t - 3) & 15]
                    .xor(w[(t - 8) & 15])
                    .xor(w[(t - 14) & 15])
                    .xor(w[t & 15])
                    .rotl::<1, 31>();
            }
            $e = $e
                .add($a.rotl::<5, 27>())
                .add($f($b, $c, $d))
                .add($k)
                .add(w[t & 15]);
            $b = $b.rotl::<30, 2>();
        };
    }
    macro_rules! five {
        ($f:ident, $k:expr, $t:expr) => {
            round!($f, $k, $t, a, b, c, d, e);
            round!($f, $k, $t + 1, e, a, b, c, d);
            round!($f, $k, $t + 2, d, e, a, b, c);
            round!($f, $k, $t + 3, c, d, e, a, b);
            round!($f, $k, $t + 4, b, c, d, e, a);
        };
    }
    five!(ch, kv[0], 0);
    five!(ch, kv[0], 5);
    five!(ch, kv[0], 10);
    five!(ch, kv[0], 15);
    five!(parity, kv[1], 20);
    five!(parity, kv[1], 25);
    five!(parity, kv[1], 30);
    five!(parity, kv[1], 35);
    five!(maj, kv[2], 40);
    five!(maj, kv[2], 45);
    five!(maj, kv[2], 50);
    five!(maj, kv[2], 55);
    five!(parity, kv[3], 60);
    five!(parity, kv[3], 65);
    five!(parity, kv[3], 70);
    five!(parity, kv[3], 75);

    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.add(v);
    }
}

/// wasm `simd128` lanes: `V4` is one 128-bit vector, four pieces. (Eight pieces as two vectors
/// side by side, for more instruction-level parallelism, measured no faster in V8: it runs out of
/// vector registers.)
#[cfg(target_arch = "wasm32")]
mod simd {
    use core::arch::wasm32::*;

    use super::{hash_group, Lanes, LANES};

    #[derive(Clone, Copy)]
    pub(super) struct V4(v128);

    /// Hashes `LANES` pieces of one length with SIMD.
    #[target_feature(enable = "simd128")]
    pub(super) fn hash_group_simd(pieces: &[&[u8]; LANES], out: &mut Vec<u8>) {
        hash_group::<V4>(pieces, out);
    }

    impl Lanes for V4 {
        const N: usize = 4;
        #[inline(always)]
        fn splat(x: u32) -> Self {
            V4(u32x4_splat(x))
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            V4(u32x4_add(self.0, b.0))
        }
        #[inline(always)]
        fn xor(self, b: Self) -> Self {
            V4(v128_xor(self.0, b.0))
        }
        #[inline(always)]
        fn select(mask: Self, a: Self, b: Self) -> Self {
            V4(v128_bitselect(a.0, b.0, mask.0))
        }
        #[inline(always)]
        fn rotl<const L: u32, const R: u32>(self) -> Self {
            V4(v128_or(u32x4_shl(self.0, L), u32x4_shr(self.0, R)))
        }
        #[inline(always)]
        fn load_block(inputs: &[&[u8]], offset: usize) -> [Self; 16] {
            let block = |k: usize, q: usize| -> v128 {
                let bytes = &inputs[k][offset + 16 * q..offset + 16 * q + 16];
                // SAFETY: `bytes` is exactly 16 readable bytes; v128_load allows any alignment.
                unsafe { v128_load(bytes.as_ptr().cast::<v128>()) }
            };
            let mut w = [V4(u32x4_splat(0)); 16];
            for q in 0..4 {
                let (r0, r1, r2, r3) = (block(0, q), block(1, q), block(2, q), block(3, q));
                // Interleave words of two lanes and make them big-endian in one shuffle:
                // lo = [x.w0, y.w0, x.w1, y.w1], hi = [x.w2, y.w2, x.w3, y.w3] (byte-swapped).
                let lo01 =
                    u8x16_shuffle::<3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20>(r0, r1);
                let hi01 =
                    u8x16_shuffle::<11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28>(
                        r0, r1,
                    );
                let lo23 =
                    u8x16_shuffle::<3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20>(r2, r3);
                let hi23 =
                    u8x16_shuffle::<11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28>(
                        r2, r3,
                    );
                w[4 * q] = V4(u64x2_shuffle::<0, 2>(lo01, lo23));
                w[4 * q + 1] = V4(u64x2_shuffle::<1, 3>(lo01, lo23));
                w[4 * q + 2] = V4(u64x2_shuffle::<0, 2>(hi01, hi23));
                w[4 * q + 3] = V4(u64x2_shuffle::<1, 3>(hi01, hi23));
            }
            w
        }
        #[inline(always)]
        fn lane(self, k: usize) -> u32 {
            let mut lanes = [0u32; 4];
            // SAFETY: `lanes` is 16 writable bytes; v128_store allows any alignment.
            unsafe { v128_store(lanes.as_mut_ptr().cast::<v128>(), self.0) };
            lanes[k]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    fn reference(data: &[u8], piece_len: usize) -> Vec<u8> {
        data.chunks(piece_len)
            .flat_map(|p| Sha1::digest(p).to_vec())
            .collect()
    }

    fn lanes_digests<V: Lanes>(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        hash_group::<V>(pieces, &mut out);
        out
    }

    #[test]
    fn known_answer() {
        // FIPS 180 "abc" and the empty message, through the lanes.
        let abc: &[u8] = b"abc";
        let out = lanes_digests::<Portable<4>>(&[abc, abc, abc, abc]);
        let want = "a9993e364706816aba3e25717850c26c9cd0d89d";
        for k in 0..4 {
            let hex: String = out[k * 20..k * 20 + 20]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, want);
        }
        let empty: &[u8] = b"";
        assert_eq!(
            lanes_digests::<Portable<4>>(&[empty; 4]),
            Sha1::digest(b"").repeat(4)
        );
    }

    #[test]
    fn lanes_match_sha1_crate_at_every_padding_shape() {
        // Lengths around the one- and two-block padding edges, and whole pieces.
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 16384] {
            let all = data(len * LANES, len as u32);
            let pieces: Vec<&[u8]> = if len == 0 {
                vec![&[]; LANES]
            } else {
                all.chunks(len).collect()
            };
            let want: Vec<u8> = pieces
                .iter()
                .flat_map(|p| Sha1::digest(p).to_vec())
                .collect();
            assert_eq!(lanes_digests::<Portable<LANES>>(&pieces), want, "len {len}");
        }
    }

    #[test]
    fn pieces_of_any_count_and_tail() {
        for (len, piece) in [
            (0, 64),
            (5, 64),
            (64 * 8, 64),
            (64 * 8 * 3 + 7, 64),
            (300_001, 16384),
        ] {
            let d = data(len, 7);
            let mut out = Vec::new();
            sha1_pieces_into(&d, piece, &mut out);
            assert_eq!(out, reference(&d, piece), "len {len} piece {piece}");
        }
    }

    #[test]
    fn streaming_matches_one_shot_for_any_chunking() {
        let piece = 1024;
        let d = data(piece * LANES * 3 + 777, 3);
        let want = reference(&d, piece);
        for chunk in [
            1,
            63,
            1000,
            1024,
            5000,
            piece * LANES,
            piece * LANES + 1,
            d.len(),
        ] {
            let mut h = PieceHasher::with_piece_len(piece);
            for c in d.chunks(chunk) {
                h.feed(c);
            }
            assert_eq!(h.bytes_hashed(), d.len() as f64);
            assert_eq!(h.finish(), want, "chunk {chunk}");
            // Reusable after finish.
            h.feed(&d[..10]);
            assert_eq!(h.finish(), reference(&d[..10], piece));
        }
    }
}
