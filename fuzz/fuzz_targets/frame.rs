//! Fuzzes the collector's receive path: a byte stream cut into frames, each batch body
//! decoded on its own by one reused decoder; and the input as a single batch. Never a panic, never more
//! memory than the bounds. Every observation decoded from garbage (with its frame bytes) must survive an encode /
//! decode round trip (the codec can carry any value its decoder can produce).
#![no_main]

#[path = "../shared/round_trip.rs"]
mod round_trip;

use round_trip::round_trip_with_bytes;

use hopcap_proto::batch::BatchDecoder;
use hopcap_proto::frame::FrameDecoder;
use hopcap_proto::message::Message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut frames = FrameDecoder::new(64 * 1024);
    let mut batches = Box::new(BatchDecoder::new());
    let mut decoded = Vec::new();
    let mut rest = data;
    loop {
        match frames.decode(rest) {
            Ok(Some((frame, used))) => {
                if let Message::Batch(body) = frame.message {
                    let _ = batches.decode_with_bytes(body, |o, f| decoded.push((o, f.to_vec())));
                }
                rest = &rest[used..];
            }
            Ok(None) => {
                let _ = frames.finish(rest);
                break;
            }
            Err(_) => break,
        }
    }
    let mut single = Box::new(BatchDecoder::new());
    let _ = single.decode_with_bytes(data, |o, f| decoded.push((o, f.to_vec())));
    if !decoded.is_empty() {
        round_trip_with_bytes(&decoded);
    }
});
