//! Two small Cisco shims that sit between an EtherType and the next one: Cisco MetaData
//! (0x8909: version, length, option, SGT, EtherType) and VN-Tag (0x8926: 4-byte tag,
//! EtherType). The decoder walks through them without a layer of their own.

use super::{check_len, read_u16, Result};
use crate::types::EtherType;

pub const METADATA: EtherType = EtherType(0x8909);
pub const VNTAG: EtherType = EtherType(0x8926);

const METADATA_LEN: usize = 8;
const VNTAG_LEN: usize = 6;

/// A view of either shim: its length, and the EtherType in its last two bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shim<T: AsRef<[u8]>> {
    buffer: T,
    len: usize,
}

impl<T: AsRef<[u8]>> Shim<T> {
    /// `kind` is [`METADATA`] or [`VNTAG`]; anything else is treated as a VN-Tag.
    pub fn new_unchecked(buffer: T, kind: EtherType) -> Shim<T> {
        let len = if kind == METADATA {
            METADATA_LEN
        } else {
            VNTAG_LEN
        };
        Shim { buffer, len }
    }

    pub fn new_checked(buffer: T, kind: EtherType) -> Result<Shim<T>> {
        let shim = Shim::new_unchecked(buffer, kind);
        check_len(shim.buffer.as_ref(), shim.len)?;
        Ok(shim)
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), self.len - 2..self.len))
    }

    pub fn header_len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn metadata_and_vntag() {
        let cmd = [0x01, 0x01, 0x00, 0x01, 0x00, 0x02, 0x08, 0x00];
        let s = Shim::new_checked(&cmd[..], METADATA).unwrap();
        assert_eq!((s.ethertype(), s.header_len()), (EtherType::IPV4, 8));
        let vntag = [0x80, 0x01, 0x00, 0x02, 0x81, 0x00];
        let s = Shim::new_checked(&vntag[..], VNTAG).unwrap();
        assert_eq!((s.ethertype(), s.header_len()), (EtherType::VLAN, 6));
        assert_eq!(
            Shim::new_checked(&vntag[..5], VNTAG).unwrap_err(),
            Error::Truncated { needed: 6, had: 5 }
        );
    }
}
