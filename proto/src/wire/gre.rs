//! GRE header: version 0 (RFC 2784/2890, with the RFC 1701 routing field) and version 1
//! (enhanced GRE of PPTP, RFC 2637, with an acknowledgement number).

use super::{check_len, read_u16, read_u32, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};
use crate::types::EtherType;

mod field {
    use crate::wire::Field;
    pub const FLAGS_VER: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    pub const OPTIONAL: usize = 4;
}

pub const MIN_HEADER_LEN: usize = field::OPTIONAL;

const FLAG_CHECKSUM: u16 = 0x8000;
const FLAG_ROUTING: u16 = 0x4000;
const FLAG_KEY: u16 = 0x2000;
const FLAG_SEQ: u16 = 0x1000;
/// Version 1 only.
const FLAG_ACK: u16 = 0x0080;

/// PPP, the payload of PPTP's enhanced GRE.
pub const PROTO_PPP: EtherType = EtherType(0x880b);

/// A view of a GRE header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// A view whose whole header (optional fields and any routing entries) is present,
    /// with version 0 or 1.
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer);
        check_len(header.buffer.as_ref(), MIN_HEADER_LEN)?;
        if header.version() > 1 {
            return Err(Error::Invalid(Invalid::GreVersion(header.version())));
        }
        header.header_len()?;
        Ok(header)
    }

    fn flags(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_VER)
    }

    fn has(&self, flag: u16) -> bool {
        self.flags() & flag != 0
    }

    pub fn version(&self) -> u8 {
        (self.flags() & 0x7) as u8
    }

    pub fn protocol(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn checksum_present(&self) -> bool {
        self.has(FLAG_CHECKSUM)
    }

    pub fn seq_present(&self) -> bool {
        self.has(FLAG_SEQ)
    }

    /// Offset of the key field: after checksum + offset/reserved when present.
    fn key_at(&self) -> usize {
        let csum = self.has(FLAG_CHECKSUM) || self.has(FLAG_ROUTING);
        field::OPTIONAL + if csum { 4 } else { 0 }
    }

    fn seq_at(&self) -> usize {
        self.key_at() + if self.has(FLAG_KEY) { 4 } else { 0 }
    }

    fn fixed_len(&self) -> usize {
        let ack = self.version() == 1 && self.has(FLAG_ACK);
        self.seq_at() + if self.has(FLAG_SEQ) { 4 } else { 0 } + if ack { 4 } else { 0 }
    }

    /// The key (version 1: payload length << 16 | call id).
    pub fn key(&self) -> Option<u32> {
        let at = self.key_at();
        self.has(FLAG_KEY)
            .then(|| read_u32(self.buffer.as_ref(), at..at + 4))
    }

    pub fn seq(&self) -> Option<u32> {
        let at = self.seq_at();
        self.has(FLAG_SEQ)
            .then(|| read_u32(self.buffer.as_ref(), at..at + 4))
    }

    /// Full header length, walking the RFC 1701 source route entries when R is set
    /// (each: family(2), offset(1), length(1), data; a zero family and length end them).
    pub fn header_len(&self) -> Result<usize> {
        let buf = self.buffer.as_ref();
        let mut len = self.fixed_len();
        check_len(buf, len)?;
        if self.version() == 0 && self.has(FLAG_ROUTING) {
            loop {
                check_len(buf, len + 4)?;
                let family = read_u16(buf, len..len + 2);
                let sre_len = usize::from(read_u8(buf, len + 3));
                len += 4 + sre_len;
                if family == 0 && sre_len == 0 {
                    break;
                }
                check_len(buf, len)?;
            }
        }
        Ok(len)
    }

    pub fn layer(&self) -> Layer {
        Layer::Gre {
            version: self.version(),
            protocol: self.protocol(),
            checksum_present: self.checksum_present(),
            key: self.key(),
            seq: self.seq(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gre_is_four_bytes() {
        let h = [0x00, 0x00, 0x08, 0x00];
        let g = Header::new_checked(&h[..]).unwrap();
        assert_eq!(g.header_len(), Ok(4));
        assert_eq!(
            g.layer(),
            Layer::Gre {
                version: 0,
                protocol: EtherType::IPV4,
                checksum_present: false,
                key: None,
                seq: None
            }
        );
    }

    #[test]
    fn checksum_key_and_sequence() {
        let h = [
            0xb0, 0x00, 0x65, 0x58, 0xaa, 0xbb, 0, 0, 0, 0, 0, 42, 0, 0, 0, 7,
        ];
        let g = Header::new_checked(&h[..]).unwrap();
        assert_eq!(g.header_len(), Ok(16));
        assert_eq!(
            (g.checksum_present(), g.key(), g.seq()),
            (true, Some(42), Some(7))
        );
        assert_eq!(
            Header::new_checked(&h[..12]).unwrap_err(),
            Error::Truncated {
                needed: 16,
                had: 12
            }
        );
    }

    #[test]
    fn pptp_version_one_with_ack() {
        // K, S, A set, version 1, PPP, payload length 0x40, call id 0x8001, seq 1, ack 2.
        let h = [
            0x30, 0x81, 0x88, 0x0b, 0x00, 0x40, 0x80, 0x01, 0, 0, 0, 1, 0, 0, 0, 2,
        ];
        let g = Header::new_checked(&h[..]).unwrap();
        assert_eq!(g.header_len(), Ok(16));
        assert_eq!(
            (g.version(), g.protocol(), g.key(), g.seq()),
            (1, PROTO_PPP, Some(0x0040_8001), Some(1))
        );
    }

    #[test]
    fn routing_entries_are_walked() {
        // R set: checksum/offset word, one SRE with 4 bytes of data, then the terminator.
        let h = [
            0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0x08, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0, 0, 0, 0,
        ];
        assert_eq!(Header::new_checked(&h[..]).unwrap().header_len(), Ok(20));
        assert_eq!(
            Header::new_checked(&h[..18]).unwrap_err(),
            Error::Truncated {
                needed: 20,
                had: 18
            }
        );
    }

    #[test]
    fn rejects_unknown_versions() {
        let h = [0x00, 0x02, 0x08, 0x00];
        assert_eq!(
            Header::new_checked(&h[..]).unwrap_err(),
            Error::Invalid(Invalid::GreVersion(2))
        );
    }
}
