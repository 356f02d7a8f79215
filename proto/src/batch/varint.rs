//! LEB128 varints, zigzag, and a bounds-checked byte reader and writer.

use super::{Field, RecordError};

pub fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}
pub fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}
pub fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
pub fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
pub fn zigzag16(v: i16) -> u16 {
    ((v << 1) ^ (v >> 15)) as u16
}
pub fn unzigzag16(v: u16) -> i16 {
    ((v >> 1) as i16) ^ -((v & 1) as i16)
}

/// Writes into a fixed slice; a write past its end is dropped and remembered, never a panic.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pub pos: usize,
    pub overflow: bool,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer {
            buf,
            pos: 0,
            overflow: false,
        }
    }
    pub fn u8(&mut self, v: u8) {
        match self.buf.get_mut(self.pos) {
            Some(b) => {
                *b = v;
                self.pos += 1;
            }
            None => self.overflow = true,
        }
    }
    pub fn bytes(&mut self, v: &[u8]) {
        match self.buf.get_mut(self.pos..self.pos + v.len()) {
            Some(dst) => {
                dst.copy_from_slice(v);
                self.pos += v.len();
            }
            None => self.overflow = true,
        }
    }
    /// Overwrites a byte written earlier (the record head, once its bits are known).
    pub fn patch(&mut self, at: usize, v: u8) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = v;
        }
    }
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.u8(v as u8 | 0x80);
            v >>= 7;
        }
        self.u8(v as u8);
    }
    /// A serde value in postcard form (rare, small things: stops, tunnels, addresses).
    pub fn postcard<T: serde::Serialize>(&mut self, value: &T) {
        match self.buf.get_mut(self.pos..) {
            Some(rest) => match postcard::to_slice(value, rest) {
                Ok(used) => self.pos += used.len(),
                Err(_) => self.overflow = true,
            },
            None => self.overflow = true,
        }
    }
}

/// Reads from a slice; every read checks bounds. `pos` is absolute within the batch.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        let b = *self.buf.get(self.pos).ok_or(RecordError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let s = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(RecordError::UnexpectedEnd)?;
        let mut out = [0; N];
        out.copy_from_slice(s);
        self.pos += N;
        Ok(out)
    }
    /// The next `len` bytes, borrowed.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(RecordError::UnexpectedEnd)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(RecordError::UnexpectedEnd)?;
        self.pos = end;
        Ok(s)
    }
    pub fn varint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err(RecordError::BadVarint);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::BadVarint)
    }
    pub fn varint_u32(&mut self, field: Field) -> Result<u32, RecordError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| RecordError::BadValue { field, value: v })
    }
    pub fn varint_u16(&mut self, field: Field) -> Result<u16, RecordError> {
        let v = self.varint()?;
        u16::try_from(v).map_err(|_| RecordError::BadValue { field, value: v })
    }
    pub fn postcard<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecordError> {
        let rest = self.buf.get(self.pos..).ok_or(RecordError::UnexpectedEnd)?;
        let (value, left) =
            postcard::take_from_bytes::<T>(rest).map_err(|_| RecordError::Postcard)?;
        self.pos += rest.len() - left.len();
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, 63, -64, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag32(zigzag32(v)), v);
            assert_eq!(unzigzag64(zigzag64(i64::from(v))), i64::from(v));
        }
        for v in [0i16, 1, -1, i16::MAX, i16::MIN] {
            assert_eq!(unzigzag16(zigzag16(v)), v);
        }
        assert_eq!(zigzag32(-1), 1);
        assert_eq!(zigzag32(1), 2);
        assert_eq!(unzigzag64(zigzag64(i64::MIN)), i64::MIN);
    }

    #[test]
    fn varint_bytes_and_lengths() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        for v in [0u64, 127, 128, 300, u64::MAX] {
            w.varint(v);
        }
        assert!(!w.overflow);
        let n = w.pos;
        assert_eq!(n, 1 + 1 + 2 + 2 + 10);
        assert_eq!(&buf[2..4], &[0x80, 0x01]);
        let mut r = Reader::new(&buf[..n], 0);
        for v in [0u64, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint(), Ok(v));
        }
        assert_eq!(r.varint(), Err(RecordError::UnexpectedEnd));
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        let eleven = [0x80u8; 11];
        assert_eq!(
            Reader::new(&eleven, 0).varint(),
            Err(RecordError::BadVarint)
        );
        let mut over = [0xffu8; 10];
        over[9] = 0x02; // bit 64
        assert_eq!(Reader::new(&over, 0).varint(), Err(RecordError::BadVarint));
    }

    #[test]
    fn writer_overflow_is_remembered_not_a_panic() {
        let mut buf = [0u8; 2];
        let mut w = Writer::new(&mut buf);
        w.varint(300);
        assert!(!w.overflow);
        w.u8(1);
        assert!(w.overflow);
        assert_eq!(w.pos, 2);
    }
}
