//! The batch decoder against bytes it did not expect: fixtures, truncation, corruption,
//! and batches lost or reordered before it.

extern crate std;

use super::*;
use crate::types::EtherType;
use std::boxed::Box;
use std::vec::Vec as StdVec;

fn zero_observation() -> Observation {
    let mut obs = Observation::empty();
    obs.summary.ethertype = EtherType(0);
    obs.fingerprint = 0x0102_0304_0506_0708;
    obs
}

/// header: version 6, agent "a", seq 0, count 1, base time 0, reset, no frame bytes.
const HEADER: [u8; 8] = [0x06, 0x01, b'a', 0x00, 0x01, 0x00, 0x01, 0x00];

#[test]
fn the_simplest_record_as_bytes() {
    let mut enc = Box::new(BatchEncoder::new("a", MAX_BATCH_BYTES));
    enc.push(&zero_observation()).unwrap();
    let bytes = enc.finish().to_vec();
    let mut expected = HEADER.to_vec();
    // head: new flow; base none; key mask empty (the default key); fingerprint LE; time
    // delta 0; order nibble 0 (in the head); no masks (flow's are zero); no hop changes.
    expected.extend_from_slice(&[0x02, 0x00, 0x00, 8, 7, 6, 5, 4, 3, 2, 1, 0x00]);
    assert_eq!(bytes, expected);
    let mut got = StdVec::new();
    let mut dec = Box::new(BatchDecoder::new());
    let info = dec.decode(&bytes, |o| got.push(o)).unwrap();
    assert_eq!(got, [zero_observation()]);
    assert_eq!(info.header.agent_id.as_str(), "a");
    assert!(info.header.reset);
}

fn decode_err(bytes: &[u8]) -> BatchError {
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(bytes, |_| {}).unwrap_err()
}

#[test]
fn errors_name_the_record_and_the_offset() {
    // A record naming flow slot 5 of an empty table.
    let mut b = HEADER.to_vec();
    b.extend_from_slice(&[0x00, 0x05]);
    let err = decode_err(&b);
    assert_eq!(
        err,
        BatchError::Record {
            index: 0,
            start: 8,
            offset: 10,
            error: RecordError::BadFlow { index: 5 }
        }
    );

    // A back-reference into an empty ring.
    let mut b = HEADER.to_vec();
    b.extend_from_slice(&[fields::H_BACKREF | fields::H_NEW_FLOW, 0x00, 0x00, 0x03]);
    let err = decode_err(&b);
    let want = RecordError::BadBackref {
        distance: 3,
        available: 0,
    };
    assert_eq!(
        err,
        BatchError::Record {
            index: 0,
            start: 8,
            offset: 12,
            error: want
        }
    );

    // A flow definition with an unknown network kind.
    let mut b = HEADER.to_vec();
    b.extend_from_slice(&[fields::H_NEW_FLOW, 0x00, fields::K_SHAPE, 0x00, 9, 0, 0]);
    let want = RecordError::BadValue {
        field: Field::NetKind,
        value: 9,
    };
    assert_eq!(
        decode_err(&b),
        BatchError::Record {
            index: 0,
            start: 8,
            offset: 15,
            error: want
        }
    );

    // A TCP header length for a flow that is not TCP (the default key).
    let mut b = HEADER.to_vec();
    b.extend_from_slice(&[fields::H_NEW_FLOW | fields::H_HOP, 0x00, 0x00]);
    b.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1, 0x00, fields::P_TCP_HDR, 20]);
    let want = RecordError::BadValue {
        field: Field::HopMask,
        value: fields::P_TCP_HDR.into(),
    };
    assert_eq!(
        decode_err(&b),
        BatchError::Record {
            index: 0,
            start: 8,
            offset: 21,
            error: want
        }
    );

    // A link key beyond u16.
    let mut b = HEADER.to_vec();
    b.extend_from_slice(&[fields::H_NEW_FLOW, 0x00, fields::K_LINK, 0x80, 0x80, 0x04]);
    let want = RecordError::BadValue {
        field: Field::Link,
        value: 0x10000,
    };
    assert_eq!(
        decode_err(&b),
        BatchError::Record {
            index: 0,
            start: 8,
            offset: 14,
            error: want
        }
    );
}

#[test]
fn header_version_and_trailing_bytes_are_checked() {
    let mut b = HEADER.to_vec();
    b[0] = 0x07;
    assert_eq!(
        decode_err(&b),
        BatchError::UnsupportedVersion {
            got: 7,
            supported: 6
        }
    );
    // A version 4 header (no `snap_bytes`) is refused by its version, not as short.
    b[0] = 0x04;
    b.pop();
    assert_eq!(
        decode_err(&b),
        BatchError::UnsupportedVersion {
            got: 4,
            supported: 6
        }
    );
    assert_eq!(
        decode_err(&[]),
        BatchError::Header(postcard::Error::DeserializeUnexpectedEnd)
    );

    let mut enc = Box::new(BatchEncoder::new("a", MAX_BATCH_BYTES));
    enc.push(&zero_observation()).unwrap();
    let mut bytes = enc.finish().to_vec();
    let len = bytes.len();
    bytes.extend_from_slice(&[0xaa, 0xbb]);
    assert_eq!(
        decode_err(&bytes),
        BatchError::TrailingBytes {
            offset: len,
            len: 2
        }
    );
}

#[test]
fn a_batch_that_needs_earlier_state_is_rejected() {
    let mut b = HEADER.to_vec();
    b[6] = 0x00; // reset false
    b.extend_from_slice(&[0x02, 0x00, 0x00, 8, 7, 6, 5, 4, 3, 2, 1, 0x00]);
    assert_eq!(decode_err(&b), BatchError::NotSelfContained { seq: 0 });
}
