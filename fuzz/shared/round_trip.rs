//! The check both receive-path targets end with: every observation decoded from fuzzed bytes
//! survives an encode / decode round trip (the codec can carry any value its decoder can
//! produce).

use hopcap_proto::batch::{BatchDecoder, BatchEncoder, MAX_BATCH_BYTES};
use hopcap_proto::record::Observation;

/// Each observation with the frame bytes it carried (empty when its batch carried none).
pub fn round_trip_with_bytes(items: &[(Observation, Vec<u8>)]) {
    let snap = items.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let snap = u16::try_from(snap).expect("the decoder bounds frame bytes");
    if snap == 0 {
        let obs: Vec<Observation> = items.iter().map(|(o, _)| o.clone()).collect();
        return round_trip(&obs);
    }
    let mut enc = Box::new(BatchEncoder::with_snap_bytes("fuzz", MAX_BATCH_BYTES, snap));
    let mut batches = Vec::new();
    for (o, f) in items {
        if enc.push_with_bytes(o, f).is_err() {
            batches.push(enc.finish().to_vec());
            enc.push_with_bytes(o, f)
                .expect("a record fits an empty batch");
        }
    }
    batches.push(enc.finish().to_vec());
    let mut dec = Box::new(BatchDecoder::new());
    let mut back = Vec::new();
    for b in &batches {
        dec.decode_with_bytes(b, |o, f| back.push((o, f.to_vec())))
            .expect("own batches decode");
    }
    assert_eq!(back, items);
}

pub fn round_trip(obs: &[Observation]) {
    let mut enc = Box::new(BatchEncoder::new("fuzz", MAX_BATCH_BYTES));
    let mut batches = Vec::new();
    for o in obs {
        if enc.push(o).is_err() {
            batches.push(enc.finish().to_vec());
            enc.push(o).expect("a record fits an empty batch");
        }
    }
    batches.push(enc.finish().to_vec());
    let mut dec = Box::new(BatchDecoder::new());
    let mut back = Vec::new();
    for b in &batches {
        dec.decode(b, |o| back.push(o)).expect("own batches decode");
    }
    assert_eq!(back, obs);
}
