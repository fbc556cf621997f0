//! The set of pieces a peer has, in the wire's bit order (piece 0 is the high bit of byte 0).
//! Never trusts a length from the wire: `from_wire` checks size and spare bits.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: usize,
    count: usize,
}

/// Why a received bitfield was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitfieldError {
    WrongLength { expected: usize, found: usize },
    SpareBitsSet,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitfieldError::WrongLength { expected, found } => {
                write!(f, "bitfield of {found} bytes, expected {expected}")
            }
            BitfieldError::SpareBitsSet => f.write_str("bitfield has bits set past the last piece"),
        }
    }
}

impl std::error::Error for BitfieldError {}

impl Bitfield {
    pub fn new(len: usize) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8)],
            len,
            count: 0,
        }
    }

    pub fn full(len: usize) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    pub fn from_wire(bytes: &[u8], len: usize) -> Result<Bitfield, BitfieldError> {
        let expected = len.div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                found: bytes.len(),
            });
        }
        if len % 8 != 0 {
            let spare_mask = 0xFFu8 >> (len % 8);
            if bytes[expected - 1] & spare_mask != 0 {
                return Err(BitfieldError::SpareBitsSet);
            }
        }
        let count = bytes.iter().map(|b| b.count_ones() as usize).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
            count,
        })
    }

    pub fn as_wire(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Sets bit `i`; returns whether it was newly set. Out-of-range indices are ignored.
    pub fn set(&mut self, i: usize) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bytes[i / 8] |= 0x80 >> (i % 8);
        self.count += 1;
        true
    }

    pub fn clear(&mut self, i: usize) {
        if self.get(i) {
            self.bytes[i / 8] &= !(0x80 >> (i % 8));
            self.count -= 1;
        }
    }

    pub fn iter_set(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(move |&i| self.get(i))
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: String = (0..self.len)
            .map(|i| if self.get(i) { '1' } else { '0' })
            .collect();
        write!(f, "Bitfield({s})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.count(), 2);
        assert_eq!(b.as_wire(), &[0x80, 0x40]);
        b.clear(0);
        assert_eq!(b.count(), 1);
        assert!(!b.get(0) && b.get(9));
    }

    #[test]
    fn wire_checks() {
        assert!(Bitfield::from_wire(&[0xFF, 0xC0], 10)
            .unwrap()
            .is_complete());
        assert_eq!(
            Bitfield::from_wire(&[0xFF, 0xE0], 10),
            Err(BitfieldError::SpareBitsSet)
        );
        assert!(matches!(
            Bitfield::from_wire(&[0xFF], 10),
            Err(BitfieldError::WrongLength { .. })
        ));
        assert!(Bitfield::full(16).is_complete());
    }
}
