//! Decoder throughput: ns per packet and packets per second, over every packet of the
//! shared corpus (held in memory, decoded round after round) and over synthetic traffic
//! (Ethernet/IPv4 TCP, UDP, ICMP echo, and TCP inside VXLAN). Figures only, no asserts.
//!
//! Run: `cargo bench -p hopcap-agent --bench decode` (HOPCAP_CORPUS names the corpus;
//! otherwise `shared/corpus/pcap` in the nearest ancestor of this crate).

use hopcap_agent::offline::CaptureFile;
use hopcap_proto::decode::{decode, decode_into, DecodeOptions};
use hopcap_proto::layer::Decoded;
use hopcap_proto::summary::Summary;
use hopcap_proto::types::LinkType;
use hopcap_testkit::find_corpus_dir;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Builds the i-th synthetic frame of one kind.
type MakeFrame = fn(usize) -> Vec<u8>;

/// Each measurement runs whole rounds over its packets until at least this long.
const MIN_RUN: Duration = Duration::from_millis(700);

fn main() {
    let opts = DecodeOptions::default();
    println!(
        "{:<34} {:>9} {:>12} {:>14}",
        "traffic", "packets", "ns/packet", "packets/s"
    );
    match corpus_packets() {
        Some(packets) => {
            measure("corpus: decode", &packets, |link, frame| {
                black_box(decode(link, frame, &opts));
            });
            let mut reused = Decoded::default();
            measure("corpus: decode_into (reused)", &packets, |link, frame| {
                decode_into(link, frame, &opts, &mut reused);
                black_box(&reused);
            });
            measure("corpus: decode + summarize", &packets, |link, frame| {
                black_box(Summary::from_decoded(&decode(link, frame, &opts)));
            });
        }
        None => println!("(no corpus found: set HOPCAP_CORPUS)"),
    }
    let kinds: [(&str, MakeFrame); 4] = [
        ("synthetic: eth/ipv4/tcp", tcp_frame),
        ("synthetic: eth/ipv4/udp", udp_frame),
        ("synthetic: eth/ipv4/icmp echo", icmp_frame),
        ("synthetic: vxlan eth/ipv4/tcp", vxlan_frame),
    ];
    let mut mixed = Vec::new();
    for (name, make) in kinds {
        let packets: Vec<(LinkType, Vec<u8>)> =
            (0..256).map(|i| (LinkType::ETHERNET, make(i))).collect();
        measure(name, &packets, |link, frame| {
            black_box(decode(link, frame, &opts));
        });
        mixed.extend(packets);
    }
    measure("synthetic: mixed + summarize", &mixed, |link, frame| {
        black_box(Summary::from_decoded(&decode(link, frame, &opts)));
    });
}

/// Runs `work` over `packets` round after round for at least [`MIN_RUN`] and prints the rate.
fn measure(name: &str, packets: &[(LinkType, Vec<u8>)], mut work: impl FnMut(LinkType, &[u8])) {
    // One warm-up round: caches, branch predictors, page faults.
    for (link, frame) in packets {
        work(*link, black_box(frame));
    }
    let start = Instant::now();
    let mut decoded: u64 = 0;
    while start.elapsed() < MIN_RUN {
        for (link, frame) in packets {
            work(*link, black_box(frame));
        }
        decoded += packets.len() as u64;
    }
    let elapsed = start.elapsed();
    let ns = elapsed.as_nanos() as f64 / decoded as f64;
    println!(
        "{name:<34} {:>9} {ns:>12.1} {:>14.0}",
        packets.len(),
        1e9 / ns
    );
}

/// Every packet of every readable corpus file (damaged files give what they can).
fn corpus_packets() -> Option<Vec<(LinkType, Vec<u8>)>> {
    let dir = find_corpus_dir()?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    paths.sort();
    let mut packets = Vec::new();
    for path in paths {
        let Ok(file) = CaptureFile::open(&path) else {
            continue;
        };
        packets.extend(file.map_while(Result::ok).map(|r| (r.link_type, r.data)));
    }
    Some(packets)
}

// Synthetic frames: `i` varies addresses, ports and sizes so no two frames are the same.

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, i: usize, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![
        0x45,
        0,
        0,
        0,
        0,
        0,
        0x40,
        0,
        64,
        proto,
        0,
        0,
        10,
        0,
        (i >> 8) as u8,
        i as u8,
        10,
        1,
        0,
        1,
    ];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn tcp(i: usize, payload_len: usize) -> Vec<u8> {
    let mut t = vec![0u8; 32 + payload_len];
    t[0..2].copy_from_slice(&(32768 + i as u16).to_be_bytes());
    t[2..4].copy_from_slice(&443u16.to_be_bytes());
    t[4..8].copy_from_slice(&(i as u32 * 1448).to_be_bytes());
    t[12] = 0x80; // 32-byte header: timestamps option
    t[13] = 0x18;
    t
}

fn udp(i: usize, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&(40000 + i as u16).to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn tcp_frame(i: usize) -> Vec<u8> {
    ethernet(0x0800, &ipv4(6, i, &tcp(i, (i * 37) % 1400)))
}

fn udp_frame(i: usize) -> Vec<u8> {
    ethernet(0x0800, &ipv4(17, i, &udp(i, 53, &vec![0u8; 20 + i % 200])))
}

fn icmp_frame(i: usize) -> Vec<u8> {
    let mut echo = vec![8, 0, 0, 0, 0, 1, 0, 0];
    echo[6..8].copy_from_slice(&(i as u16).to_be_bytes());
    echo.extend_from_slice(&[0u8; 56]);
    ethernet(0x0800, &ipv4(1, i, &echo))
}

fn vxlan_frame(i: usize) -> Vec<u8> {
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0x13, 0x89, 0];
    vxlan.extend_from_slice(&tcp_frame(i));
    ethernet(0x0800, &ipv4(17, i, &udp(i, 4789, &vxlan)))
}
