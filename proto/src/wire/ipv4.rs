//! IPv4 header, options included in its length.

use super::{check_len, read_array, read_u16, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};
use crate::types::IpProto;

mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// The header without options.
pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose fixed 20 bytes are present and consistent: version 4, IHL >= 5 and a
    /// total length (when not 0, which segmentation offload leaves) covering the header.
    /// Options may still be cut short: compare [`Packet::header_len`] with the buffer.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), MIN_HEADER_LEN)?;
        if packet.version() != 4 {
            return Err(Error::Invalid(Invalid::IpVersion(packet.version())));
        }
        if packet.header_len() < MIN_HEADER_LEN {
            return Err(Error::Invalid(Invalid::Ipv4HeaderLen(
                packet.header_len() as u8
            )));
        }
        let total = packet.total_len();
        if total != 0 && usize::from(total) < packet.header_len() {
            return Err(Error::Invalid(Invalid::Ipv4TotalLen(total)));
        }
        Ok(packet)
    }

    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL * 4), at most 60.
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    pub fn tos(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TOS)
    }

    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Raw 13-bit fragment offset, in units of 8 bytes.
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff
    }

    pub fn ttl(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TTL)
    }

    pub fn protocol(&self) -> IpProto {
        IpProto(read_u8(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src_addr(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    pub fn dst_addr(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    pub fn layer(&self) -> Layer {
        Layer::Ipv4 {
            src: self.src_addr(),
            dst: self.dst_addr(),
            hdr_len: self.header_len() as u8,
            tos: self.tos(),
            total_len: self.total_len(),
            id: self.ident(),
            df: self.dont_frag(),
            mf: self.more_frags(),
            frag_offset: self.frag_offset(),
            ttl: self.ttl(),
            proto: self.protocol(),
            checksum: self.checksum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.168.1.1 -> 192.168.1.102, UDP, id 0x3711, ttl 64, DF, one Router Alert option.
    const WITH_OPTION: [u8; 24] = [
        0x46, 0x00, 0x00, 0x20, 0x37, 0x11, 0x40, 0x00, 0x40, 0x11, 0x12, 0x34, //
        192, 168, 1, 1, 192, 168, 1, 102, 0x94, 0x04, 0x00, 0x00,
    ];

    #[test]
    fn reads_fields_and_options_length() {
        let p = Packet::new_checked(&WITH_OPTION[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x3711);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProto::UDP);
        assert_eq!(p.src_addr(), [192, 168, 1, 1]);
        assert_eq!(p.dst_addr(), [192, 168, 1, 102]);
    }

    #[test]
    fn reads_fragment_fields() {
        let mut bytes = WITH_OPTION;
        bytes[6..8].copy_from_slice(&0x20b9u16.to_be_bytes()); // MF, offset 185
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 185);
    }

    #[test]
    fn rejects_bad_version_ihl_and_total_length() {
        let mut bytes = WITH_OPTION;
        bytes[0] = 0x06;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::IpVersion(0))
        );
        bytes[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::Ipv4HeaderLen(16))
        );
        bytes[0] = 0x4f;
        bytes[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::Ipv4TotalLen(20))
        );
    }

    #[test]
    fn zero_total_length_is_accepted() {
        let mut bytes = WITH_OPTION;
        bytes[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().total_len(), 0);
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Packet::new_checked(&WITH_OPTION[..19]).unwrap_err(),
            Error::Truncated {
                needed: 20,
                had: 19
            }
        );
    }
}
