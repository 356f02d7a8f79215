//! IPv6 extension headers: hop-by-hop, routing, fragment, destination options, mobility, AH.
//! All start with (next header, length); the length unit differs per kind.

use super::{check_len, read_u16, read_u32, read_u8, Result};
use crate::layer::{Ipv6Frag, Layer};
use crate::types::IpProto;

mod field {
    use crate::wire::Field;
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    /// Fragment header only.
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
}

/// Every extension header is at least 8 bytes.
pub const MIN_HEADER_LEN: usize = 8;

/// Is `proto` an extension header this module walks?
pub fn is_extension(proto: IpProto) -> bool {
    matches!(
        proto,
        IpProto::HOPOPT
            | IpProto::ROUTING
            | IpProto::FRAGMENT
            | IpProto::DSTOPTS
            | IpProto::MOBILITY
            | IpProto::AH
    )
}

/// A view of one extension header of kind `kind` (the previous header's next-header value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    kind: IpProto,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T, kind: IpProto) -> Header<T> {
        Header { buffer, kind }
    }

    /// A view whose whole header (by its own length field) is present.
    pub fn new_checked(buffer: T, kind: IpProto) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer, kind);
        check_len(header.buffer.as_ref(), MIN_HEADER_LEN)?;
        check_len(header.buffer.as_ref(), header.header_len())?;
        Ok(header)
    }

    pub fn kind(&self) -> IpProto {
        self.kind
    }

    pub fn next_header(&self) -> IpProto {
        IpProto(read_u8(self.buffer.as_ref(), field::NXT_HDR))
    }

    /// Length in bytes: AH counts 4-byte words minus 2, Fragment is always 8, the rest
    /// count 8-byte units minus 1.
    pub fn header_len(&self) -> usize {
        let len = usize::from(read_u8(self.buffer.as_ref(), field::LENGTH));
        match self.kind {
            IpProto::FRAGMENT => MIN_HEADER_LEN,
            IpProto::AH => (len + 2) * 4,
            _ => (len + 1) * 8,
        }
    }

    /// The fragment fields, for a Fragment header.
    pub fn frag(&self) -> Option<Ipv6Frag> {
        if self.kind != IpProto::FRAGMENT {
            return None;
        }
        let off_m = read_u16(self.buffer.as_ref(), field::FRAG_OFF_M);
        Some(Ipv6Frag {
            offset: off_m >> 3,
            more: off_m & 1 != 0,
            ident: read_u32(self.buffer.as_ref(), field::FRAG_IDENT),
        })
    }

    pub fn layer(&self) -> Layer {
        Layer::Ipv6Ext {
            kind: self.kind,
            next_header: self.next_header(),
            len: self.header_len() as u16,
            frag: self.frag(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn hop_by_hop_counts_eight_byte_units() {
        // Next TCP, length 0 (8 bytes), Jumbo Payload option 0x0001_3880.
        let hbh = [0x06, 0x00, 0xc2, 0x04, 0x00, 0x01, 0x38, 0x80];
        let h = Header::new_checked(&hbh[..], IpProto::HOPOPT).unwrap();
        assert_eq!(h.header_len(), 8);
        assert_eq!(h.next_header(), IpProto::TCP);
        assert_eq!(h.frag(), None);
    }

    #[test]
    fn fragment_fields() {
        // Next UDP, offset 0x123 (8-byte units), M set, ident 0xd6b1.
        let frag = [0x11, 0x00, 0x09, 0x19, 0x00, 0x00, 0xd6, 0xb1];
        let h = Header::new_checked(&frag[..], IpProto::FRAGMENT).unwrap();
        assert_eq!(
            h.frag(),
            Some(Ipv6Frag {
                offset: 0x123,
                more: true,
                ident: 0xd6b1
            })
        );
        assert_eq!(h.header_len(), 8);
    }

    #[test]
    fn ah_counts_four_byte_units() {
        let mut ah = [0u8; 24];
        ah[0] = 0x06;
        ah[1] = 4; // (4 + 2) * 4 = 24
        assert_eq!(
            Header::new_checked(&ah[..], IpProto::AH)
                .unwrap()
                .header_len(),
            24
        );
    }

    #[test]
    fn routing_header_longer_than_buffer_is_truncated() {
        let rh = [0x11, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Header::new_checked(&rh[..], IpProto::ROUTING).unwrap_err(),
            Error::Truncated {
                needed: 24,
                had: 10
            }
        );
        assert_eq!(
            Header::new_checked(&rh[..5], IpProto::ROUTING).unwrap_err(),
            Error::Truncated { needed: 8, had: 5 }
        );
    }
}
