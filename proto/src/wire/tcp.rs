//! TCP header (options included in its length).

use super::{check_len, read_u16, read_u32, read_u8, Error, Result};
use crate::layer::{Invalid, Layer};

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// The header without options.
pub const MIN_HEADER_LEN: usize = field::URGENT.end;

pub const FLAG_FIN: u16 = 0x001;
pub const FLAG_SYN: u16 = 0x002;
pub const FLAG_RST: u16 = 0x004;
pub const FLAG_PSH: u16 = 0x008;
pub const FLAG_ACK: u16 = 0x010;

/// A view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose fixed 20 bytes are present and whose data offset is at least 5 words.
    /// Options may still be cut (compare [`Packet::header_len`] with the buffer).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        check_len(packet.buffer.as_ref(), MIN_HEADER_LEN)?;
        if packet.header_len() < MIN_HEADER_LEN {
            return Err(Error::Invalid(Invalid::TcpHeaderLen(
                packet.header_len() as u8
            )));
        }
        Ok(packet)
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset * 4), at most 60.
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::FLAGS.start) >> 4) * 4
    }

    /// The 12 bits after the data offset: 3 reserved, NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN.
    pub fn flags(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS) & 0x0fff
    }

    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn layer(&self) -> Layer {
        Layer::Tcp {
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            seq: self.seq_number(),
            ack: self.ack_number(),
            hdr_len: self.header_len() as u8,
            flags: self.flags(),
            window: self.window_len(),
            checksum: self.checksum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 3025 -> 1723 SYN, seq 3648253419, data offset 7 (28 bytes), window 8192.
    const SYN: [u8; 28] = [
        0x0b, 0xd1, 0x06, 0xbb, 0xd9, 0x73, 0xed, 0xeb, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x20,
        0x00, //
        0xbe, 0xef, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    ];

    #[test]
    fn reads_fields() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (3025, 1723));
        assert_eq!(p.seq_number(), 3648253419);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.flags(), FLAG_SYN);
        assert_eq!(p.window_len(), 8192);
        assert_eq!(p.checksum(), 0xbeef);
    }

    #[test]
    fn flags_keep_twelve_bits() {
        let mut bytes = SYN;
        bytes[12] = 0x5f; // offset 5, reserved bits + NS set
        bytes[13] = 0xff;
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().flags(), 0x0fff);
    }

    #[test]
    fn rejects_small_data_offset_and_short_header() {
        let mut bytes = SYN;
        bytes[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Invalid(Invalid::TcpHeaderLen(16))
        );
        assert_eq!(
            Packet::new_checked(&SYN[..12]).unwrap_err(),
            Error::Truncated {
                needed: 20,
                had: 12
            }
        );
    }
}
