//! Fuzzes the batch decoder on its own (the `frame` target reaches it only through framing).
//! The first byte picks the mode: raw bytes as a whole batch (header parser included), or a
//! valid header with a fuzzed record count followed by fuzzed record bytes, so that the
//! record decoder is reached without the fuzzer first having to find a valid header.
//! The header's `snap_bytes` comes from the input too, so records with frame bytes are reached.
//! Never a panic; every observation decoded (with its frame bytes) must survive an encode /
//! decode round trip, and
//! decoding the same bytes twice with one reused decoder gives the same result.
#![no_main]

#[path = "../shared/round_trip.rs"]
mod round_trip;

use round_trip::round_trip_with_bytes;

use hopcap_proto::batch::{BatchDecoder, BatchHeader, MAX_SNAP_BYTES};
use hopcap_proto::message::PROTOCOL_VERSION;

fn with_header(data: &[u8]) -> Option<Vec<u8>> {
    let (count, rest) = data.split_first_chunk::<2>()?;
    let (snap, records) = rest.split_first_chunk::<2>()?;
    let header = BatchHeader {
        version: PROTOCOL_VERSION,
        agent_id: "fuzz".try_into().ok()?,
        seq: 7,
        count: u32::from(u16::from_le_bytes(*count)),
        base_ts_ns: 1_764_000_000_000_000_000,
        reset: true,
        snap_bytes: u16::from_le_bytes(*snap) % (MAX_SNAP_BYTES + 1),
    };
    let mut bytes = postcard::to_allocvec(&header).ok()?;
    bytes.extend_from_slice(records);
    Some(bytes)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match with_header(rest) {
            Some(b) => b,
            None => return,
        }
    };
    let mut dec = Box::new(BatchDecoder::new());
    let mut first = Vec::new();
    let r1 = dec.decode_with_bytes(&bytes, |o, f| first.push((o, f.to_vec())));
    let mut second = Vec::new();
    let r2 = dec.decode_with_bytes(&bytes, |o, f| second.push((o, f.to_vec())));
    assert_eq!(
        first, second,
        "a reused decoder must not carry state between batches"
    );
    assert_eq!(r1.is_ok(), r2.is_ok());
    if !first.is_empty() {
        round_trip_with_bytes(&first);
    }
});
