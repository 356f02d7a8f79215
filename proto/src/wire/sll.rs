//! Linux cooked capture v1 (LINKTYPE_LINUX_SLL): 16 bytes before the network header.

use super::{check_len, read_array, read_u16, Result};
use crate::layer::Layer;
use crate::types::{EtherType, Mac, PacketType};

mod field {
    use crate::wire::Field;
    pub const PKTTYPE: Field = 0..2;
    pub const HATYPE: Field = 2..4;
    pub const ADDR_LEN: Field = 4..6;
    pub const ADDR: Field = 6..14;
    pub const PROTOCOL: Field = 14..16;
}

pub const HEADER_LEN: usize = field::PROTOCOL.end;

/// A view of an SLL header.
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

    pub fn pkttype(&self) -> PacketType {
        // The field is 16 bits on the wire; every defined value fits in 8.
        PacketType(read_u16(self.buffer.as_ref(), field::PKTTYPE) as u8)
    }

    pub fn hatype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HATYPE)
    }

    pub fn addr_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ADDR_LEN)
    }

    /// The first 6 address bytes when the address is at least that long (a MAC), else zeros.
    pub fn addr(&self) -> Mac {
        link_addr(
            self.buffer.as_ref(),
            field::ADDR.start,
            usize::from(self.addr_len()),
        )
    }

    pub fn protocol(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Sll {
            pkttype: self.pkttype(),
            hatype: self.hatype(),
            addr: self.addr(),
            addr_len: self.addr_len(),
            protocol: self.protocol(),
        }
    }
}

/// A MAC from an SLL/SLL2 address field: only a 6-byte-or-longer address is a MAC.
pub(crate) fn link_addr(buf: &[u8], at: usize, len: usize) -> Mac {
    if len >= 6 {
        Mac(read_array(buf, at))
    } else {
        Mac::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const OUTGOING_IPV4: [u8; 16] = [
        0x00, 0x04, // outgoing
        0x00, 0x01, // ARPHRD_ETHER
        0x00, 0x06, // address length
        0x00, 0x1c, 0x42, 0x00, 0x00, 0x08, 0x00, 0x00, // address + padding
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn reads_fields() {
        let h = Header::new_checked(&OUTGOING_IPV4[..]).unwrap();
        assert_eq!(h.pkttype(), PacketType::OUTGOING);
        assert_eq!(h.hatype(), 1);
        assert_eq!(h.addr(), Mac([0x00, 0x1c, 0x42, 0x00, 0x00, 0x08]));
        assert_eq!(h.protocol(), EtherType::IPV4);
    }

    #[test]
    fn short_address_is_not_a_mac() {
        let mut bytes = OUTGOING_IPV4;
        bytes[5] = 4;
        assert_eq!(
            Header::new_checked(&bytes[..]).unwrap().addr(),
            Mac::default()
        );
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Header::new_checked(&OUTGOING_IPV4[..15]).unwrap_err(),
            Error::Truncated {
                needed: 16,
                had: 15
            }
        );
    }
}
