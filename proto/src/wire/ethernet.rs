//! Ethernet II header: destination, source, EtherType.

use super::{check_len, read_array, read_u16, Result};
use crate::layer::Layer;
use crate::types::{EtherType, Mac};

mod field {
    use crate::wire::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

pub const HEADER_LEN: usize = field::ETHERTYPE.end;

/// Values below this are IEEE 802.3 length fields (an LLC header follows), not EtherTypes.
pub const MIN_ETHERTYPE: u16 = 0x0600;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// A view whose header is fully present.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        check_len(frame.buffer.as_ref(), HEADER_LEN)?;
        Ok(frame)
    }

    pub fn dst(&self) -> Mac {
        Mac(read_array(self.buffer.as_ref(), field::DESTINATION.start))
    }

    pub fn src(&self) -> Mac {
        Mac(read_array(self.buffer.as_ref(), field::SOURCE.start))
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Ethernet {
            src: self.src(),
            dst: self.dst(),
            ethertype: self.ethertype(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const FRAME: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x00, 0x16, 0x3e, 0x08, 0x71, 0xcf, // src
        0x08, 0x06, // ARP
        0xaa, 0xbb, // payload
    ];

    #[test]
    fn reads_fields() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), Mac([0xff; 6]));
        assert_eq!(f.src(), Mac([0x00, 0x16, 0x3e, 0x08, 0x71, 0xcf]));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.header_len(), 14);
    }

    #[test]
    fn short_frame_is_truncated() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated {
                needed: 14,
                had: 13
            }
        );
    }
}
