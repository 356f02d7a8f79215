//! PPPoE header (RFC 2516): session stage (0x8864, a PPP protocol field follows) and
//! discovery stage (0x8863, tags follow).

use super::{check_len, read_u16, read_u8, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const CODE: usize = 1;
    pub const SESSION_ID: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    /// Session stage only.
    pub const PPP_PROTO: Field = 6..8;
}

pub const HEADER_LEN: usize = field::LENGTH.end;
/// Header plus the PPP protocol field of a session packet.
pub const SESSION_HEADER_LEN: usize = field::PPP_PROTO.end;

pub const PPP_IPV4: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;

/// A view of a PPPoE header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    session: bool,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// `session`: the EtherType was 0x8864 (a PPP protocol field follows the header).
    pub const fn new_unchecked(buffer: T, session: bool) -> Header<T> {
        Header { buffer, session }
    }

    pub fn new_checked(buffer: T, session: bool) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer, session);
        check_len(header.buffer.as_ref(), header.header_len())?;
        Ok(header)
    }

    pub fn code(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::CODE)
    }

    pub fn session_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SESSION_ID)
    }

    /// Bytes after the 6-byte header (the PPP protocol field included).
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The PPP protocol of a session packet; 0 in discovery.
    pub fn ppp_proto(&self) -> u16 {
        if self.session {
            read_u16(self.buffer.as_ref(), field::PPP_PROTO)
        } else {
            0
        }
    }

    pub fn header_len(&self) -> usize {
        if self.session {
            SESSION_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn layer(&self) -> Layer {
        Layer::Pppoe {
            code: self.code(),
            session_id: self.session_id(),
            length: self.payload_len(),
            ppp_proto: self.ppp_proto(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn session_carries_ppp_protocol() {
        let h = [0x11, 0x00, 0x12, 0x34, 0x00, 0x2a, 0x00, 0x21];
        let p = Header::new_checked(&h[..], true).unwrap();
        assert_eq!(
            p.layer(),
            Layer::Pppoe {
                code: 0,
                session_id: 0x1234,
                length: 42,
                ppp_proto: PPP_IPV4
            }
        );
        assert_eq!(
            Header::new_checked(&h[..7], true).unwrap_err(),
            Error::Truncated { needed: 8, had: 7 }
        );
    }

    #[test]
    fn discovery_has_no_ppp_protocol() {
        // PADI: code 0x09, session 0, 4 bytes of tags.
        let h = [0x11, 0x09, 0x00, 0x00, 0x00, 0x04];
        let p = Header::new_checked(&h[..], false).unwrap();
        assert_eq!(p.header_len(), 6);
        assert_eq!(
            p.layer(),
            Layer::Pppoe {
                code: 9,
                session_id: 0,
                length: 4,
                ppp_proto: 0
            }
        );
    }
}
