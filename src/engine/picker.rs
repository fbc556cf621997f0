//! Which block to ask a peer for next: finish pieces already started, then start the rarest piece
//! the peer has (random among equally rare ones), and in endgame ask a second peer for blocks
//! still in flight. Tracks per-piece availability and the buffers of pieces being assembled.
//! Never verifies, stores or sends anything.

use std::collections::BTreeMap;

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
}

impl Picker {
    pub fn new(num_pieces: u32) -> Picker {
        Picker {
            availability: vec![0; num_pieces as usize],
            partials: BTreeMap::new(),
        }
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
        // 1. A block nobody was asked for, in a piece already started.
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
        // 2. Start the rarest piece this peer has.
        if let Some(index) = self.rarest_new_piece(have, peer_has, rng) {
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

    fn rarest_new_piece(&self, have: &Bitfield, peer_has: &Bitfield, rng: &mut Rng) -> Option<u32> {
        let mut best = u32::MAX;
        let mut candidates: Vec<u32> = Vec::new();
        for i in peer_has.iter_set() {
            if have.get(i) || self.partials.contains_key(&(i as u32)) {
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
