//! ARP / RARP: a fixed 8-byte part, then sender and target addresses of the given lengths.

use super::{check_len, read_array, read_u16, read_u8, Result};
use crate::layer::Layer;
use crate::types::Mac;

mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const ADDRESSES: usize = 8;
}

/// The fixed part: everything up to the addresses.
pub const FIXED_LEN: usize = field::ADDRESSES;

/// A view of an ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose fixed part is present; the addresses may still be cut
    /// (compare [`Packet::header_len`] with the buffer).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), FIXED_LEN)?;
        Ok(packet)
    }

    pub fn htype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    pub fn ptype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    pub fn hlen(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HLEN)
    }

    pub fn plen(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PLEN)
    }

    pub fn op(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Fixed part plus both address pairs.
    pub fn header_len(&self) -> usize {
        FIXED_LEN + 2 * (usize::from(self.hlen()) + usize::from(self.plen()))
    }

    /// Ethernet/IPv4 ARP: the only shape whose addresses the layer carries.
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hlen() == 6 && self.plen() == 4
    }

    pub fn layer(&self) -> Layer {
        let buf = self.buffer.as_ref();
        let full = self.is_ethernet_ipv4() && buf.len() >= self.header_len();
        let at = |offset: usize| FIXED_LEN + offset;
        let (sha, spa, tha, tpa) = if full {
            (
                Mac(read_array(buf, at(0))),
                read_array(buf, at(6)),
                Mac(read_array(buf, at(10))),
                read_array(buf, at(16)),
            )
        } else {
            (Mac::default(), [0; 4], Mac::default(), [0; 4])
        };
        Layer::Arp {
            htype: self.htype(),
            ptype: self.ptype(),
            op: self.op(),
            sha,
            spa,
            tha,
            tpa,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x00, 0x20, 0xd2, 0x5a, 0xfb, 0x3f, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    #[test]
    fn reads_ethernet_ipv4_addresses() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.header_len(), 28);
        assert_eq!(
            p.layer(),
            Layer::Arp {
                htype: 1,
                ptype: 0x0800,
                op: 1,
                sha: Mac([0x00, 0x20, 0xd2, 0x5a, 0xfb, 0x3f]),
                spa: [10, 0, 0, 1],
                tha: Mac::default(),
                tpa: [10, 0, 0, 2],
            }
        );
    }

    #[test]
    fn odd_lengths_keep_op_and_zero_addresses() {
        let mut bytes = REQUEST;
        bytes[4] = 0x30; // hardware length 48: addresses run far past the buffer
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.header_len(), 8 + 2 * (48 + 4));
        match p.layer() {
            Layer::Arp { op, spa, .. } => assert_eq!((op, spa), (1, [0; 4])),
            other => panic!("not arp: {other:?}"),
        }
    }

    #[test]
    fn short_fixed_part_is_truncated() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated { needed: 8, had: 7 }
        );
    }
}
