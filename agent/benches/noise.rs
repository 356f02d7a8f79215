//! What Noise costs the agent: the IK handshake (once per connection), and ChaChaPoly with
//! BLAKE2s-derived keys on batch-sized transport messages (every byte sent), both ends in
//! one process with snow, as `export::noise` uses it. Per observation: the message cost
//! divided by the observations a batch of that size holds at 7.2 bytes each (the live
//! agent's figure, README "Measurements").
//!
//! `cargo bench -p hopcap-agent --bench noise`. Best of 15 rounds; figures only.

use hopcap_agent::export::noise::{MAX_MESSAGE, PATTERN};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 15;
const BYTES_PER_OBSERVATION: f64 = 7.2;

fn pair() -> (snow::TransportState, snow::TransportState, f64) {
    let b = snow::Builder::new(PATTERN.parse().unwrap());
    let board = b.generate_keypair().unwrap();
    let collector = b.generate_keypair().unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut payload = vec![0u8; MAX_MESSAGE];
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut i = snow::Builder::new(PATTERN.parse().unwrap())
            .local_private_key(&board.private)
            .unwrap()
            .remote_public_key(&collector.public)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(PATTERN.parse().unwrap())
            .local_private_key(&collector.private)
            .unwrap()
            .build_responder()
            .unwrap();
        let n = i.write_message(&[], &mut buf).unwrap();
        r.read_message(&buf[..n], &mut payload).unwrap();
        let n = r.write_message(&[], &mut buf).unwrap();
        i.read_message(&buf[..n], &mut payload).unwrap();
        let pair = (
            i.into_transport_mode().unwrap(),
            r.into_transport_mode().unwrap(),
        );
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(pair);
    }
    let (i, r) = out.unwrap();
    (i, r, best)
}

fn main() {
    let (mut board, mut collector, handshake) = pair();
    let _ = &mut collector;
    println!(
        "{PATTERN}: handshake (both ends, one process) {:.0} µs",
        handshake * 1e6
    );
    let mut cipher = vec![0u8; MAX_MESSAGE];
    let mut plain = vec![0u8; MAX_MESSAGE];
    for size in [1024usize, 4096, 16 * 1024, 65_519] {
        let msg: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let reps = (64 * 1024 * 1024 / size).max(1);
        let (mut enc, mut dec) = (f64::MAX, f64::MAX);
        let per_round = (reps / ROUNDS).max(1);
        for _ in 0..ROUNDS {
            let mut sent = Vec::with_capacity(per_round);
            let t = Instant::now();
            for _ in 0..per_round {
                let n = board.write_message(black_box(&msg), &mut cipher).unwrap();
                sent.push(cipher[..n].to_vec());
            }
            enc = enc.min(t.elapsed().as_secs_f64() / per_round as f64);
            let t = Instant::now();
            for m in &sent {
                black_box(collector.read_message(m, &mut plain).unwrap());
            }
            dec = dec.min(t.elapsed().as_secs_f64() / per_round as f64);
        }
        let per_obs = enc / (size as f64 / BYTES_PER_OBSERVATION);
        println!(
            "{size:>6} B messages: encrypt {:>7.2} µs ({:>5.0} MB/s), decrypt {:>7.2} µs \
             ({:>5.0} MB/s); {:.1} ns per observation sent",
            enc * 1e6,
            size as f64 / enc / 1e6,
            dec * 1e6,
            size as f64 / dec / 1e6,
            per_obs * 1e9
        );
    }
}
