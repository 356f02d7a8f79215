//! ICMP and ICMPv6 errors from real captures (the shared corpus), decoded and then
//! fingerprinted through [`fingerprint_frame`], as the agent does: the quote is what is
//! hashed, so errors about different packets differ even where the error headers agree.

extern crate std;
use super::*;
use crate::corpus;
use crate::decode::{decode, DecodeOptions};
use crate::types::LinkType;
use std::vec::Vec;

fn fingerprinted(link: LinkType, frame: &[u8]) -> (Decoded, Summary, u64) {
    let decoded = decode(link, frame, &DecodeOptions::default());
    let (summary, fp) = fingerprint_frame(&decoded, frame);
    (decoded, summary, fp)
}

/// What the agent hashed before the quote was found by the decoder: the innermost payload
/// (for an ICMP error, the bytes after the quoted transport header), at most
/// [`FP_PAYLOAD_BYTES`] of them.
fn hashed_after_the_quoted_header(decoded: &Decoded, summary: &Summary, frame: &[u8]) -> u64 {
    let start = usize::from(decoded.payload_offset);
    let len = usize::from(decoded.payload_len).min(FP_PAYLOAD_BYTES);
    fingerprint(summary, &frame[start..start + len])
}

/// Frames 11-19 of zeek_communityid-icmp6.pcap: traceroute6 time-exceeded replies (122
/// bytes each), three per router, quoting UDP probes that differ in port and payload only.
fn traceroute6_time_exceeded() -> Vec<Vec<u8>> {
    let packets = corpus::file("zeek_communityid-icmp6.pcap");
    packets[10..19]
        .iter()
        .map(|(link, data)| {
            assert_eq!(*link, LinkType::ETHERNET);
            data.clone()
        })
        .collect()
}

#[test]
fn icmpv6_errors_about_different_probes_differ() {
    let frames = traceroute6_time_exceeded();
    let mut fps = Vec::new();
    for frame in &frames {
        let (decoded, summary, fp) = fingerprinted(LinkType::ETHERNET, frame);
        assert_eq!(frame.len(), 122);
        assert!(matches!(
            summary.transport,
            Transport::Icmp { ty: 3, code: 0, .. }
        ));
        // Ethernet 14 + IPv6 40 + ICMPv6 8: the quoted IPv6 header starts there.
        assert_eq!(decoded.quote_offset, Some(62));
        assert_eq!(frame[62] >> 4, 6);
        assert_eq!(fp, fingerprint(&summary, &frame[62..]));
        fps.push(fp);
    }
    let mut distinct = fps.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), frames.len(), "{fps:x?}");

    // The first two come from one router: same summary, same length, no IP id in IPv6.
    // Only their quotes tell them apart, and hashing the bytes after the quoted UDP header
    // (as the agent did) merged them.
    let (d0, s0, fp0) = fingerprinted(LinkType::ETHERNET, &frames[0]);
    let (d1, s1, fp1) = fingerprinted(LinkType::ETHERNET, &frames[1]);
    assert_eq!(s0, s1);
    assert_eq!(
        hashed_after_the_quoted_header(&d0, &s0, &frames[0]),
        hashed_after_the_quoted_header(&d1, &s1, &frames[1])
    );
    assert_ne!(fp0, fp1);
}

#[test]
fn nat_rewriting_a_real_icmpv6_quote_keeps_its_fingerprint() {
    let frame = &traceroute6_time_exceeded()[0];
    let (_, _, fp) = fingerprinted(LinkType::ETHERNET, frame);
    // What a NAT66 rewrites in the quote: the quoted source address (62 + 8..24), the
    // quoted UDP source port and checksum (62 + 40 + 0..2, 6..8), and the error's checksum.
    let mut natted = frame.clone();
    natted[56..58].copy_from_slice(&[0x12, 0x34]);
    natted[70..86].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    natted[102..104].copy_from_slice(&[0xc0, 0x01]);
    natted[108..110].copy_from_slice(&[0xbe, 0xef]);
    assert_eq!(fingerprinted(LinkType::ETHERNET, &natted).2, fp);
    // A different probe (its first payload byte is traceroute's probe number) does not.
    let mut other = frame.clone();
    other[110] ^= 0x80;
    assert_ne!(fingerprinted(LinkType::ETHERNET, &other).2, fp);
}

#[test]
fn icmpv4_errors_hash_their_quotes() {
    // Port unreachable quoting a DNS reply, and the AFS ones quoting RX datagrams.
    let mut frames = corpus::file("zeek_icmp-destunreach-udp.pcap");
    let afs = corpus::file("tcpdump_afs.pcap");
    frames.extend([29, 34, 52, 86].map(|n| afs[n - 1].clone()));
    for (link, frame) in &frames {
        let (decoded, summary, fp) = fingerprinted(*link, frame);
        assert!(
            matches!(summary.transport, Transport::Icmp { ty: 3, code: 3, .. }),
            "{:?}",
            summary.transport
        );
        // Ethernet 14 + IPv4 20 + ICMP 8.
        assert_eq!(decoded.quote_offset, Some(42));
        assert_eq!(fp, fingerprint(&summary, &frame[42..]));
        assert_ne!(
            fp,
            hashed_after_the_quoted_header(&decoded, &summary, frame)
        );
    }
}

#[test]
fn an_icmp_error_in_a_gre_tunnel_hashes_like_the_bare_packet() {
    // Frames 34 and 36 of zeek_tunnels-gre-sample.pcap: Ethernet, IPv4, GRE (4 bytes), then
    // an ICMP port unreachable quoting a DNS query.
    let packets = corpus::file("zeek_tunnels-gre-sample.pcap");
    for n in [34, 36] {
        let (link, frame) = &packets[n - 1];
        let (decoded, summary, fp) = fingerprinted(*link, frame);
        assert_eq!(summary.tunnels.len(), 1);
        assert_eq!(decoded.quote_offset, Some(14 + 20 + 4 + 20 + 8));
        let (_, bare, bare_fp) = fingerprinted(LinkType::RAW, &frame[38..]);
        assert_eq!((bare.net, bare.transport), (summary.net, summary.transport));
        assert_eq!(fp, bare_fp, "frame {n}");
    }
}

#[test]
fn only_icmp_errors_hash_other_bytes_than_the_innermost_payload() {
    // Over the whole corpus: what the agent hashed before ICMP quotes were found is what
    // every other frame still hashes, so only ICMP errors changed their fingerprint.
    let dir = corpus::corpus_dir();
    let (mut frames, mut errors) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        for (link, frame) in corpus::packets(&std::fs::read(&path).unwrap()) {
            let (decoded, summary, fp) = fingerprinted(link, &frame);
            let before = hashed_after_the_quoted_header(&decoded, &summary, &frame);
            let error = decoded.quote_offset.is_some();
            assert_eq!(fp != before, error, "{name}: {summary:?}");
            frames += 1;
            errors += usize::from(error);
        }
    }
    assert!(
        frames > 1000 && errors >= 40,
        "{frames} frames, {errors} ICMP errors"
    );
}
