//! The check both receive-path targets end with: every observation decoded from fuzzed bytes
//! survives an encode / decode round trip (the codec can carry any value its decoder can
//! produce).

use hopcap_proto::batch::{BatchDecoder, BatchEncoder, MAX_BATCH_BYTES};
use hopcap_proto::record::Observation;

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
