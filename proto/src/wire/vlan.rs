//! IEEE 802.1Q / 802.1ad tag: the 4 bytes after a 0x8100/0x88a8/0x9100 TPID.

use super::{check_len, read_u16, Result};
use crate::layer::Layer;
use crate::types::EtherType;

mod field {
    use crate::wire::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
}

pub const HEADER_LEN: usize = field::ETHERTYPE.end;

/// A view of a VLAN tag (TCI + inner EtherType); the TPID belongs to the header before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    pub const fn new_unchecked(buffer: T) -> Tag<T> {
        Tag { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Tag<T>> {
        let tag = Tag::new_unchecked(buffer);
        check_len(tag.buffer.as_ref(), HEADER_LEN)?;
        Ok(tag)
    }

    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI)
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The layer for this tag, which followed TPID `tpid`.
    pub fn layer(&self, tpid: u16) -> Layer {
        tci_layer(tpid, self.tci(), self.ethertype(), false)
    }
}

/// A Vlan layer from a bare TCI: a tag on the wire, or one the NIC stripped (`stripped`).
pub fn tci_layer(tpid: u16, tci: u16, ethertype: EtherType, stripped: bool) -> Layer {
    Layer::Vlan {
        tpid,
        pcp: (tci >> 13) as u8,
        dei: tci & 0x1000 != 0,
        id: tci & 0x0fff,
        ethertype,
        stripped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn splits_tci() {
        // PCP 5, DEI 1, VID 0x7d1 (2001), then IPv4.
        let bytes = [0xb7, 0xd1, 0x08, 0x00];
        let tag = Tag::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            tag.layer(0x8100),
            Layer::Vlan {
                tpid: 0x8100,
                pcp: 5,
                dei: true,
                id: 2001,
                ethertype: EtherType::IPV4,
                stripped: false
            }
        );
    }

    #[test]
    fn short_tag_is_truncated() {
        assert_eq!(
            Tag::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated { needed: 4, had: 3 }
        );
    }
}
