//! UDP header.

use super::{check_len, read_u16, Error, Result};
use crate::layer::{Invalid, Layer};

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose header is present and whose length field covers at least the header
    /// (0 is accepted: segmentation offload and IPv6 jumbograms leave it so).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), HEADER_LEN)?;
        let len = packet.len();
        if len != 0 && usize::from(len) < HEADER_LEN {
            return Err(Error::Invalid(Invalid::UdpLength(len)));
        }
        Ok(packet)
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header + payload.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Udp {
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            length: self.len(),
            checksum: self.checksum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        let dns = [0x30, 0x39, 0x00, 0x35, 0x00, 0x25, 0x12, 0x34, 0xab];
        let p = Packet::new_checked(&dns[..]).unwrap();
        assert_eq!(
            p.layer(),
            Layer::Udp {
                src_port: 12345,
                dst_port: 53,
                length: 37,
                checksum: 0x1234
            }
        );
    }

    #[test]
    fn rejects_length_below_header_and_short_header() {
        let bad = [0, 1, 0, 2, 0x00, 0x07, 0, 0];
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Invalid(Invalid::UdpLength(7))
        );
        assert_eq!(
            Packet::new_checked(&bad[..4]).unwrap_err(),
            Error::Truncated { needed: 8, had: 4 }
        );
    }
}
