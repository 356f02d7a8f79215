//! BSD loopback header (LINKTYPE_NULL, LINKTYPE_LOOP): a 4-byte address family.
//! NULL stores it in the capturing host's byte order and LOOP in network order, so the
//! value is read in whichever order gives a small number.

use super::{check_len, read_array, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const FAMILY: Field = 0..4;
}

pub const HEADER_LEN: usize = field::FAMILY.end;

pub const AF_INET: u32 = 2;
/// AF_INET6 differs between systems: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
pub const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// What a family word says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
    Other(u32),
}

/// A view of a loopback header.
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

    /// The family value, whichever byte order it was written in.
    pub fn family(&self) -> u32 {
        let little = u32::from_le_bytes(read_array(self.buffer.as_ref(), field::FAMILY.start));
        // Families are small: a value with empty low 16 bits was written big-endian.
        if little & 0xffff == 0 {
            little.swap_bytes()
        } else {
            little
        }
    }

    pub fn kind(&self) -> Family {
        match self.family() {
            AF_INET => Family::Ipv4,
            f if AF_INET6.contains(&f) => Family::Ipv6,
            f => Family::Other(f),
        }
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Loopback {
            family: self.family(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn reads_either_byte_order() {
        assert_eq!(
            Header::new_checked(&[2u8, 0, 0, 0][..]).unwrap().kind(),
            Family::Ipv4
        );
        assert_eq!(
            Header::new_checked(&[0u8, 0, 0, 2][..]).unwrap().kind(),
            Family::Ipv4
        );
        assert_eq!(
            Header::new_checked(&[0u8, 0, 0, 30][..]).unwrap().kind(),
            Family::Ipv6
        );
        assert_eq!(
            Header::new_checked(&[24u8, 0, 0, 0][..]).unwrap().kind(),
            Family::Ipv6
        );
        assert_eq!(
            Header::new_checked(&[7u8, 0, 0, 0][..]).unwrap().kind(),
            Family::Other(7)
        );
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Header::new_checked(&[2u8, 0][..]).unwrap_err(),
            Error::Truncated { needed: 4, had: 2 }
        );
    }
}
