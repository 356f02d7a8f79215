//! The collector's only reply to an agent: a cumulative acknowledgement (proto's
//! `Message::Ack`). Every batch with a sequence number up to and including the acknowledged
//! one is committed to the database, so the agent may forget it.

use hopcap_proto::frame::{encode, HEADER_LEN};
use hopcap_proto::message::{Ack, Message};

/// Bytes of one acknowledgement frame: the frame header and a postcard varint (≤ 10 bytes).
pub const ACK_MAX_LEN: usize = HEADER_LEN + 10;

/// The frame acknowledging every batch up to `seq`.
pub fn encode_ack(seq: u64) -> Vec<u8> {
    let mut buf = [0u8; ACK_MAX_LEN];
    // An Ack always fits ACK_MAX_LEN; 0 bytes would only mean a bug, and sends nothing.
    let n = encode(&Message::Ack(Ack { seq }), &mut buf).unwrap_or(0);
    buf[..n].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_proto::frame::parse_ack;

    #[test]
    fn ack_round_trip_and_cut_frames() {
        let a = encode_ack(0x0102_0304_0506_0708);
        for cut in 0..a.len() {
            assert_eq!(parse_ack(&a[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = a.clone();
        two.extend_from_slice(&encode_ack(9));
        assert_eq!(parse_ack(&two), Ok(Some((a.len(), 0x0102_0304_0506_0708))));
        assert_eq!(
            parse_ack(&two[a.len()..]),
            Ok(Some((two.len() - a.len(), 9)))
        );
    }

    #[test]
    fn rejects_what_is_not_an_ack() {
        assert!(parse_ack(b"XXXXXXXXXXXX").is_err());
        let mut bye = [0u8; 32];
        let n = encode(
            &Message::Bye(hopcap_proto::message::Bye { batches_sent: 1 }),
            &mut bye,
        )
        .unwrap();
        assert!(parse_ack(&bye[..n]).is_err());
    }
}
