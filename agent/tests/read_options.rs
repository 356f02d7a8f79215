//! `--read FILE` with the flags that choose packets: `--filter`, `-c`, `--sample` and
//! `-i`/`--exclude` apply to a file as they do live, `-` reads standard input, and a bad
//! expression is a usage error (exit 2), never a silent full print.

mod common;

use hopcap_proto::pcapng::{self, Out, Packet};
use hopcap_proto::types::{LinkType, PacketType};
use hopcap_testkit::{corpus_dir, ScratchDir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn afs() -> PathBuf {
    corpus_dir().join("tcpdump_afs.pcap")
}

fn agent(args: &[&str]) -> Output {
    common::agent::command()
        .args(args)
        .output()
        .expect("run agent")
}

fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn read(file: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--read", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    lines(&agent(&args))
}

#[test]
fn a_filter_and_its_negation_split_the_file() {
    let all = read(&afs(), &[]);
    let udp = read(&afs(), &["--filter", "udp"]);
    let not_udp = read(&afs(), &["--filter", "not udp"]);
    assert!(all.len() > 500, "{} packets", all.len());
    assert!(!udp.is_empty() && !not_udp.is_empty());
    assert_eq!(udp.len() + not_udp.len(), all.len());
    assert!(
        read(&afs(), &["--filter", "tcp"]).is_empty(),
        "an AFS capture: UDP only"
    );
    // Each kept line is one of the file's, in the file's order.
    let mut rest = all.iter();
    for line in &udp {
        assert!(rest.any(|l| l == line), "{line}");
    }
    // A port filter is narrower still.
    let udp7000 = read(&afs(), &["--filter", "udp port 7000"]);
    assert!(udp7000.len() < all.len());
}

#[test]
fn count_and_sample_bound_what_is_printed() {
    let all = read(&afs(), &[]);
    assert_eq!(read(&afs(), &["-c", "5"]), all[..5]);
    let sampled = read(&afs(), &["--sample", "4"]);
    assert!(
        !sampled.is_empty() && sampled.len() < all.len() / 2,
        "{} of {}",
        sampled.len(),
        all.len()
    );
    // The same packets every time: chosen by the sample key, not by chance.
    assert_eq!(read(&afs(), &["--sample", "4"]), sampled);
    // And they are a subset of the file, in order.
    let mut rest = all.iter();
    for line in &sampled {
        assert!(rest.any(|l| l == line), "{line}");
    }
}

#[test]
fn sampling_keeps_all_fragments_of_a_datagram_or_none() {
    // A DNS answer in three IPv6 fragments: only the first has the UDP header.
    let file = corpus_dir().join("zeek_ipv6-fragmented-dns.pcap");
    let fragments = ["frag (0|1432)", "frag (1432|1432)", "frag (2864|374)"];
    let (mut kept, mut dropped) = (0, 0);
    for n in 2..=16 {
        let lines = read(&file, &["--sample", &n.to_string()]);
        let found = fragments.map(|f| lines.iter().any(|l| l.contains(f)));
        assert!(
            found.iter().all(|&k| k == found[0]),
            "--sample {n}: {lines:?}"
        );
        if found[0] {
            kept += 1;
        } else {
            dropped += 1;
        }
    }
    assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}");
}

#[test]
fn a_dash_reads_standard_input() {
    let mut child = common::agent::command()
        .args(["--read", "-", "-c", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    let bytes = std::fs::read(afs()).expect("corpus file");
    let mut stdin = child.stdin.take().expect("stdin");
    // The agent may stop reading after 20 packets: a broken pipe here is fine.
    let _ = stdin.write_all(&bytes);
    drop(stdin);
    let out = child.wait_with_output().expect("agent output");
    assert_eq!(lines(&out), read(&afs(), &["-c", "20"]));
}

#[test]
fn a_bad_expression_is_a_usage_error() {
    for expr in ["portt 80", "tcp and", "host"] {
        let out = agent(&["--read", afs().to_str().unwrap(), "--filter", expr]);
        assert_eq!(out.status.code(), Some(2), "{expr}");
        assert!(out.stdout.is_empty(), "{expr}: nothing printed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--filter"), "{expr}: {err}");
    }
}

struct Bytes(Vec<u8>);

impl Out for Bytes {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

/// A pcapng as `hopcap-agent -w` writes it: interfaces `ctr:eth0` and `wlan0`, two frames
/// on the first and one on the second (frames from the corpus).
fn two_interface_file(dir: &ScratchDir) -> PathBuf {
    let raw = std::fs::read(corpus_dir().join("tcpdump_afs.pcap")).expect("corpus");
    // Classic pcap, little-endian: 24-byte header, then 16-byte record headers.
    let mut frames = Vec::new();
    let mut at = 24;
    while frames.len() < 3 {
        let len = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(raw[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    let mut b = Bytes(Vec::new());
    pcapng::section_header(&mut b, "test");
    pcapng::interface(
        &mut b,
        LinkType::ETHERNET,
        65535,
        "ctr:eth0",
        "pi1:ctr:eth0",
    );
    pcapng::interface(&mut b, LinkType::ETHERNET, 65535, "wlan0", "pi1:wlan0");
    for (i, (iface, frame)) in [0, 0, 1].into_iter().zip(&frames).enumerate() {
        pcapng::packet(
            &mut b,
            &Packet {
                interface: iface,
                ts_ns: 1_000_000_000 * (i as u64 + 1),
                wire_len: frame.len() as u32,
                pkttype: PacketType::HOST,
                data: frame,
                comment: "",
            },
        );
    }
    let path = dir.join("two.pcapng");
    std::fs::write(&path, &b.0).expect("write pcapng");
    path
}

#[test]
fn interface_globs_pick_pcapng_interfaces_by_name() {
    let dir = ScratchDir::new("read-iface").expect("scratch dir");
    let file = two_interface_file(&dir);
    let all = read(&file, &[]);
    assert_eq!(all.len(), 3);
    assert_eq!(read(&file, &["-i", "wlan0"]), all[2..]);
    assert_eq!(read(&file, &["-i", "ctr:*"]), all[..2]);
    assert_eq!(
        read(&file, &["-i", "eth0"]),
        all[..2],
        "a bare name matches in any netns"
    );
    assert_eq!(read(&file, &["--exclude", "wlan0"]), all[..2]);
    assert!(read(&file, &["-i", "nosuch"]).is_empty());
    // A classic pcap names no interface: no -i glob matches it.
    assert!(read(&afs(), &["-i", "*"]).is_empty());
}
