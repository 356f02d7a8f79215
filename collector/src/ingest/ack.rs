//! The collector's only reply to an agent: a cumulative acknowledgement. Every batch with a
//! sequence number up to and including the acknowledged one is committed to the database
//! (so the agent may forget it). It is framed like the agent's messages, with a message type
//! from the collector-to-agent range (0x80 and up, which [`MessageType`] never uses):
//!
//! ```text
//! "HC"  u16 BE version  u8 0x80  u32 BE body length = 8  u64 BE acknowledged seq
//! ```
//!
//! [`parse_ack`] has the shape of the agent exporter's `AckParser`.
//!
//! [`MessageType`]: hopcap_proto::message::MessageType

use hopcap_proto::frame::{HEADER_LEN, MAGIC};
use hopcap_proto::message::PROTOCOL_VERSION;

/// The message type byte of an acknowledgement.
pub const ACK_TYPE: u8 = 0x80;
/// Bytes of one acknowledgement frame.
pub const ACK_LEN: usize = HEADER_LEN + 8;

pub fn encode_ack(seq: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    out[..2].copy_from_slice(&MAGIC);
    out[2..4].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out[4] = ACK_TYPE;
    out[5..9].copy_from_slice(&8u32.to_be_bytes());
    out[9..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// `Ok(Some((consumed, seq)))` for a complete acknowledgement at the start of `buf`,
/// `Ok(None)` when more bytes are needed, `Err` when the bytes are not one.
pub fn parse_ack(buf: &[u8]) -> Result<Option<(usize, u64)>, String> {
    let head = &buf[..buf.len().min(HEADER_LEN)];
    let mut expect = [0u8; HEADER_LEN];
    expect.copy_from_slice(&encode_ack(0)[..HEADER_LEN]);
    if head != &expect[..head.len()] {
        return Err(format!("not an acknowledgement header: {head:02x?}"));
    }
    let Some(body) = buf.get(HEADER_LEN..ACK_LEN) else {
        return Ok(None);
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(body);
    Ok(Some((ACK_LEN, u64::from_be_bytes(seq))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_bytes_and_round_trip() {
        let a = encode_ack(0x0102_0304_0506_0708);
        assert_eq!(&a[..9], &[b'H', b'C', 0, 1, 0x80, 0, 0, 0, 8]);
        assert_eq!(&a[9..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        for cut in 0..ACK_LEN {
            assert_eq!(parse_ack(&a[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = a.to_vec();
        two.extend_from_slice(&encode_ack(9));
        assert_eq!(parse_ack(&two), Ok(Some((ACK_LEN, 0x0102_0304_0506_0708))));
        assert_eq!(parse_ack(&two[ACK_LEN..]), Ok(Some((ACK_LEN, 9))));
    }

    #[test]
    fn foreign_bytes_are_rejected_early() {
        assert!(parse_ack(b"X").is_err());
        assert!(
            parse_ack(b"HC\x00\x01\x04").is_err(),
            "an agent-side message type"
        );
        assert!(
            parse_ack(b"HC\x00\x01\x80\x00\x00\x00\x09").is_err(),
            "wrong length"
        );
    }
}
