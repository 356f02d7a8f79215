//! The corpus's real fragments: every fragment of one datagram gets the key of its first.

extern crate std;

use super::*;
use crate::corpus;
use crate::decode::{decode, DecodeOptions};
use crate::fingerprint::fingerprint_frame;
use std::collections::HashMap;

/// Later fragments of `file` that found their first fragment, and those that did not.
fn fragments_by_datagram(file: &str) -> (usize, usize) {
    let mut keys = SampleKeys::new();
    let mut firsts: HashMap<u64, u64> = HashMap::new();
    let (mut found, mut missed) = (0, 0);
    for (i, (link, frame)) in corpus::file(file).iter().enumerate() {
        let decoded = decode(*link, frame, &DecodeOptions::default());
        let (summary, _) = fingerprint_frame(&decoded, frame);
        // The files span seconds at most; 1 µs a frame keeps every first fragment fresh.
        let key = keys.key(&decoded, frame, &summary, i as u64 * 1_000);
        match outermost_fragment(&decoded) {
            Some(Fragment {
                datagram,
                first: true,
            }) => {
                firsts.insert(datagram, key);
            }
            Some(Fragment {
                datagram,
                first: false,
            }) => match firsts.get(&datagram) {
                Some(&first) => {
                    assert_eq!(key, first, "{file} frame {i}");
                    found += 1;
                }
                None => {
                    assert_eq!(key, datagram, "{file} frame {i}");
                    missed += 1;
                }
            },
            None => {}
        }
    }
    (found, missed)
}

#[test]
fn all_fragments_of_a_datagram_share_a_key() {
    // TCP in four fragments, the later ones out of order (0, 48, 72, 24).
    assert_eq!(fragments_by_datagram("zeek_ipv4-fragmented-4.pcap"), (3, 0));
    // NTP in two fragments, then a second first fragment under the same id (an overlap).
    assert_eq!(fragments_by_datagram("zeek_ipv4-fragmented-1.pcap"), (1, 0));
    // DNS answers in three fragments; the capture begins after one answer's first.
    assert_eq!(
        fragments_by_datagram("zeek_ipv6-fragmented-dns.pcap"),
        (2, 1)
    );
    // GTP-U whose outer IPv4 is fragmented: the first fragments key the inner packet.
    let (found, missed) = fragments_by_datagram("zeek_gtp1_gn_normal_incl_fragmentation.pcap");
    assert!(found > 0 && missed == 0, "{found} {missed}");
}

#[test]
fn a_first_outer_fragment_is_decoded_into_its_tunnel() {
    let packets = corpus::file("zeek_gtp1_gn_normal_incl_fragmentation.pcap");
    let mut seen = 0;
    for (link, frame) in &packets {
        let decoded = decode(*link, frame, &DecodeOptions::default());
        if outermost_fragment(&decoded).is_some_and(|f| f.first) {
            let (summary, _) = fingerprint_frame(&decoded, frame);
            assert_eq!(summary.tunnels.len(), 1, "{summary:?}");
            seen += 1;
        }
    }
    assert!(seen > 0);
}
