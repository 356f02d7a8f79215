//! IPv6 fixed header (40 bytes); extension headers are in [`super::ipv6ext`].

use super::{check_len, read_array, read_u16, read_u32, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};
use crate::types::IpProto;

mod field {
    use crate::wire::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose 40-byte header is present and says version 6.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), HEADER_LEN)?;
        if packet.version() != 6 {
            return Err(Error::Invalid(Invalid::IpVersion(packet.version())));
        }
        Ok(packet)
    }

    fn ver_tc_flow(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Bytes after the fixed header; 0 with a Jumbo Payload option (BIG TCP).
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn next_header(&self) -> IpProto {
        IpProto(read_u8(self.buffer.as_ref(), field::NXT_HDR))
    }

    pub fn hop_limit(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    pub fn src_addr(&self) -> [u8; 16] {
        read_array(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        read_array(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Ipv6 {
            src: self.src_addr(),
            dst: self.dst_addr(),
            traffic_class: self.traffic_class(),
            flow_label: self.flow_label(),
            payload_len: self.payload_len(),
            next_header: self.next_header(),
            hop_limit: self.hop_limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: [u8; 40] = [
        0x60, 0x12, 0x34, 0x56, 0x00, 0x25, 0x11,
        0x40, // tc 0x01, flow 0x23456, plen 37, UDP, hlim 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // 2001:db8::1
        0x26, 0x20, 0x00, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, // 2620:fe::9
    ];

    #[test]
    fn reads_fields() {
        let p = Packet::new_checked(&UDP[..]).unwrap();
        assert_eq!(p.traffic_class(), 0x01);
        assert_eq!(p.flow_label(), 0x23456);
        assert_eq!(p.payload_len(), 37);
        assert_eq!(p.next_header(), IpProto::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(p.dst_addr()[15], 9);
    }

    #[test]
    fn rejects_other_versions_and_short_headers() {
        let mut bytes = UDP;
        bytes[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::IpVersion(4))
        );
        assert_eq!(
            Packet::new_checked(&UDP[..39]).unwrap_err(),
            Error::Truncated {
                needed: 40,
                had: 39
            }
        );
    }
}
