//! Records with their frame bytes (`snap_bytes` > 0): bytes exact, cut to the limit, and
//! lengths the header does not allow refused.

extern crate std;

use super::*;
use crate::summary::Summary;
use crate::types::{EtherType, PacketType};
use std::boxed::Box;
use std::vec::Vec as StdVec;

fn observation(ts_ns: u64, fingerprint: u64) -> Observation {
    let mut summary = Summary::empty();
    summary.ethertype = EtherType(0x0800);
    Observation {
        ts_ns,
        link: 1,
        order: ts_ns,
        pkttype: PacketType(0),
        wire_len: 98,
        cap_len: 98,
        fingerprint,
        summary,
    }
}

fn decode_all(bytes: &[u8]) -> Result<StdVec<(Observation, StdVec<u8>)>, BatchError> {
    let mut dec = Box::new(BatchDecoder::new());
    let mut got = StdVec::new();
    dec.decode_with_bytes(bytes, |o, f| got.push((o, f.to_vec())))?;
    Ok(got)
}

#[test]
fn frame_bytes_round_trip_and_are_cut_to_the_limit() {
    let mut enc = Box::new(BatchEncoder::with_snap_bytes("a", MAX_BATCH_BYTES, 4));
    let frames: [&[u8]; 3] = [&[1, 2, 3, 4, 5, 6], &[9], &[]];
    for (i, f) in frames.iter().enumerate() {
        enc.push_with_bytes(&observation(100 + i as u64, 7 + i as u64), f)
            .unwrap();
    }
    let bytes = enc.finish().to_vec();
    let got = decode_all(&bytes).unwrap();
    let kept: StdVec<&[u8]> = got.iter().map(|(_, f)| f.as_slice()).collect();
    assert_eq!(kept, [&[1u8, 2, 3, 4][..], &[9], &[]]);
    assert_eq!(got[2].0, observation(102, 9));
    // `decode` alone skips them.
    let mut n = 0;
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(&bytes, |_| n += 1).unwrap();
    assert_eq!(n, 3);
}

#[test]
fn one_record_with_bytes_byte_for_byte() {
    let mut enc = Box::new(BatchEncoder::with_snap_bytes("a", MAX_BATCH_BYTES, 200));
    let mut obs = observation(0, 0x0102_0304_0506_0708);
    obs.summary.ethertype = EtherType(0);
    (obs.wire_len, obs.cap_len, obs.link, obs.order) = (0, 0, 0, 0);
    enc.push_with_bytes(&obs, &[0xAA, 0xBB]).unwrap();
    let bytes = enc.finish().to_vec();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x06, 0x01, b'a', 0x00, 0x01, 0x00, 0x01, 0xc8, 0x01, // header, snap_bytes 200
        0x02, 0x00, 0x00, 8, 7, 6, 5, 4, 3, 2, 1, 0x00,       // the record
        0x02, 0xAA, 0xBB,                                     // its two frame bytes
    ];
    assert_eq!(bytes, want);
}

#[test]
fn without_snap_bytes_records_carry_nothing_more() {
    let mut plain = Box::new(BatchEncoder::new("a", MAX_BATCH_BYTES));
    let mut with = Box::new(BatchEncoder::with_snap_bytes("a", MAX_BATCH_BYTES, 0));
    for i in 0..50 {
        plain.push(&observation(i * 1000, i)).unwrap();
        with.push_with_bytes(&observation(i * 1000, i), &[1; 60])
            .unwrap();
    }
    assert_eq!(plain.finish(), with.finish());
}

#[test]
fn a_length_over_the_header_limit_or_the_batch_is_refused() {
    let mut enc = Box::new(BatchEncoder::with_snap_bytes("a", MAX_BATCH_BYTES, 4));
    enc.push_with_bytes(&observation(5, 5), &[1, 2]).unwrap();
    let mut bytes = enc.finish().to_vec();
    let n = bytes.len();
    // The length byte sits before the two frame bytes: claim 5 (> 4).
    bytes[n - 3] = 5;
    match decode_all(&bytes) {
        Err(BatchError::Record {
            index: 0,
            error:
                RecordError::BadValue {
                    field: Field::SnapLen,
                    value: 5,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Claim 3 (allowed) with only 2 left.
    bytes[n - 3] = 3;
    assert!(matches!(
        decode_all(&bytes),
        Err(BatchError::Record {
            error: RecordError::UnexpectedEnd,
            ..
        })
    ));
    // A header allowing more than MAX_SNAP_BYTES.
    let header = BatchHeader {
        version: PROTOCOL_VERSION,
        agent_id: String::try_from("a").unwrap(),
        seq: 0,
        count: 0,
        base_ts_ns: 0,
        reset: true,
        snap_bytes: MAX_SNAP_BYTES + 1,
    };
    let mut buf = [0u8; 64];
    let head = postcard::to_slice(&header, &mut buf).unwrap();
    assert_eq!(
        decode_all(head).unwrap_err(),
        BatchError::SnapBytes {
            got: MAX_SNAP_BYTES + 1,
            max: MAX_SNAP_BYTES
        }
    );
}

#[test]
fn a_full_batch_of_records_with_the_most_bytes_fits_its_limit() {
    let mut enc = Box::new(BatchEncoder::with_snap_bytes("a", 16 * 1024, 5000));
    assert_eq!(enc.snap_bytes(), MAX_SNAP_BYTES, "clamped");
    let frame = [0x5a; 3000];
    let mut pushed = 0;
    while enc
        .push_with_bytes(&observation(pushed, pushed), &frame)
        .is_ok()
    {
        pushed += 1;
    }
    assert!(pushed >= 5, "{pushed}");
    let bytes = enc.finish().to_vec();
    assert!(bytes.len() <= 16 * 1024);
    let got = decode_all(&bytes).unwrap();
    assert_eq!(got.len() as u64, pushed);
    assert!(got
        .iter()
        .all(|(_, f)| f.len() == usize::from(MAX_SNAP_BYTES)));
}
