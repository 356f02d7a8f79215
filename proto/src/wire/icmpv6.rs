//! ICMPv6 header, with the neighbour-discovery target of NS/NA messages.

use super::{check_len, read_array, read_u16, read_u8, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ_NO: Field = 6..8;
    /// Neighbour solicitation / advertisement.
    pub const TARGET: Field = 8..24;
}

pub const HEADER_LEN: usize = field::SEQ_NO.end;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;

/// Destination unreachable, packet too big, time exceeded, parameter problem: they quote
/// the offending IPv6 packet after the 8-byte header.
pub fn is_error_type(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose 8-byte header is present; an NS/NA target may still be cut
    /// (compare [`Packet::header_len`] with the buffer).
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

    /// Echo request/reply.
    pub fn has_ident(&self) -> bool {
        matches!(self.msg_type(), 128 | 129)
    }

    /// See [`is_error_type`].
    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    pub fn is_neighbor_discovery(&self) -> bool {
        matches!(self.msg_type(), NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT)
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

    /// Header bytes this decoder reads: 24 for NS/NA (the target), 8 otherwise.
    pub fn header_len(&self) -> usize {
        if self.is_neighbor_discovery() {
            field::TARGET.end
        } else {
            HEADER_LEN
        }
    }

    /// The NS/NA target address, when the message is one and the address is present.
    pub fn nd_target(&self) -> Option<[u8; 16]> {
        let present = self.buffer.as_ref().len() >= field::TARGET.end;
        (self.is_neighbor_discovery() && present)
            .then(|| read_array(self.buffer.as_ref(), field::TARGET.start))
    }

    pub fn layer(&self) -> Layer {
        Layer::Icmpv6 {
            ty: self.msg_type(),
            code: self.code(),
            checksum: self.checksum(),
            id: self.ident(),
            seq: self.seq_no(),
            nd_target: self.nd_target(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const NEIGHBOR_SOLICITATION: [u8; 24] = [
        0x87, 0x00, 0x12, 0x34, 0, 0, 0, 0, // type 135, reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01,
    ];

    #[test]
    fn neighbor_solicitation_has_target() {
        let p = Packet::new_checked(&NEIGHBOR_SOLICITATION[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        let target = p.nd_target().unwrap();
        assert_eq!((target[0], target[15]), (0xfe, 0x01));
        // Cut before the end of the target: the message is there, the target is not.
        let cut = Packet::new_checked(&NEIGHBOR_SOLICITATION[..20]).unwrap();
        assert_eq!(cut.nd_target(), None);
    }

    #[test]
    fn echo_and_errors() {
        let echo = [0x80, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02];
        let p = Packet::new_checked(&echo[..]).unwrap();
        assert_eq!(
            (p.ident(), p.seq_no(), p.is_error(), p.nd_target()),
            (7, 2, false, None)
        );
        let too_big = [0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xdc];
        let p = Packet::new_checked(&too_big[..]).unwrap();
        assert!(p.is_error());
        assert_eq!((p.ident(), p.header_len()), (0, 8));
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Packet::new_checked(&[128u8, 0][..]).unwrap_err(),
            Error::Truncated { needed: 8, had: 2 }
        );
    }
}
