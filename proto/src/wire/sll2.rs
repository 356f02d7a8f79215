//! Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): 20 bytes, with the interface index.

use super::sll::link_addr;
use super::{check_len, read_u16, read_u32, read_u8, Result};
use crate::layer::Layer;
use crate::types::{EtherType, Mac, PacketType};

mod field {
    use crate::wire::Field;
    pub const PROTOCOL: Field = 0..2;
    pub const IFINDEX: Field = 4..8;
    pub const HATYPE: Field = 8..10;
    pub const PKTTYPE: usize = 10;
    pub const ADDR_LEN: usize = 11;
    pub const ADDR: Field = 12..20;
}

pub const HEADER_LEN: usize = field::ADDR.end;

/// A view of an SLL2 header.
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
        check_len(header.buffer.as_ref(), HEADER_LEN)?;
        Ok(header)
    }

    pub fn protocol(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn ifindex(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::IFINDEX)
    }

    pub fn hatype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HATYPE)
    }

    pub fn pkttype(&self) -> PacketType {
        PacketType(read_u8(self.buffer.as_ref(), field::PKTTYPE))
    }

    pub fn addr_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::ADDR_LEN)
    }

    pub fn addr(&self) -> Mac {
        link_addr(
            self.buffer.as_ref(),
            field::ADDR.start,
            usize::from(self.addr_len()),
        )
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Sll2 {
            protocol: self.protocol(),
            ifindex: self.ifindex(),
            hatype: self.hatype(),
            pkttype: self.pkttype(),
            addr: self.addr(),
            addr_len: self.addr_len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const BROADCAST_ARP: [u8; 20] = [
        0x08, 0x06, // ARP
        0x00, 0x00, // reserved
        0x00, 0x00, 0x00, 0x03, // ifindex 3
        0x00, 0x01, // ARPHRD_ETHER
        0x01, // broadcast
        0x06, // address length
        0x52, 0x54, 0x00, 0x12, 0x35, 0x02, 0x00, 0x00,
    ];

    #[test]
    fn reads_fields() {
        let h = Header::new_checked(&BROADCAST_ARP[..]).unwrap();
        assert_eq!(h.protocol(), EtherType::ARP);
        assert_eq!(h.ifindex(), 3);
        assert_eq!(h.hatype(), 1);
        assert_eq!(h.pkttype(), PacketType::BROADCAST);
        assert_eq!(h.addr(), Mac([0x52, 0x54, 0x00, 0x12, 0x35, 0x02]));
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Header::new_checked(&BROADCAST_ARP[..19]).unwrap_err(),
            Error::Truncated {
                needed: 20,
                had: 19
            }
        );
    }
}
