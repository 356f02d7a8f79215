#![no_main]
//! Fuzzes the decoder: the first byte picks the link type (and whether a NIC-stripped VLAN
//! tag is passed), the rest is the frame, then fingerprints it and takes its sample key. Any
//! panic is a bug; so is a payload, quote or stop that points outside the frame, or a key
//! that changes when the same frame is seen again.

use hopcap_proto::decode::{decode, DecodeOptions, MAX_DECODED_LEN};
use hopcap_proto::fingerprint::fingerprint_frame;
use hopcap_proto::sample::SampleKeys;
use hopcap_proto::types::LinkType;

const LINKS: [LinkType; 9] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType(147), // a link type the decoder does not know
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(selector & 0x0f) % LINKS.len()];
    let opts = DecodeOptions {
        stripped_vlan_tci: (selector & 0x80 != 0).then_some(0x2064),
        ..DecodeOptions::default()
    };
    let decoded = decode(link, frame, &opts);
    let len = frame.len().min(MAX_DECODED_LEN);
    assert!(usize::from(decoded.payload_offset) + usize::from(decoded.payload_len) <= len);
    if let Some(stop) = decoded.stop {
        assert!(usize::from(stop.offset) <= len);
    }
    if let Some(quote) = decoded.quote_offset {
        assert!(usize::from(quote) <= len);
    }
    let (summary, _) = fingerprint_frame(&decoded, frame);
    let mut keys = SampleKeys::new();
    let key = keys.key(&decoded, frame, &summary, 0);
    // A first fragment's key is remembered, a later one's miss hashes alike: no change.
    assert_eq!(keys.key(&decoded, frame, &summary, 1_000), key);
});
