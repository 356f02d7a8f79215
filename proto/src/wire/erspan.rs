//! ERSPAN headers inside GRE: type II (protocol 0x88be, 8 bytes) and type III (0x22eb,
//! 12 bytes + an 8-byte platform subheader when O is set). An Ethernet frame follows.
//! Type I also uses 0x88be but has no header: it is the GRE without a sequence number.

use super::{check_len, read_u16, read_u8, Result};

mod field {
    use crate::wire::Field;
    pub const VER_VLAN: Field = 0..2;
    pub const SESSION: Field = 2..4;
    /// Type III: the last byte holds the O (optional subheader) flag in bit 0.
    pub const FLAGS3: usize = 11;
}

pub const TYPE2_LEN: usize = 8;
pub const TYPE3_LEN: usize = 12;
const PLATFORM_SUBHEADER_LEN: usize = 8;

/// A view of an ERSPAN type II or III header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    type3: bool,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T, type3: bool) -> Header<T> {
        Header { buffer, type3 }
    }

    pub fn new_checked(buffer: T, type3: bool) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer, type3);
        check_len(
            header.buffer.as_ref(),
            if type3 { TYPE3_LEN } else { TYPE2_LEN },
        )?;
        check_len(header.buffer.as_ref(), header.header_len())?;
        Ok(header)
    }

    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_VLAN.start) >> 4
    }

    pub fn session_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SESSION) & 0x03ff
    }

    pub fn header_len(&self) -> usize {
        if !self.type3 {
            TYPE2_LEN
        } else if read_u8(self.buffer.as_ref(), field::FLAGS3) & 1 != 0 {
            TYPE3_LEN + PLATFORM_SUBHEADER_LEN
        } else {
            TYPE3_LEN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn type2_and_type3_lengths() {
        let t2 = [0x10, 0x0a, 0x00, 0x64, 0, 0, 0, 0];
        let h = Header::new_checked(&t2[..], false).unwrap();
        assert_eq!((h.version(), h.session_id(), h.header_len()), (1, 100, 8));
        let mut t3 = [0u8; 20];
        t3[0] = 0x20;
        assert_eq!(Header::new_checked(&t3[..], true).unwrap().header_len(), 12);
        t3[11] = 0x01;
        assert_eq!(Header::new_checked(&t3[..], true).unwrap().header_len(), 20);
        assert_eq!(
            Header::new_checked(&t3[..16], true).unwrap_err(),
            Error::Truncated {
                needed: 20,
                had: 16
            }
        );
    }
}
