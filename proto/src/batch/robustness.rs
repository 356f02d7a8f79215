//! The batch decoder against bytes it did not expect: fixtures, truncation, corruption,
//! and batches lost or reordered before it.

extern crate std;

use super::sim::{generate, Emit, Mix, Rng};
use super::*;
use crate::summary::Summary;
use crate::types::{EtherType, PacketType};
use std::boxed::Box;
use std::vec::Vec as StdVec;

fn zero_observation() -> Observation {
    let mut summary = Summary::empty();
    summary.ethertype = EtherType(0);
    Observation {
        ts_ns: 0,
        link: 0,
        order: 0,
        pkttype: PacketType(0),
        wire_len: 0,
        cap_len: 0,
        fingerprint: 0x0102_0304_0506_0708,
        summary,
    }
}

/// header: version 2, agent "a", seq 0, count 1, base time 0, reset.
const HEADER: [u8; 7] = [0x02, 0x01, b'a', 0x00, 0x01, 0x00, 0x01];

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
            start: 7,
            offset: 9,
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
            start: 7,
            offset: 11,
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
            start: 7,
            offset: 14,
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
            start: 7,
            offset: 20,
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
            start: 7,
            offset: 13,
            error: want
        }
    );
}

#[test]
fn header_version_and_trailing_bytes_are_checked() {
    let mut b = HEADER.to_vec();
    b[0] = 0x03;
    assert_eq!(
        decode_err(&b),
        BatchError::UnsupportedVersion {
            got: 3,
            supported: 2
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

fn sim_batches(max_bytes: usize) -> StdVec<StdVec<u8>> {
    let obs = generate(Mix::Mixed, Emit::RingBlocks, 600, 5);
    let mut enc = Box::new(BatchEncoder::new("board", max_bytes));
    let mut out = StdVec::new();
    for o in &obs {
        if enc.push(o).is_err() {
            out.push(enc.finish().to_vec());
            enc.push(o).unwrap();
        }
    }
    out.push(enc.finish().to_vec());
    out
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let batch = sim_batches(2048).remove(0);
    for cut in 0..batch.len() {
        match decode_err(&batch[..cut]) {
            BatchError::Header(_) => assert!(cut < 20, "{cut}"),
            BatchError::Record { offset, error, .. } => {
                assert!(offset <= cut);
                assert!(
                    matches!(error, RecordError::UnexpectedEnd | RecordError::Postcard),
                    "{cut}: {error:?}"
                );
            }
            other => panic!("{cut}: {other:?}"),
        }
    }
}

#[test]
fn corrupted_batches_never_panic() {
    let batches = sim_batches(1024);
    let mut rng = Rng(1);
    for round in 0..1000 {
        let mut dec = Box::new(BatchDecoder::new());
        let mut n = 0;
        for (i, b) in batches.iter().take(4).enumerate() {
            let mut b = b.clone();
            if i == round % 4 {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(b.len() as u64) as usize;
                    b[at] ^= 1 << rng.below(8);
                }
            }
            let _ = dec.decode(&b, |_| n += 1);
        }
        assert!(n < 1000);
    }
    // And plain garbage after a valid header.
    for _ in 0..3000 {
        let mut b = HEADER.to_vec();
        b[4] = 0x7f; // count 127
        b.extend((0..rng.below(200)).map(|_| rng.next() as u8));
        let _ = decode_err_or_ok(&b);
    }
}

fn decode_err_or_ok(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(bytes, |_| {})
}

#[test]
fn every_batch_decodes_on_its_own_in_any_order() {
    let obs = generate(Mix::TcpBulk, Emit::TimeOrder, 300, 9);
    let mut enc = Box::new(BatchEncoder::new("b", MAX_BATCH_BYTES));
    let mut batches = StdVec::new();
    for range in [0..100, 100..200, 200..obs.len()] {
        for o in &obs[range.clone()] {
            enc.push(o).unwrap();
        }
        batches.push((range, enc.finish().to_vec()));
    }
    // Batch 1 lost on the way, the others arriving late and out of order, one decoder.
    let mut dec = Box::new(BatchDecoder::new());
    for (seq, (range, bytes)) in [(2u64, &batches[2]), (0, &batches[0])] {
        let mut got = StdVec::new();
        let info = dec.decode(bytes, |o| got.push(o)).unwrap();
        assert_eq!((info.header.seq, info.header.reset), (seq, true));
        assert_eq!(got, obs[range.clone()]);
    }
    // A batch cut short keeps what decoded; the next one is not affected.
    let (range, bytes) = &batches[1];
    let mut got = StdVec::new();
    assert!(dec
        .decode(&bytes[..bytes.len() / 2], |o| got.push(o))
        .is_err());
    assert_eq!(got, obs[range.start..range.start + got.len()]);
    let mut again = StdVec::new();
    dec.decode(&batches[2].1, |o| again.push(o)).unwrap();
    assert_eq!(again, obs[batches[2].0.clone()]);
    // An empty batch is valid too.
    let empty = enc.finish().to_vec();
    let info = dec.decode(&empty, |_| panic!("no records")).unwrap();
    assert_eq!((info.header.count, info.header.seq), (0, 3));
}

#[test]
fn a_batch_that_needs_earlier_state_is_rejected() {
    let mut b = HEADER.to_vec();
    *b.last_mut().unwrap() = 0x00; // reset false
    b.extend_from_slice(&[0x02, 0x00, 0x00, 8, 7, 6, 5, 4, 3, 2, 1, 0x00]);
    assert_eq!(decode_err(&b), BatchError::NotSelfContained { seq: 0 });
}

/// Writes seed inputs for the fuzz target when `HOPCAP_FUZZ_SEEDS` names a directory:
/// `HOPCAP_FUZZ_SEEDS=/tmp/seeds cargo test -p hopcap-proto write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("HOPCAP_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut stream = StdVec::new();
    for (i, b) in sim_batches(700).iter().enumerate().take(6) {
        std::fs::write(dir.join(std::format!("batch-{i}")), b).unwrap();
        let mut frame = std::vec![0u8; b.len() + crate::frame::HEADER_LEN];
        let n = crate::frame::encode(&crate::message::Message::Batch(b), &mut frame).unwrap();
        stream.extend_from_slice(&frame[..n]);
    }
    std::fs::write(dir.join("stream"), stream).unwrap();
}
