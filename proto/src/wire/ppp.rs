//! A bare PPP header as carried in GRE (PPTP): optional address/control bytes (0xff 0x03)
//! and a protocol field of 1 byte (compressed, odd) or 2 bytes.

use super::{check_len, read_u16, read_u8, Result};

/// A view of a PPP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer);
        check_len(header.buffer.as_ref(), header.proto_at() + 1)?;
        check_len(header.buffer.as_ref(), header.header_len())?;
        Ok(header)
    }

    /// Where the protocol field starts: after 0xff 0x03 unless they were compressed away.
    fn proto_at(&self) -> usize {
        let buf = self.buffer.as_ref();
        if read_u8(buf, 0) == 0xff && read_u8(buf, 1) == 0x03 {
            2
        } else {
            0
        }
    }

    fn compressed(&self) -> bool {
        read_u8(self.buffer.as_ref(), self.proto_at()) & 1 == 1
    }

    pub fn protocol(&self) -> u16 {
        let at = self.proto_at();
        if self.compressed() {
            u16::from(read_u8(self.buffer.as_ref(), at))
        } else {
            read_u16(self.buffer.as_ref(), at..at + 2)
        }
    }

    pub fn header_len(&self) -> usize {
        self.proto_at() + if self.compressed() { 1 } else { 2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn full_and_compressed_forms() {
        let full = [0xff, 0x03, 0xc0, 0x21];
        let h = Header::new_checked(&full[..]).unwrap();
        assert_eq!((h.protocol(), h.header_len()), (0xc021, 4));
        let compressed = [0x21, 0x45];
        let h = Header::new_checked(&compressed[..]).unwrap();
        assert_eq!((h.protocol(), h.header_len()), (0x21, 1));
        assert_eq!(
            Header::new_checked(&full[..3]).unwrap_err(),
            Error::Truncated { needed: 4, had: 3 }
        );
    }
}
