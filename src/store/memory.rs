//! `MemoryStore`: pieces kept in memory, one buffer per piece. Never reads beyond a piece.

use super::PieceStore;

#[derive(Debug, Default)]
pub struct MemoryStore {
    pieces: Vec<Option<Vec<u8>>>,
    piece_length: u32,
}

impl MemoryStore {
    pub fn new(num_pieces: u32, piece_length: u32) -> MemoryStore {
        MemoryStore {
            pieces: vec![None; num_pieces as usize],
            piece_length,
        }
    }

    /// A store holding all of `data`, cut into pieces of `piece_length` (for seeding).
    pub fn from_bytes(data: &[u8], piece_length: u32) -> MemoryStore {
        let pieces = data
            .chunks(piece_length.max(1) as usize)
            .map(|c| Some(c.to_vec()))
            .collect();
        MemoryStore {
            pieces,
            piece_length,
        }
    }

    /// The torrent's bytes in `offset..offset+len`, if every piece they touch is held.
    pub fn read_range(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(len as usize);
        let pl = self.piece_length as u64;
        let mut pos = offset;
        let end = offset.checked_add(len)?;
        while pos < end {
            let index = (pos / pl) as usize;
            let piece = self.pieces.get(index)?.as_ref()?;
            let begin = (pos % pl) as usize;
            let take = ((end - pos) as usize).min(piece.len().checked_sub(begin)?);
            if take == 0 {
                return None;
            }
            out.extend_from_slice(&piece[begin..begin + take]);
            pos += take as u64;
        }
        Some(out)
    }
}

impl PieceStore for MemoryStore {
    fn put_piece(&mut self, index: u32, data: Vec<u8>) {
        if let Some(slot) = self.pieces.get_mut(index as usize) {
            *slot = Some(data);
        }
    }

    fn read_block(&self, index: u32, begin: u32, len: u32, out: &mut Vec<u8>) -> bool {
        let Some(Some(piece)) = self.pieces.get(index as usize) else {
            return false;
        };
        let (begin, end) = (begin as usize, begin as usize + len as usize);
        if end > piece.len() {
            return false;
        }
        out.extend_from_slice(&piece[begin..end]);
        true
    }

    fn has_piece(&self, index: u32) -> bool {
        matches!(self.pieces.get(index as usize), Some(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_across_pieces() {
        let data: Vec<u8> = (0..100u8).collect();
        let s = MemoryStore::from_bytes(&data, 32);
        assert_eq!(s.read_range(30, 40).unwrap(), data[30..70]);
        assert_eq!(s.read_range(96, 4).unwrap(), data[96..100]);
        assert!(s.read_range(96, 5).is_none());
        let mut out = Vec::new();
        assert!(s.read_block(3, 0, 4, &mut out));
        assert!(!s.read_block(3, 0, 5, &mut out));
        assert!(!s.read_block(4, 0, 1, &mut out));
    }

    #[test]
    fn missing_piece_blocks_range() {
        let mut s = MemoryStore::new(2, 4);
        s.put_piece(0, vec![1, 2, 3, 4]);
        assert!(s.has_piece(0) && !s.has_piece(1));
        assert!(s.read_range(2, 4).is_none());
        assert_eq!(s.read_range(0, 4).unwrap(), vec![1, 2, 3, 4]);
    }
}
