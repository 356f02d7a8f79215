//! Wire size and speed of the batch codec on synthetic board traffic.
//!
//! `cargo bench -p hopcap-proto --bench wire` prints, per traffic mix and record order:
//! observations, bytes per observation on the wire (frames included: frame header + batch
//! header + records), and encode / decode ns per record. No external harness.

use hopcap_proto::batch::{BatchDecoder, BatchEncoder, MAX_BATCH_BYTES};
use hopcap_proto::frame::{encode, HEADER_LEN};
use hopcap_proto::message::Message;
use std::time::Instant;

use hopcap_testkit::sim::{generate, Emit, Mix};

fn main() {
    let packets: usize = std::env::var("WIRE_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    println!(
        "{:<8} {:<10} {:>8} {:>9} {:>10} {:>10} {:>8}",
        "mix", "order", "obs", "B/obs", "enc ns/rec", "dec ns/rec", "batches"
    );
    let mut runs: Vec<(String, String, Vec<_>)> = Vec::new();
    for mix in [Mix::Ping, Mix::TcpBulk, Mix::Dns, Mix::Overlay, Mix::Mixed] {
        for emit in [Emit::TimeOrder, Emit::RingBlocks] {
            runs.push((
                format!("{mix:?}"),
                format!("{emit:?}"),
                generate(mix, emit, packets, 42),
            ));
        }
    }
    // The unfavourable case: each packet seen once (only the uplink captured), no back-references.
    let uplink_only = generate(Mix::Mixed, Emit::TimeOrder, packets, 42)
        .into_iter()
        .filter(|o| o.link == 4)
        .collect();
    runs.push(("Mixed".into(), "1hop".into(), uplink_only));
    for (mix, emit, obs) in runs {
        let mut enc = Box::new(BatchEncoder::new("pi-board-01", MAX_BATCH_BYTES));
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut frame_buf = vec![0u8; MAX_BATCH_BYTES + HEADER_LEN];
        let mut ship = |bytes: &[u8], frames: &mut Vec<Vec<u8>>| {
            let n = encode(&Message::Batch(bytes), &mut frame_buf).expect("frame fits");
            frames.push(frame_buf[..n].to_vec());
        };
        let t0 = Instant::now();
        for o in &obs {
            if enc.push(o).is_err() {
                ship(enc.finish(), &mut frames);
                enc.push(o).expect("fits an empty batch");
            }
        }
        ship(enc.finish(), &mut frames);
        let enc_ns = t0.elapsed().as_nanos() as f64 / obs.len() as f64;
        let total: usize = frames.iter().map(Vec::len).sum();

        let mut dec = Box::new(BatchDecoder::new());
        let mut n = 0usize;
        let t1 = Instant::now();
        for f in &frames {
            dec.decode(&f[HEADER_LEN..], |o| {
                n += 1;
                std::hint::black_box(o);
            })
            .expect("decodes");
        }
        let dec_ns = t1.elapsed().as_nanos() as f64 / obs.len() as f64;
        assert_eq!(n, obs.len());
        println!(
            "{:<8} {:<10} {:>8} {:>9.2} {:>10.0} {:>10.0} {:>8}",
            mix,
            emit,
            obs.len(),
            total as f64 / obs.len() as f64,
            enc_ns,
            dec_ns,
            frames.len()
        );
    }
}
