//! GTP-U version 1 header (3GPP TS 29.281): flags, message type, length, TEID, then the
//! optional sequence/N-PDU/next-extension word and a chain of extension headers.

use super::{check_len, read_u16, read_u32, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};

mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const MSG_TYPE: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const TEID: Field = 4..8;
    /// Present when any of E, S, PN is set.
    pub const OPTIONAL: Field = 8..12;
    pub const NEXT_EXT: usize = 11;
}

/// The mandatory part; [`Header::payload_len`] counts from here.
pub const MIN_HEADER_LEN: usize = field::TEID.end;

const FLAG_EXT: u8 = 0x04;
const FLAG_SEQ: u8 = 0x02;
const FLAG_NPDU: u8 = 0x01;
const FLAG_PT: u8 = 0x10;

/// G-PDU: the payload is a user IP packet.
pub const MSG_GPDU: u8 = 0xff;

/// Does a header starting with `flags` look like GTP-U: version 1, protocol type GTP?
pub fn looks_like_gtpv1(flags: u8) -> bool {
    flags >> 5 == 1 && flags & FLAG_PT != 0
}

/// A view of a GTP-U header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// A view whose mandatory 8 bytes are present; the optional word and extension headers
    /// are checked by [`Header::header_len`].
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer);
        check_len(header.buffer.as_ref(), MIN_HEADER_LEN)?;
        Ok(header)
    }

    fn flags(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::FLAGS)
    }

    pub fn version(&self) -> u8 {
        self.flags() >> 5
    }

    /// Protocol type 1 = GTP (0 = GTP').
    pub fn is_gtp(&self) -> bool {
        self.flags() & FLAG_PT != 0
    }

    pub fn msg_type(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::MSG_TYPE)
    }

    /// Bytes after the mandatory 8-byte header (optional word and extensions included).
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn teid(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::TEID)
    }

    /// Length up to the user packet: walks the extension chain (each extension: a length
    /// byte in 4-byte units, content, next type in its last byte; a zero next type ends it).
    pub fn header_len(&self) -> Result<usize> {
        let buf = self.buffer.as_ref();
        if self.flags() & (FLAG_EXT | FLAG_SEQ | FLAG_NPDU) == 0 {
            return Ok(MIN_HEADER_LEN);
        }
        check_len(buf, field::OPTIONAL.end)?;
        let mut len = field::OPTIONAL.end;
        let mut next = if self.flags() & FLAG_EXT != 0 {
            read_u8(buf, field::NEXT_EXT)
        } else {
            0
        };
        while next != 0 {
            check_len(buf, len + 1)?;
            let ext_len = usize::from(read_u8(buf, len)) * 4;
            if ext_len == 0 {
                return Err(Error::Invalid(Invalid::ExtHeaderLen(0)));
            }
            len += ext_len;
            check_len(buf, len)?;
            next = read_u8(buf, len - 1);
        }
        Ok(len)
    }

    pub fn layer(&self) -> Layer {
        Layer::Gtpu {
            msg_type: self.msg_type(),
            teid: self.teid(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gpdu() {
        let h = [0x30, 0xff, 0x00, 0x54, 0x00, 0x10, 0x06, 0x57];
        let g = Header::new_checked(&h[..]).unwrap();
        assert_eq!((g.version(), g.is_gtp(), g.payload_len()), (1, true, 0x54));
        assert!(looks_like_gtpv1(h[0]));
        assert!(!looks_like_gtpv1(0x80)); // RTP version 2
        assert!(!looks_like_gtpv1(0x20)); // GTP'
        assert_eq!(g.header_len(), Ok(8));
        assert_eq!(
            g.layer(),
            Layer::Gtpu {
                msg_type: MSG_GPDU,
                teid: 0x0010_0657
            }
        );
    }

    #[test]
    fn extension_chain_is_walked() {
        // E set; next extension 0x85 (PDU session container, 1 word, next 0).
        let h = [
            0x34, 0xff, 0x00, 0x30, 0, 0, 0, 1, 0, 0, 0, 0x85, 0x01, 0x10, 0x05, 0x00, 0x45,
        ];
        let g = Header::new_checked(&h[..]).unwrap();
        assert_eq!(g.header_len(), Ok(16));
        assert_eq!(
            Header::new_checked(&h[..14]).unwrap().header_len(),
            Err(Error::Truncated {
                needed: 16,
                had: 14
            })
        );
        let mut zero = h;
        zero[12] = 0;
        assert_eq!(
            Header::new_checked(&zero[..]).unwrap().header_len(),
            Err(Error::Invalid(Invalid::ExtHeaderLen(0)))
        );
    }

    #[test]
    fn sequence_only_adds_the_optional_word() {
        let h = [0x32, 0xff, 0x00, 0x04, 0, 0, 0, 1, 0x12, 0x34, 0x00, 0x00];
        assert_eq!(Header::new_checked(&h[..]).unwrap().header_len(), Ok(12));
        assert_eq!(
            Header::new_checked(&h[..10]).unwrap().header_len(),
            Err(Error::Truncated {
                needed: 12,
                had: 10
            })
        );
    }
}
