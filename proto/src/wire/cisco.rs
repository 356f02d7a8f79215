//! Two small Cisco shims that sit between an EtherType and the next one, walked through
//! without a layer of their own:
//! - Cisco MetaData (0x8909): after an Ethernet header it is version, length, option, SGT,
//!   then the EtherType; inside GRE the EtherType comes first (as Wireshark dissects it).
//! - VN-Tag (0x8926): a 4-byte tag, then the EtherType.

use super::{check_len, read_u16, Result};
use crate::types::EtherType;

pub const METADATA: EtherType = EtherType(0x8909);
pub const VNTAG: EtherType = EtherType(0x8926);

/// Which shim, and so where its EtherType is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimKind {
    MetaData,
    MetaDataInGre,
    VnTag,
}

impl ShimKind {
    fn len(self) -> usize {
        match self {
            ShimKind::MetaData | ShimKind::MetaDataInGre => 8,
            ShimKind::VnTag => 6,
        }
    }

    fn ethertype_at(self) -> usize {
        match self {
            ShimKind::MetaData => 6,
            ShimKind::MetaDataInGre => 0,
            ShimKind::VnTag => 4,
        }
    }
}

/// A view of either shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shim<T: AsRef<[u8]>> {
    buffer: T,
    kind: ShimKind,
}

impl<T: AsRef<[u8]>> Shim<T> {
    pub const fn new_unchecked(buffer: T, kind: ShimKind) -> Shim<T> {
        Shim { buffer, kind }
    }

    pub fn new_checked(buffer: T, kind: ShimKind) -> Result<Shim<T>> {
        let shim = Shim::new_unchecked(buffer, kind);
        check_len(shim.buffer.as_ref(), kind.len())?;
        Ok(shim)
    }

    /// What follows the shim.
    pub fn ethertype(&self) -> EtherType {
        let at = self.kind.ethertype_at();
        EtherType(read_u16(self.buffer.as_ref(), at..at + 2))
    }

    pub fn header_len(&self) -> usize {
        self.kind.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn metadata_in_ethernet_and_in_gre() {
        let cmd = [0x01, 0x01, 0x00, 0x01, 0x00, 0x02, 0x08, 0x00];
        let s = Shim::new_checked(&cmd[..], ShimKind::MetaData).unwrap();
        assert_eq!((s.ethertype(), s.header_len()), (EtherType::IPV4, 8));
        let in_gre = [0x08, 0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00];
        let s = Shim::new_checked(&in_gre[..], ShimKind::MetaDataInGre).unwrap();
        assert_eq!((s.ethertype(), s.header_len()), (EtherType::IPV4, 8));
    }

    #[test]
    fn vntag() {
        let vntag = [0x80, 0x01, 0x00, 0x02, 0x81, 0x00];
        let s = Shim::new_checked(&vntag[..], ShimKind::VnTag).unwrap();
        assert_eq!((s.ethertype(), s.header_len()), (EtherType::VLAN, 6));
        assert_eq!(
            Shim::new_checked(&vntag[..5], ShimKind::VnTag).unwrap_err(),
            Error::Truncated { needed: 6, had: 5 }
        );
    }
}
