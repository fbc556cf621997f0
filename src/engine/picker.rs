//! Which block to ask a peer for next: finish pieces already started, then start a new piece —
//! first from the streaming window in order, else the rarest piece the peer has (random among
//! equally rare ones), or the lowest-numbered one in sequential mode — and in endgame ask a second
//! peer for blocks still in flight. Tracks per-piece availability and the buffers of pieces being
//! assembled. Never verifies, stores or sends anything.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::bitfield::Bitfield;
use crate::metainfo::{Info, BLOCK_SIZE};
use crate::rng::Rng;
use crate::wire::BlockRef;

use super::PeerKey;

/// How many peers may be asked for the same block at once in endgame.
const MAX_DUPLICATE_REQUESTS: u8 = 2;

#[derive(Debug)]
pub(crate) struct Partial {
    pub buf: Vec<u8>,
    pub received: Vec<bool>,
    /// Peers currently asked for each block.
    pub requested: Vec<u8>,
    /// Who sent each received block, to know whom to blame when the piece fails its hash.
    pub contributors: Vec<Option<PeerKey>>,
    pub received_count: u32,
}

impl Partial {
    fn new(piece_len: u32, blocks: u32) -> Partial {
        Partial {
            buf: vec![0; piece_len as usize],
            received: vec![false; blocks as usize],
            requested: vec![0; blocks as usize],
            contributors: vec![None; blocks as usize],
            received_count: 0,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.received_count as usize == self.received.len()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Picker {
    pub availability: Vec<u32>,
    pub partials: BTreeMap<u32, Partial>,
    /// Complete pieces waiting for their hash check: not to be picked again meanwhile.
    pub verifying: BTreeSet<u32>,
    /// Pieces wanted before all others, most urgent first (a player's read-ahead window).
    pub window: Vec<Range<u32>>,
    /// Start new pieces in index order instead of rarest first.
    pub sequential: bool,
    /// Pieces a web seed is fetching whole: peers leave them alone meanwhile.
    pub web: BTreeSet<u32>,
}

impl Picker {
    pub fn new(num_pieces: u32) -> Picker {
        Picker {
            availability: vec![0; num_pieces as usize],
            ..Picker::default()
        }
    }

    fn startable(&self, i: u32, have: &Bitfield, peer_has: &Bitfield) -> bool {
        peer_has.get(i as usize)
            && !have.get(i as usize)
            && !self.partials.contains_key(&i)
            && !self.verifying.contains(&i)
            && !self.web.contains(&i)
    }

    pub fn add_have(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    pub fn add_bitfield(&mut self, have: &Bitfield) {
        for i in have.iter_set() {
            self.add_have(i as u32);
        }
    }

    pub fn remove_bitfield(&mut self, have: &Bitfield) {
        for i in have.iter_set() {
            if let Some(a) = self.availability.get_mut(i) {
                *a = a.saturating_sub(1);
            }
        }
    }

    /// The next block to request from a peer that has `peer_has`, or None.
    pub fn pick(
        &mut self,
        info: &Info,
        have: &Bitfield,
        peer_has: &Bitfield,
        already_asked: impl Fn(&BlockRef) -> bool,
        rng: &mut Rng,
    ) -> Option<BlockRef> {
        // 1. A block nobody was asked for, in a piece already started (urgent ones first).
        if let Some(block) = self.pick_in_window_partials(info, peer_has) {
            return Some(block);
        }
        for (&index, partial) in self.partials.iter_mut() {
            if !peer_has.get(index as usize) {
                continue;
            }
            if let Some(b) = (0..partial.received.len())
                .find(|&b| !partial.received[b] && partial.requested[b] == 0)
            {
                partial.requested[b] += 1;
                return Some(block_ref(info, index, b as u32));
            }
        }
        // 2. Start a new piece: the window first, then rarest (or lowest) this peer has.
        let next = self
            .window_new_piece(have, peer_has)
            .or_else(|| {
                if self.sequential {
                    self.lowest_new_piece(have, peer_has)
                } else {
                    None
                }
            })
            .or_else(|| self.rarest_new_piece(have, peer_has, rng));
        if let Some(index) = next {
            let blocks = info.num_blocks(index);
            let mut partial = Partial::new(info.piece_len(index), blocks);
            partial.requested[0] = 1;
            self.partials.insert(index, partial);
            return Some(block_ref(info, index, 0));
        }
        // 3. Endgame: everything is requested; ask this peer too for blocks still in flight.
        for (&index, partial) in self.partials.iter_mut() {
            if !peer_has.get(index as usize) {
                continue;
            }
            for b in 0..partial.received.len() {
                if partial.received[b] || partial.requested[b] >= MAX_DUPLICATE_REQUESTS {
                    continue;
                }
                let block = block_ref(info, index, b as u32);
                if already_asked(&block) {
                    continue;
                }
                partial.requested[b] += 1;
                return Some(block);
            }
        }
        None
    }

    fn pick_in_window_partials(&mut self, info: &Info, peer_has: &Bitfield) -> Option<BlockRef> {
        for r in &self.window {
            for index in r.clone() {
                let Some(partial) = self.partials.get_mut(&index) else {
                    continue;
                };
                if !peer_has.get(index as usize) {
                    continue;
                }
                if let Some(b) = (0..partial.received.len())
                    .find(|&b| !partial.received[b] && partial.requested[b] == 0)
                {
                    partial.requested[b] += 1;
                    return Some(block_ref(info, index, b as u32));
                }
            }
        }
        None
    }

    fn window_new_piece(&self, have: &Bitfield, peer_has: &Bitfield) -> Option<u32> {
        self.window
            .iter()
            .flat_map(|r| r.clone())
            .find(|&i| self.startable(i, have, peer_has))
    }

    fn lowest_new_piece(&self, have: &Bitfield, peer_has: &Bitfield) -> Option<u32> {
        peer_has
            .iter_set()
            .map(|i| i as u32)
            .find(|&i| self.startable(i, have, peer_has))
    }

    fn rarest_new_piece(&self, have: &Bitfield, peer_has: &Bitfield, rng: &mut Rng) -> Option<u32> {
        let mut best = u32::MAX;
        let mut candidates: Vec<u32> = Vec::new();
        for i in peer_has.iter_set() {
            if !self.startable(i as u32, have, peer_has) {
                continue;
            }
            let a = self.availability.get(i).copied().unwrap_or(0);
            if a < best {
                best = a;
                candidates.clear();
            }
            if a == best {
                candidates.push(i as u32);
            }
        }
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[rng.below(candidates.len() as u64) as usize])
    }

    /// A request for `block` ended without data (choke, reject, timeout, peer gone).
    pub fn cancel_request(&mut self, block: &BlockRef) {
        if let Some(p) = self.partials.get_mut(&block.index) {
            let b = (block.begin / BLOCK_SIZE) as usize;
            if let Some(r) = p.requested.get_mut(b) {
                *r = r.saturating_sub(1);
            }
        }
    }
}

pub(crate) fn block_ref(info: &Info, index: u32, block: u32) -> BlockRef {
    BlockRef {
        index,
        begin: block * BLOCK_SIZE,
        length: info.block_len(index, block),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::{create_torrent, CreateOptions};

    /// A picker and bitfields from strings, libtorrent-style: "1101" = has pieces 0, 1 and 3.
    fn bits(s: &str) -> Bitfield {
        let mut b = Bitfield::new(s.len());
        for (i, c) in s.chars().enumerate() {
            if c == '1' {
                b.set(i);
            }
        }
        b
    }

    fn info(pieces: usize) -> Info {
        let data = vec![7u8; pieces * 16384];
        let opts = CreateOptions {
            piece_length: Some(16384),
            ..Default::default()
        };
        create_torrent(&[(vec!["f".into()], &data[..])], opts)
            .unwrap()
            .info
    }

    fn setup(avail: &[u32]) -> Picker {
        let mut p = Picker::new(avail.len() as u32);
        p.availability = avail.to_vec();
        p
    }

    #[test]
    fn rarest_first_with_random_ties() {
        let info = info(6);
        let mut rng = Rng::new(3);
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            let mut p = setup(&[3, 1, 2, 1, 5, 4]);
            let b = p
                .pick(&info, &bits("000000"), &bits("111111"), |_| false, &mut rng)
                .unwrap();
            seen.insert(b.index);
        }
        assert_eq!(seen, BTreeSet::from([1, 3]));
    }

    #[test]
    fn skips_pieces_we_have_or_peer_lacks() {
        let info = info(4);
        let mut p = setup(&[1, 1, 1, 9]);
        let b = p
            .pick(
                &info,
                &bits("1100"),
                &bits("1101"),
                |_| false,
                &mut Rng::new(1),
            )
            .unwrap();
        assert_eq!(b.index, 3);
        assert!(p
            .pick(
                &info,
                &bits("1100"),
                &bits("1100"),
                |_| false,
                &mut Rng::new(1)
            )
            .is_none());
    }

    #[test]
    fn window_and_sequential_come_before_rarity() {
        let info = info(6);
        let mut p = setup(&[1, 1, 1, 1, 1, 0]);
        p.window = vec![Range { start: 4, end: 6 }];
        let mut rng = Rng::new(1);
        let all = bits("111111");
        assert_eq!(
            p.pick(&info, &bits("000000"), &all, |_| false, &mut rng)
                .unwrap()
                .index,
            4
        );
        assert_eq!(
            p.pick(&info, &bits("000000"), &all, |_| false, &mut rng)
                .unwrap()
                .index,
            5
        );
        p.window.clear();
        p.sequential = true;
        assert_eq!(
            p.pick(&info, &bits("000000"), &all, |_| false, &mut rng)
                .unwrap()
                .index,
            0
        );
        assert_eq!(
            p.pick(&info, &bits("000000"), &all, |_| false, &mut rng)
                .unwrap()
                .index,
            1
        );
    }

    #[test]
    fn endgame_duplicates_once_then_stops() {
        let info = info(1);
        let mut p = setup(&[2]);
        let mut rng = Rng::new(1);
        let first = p
            .pick(&info, &bits("0"), &bits("1"), |_| false, &mut rng)
            .unwrap();
        // Everything requested: a second peer gets the same block, a third gets nothing.
        let second = p
            .pick(&info, &bits("0"), &bits("1"), |_| false, &mut rng)
            .unwrap();
        assert_eq!(first, second);
        assert!(p
            .pick(&info, &bits("0"), &bits("1"), |_| false, &mut rng)
            .is_none());
        // And never twice to the same peer.
        let mut p = setup(&[2]);
        let b = p
            .pick(&info, &bits("0"), &bits("1"), |_| false, &mut rng)
            .unwrap();
        assert!(p
            .pick(&info, &bits("0"), &bits("1"), |x| *x == b, &mut rng)
            .is_none());
    }

    #[test]
    fn verifying_pieces_are_not_picked() {
        let info = info(2);
        let mut p = setup(&[1, 1]);
        p.verifying.insert(0);
        let b = p
            .pick(&info, &bits("00"), &bits("11"), |_| false, &mut Rng::new(1))
            .unwrap();
        assert_eq!(b.index, 1);
    }
}
