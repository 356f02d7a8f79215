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
pub const FLAG_CWR: u16 = 0x080;

/// Option kinds (RFC 9293, RFC 7323).
pub const OPT_END: u8 = 0;
pub const OPT_NOP: u8 = 1;
pub const OPT_TIMESTAMP: u8 = 8;
/// A timestamp option's length: kind, length, TSval, TSecr.
pub const OPT_TIMESTAMP_LEN: usize = 10;

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

    /// The option bytes the buffer holds: all of them, or fewer when the capture ended
    /// inside the header.
    pub fn options(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = self.header_len().min(buffer.len());
        buffer.get(MIN_HEADER_LEN..end).unwrap_or(&[])
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

/// The TSval of the timestamp option in `options`, if that much of it is there (a capture
/// cut after it may lack the TSecr). The walk stops at End of Option List, at a length
/// below 2 and where the bytes run out, so any bytes are safe.
pub fn timestamp_value(options: &[u8]) -> Option<u32> {
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            OPT_END => return None,
            OPT_NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1)?);
                if len < 2 {
                    return None;
                }
                if kind == OPT_TIMESTAMP {
                    if len != OPT_TIMESTAMP_LEN {
                        return None;
                    }
                    let tsval = options.get(at + 2..at + 6)?;
                    return Some(read_u32(tsval, 0..4));
                }
                at += len;
            }
        }
    }
    None
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

    // NOP, NOP, timestamp TSval 0x01020304 TSecr 0x0a0b0c0d (what Linux sends on data).
    const TS_OPTIONS: [u8; 12] = [1, 1, 8, 10, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d];

    #[test]
    fn reads_options_and_the_timestamp() {
        let mut seg = [0u8; 32];
        seg[..20].copy_from_slice(&SYN[..20]);
        seg[12] = 0x80; // data offset 8: 12 option bytes
        seg[20..].copy_from_slice(&TS_OPTIONS);
        let p = Packet::new_checked(&seg[..]).unwrap();
        assert_eq!(p.options(), &TS_OPTIONS[..]);
        assert_eq!(timestamp_value(p.options()), Some(0x0102_0304));
        // Cut by the snap length: the bytes there, and no TSval once it is cut into.
        let cut = Packet::new_checked(&seg[..27]).unwrap();
        assert_eq!(cut.options(), &TS_OPTIONS[..7]);
        assert_eq!(timestamp_value(cut.options()), None);
        assert_eq!(
            timestamp_value(&seg[20..28]),
            Some(0x0102_0304),
            "TSecr cut off"
        );
        // The SYN's MSS, SACK-permitted: no timestamp.
        assert_eq!(
            timestamp_value(Packet::new_checked(&SYN[..]).unwrap().options()),
            None
        );
    }

    #[test]
    fn a_broken_option_list_has_no_timestamp() {
        for options in [
            &[0u8, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0][..], // after End of Option List
            &[2, 0, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0],    // a length of 0
            &[2, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0],    // a length of 1
            &[8, 6, 1, 2, 3, 4],                       // a timestamp of the wrong length
            &[2, 40, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0],   // an MSS claiming the rest
            &[1, 1, 1],
            &[],
        ] {
            assert_eq!(timestamp_value(options), None, "{options:?}");
        }
        // Found past other options.
        assert_eq!(
            timestamp_value(&[2, 4, 5, 0xb4, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0]),
            Some(9)
        );
    }
}
