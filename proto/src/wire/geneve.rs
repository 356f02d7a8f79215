//! Geneve header (RFC 8926): version, option length, O/C flags, protocol, VNI, options.

use super::{check_len, read_u16, read_u24, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};
use crate::types::EtherType;

mod field {
    use crate::wire::Field;
    pub const VER_OPT_LEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    pub const VNI: Field = 4..7;
}

/// The header without options.
pub const MIN_HEADER_LEN: usize = 8;

/// A view of a Geneve header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// A view whose fixed 8 bytes are present with version 0; options may still be cut
    /// (compare [`Header::header_len`] with the buffer).
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer);
        check_len(header.buffer.as_ref(), MIN_HEADER_LEN)?;
        if header.version() != 0 {
            return Err(Error::Invalid(Invalid::GeneveVersion(header.version())));
        }
        Ok(header)
    }

    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_OPT_LEN) >> 6
    }

    /// Option length in 4-byte words.
    pub fn opt_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_OPT_LEN) & 0x3f
    }

    pub fn oam(&self) -> bool {
        read_u8(self.buffer.as_ref(), field::FLAGS) & 0x80 != 0
    }

    pub fn critical(&self) -> bool {
        read_u8(self.buffer.as_ref(), field::FLAGS) & 0x40 != 0
    }

    /// What follows: 0x6558 (Ethernet), 0x0800, 0x86dd...
    pub fn protocol(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PROTOCOL))
    }

    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI)
    }

    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN + usize::from(self.opt_len()) * 4
    }

    pub fn layer(&self) -> Layer {
        Layer::Geneve {
            version: self.version(),
            opt_len: self.opt_len(),
            oam: self.oam(),
            critical: self.critical(),
            protocol: self.protocol(),
            vni: self.vni(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Option length 2 words, critical, Ethernet, VNI 10, one 8-byte option.
    const WITH_OPTION: [u8; 16] = [
        0x02, 0x40, 0x65, 0x58, 0x00, 0x00, 0x0a, 0x00, 0x01, 0x02, 0x80, 0x01, 0, 0, 0, 1,
    ];

    #[test]
    fn reads_fields_and_option_length() {
        let h = Header::new_checked(&WITH_OPTION[..]).unwrap();
        assert_eq!(h.header_len(), 16);
        assert_eq!(
            h.layer(),
            Layer::Geneve {
                version: 0,
                opt_len: 2,
                oam: false,
                critical: true,
                protocol: EtherType::TEB,
                vni: 10
            }
        );
    }

    #[test]
    fn rejects_other_versions_and_short_headers() {
        let mut bytes = WITH_OPTION;
        bytes[0] = 0x40;
        assert_eq!(
            Header::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::GeneveVersion(1))
        );
        assert_eq!(
            Header::new_checked(&WITH_OPTION[..6]).unwrap_err(),
            Error::Truncated { needed: 8, had: 6 }
        );
    }
}
