//! The batch codec on one board's synthetic traffic (hopcap-testkit's sim): round trips in
//! time and ring order, bytes per observation, back-references, and the decoder against
//! truncated, corrupted, lost and reordered batches; and observations of every shape
//! (hopcap-testkit's random) against the record bound. An integration test: the sim builds its
//! observations with the hopcap-proto the test kit links, which the crate's own unit tests
//! would see as a second, foreign copy.

use hopcap_proto::batch::{
    BatchDecoder, BatchEncoder, BatchError, BatchInfo, RecordError, MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
};
use hopcap_proto::layer::{LayerKind, StopReason};
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Ip, Net, Stop, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, PacketType};
use hopcap_testkit::random::{random_observations, random_summary};
use hopcap_testkit::sim::{generate, Emit, Mix};
use hopcap_testkit::Rng;

/// Bits of a record's first byte (proto/src/batch/fields.rs, private to the codec).
const H_BACKREF: u8 = 1 << 0;
const H_NEW_FLOW: u8 = 1 << 1;

/// header: version 2, agent "a", seq 0, count 1, base time 0, reset.
const HEADER: [u8; 7] = [0x02, 0x01, b'a', 0x00, 0x01, 0x00, 0x01];

fn decode_err(bytes: &[u8]) -> BatchError {
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(bytes, |_| {}).unwrap_err()
}

/// Encodes `obs` into batches of at most `max_bytes`, returns the batches.
fn encode_all(obs: &[Observation], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut enc = Box::new(BatchEncoder::new("board-1", max_bytes));
    let mut batches = Vec::new();
    for o in obs {
        if enc.push(o).is_err() {
            batches.push(enc.finish().to_vec());
            enc.push(o).expect("a record fits an empty batch");
        }
    }
    batches.push(enc.finish().to_vec());
    batches
}

fn decode_all(batches: &[Vec<u8>]) -> Vec<Observation> {
    let mut dec = Box::new(BatchDecoder::new());
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let info = dec
            .decode(b, |o| out.push(o))
            .unwrap_or_else(|e| panic!("batch {i}: {e:?}"));
        assert_eq!(info.header.seq, i as u64);
        assert!(info.header.reset);
    }
    out
}

fn assert_round_trip(obs: &[Observation], max_bytes: usize) -> usize {
    let batches = encode_all(obs, max_bytes);
    let back = decode_all(&batches);
    assert_eq!(back.len(), obs.len());
    for (i, (a, b)) in obs.iter().zip(&back).enumerate() {
        assert_eq!(a, b, "record {i}");
    }
    batches.iter().map(|b| b.len()).sum()
}

#[test]
fn simulated_mixes_round_trip_in_both_orders() {
    for mix in [Mix::Ping, Mix::TcpBulk, Mix::Dns, Mix::Overlay, Mix::Mixed] {
        for emit in [Emit::TimeOrder, Emit::RingBlocks] {
            let obs = generate(mix, emit, 3000, 7);
            assert!(
                obs.len() >= 3 * 2900,
                "{mix:?} made {} observations",
                obs.len()
            );
            assert_round_trip(&obs, 16 * 1024);
        }
    }
}

#[test]
fn ordinary_traffic_takes_at_most_24_bytes_per_observation() {
    for emit in [Emit::TimeOrder, Emit::RingBlocks] {
        let obs = generate(Mix::Mixed, emit, 20_000, 11);
        let bytes = assert_round_trip(&obs, MAX_BATCH_BYTES);
        let per = bytes as f64 / obs.len() as f64;
        assert!(per <= 24.0, "{emit:?}: {per:.2} bytes per observation");
    }
}

#[test]
fn the_same_packet_on_the_next_hop_is_a_back_reference() {
    let obs = generate(Mix::TcpBulk, Emit::TimeOrder, 400, 3);
    // A later hop of a packet, once the flows of every link exist.
    let k = (200..obs.len())
        .find(|&k| obs[k].fingerprint == obs[k - 1].fingerprint)
        .unwrap();
    let before = encode_all(&obs[..k], MAX_BATCH_BYTES).remove(0);
    let after = encode_all(&obs[..=k], MAX_BATCH_BYTES).remove(0);
    // Same header length (count and base time encode the same), so the tail is record k.
    let record = &after[before.len()..];
    assert_eq!(record[0] & H_BACKREF, H_BACKREF, "{record:02x?}");
    assert_eq!(record[0] & H_NEW_FLOW, 0, "{record:02x?}");
    // head, flow, distance, time delta (a few µs): no fingerprint, no TCP fields.
    assert!(record.len() <= 6, "{record:02x?}");
}

/// Sets the TCP header length of every TCP observation `pick` chooses.
fn set_tcp_hdr_len(obs: &mut [Observation], len: u8, pick: impl Fn(&Observation) -> bool) {
    for o in obs.iter_mut().filter(|o| pick(o)) {
        if let Transport::Tcp {
            ref mut hdr_len, ..
        } = o.summary.transport
        {
            *hdr_len = len;
        }
    }
}

#[test]
fn a_steady_tcp_header_length_costs_nothing_and_a_change_two_bytes() {
    let mut obs = generate(Mix::TcpBulk, Emit::TimeOrder, 2000, 5);
    set_tcp_hdr_len(&mut obs, 0, |_| true);
    let unknown = assert_round_trip(&obs, MAX_BATCH_BYTES);
    set_tcp_hdr_len(&mut obs, 32, |_| true);
    let steady = assert_round_trip(&obs, MAX_BATCH_BYTES);
    // Once per flow per link (the first packet's prediction is 0), so a few bytes.
    assert!(steady - unknown <= 2 * 2 * 5, "{unknown} -> {steady}");
    // One packet (on all its hops) with a SACK block: its first hop says 44 and the next
    // packet's first hop says 32 again; the other hops are back-references, predicted
    // from the hop before.
    let fp = obs[1000].fingerprint;
    assert!(obs.iter().filter(|o| o.fingerprint == fp).count() >= 3);
    set_tcp_hdr_len(&mut obs, 44, |o| o.fingerprint == fp);
    let one_change = assert_round_trip(&obs, MAX_BATCH_BYTES);
    assert!(
        one_change > steady && one_change - steady <= 2 * 2,
        "{steady} -> {one_change}"
    );
}

fn sim_batches(max_bytes: usize) -> Vec<Vec<u8>> {
    let obs = generate(Mix::Mixed, Emit::RingBlocks, 600, 5);
    let mut enc = Box::new(BatchEncoder::new("board", max_bytes));
    let mut out = Vec::new();
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
            // The header (with snap_bytes) is the first 21 bytes.
            BatchError::Header(_) => assert!(cut < 21, "{cut}"),
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
    let mut rng = Rng::new(1);
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
        b.extend((0..rng.below(200)).map(|_| rng.next_u64() as u8));
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
    let mut batches = Vec::new();
    for range in [0..100, 100..200, 200..obs.len()] {
        for o in &obs[range.clone()] {
            enc.push(o).unwrap();
        }
        batches.push((range, enc.finish().to_vec()));
    }
    // Batch 1 lost on the way, the others arriving late and out of order, one decoder.
    let mut dec = Box::new(BatchDecoder::new());
    for (seq, (range, bytes)) in [(2u64, &batches[2]), (0, &batches[0])] {
        let mut got = Vec::new();
        let info = dec.decode(bytes, |o| got.push(o)).unwrap();
        assert_eq!((info.header.seq, info.header.reset), (seq, true));
        assert_eq!(got, obs[range.clone()]);
    }
    // A batch cut short keeps what decoded; the next one is not affected.
    let (range, bytes) = &batches[1];
    let mut got = Vec::new();
    assert!(dec
        .decode(&bytes[..bytes.len() / 2], |o| got.push(o))
        .is_err());
    assert_eq!(got, obs[range.start..range.start + got.len()]);
    let mut again = Vec::new();
    dec.decode(&batches[2].1, |o| again.push(o)).unwrap();
    assert_eq!(again, obs[batches[2].0.clone()]);
    // An empty batch is valid too.
    let empty = enc.finish().to_vec();
    let info = dec.decode(&empty, |_| panic!("no records")).unwrap();
    assert_eq!((info.header.count, info.header.seq), (0, 3));
}

/// The records of a batch, past its header.
fn records(batch: &[u8]) -> &[u8] {
    let (_, rest) = postcard::take_from_bytes::<hopcap_proto::batch::BatchHeader>(batch).unwrap();
    rest
}

#[test]
fn a_reused_encoder_codes_each_batch_as_a_fresh_one_would() {
    // The state is reset in place between batches (not rebuilt): the bytes must not tell.
    let obs = generate(Mix::Mixed, Emit::RingBlocks, 3000, 13);
    let mut reused = Box::new(BatchEncoder::new("b", 4096));
    let mut start = 0;
    let mut batches = 0;
    for (i, o) in obs.iter().enumerate() {
        if reused.push(o).is_ok() {
            continue;
        }
        let batch = reused.finish().to_vec();
        let mut fresh = Box::new(BatchEncoder::new("b", 4096));
        for o in &obs[start..i] {
            fresh.push(o).unwrap();
        }
        assert_eq!(records(&batch), records(fresh.finish()), "batch {batches}");
        batches += 1;
        start = i;
        reused.push(o).unwrap();
    }
    assert!(batches >= 5, "{batches} batches: too few to test the reset");
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
    let mut stream = Vec::new();
    for (i, b) in sim_batches(700).iter().enumerate().take(6) {
        std::fs::write(dir.join(format!("batch-{i}")), b).unwrap();
        let mut frame = vec![0u8; b.len() + hopcap_proto::frame::HEADER_LEN];
        let n = hopcap_proto::frame::encode(&hopcap_proto::message::Message::Batch(b), &mut frame)
            .unwrap();
        stream.extend_from_slice(&frame[..n]);
    }
    std::fs::write(dir.join("stream"), stream).unwrap();
}

// ---- randomised observations of every shape ----

#[test]
fn random_observations_of_every_shape_round_trip() {
    for seed in 0..12 {
        let obs = random_observations(seed, 3000);
        // Small batches cross many boundaries; the flow table (256) overflows and evicts.
        assert_round_trip(&obs, 2048);
    }
}

#[test]
fn no_record_exceeds_the_record_bound() {
    let mut rng = Rng::new(99);
    let mut enc = Box::new(BatchEncoder::new("x", MAX_BATCH_BYTES));
    for seed in 0..4 {
        for o in random_observations(seed, 2000) {
            let before = enc.len();
            if enc.push(&o).is_err() {
                enc.finish();
                continue;
            }
            assert!(enc.len() - before <= MAX_RECORD_BYTES);
        }
    }
    // The worst case: a new flow, IPv6 everywhere, two tunnels, every field far from its prediction.
    let mut s = random_summary(&mut rng);
    let v6 = Addr::V6([0xff; 16]);
    s.vlan = Some(u16::MAX);
    s.ethertype = EtherType(u16::MAX);
    s.tunnels.clear();
    for _ in 0..2 {
        let _ = s.tunnels.push(Tunnel {
            kind: TunnelKind::Gre {
                key: Some(u32::MAX),
            },
            src: v6,
            dst: v6,
            outer_id: 0x7fff,
            src_port: u16::MAX,
            dst_port: u16::MAX,
        });
    }
    s.net = Net::Ip(Ip {
        src: v6,
        dst: v6,
        proto: IpProto(255),
        ttl: 1,
        id: 0x7fff_ffff,
        frag_offset: 0x1fff,
        more_fragments: true,
        payload_len: 0x7fff,
    });
    s.transport = Transport::Tcp {
        src_port: u16::MAX,
        dst_port: u16::MAX,
        seq: 0x7fff_ffff,
        ack: 0x7fff_ffff,
        flags: u16::MAX,
        window: 0x7fff,
        hdr_len: u8::MAX,
    };
    s.stop = Some(Stop {
        offset: u16::MAX,
        kind: LayerKind::Other,
        reason: StopReason::Truncated {
            needed: u16::MAX,
            had: u16::MAX,
        },
    });
    let worst = Observation {
        ts_ns: u64::MAX / 2,
        link: u16::MAX,
        order: u64::MAX / 2,
        pkttype: PacketType(255),
        wire_len: 0x7fff_ffff,
        cap_len: 0x8000_0000,
        fingerprint: u64::MAX,
        summary: s,
    };
    let mut enc = Box::new(BatchEncoder::new("x", MAX_BATCH_BYTES));
    enc.push(&worst).unwrap();
    assert!(enc.len() <= MAX_RECORD_BYTES, "{}", enc.len());
    let batch = enc.finish().to_vec();
    let mut got = Vec::new();
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(&batch, |o| got.push(o)).unwrap();
    assert_eq!(got, [worst]);
}

#[test]
fn codec_state_stays_within_the_documented_size() {
    let (enc, dec) = (
        std::mem::size_of::<BatchEncoder>(),
        std::mem::size_of::<BatchDecoder>(),
    );
    println!("encoder {enc} bytes, decoder {dec} bytes");
    assert!(enc <= 250 * 1024, "{enc}");
    assert!(dec <= 140 * 1024, "{dec}");
}
