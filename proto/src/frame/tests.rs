extern crate std;

use super::*;
use crate::message::*;
use crate::record::{LinkInfo, LinkKind};
use crate::types::{Addr, Mac};
use heapless::{String, Vec};

fn hello() -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        agent_id: String::try_from("pi-01").unwrap(),
        boot_id: [7; 16],
        run_id: 99,
        clock: ClockInfo {
            realtime_ns: 1_780_000_000_000_000_000,
            monotonic_ns: 12_345,
            debug_offset_ns: -5,
        },
        capture: CaptureMode::Ring,
        snaplen: 128,
        sample: 1,
        agent_version: heapless::String::try_from("0.1.0").unwrap(),
    }
}

fn link(key: u16) -> LinkInfo {
    let mut addrs = Vec::new();
    let _ = addrs.push(crate::record::LinkAddr {
        addr: Addr::V4([10, 0, 0, key as u8]),
        prefix: 24,
    });
    LinkInfo {
        key,
        netns: String::try_from("web").unwrap(),
        name: String::try_from("eth0").unwrap(),
        ifindex: 2,
        kind: LinkKind::Veth,
        mac: Mac([2, 0, 0, 0, 0, key as u8]),
        mtu: 1500,
        addrs,
        master: Some(3),
        peer: None,
        up: true,
    }
}

fn every_message() -> [Message<'static>; 7] {
    let mut links = Vec::new();
    for k in 0..LINKS_PER_CHUNK as u16 {
        links.push(link(k)).unwrap();
    }
    let mut per_link = Vec::new();
    per_link
        .push(LinkStats {
            key: 1,
            packets: 10,
            kernel_drops: 2,
            freeze_count: 1,
            losing_blocks: 1,
        })
        .unwrap();
    [
        Message::Hello(hello()),
        Message::Links(Links {
            chunk: 0,
            count: 1,
            replace: true,
            links,
        }),
        Message::LinkRemoved(LinkRemoved { key: 4 }),
        Message::Batch(&[1, 2, 3]),
        Message::Stats(Stats {
            monotonic_ns: 9,
            interval_ns: 5_000_000_000,
            queue_drops: 3,
            records_sent: 100,
            batches_sent: 2,
            kernel_drops: 1,
            freeze_count: 0,
            losing_frames: 3,
            links: per_link,
            clock: ClockSync {
                synced: Some(false),
                max_error_us: 16_000_000,
            },
        }),
        Message::Tally(Tally {
            batches: 9,
            records: 1_234,
            gave_up: Vec::from_slice(&[
                GaveUp {
                    first: 2,
                    last: 4,
                    records: 300,
                },
                GaveUp {
                    first: 7,
                    last: 7,
                    records: 1,
                },
            ])
            .unwrap(),
            clock_steps: Vec::from_slice(&[ClockStep {
                first_batch: 4,
                delta_ns: 259_200_000_000_000,
                at_ns: 1_765_000_000_000_000_000,
            }])
            .unwrap(),
        }),
        Message::Bye(Bye { batches_sent: 2 }),
    ]
}

#[test]
fn header_bytes() {
    let mut out = [0u8; 64];
    let n = encode(&Message::LinkRemoved(LinkRemoved { key: 300 }), &mut out).unwrap();
    // magic, version 6, type 3, body length 2, body: varint 300
    assert_eq!(&out[..n], &[b'H', b'C', 0, 6, 3, 0, 0, 0, 2, 0xac, 0x02]);
}

#[test]
fn tally_bytes() {
    let mut out = [0u8; 64];
    let tally = Tally {
        batches: 3,
        records: 300,
        gave_up: Vec::from_slice(&[GaveUp {
            first: 1,
            last: 2,
            records: 200,
        }])
        .unwrap(),
        clock_steps: Vec::from_slice(&[ClockStep {
            first_batch: 5,
            delta_ns: -2,
            at_ns: 7,
        }])
        .unwrap(),
    };
    let n = encode(&Message::Tally(tally), &mut out).unwrap();
    // magic, version 6, type 8, body length 12; body: batches 3, records varint 300,
    // one range: first 1, last 2, records varint 200; one clock step: first batch 5,
    // delta -2 (zigzag 3), at 7
    assert_eq!(
        &out[..n],
        &[b'H', b'C', 0, 6, 8, 0, 0, 0, 12, 3, 0xac, 0x02, 1, 1, 2, 0xc8, 0x01, 1, 5, 3, 7]
    );
}

#[test]
fn the_previous_version_is_refused() {
    let mut out = [0u8; 64];
    let n = encode(&Message::Bye(Bye { batches_sent: 1 }), &mut out).unwrap();
    out[3] = 4;
    let err = FrameDecoder::new(1024).decode(&out[..n]).unwrap_err();
    assert_eq!(
        err,
        FrameError::UnsupportedVersion {
            got: 4,
            min: 6,
            max: 6
        }
    );
    // What an agent or collector of version 4 is told (logged, and the connection closed).
    use std::string::ToString;
    assert_eq!(
        err.to_string(),
        "protocol version 4 (this side speaks 6..=6)"
    );
}

#[test]
fn every_message_round_trips_back_to_back() {
    let mut stream = std::vec::Vec::new();
    let mut buf = [0u8; 8192];
    for m in every_message() {
        let n = encode(&m, &mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut at = 0;
    for m in every_message() {
        let (frame, used) = dec.decode(&stream[at..]).unwrap().unwrap();
        assert_eq!(frame.version, PROTOCOL_VERSION);
        assert_eq!(frame.message, m);
        at += used;
    }
    assert_eq!(at, stream.len());
    assert_eq!(dec.frames(), 7);
    assert_eq!(dec.decode(&stream[at..]), Ok(None));
    assert_eq!(dec.finish(&stream[at..]), Ok(()));
}

#[test]
fn a_partial_frame_waits_and_a_cut_stream_says_how_much_was_missing() {
    let mut buf = [0u8; 256];
    let n = encode(&Message::Hello(hello()), &mut buf).unwrap();
    let mut dec = FrameDecoder::new(1024);
    for cut in 0..n {
        assert_eq!(dec.decode(&buf[..cut]), Ok(None), "{cut}");
    }
    assert_eq!(
        dec.finish(&buf[..n - 1]),
        Err(FrameError::TruncatedAtEof {
            needed: n as u64,
            had: n as u64 - 1
        })
    );
    assert_eq!(
        dec.finish(&buf[..3]),
        Err(FrameError::TruncatedAtEof { needed: 9, had: 3 })
    );
}

#[test]
fn an_oversized_frame_is_rejected_from_its_header_alone() {
    let mut h = [0u8; HEADER_LEN];
    write_header(MessageType::Batch, 70_000, &mut h).unwrap();
    let mut dec = FrameDecoder::new(65_536);
    assert_eq!(
        dec.decode(&h),
        Err(FrameError::TooLarge {
            body_len: 70_000,
            max: 65_536
        })
    );
}

#[test]
fn foreign_future_and_unknown_frames_are_rejected() {
    let mut dec = FrameDecoder::new(1024);
    assert_eq!(
        dec.decode(b"G"),
        Err(FrameError::BadMagic { got: [b'G', 0] })
    );
    assert_eq!(
        dec.decode(b"GET / HTTP/1.1"),
        Err(FrameError::BadMagic { got: *b"GE" })
    );
    assert_eq!(dec.decode(b"H"), Ok(None));
    let future = [b'H', b'C', 0, 7, 1, 0, 0, 0, 0];
    assert_eq!(
        dec.decode(&future),
        Err(FrameError::UnsupportedVersion {
            got: 7,
            min: 6,
            max: 6
        })
    );
    let unknown = [b'H', b'C', 0, 6, 9, 0, 0, 0, 0];
    assert_eq!(
        dec.decode(&unknown),
        Err(FrameError::UnknownMessageType { got: 9 })
    );
}

#[test]
fn malformed_and_overlong_bodies_say_which_message() {
    let mut dec = FrameDecoder::new(1024);
    // A Hello whose agent id claims 200 bytes (more than the 64 allowed and than the body).
    let bad = [b'H', b'C', 0, 6, 1, 0, 0, 0, 3, 0x01, 0xc8, 0x01];
    match dec.decode(&bad) {
        Err(FrameError::Malformed {
            message_type: MessageType::Hello,
            body_len: 3,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // A Bye with a byte too many.
    let long = [b'H', b'C', 0, 6, 6, 0, 0, 0, 2, 0x05, 0x00];
    assert_eq!(
        dec.decode(&long),
        Err(FrameError::TrailingBytes {
            message_type: MessageType::Bye,
            body_len: 2,
            trailing: 1
        })
    );
    assert_eq!(dec.frames(), 0);
}

#[test]
fn encoding_into_a_short_buffer_says_how_much_is_needed() {
    let msg = Message::Hello(hello());
    let mut big = [0u8; 256];
    let n = encode(&msg, &mut big).unwrap();
    let mut small = [0u8; 20];
    assert_eq!(
        encode(&msg, &mut small),
        Err(FrameError::BufferTooSmall { needed: n, had: 20 })
    );
    assert_eq!(
        encode(&msg, &mut small[..4]),
        Err(FrameError::BufferTooSmall {
            needed: HEADER_LEN,
            had: 4
        })
    );
    let batch = Message::Batch(&[0; 30]);
    assert_eq!(
        encode(&batch, &mut small),
        Err(FrameError::BufferTooSmall {
            needed: 39,
            had: 20
        })
    );
}

#[test]
fn errors_read_as_sentences_and_keep_their_cause() {
    use core::error::Error;
    use std::string::ToString;
    let future = FrameError::UnsupportedVersion {
        got: 7,
        min: 6,
        max: 6,
    };
    assert_eq!(
        future.to_string(),
        "protocol version 7 (this side speaks 6..=6)"
    );
    let mut dec = FrameDecoder::new(1024);
    let bad = [b'H', b'C', 0, 6, 1, 0, 0, 0, 3, 0x01, 0xc8, 0x01];
    let err = dec.decode(&bad).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed hello body (3 bytes): "),
        "{err}"
    );
    assert!(err.source().is_some());
    let record = crate::batch::BatchError::Record {
        index: 2,
        start: 9,
        offset: 11,
        error: crate::batch::RecordError::BadFlow { index: 5 },
    };
    assert_eq!(
        record.to_string(),
        "record 2 (from byte 9) failed at byte 11: flow slot 5 holds no flow"
    );
    let cut = crate::wire::Error::Truncated { needed: 20, had: 7 };
    assert_eq!(
        cut.to_string(),
        "header cut short: 20 bytes needed, 7 there"
    );
}
