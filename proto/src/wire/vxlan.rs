//! VXLAN header (RFC 7348): flags, 24-bit VNI; an Ethernet frame follows.

use super::{check_len, read_u24, read_u8, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const VNI: Field = 4..7;
    pub const RESERVED: usize = 7;
}

pub const HEADER_LEN: usize = field::RESERVED + 1;

/// The I flag: the VNI is valid.
pub const FLAG_VNI: u8 = 0x08;

/// A view of a VXLAN header.
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

    pub fn flags(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::FLAGS)
    }

    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI)
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Vxlan {
            flags: self.flags(),
            vni: self.vni(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn reads_vni() {
        let h = [0x08, 0, 0, 0, 0x00, 0x13, 0x89, 0x00];
        assert_eq!(
            Header::new_checked(&h[..]).unwrap().layer(),
            Layer::Vxlan {
                flags: FLAG_VNI,
                vni: 5001
            }
        );
        assert_eq!(
            Header::new_checked(&h[..7]).unwrap_err(),
            Error::Truncated { needed: 8, had: 7 }
        );
    }
}
