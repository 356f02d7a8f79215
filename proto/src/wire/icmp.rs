//! ICMP (v4) header: type, code, checksum and the 4-byte "rest of header".

use super::{check_len, read_u16, read_u8, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ_NO: Field = 6..8;
}

pub const HEADER_LEN: usize = field::SEQ_NO.end;

/// Error messages quote the offending IP header (+ at least 8 bytes) after the header:
/// destination unreachable, source quench, redirect, time exceeded, parameter problem.
pub fn is_error_type(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// A view of an ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), HEADER_LEN)?;
        Ok(packet)
    }

    pub fn msg_type(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TYPE)
    }

    pub fn code(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::CODE)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo, timestamp, information and address-mask messages carry an identifier and a
    /// sequence number in the rest of the header.
    pub fn has_ident(&self) -> bool {
        matches!(self.msg_type(), 0 | 8 | 13..=18)
    }

    /// See [`is_error_type`].
    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    pub fn ident(&self) -> u16 {
        if self.has_ident() {
            read_u16(self.buffer.as_ref(), field::IDENT)
        } else {
            0
        }
    }

    pub fn seq_no(&self) -> u16 {
        if self.has_ident() {
            read_u16(self.buffer.as_ref(), field::SEQ_NO)
        } else {
            0
        }
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Icmp {
            ty: self.msg_type(),
            code: self.code(),
            checksum: self.checksum(),
            id: self.ident(),
            seq: self.seq_no(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn echo_request_has_ident_and_seq() {
        let echo = [0x08, 0x00, 0xab, 0xcd, 0xa6, 0xeb, 0x00, 0x10];
        let p = Packet::new_checked(&echo[..]).unwrap();
        assert_eq!(
            p.layer(),
            Layer::Icmp {
                ty: 8,
                code: 0,
                checksum: 0xabcd,
                id: 42731,
                seq: 16
            }
        );
        assert!(!p.is_error());
    }

    #[test]
    fn port_unreachable_is_an_error_without_ident() {
        let unreach = [0x03, 0x03, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];
        let p = Packet::new_checked(&unreach[..]).unwrap();
        assert!(p.is_error());
        assert_eq!((p.ident(), p.seq_no()), (0, 0));
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Packet::new_checked(&[8u8, 0, 0][..]).unwrap_err(),
            Error::Truncated { needed: 8, had: 3 }
        );
    }
}
