//! Hand-made pcap and pcapng byte fixtures, one feature or one damage each.

use super::timestamp::{ticks_to_ns, units_per_sec};
use super::*;
use hopcap_proto::types::LinkType;

fn open_bytes(bytes: Vec<u8>) -> Result<CaptureFile, OfflineError> {
    CaptureFile::from_reader(Path::new("fixture"), Box::new(io::Cursor::new(bytes)))
}

fn read_all(bytes: Vec<u8>) -> (Vec<PacketRecord>, Option<OfflineError>) {
    let mut file = match open_bytes(bytes) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut packets = Vec::new();
    let mut error = None;
    for item in &mut file {
        match item {
            Ok(p) => packets.push(p),
            Err(e) => {
                assert!(error.is_none(), "a second error after {error:?}");
                error = Some(e);
            }
        }
    }
    (packets, error)
}

/// Classic pcap: `magic` as the writer's native u32, written in the chosen byte order.
struct Pcap {
    be: bool,
    bytes: Vec<u8>,
}

impl Pcap {
    fn new(be: bool, magic: u32, major: u16, linktype: u32) -> Pcap {
        let mut p = Pcap {
            be,
            bytes: Vec::new(),
        };
        p.u32(magic);
        p.u16(major);
        p.u16(4);
        p.u32(0); // thiszone
        p.u32(0); // sigfigs
        p.u32(65535);
        p.u32(linktype);
        p
    }
    fn u16(&mut self, v: u16) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
    fn record(mut self, sec: u32, frac: u32, wire_len: u32, data: &[u8]) -> Pcap {
        self.u32(sec);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(wire_len);
        self.bytes.extend_from_slice(data);
        self
    }
}

/// pcapng, block by block; `shb` switches the byte order for the blocks after it.
struct Ng {
    be: bool,
    bytes: Vec<u8>,
}

impl Ng {
    fn new() -> Ng {
        Ng {
            be: false,
            bytes: Vec::new(),
        }
    }
    fn e16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn e32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(mut self, block_type: u32, body: &[u8]) -> Ng {
        let len = 12 + body.len().next_multiple_of(4) as u32;
        self.bytes.extend_from_slice(&self.e32(block_type));
        self.bytes.extend_from_slice(&self.e32(len));
        self.bytes.extend_from_slice(body);
        self.bytes.resize(
            self.bytes.len() + body.len().next_multiple_of(4) - body.len(),
            0,
        );
        self.bytes.extend_from_slice(&self.e32(len));
        self
    }
    fn options(&self, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, value) in options {
            out.extend_from_slice(&self.e16(*code));
            out.extend_from_slice(&self.e16(value.len() as u16));
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            out.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        out
    }
    fn shb(mut self, be: bool, major: u16, minor: u16) -> Ng {
        self.be = be;
        let mut body = self.e32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.e16(major));
        body.extend_from_slice(&self.e16(minor));
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        self.block(0x0a0d_0d0a, &body)
    }
    fn idb(self, link: u16, snaplen: u32, options: &[(u16, &[u8])]) -> Ng {
        let mut body = self.e16(link).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.e32(snaplen));
        body.extend_from_slice(&self.options(options));
        self.block(1, &body)
    }
    fn epb(self, if_id: u32, ticks: u64, wire_len: u32, data: &[u8]) -> Ng {
        let mut body = self.e32(if_id).to_vec();
        body.extend_from_slice(&self.e32((ticks >> 32) as u32));
        body.extend_from_slice(&self.e32(ticks as u32));
        body.extend_from_slice(&self.e32(data.len() as u32));
        body.extend_from_slice(&self.e32(wire_len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        self.block(6, &body)
    }
    fn spb(self, wire_len: u32, data: &[u8]) -> Ng {
        let mut body = self.e32(wire_len).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}

const FRAME_A: &[u8] = &[0xaa; 14];
const FRAME_B: &[u8] = &[0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb];

#[test]
fn pcap_micro_little_endian() {
    let file = Pcap::new(false, 0xa1b2_c3d4, 2, 1)
        .record(1_700_000_000, 123_456, 60, FRAME_A)
        .record(1_700_000_001, 999_999, 7, FRAME_B);
    let (packets, error) = read_all(file.bytes);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].link_type, LinkType::ETHERNET);
    assert_eq!(packets[0].ts_ns, 1_700_000_000_123_456_000);
    assert_eq!(packets[0].wire_len, 60);
    assert_eq!(packets[0].data, FRAME_A);
    assert_eq!(packets[1].ts_ns, 1_700_000_001_999_999_000);
    assert_eq!(packets[1].data, FRAME_B);
}

#[test]
fn pcap_nano_big_endian() {
    let file = Pcap::new(true, 0xa1b2_3c4d, 2, 113).record(5, 123_456_789, 14, FRAME_A);
    let (packets, error) = read_all(file.bytes);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(packets[0].link_type, LinkType::LINUX_SLL);
    assert_eq!(packets[0].ts_ns, 5_123_456_789);
}

#[test]
fn pcap_fcs_bits_are_masked_reserved_bits_rejected() {
    let (packets, error) = read_all(
        Pcap::new(false, 0xa1b2_c3d4, 2, 0x3000_0065)
            .record(0, 0, 7, FRAME_B)
            .bytes,
    );
    assert!(error.is_none());
    assert_eq!(packets[0].link_type, LinkType::RAW);
    let (_, error) = read_all(Pcap::new(false, 0xa1b2_c3d4, 2, 0x0030_0000).bytes);
    assert!(matches!(
        error,
        Some(OfflineError::ReservedLinkTypeBits { field: 0x0030_0000 })
    ));
}

#[test]
fn pcap_bad_headers() {
    let (_, error) = read_all(Pcap::new(false, 0xa1b2_c3d4, 1, 1).bytes);
    assert!(matches!(
        error,
        Some(OfflineError::UnsupportedVersion { major: 1, minor: 4 })
    ));
    let (_, error) = read_all(b"GIF89a and more bytes than a pcap header".to_vec());
    assert!(matches!(
        error,
        Some(OfflineError::BadMagic { magic: 0x4749_4638 })
    ));
    let (_, error) = read_all(Vec::new());
    assert!(matches!(
        error,
        Some(OfflineError::CutShort {
            offset: 0,
            needed: 4,
            had: 0
        })
    ));
    let mut short = Pcap::new(false, 0xa1b2_c3d4, 2, 1).bytes;
    short.truncate(10);
    let (_, error) = read_all(short);
    assert!(matches!(
        error,
        Some(OfflineError::CutShort {
            offset: 0,
            needed: 24,
            had: 10
        })
    ));
}

#[test]
fn pcap_last_record_cut_in_its_data() {
    let mut bytes = Pcap::new(false, 0xa1b2_c3d4, 2, 1)
        .record(1, 0, 14, FRAME_A)
        .record(2, 0, 14, FRAME_A)
        .bytes;
    bytes.truncate(bytes.len() - 4);
    let (packets, error) = read_all(bytes);
    assert_eq!(packets.len(), 1);
    let second = (24 + 16 + FRAME_A.len()) as u64;
    match error {
        Some(OfflineError::CutShort {
            offset,
            needed,
            had,
        }) => {
            assert_eq!((offset, needed, had), (second, 30, 26));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pcap_last_record_cut_in_its_header() {
    let mut bytes = Pcap::new(true, 0xa1b2_c3d4, 2, 1)
        .record(1, 0, 14, FRAME_A)
        .bytes;
    bytes.extend_from_slice(&[0, 0, 0, 9, 0]);
    let (packets, error) = read_all(bytes);
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        error,
        Some(OfflineError::CutShort {
            offset: 54,
            needed: 16,
            had: 5
        })
    ));
}

#[test]
fn pcap_caplen_beyond_limit() {
    let mut file = Pcap::new(false, 0xa1b2_c3d4, 2, 1);
    file.u32(0);
    file.u32(0);
    file.u32(0x7fff_ffff);
    file.u32(0x7fff_ffff);
    let (_, error) = read_all(file.bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BlockTooLong { offset: 24, .. })
    ));
}

#[test]
fn pcap_modified_format_has_longer_record_headers() {
    let mut file = Pcap::new(false, 0xa1b2_cd34, 2, 1);
    for v in [7u32, 8_000, 14, 14, 3, 0] {
        file.u32(v); // sec, usec, caplen, len, ifindex, protocol+pkttype+pad
    }
    file.bytes.extend_from_slice(FRAME_A);
    let (packets, error) = read_all(file.bytes);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(packets[0].ts_ns, 7_008_000_000);
    assert_eq!(packets[0].data, FRAME_A);
}

#[test]
fn pcapng_sections_of_both_byte_orders_and_their_interfaces() {
    let tsresol_ns: &[u8] = &[9];
    let tsresol_binary: &[u8] = &[0x80 | 10]; // 2^10 ticks per second
    let offset_100s = 100i64.to_be_bytes();
    let bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[(2, b"eth0")])
        .idb(276, 0, &[(9, tsresol_ns)])
        .epb(0, 1_500_000, 60, FRAME_A) // default µs
        .block(4, &[0; 8]) // NRB: skipped
        .epb(1, 2_000_000_007, 60, FRAME_B)
        .shb(true, 1, 0)
        .idb(101, 4, &[(9, tsresol_binary), (14, &offset_100s)])
        .block(5, &[0; 12]) // ISB: skipped
        .block(0x0000_0bad, &[1, 2, 3, 4]) // custom: skipped
        .block(0x1234, &[]) // unknown: skipped
        .epb(0, 1536, 60, FRAME_A)
        .spb(60, FRAME_A) // cut to the snap length of interface 0 (4)
        .bytes;
    let (packets, error) = read_all(bytes);
    assert!(error.is_none(), "{error:?}");
    let summary: Vec<(u16, u64, u32, usize)> = packets
        .iter()
        .map(|p| (p.link_type.0, p.ts_ns, p.interface_id, p.data.len()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 1_500_000_000, 0, 14),
            (276, 2_000_000_007, 1, 7),
            (101, 101_500_000_000, 0, 14),
            (101, 0, 0, 4),
        ]
    );
    assert_eq!(packets[1].data, FRAME_B);
    assert_eq!(packets[3].wire_len, 60);
}

#[test]
fn pcapng_obsolete_packet_block() {
    let mut body = vec![1, 0, 0, 0]; // interface 1 (u16), drops
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&2_000_000u32.to_le_bytes());
    body.extend_from_slice(&7u32.to_le_bytes());
    body.extend_from_slice(&70u32.to_le_bytes());
    body.extend_from_slice(FRAME_B);
    let bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[])
        .idb(0, 0, &[])
        .block(2, &body)
        .bytes;
    let (packets, error) = read_all(bytes);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(packets[0].link_type, LinkType::NULL);
    assert_eq!((packets[0].ts_ns, packets[0].wire_len), (2_000_000_000, 70));
    assert_eq!(packets[0].data, FRAME_B);
}

#[test]
fn pcapng_unknown_interface() {
    let bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[])
        .epb(0, 1, 14, FRAME_A)
        .shb(true, 1, 0)
        .epb(0, 1, 14, FRAME_A)
        .bytes;
    let (packets, error) = read_all(bytes);
    assert_eq!(packets.len(), 1);
    // Interfaces belong to their section: the second section has none.
    assert!(matches!(
        error,
        Some(OfflineError::UnknownInterface {
            id: 0,
            count: 0,
            ..
        })
    ));
}

#[test]
fn pcapng_bad_section_headers() {
    let (_, error) = read_all(Ng::new().shb(false, 0, 1).bytes);
    assert!(matches!(
        error,
        Some(OfflineError::UnsupportedVersion { major: 0, minor: 1 })
    ));
    let mut bytes = Ng::new().shb(false, 1, 0).bytes;
    bytes[8] = 0x99; // byte-order magic
    let (_, error) = read_all(bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BadBlock { offset: 0, .. })
    ));
}

#[test]
fn pcapng_option_overrunning_its_block() {
    let mut bytes = Ng::new().shb(false, 1, 0).idb(1, 0, &[(2, b"eth0")]).bytes;
    let idb = 28;
    bytes[idb + 16 + 2] = 40; // if_name claims 40 bytes, 8 are left before the trailer
    let (_, error) = read_all(bytes);
    match error {
        Some(OfflineError::BadOption { offset, len, room }) => {
            assert_eq!((offset, len, room), (idb as u64 + 16, 40, 8));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pcapng_unsupported_tsresol() {
    let bytes = Ng::new().shb(false, 1, 0).idb(1, 0, &[(9, &[20])]).bytes;
    let (_, error) = read_all(bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BadTsResol {
            offset: 28,
            value: 20
        })
    ));
}

#[test]
fn pcapng_block_lengths() {
    let mut bytes = Ng::new().shb(false, 1, 0).idb(1, 0, &[]).bytes;
    let last = bytes.len() - 4;
    bytes[last] = 24; // trailer disagrees with the header (20)
    let (_, error) = read_all(bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BadBlockLength {
            offset: 28,
            len: 20,
            trailer: 24
        })
    ));
    let mut bytes = Ng::new().shb(false, 1, 0).idb(1, 0, &[]).bytes;
    bytes[28 + 4] = 18; // not a multiple of 4
    let (_, error) = read_all(bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BadBlockLength {
            offset: 28,
            len: 18,
            ..
        })
    ));
}

#[test]
fn pcapng_last_block_cut_short() {
    let mut bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[])
        .epb(0, 1, 14, FRAME_A)
        .epb(0, 2, 14, FRAME_A)
        .bytes;
    let second = bytes.len() - 48;
    bytes.truncate(bytes.len() - 10);
    let (packets, error) = read_all(bytes);
    assert_eq!(packets.len(), 1);
    match error {
        Some(OfflineError::CutShort {
            offset,
            needed,
            had,
        }) => {
            assert_eq!((offset, needed, had), (second as u64, 48, 38));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_file_names_its_path() {
    let error = CaptureFile::open(Path::new("/nonexistent/hopcap-test.pcap")).unwrap_err();
    assert!(matches!(error, OfflineError::Io { .. }));
    assert!(
        error.to_string().contains("/nonexistent/hopcap-test.pcap"),
        "{error}"
    );
}

#[test]
fn timestamp_resolutions() {
    assert_eq!(ticks_to_ns(1_234_567, 1_000_000, 0), 1_234_567_000);
    // Picoseconds: finer than ns, floored.
    assert_eq!(ticks_to_ns(1_234_567_891, 1_000_000_000_000, 0), 1_234_567);
    // 2^-20 s ticks: 2^20 of them are one second.
    assert_eq!(ticks_to_ns(3 << 20, 1 << 20, 0), 3_000_000_000);
    assert_eq!(ticks_to_ns(5, 1, -10), 0);
    assert_eq!(ticks_to_ns(u64::MAX, 1, 0), u64::MAX);
    assert_eq!(units_per_sec(9), Some(1_000_000_000));
    assert_eq!(units_per_sec(0x80 | 63), Some(1 << 63));
    assert_eq!(units_per_sec(0x80 | 64), None);
    assert_eq!(units_per_sec(20), None);
}

#[test]
fn pcapng_blocks_too_short_for_their_fields() {
    // An EPB whose captured length runs past its block.
    let mut bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[])
        .epb(0, 1, 14, FRAME_A)
        .bytes;
    let epb = 28 + 20;
    bytes[epb + 20] = 200;
    let (packets, error) = read_all(bytes);
    assert!(packets.is_empty());
    assert!(matches!(
        error,
        Some(OfflineError::BadBlock {
            offset: 48,
            block_type: 6
        })
    ));
    // A caplen near u32::MAX must not wrap when padded.
    let mut bytes = Ng::new()
        .shb(false, 1, 0)
        .idb(1, 0, &[])
        .epb(0, 1, 14, FRAME_A)
        .bytes;
    bytes[epb + 20..epb + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, error) = read_all(bytes);
    assert!(matches!(
        error,
        Some(OfflineError::BadBlock { offset: 48, .. })
    ));
    // Interface and packet blocks shorter than their fixed fields.
    for (block_type, body) in [(1u32, &[0u8; 4][..]), (6, &[0; 16]), (3, &[])] {
        let bytes = Ng::new().shb(false, 1, 0).block(block_type, body).bytes;
        let (_, error) = read_all(bytes);
        assert!(
            matches!(error, Some(OfflineError::BadBlock { offset: 28, block_type: t }) if t == block_type),
            "type {block_type}: {error:?}"
        );
    }
}
