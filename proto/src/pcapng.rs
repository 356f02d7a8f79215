//! Writing pcapng (draft-ietf-opsawg-pcapng), the format Wireshark and tcpdump read: a
//! section header, one interface description per captured link, and an enhanced packet
//! block per packet. Byte for byte into whatever the caller collects bytes in ([`Out`]); no
//! I/O. Little-endian, timestamps in nanoseconds (`if_tsresol` 9), options padded to 4.

use crate::types::{LinkType, PacketType};

/// Where blocks are written.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
}

#[cfg(feature = "std")]
impl Out for std::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

mod code {
    pub const SHB: u32 = 0x0A0D_0D0A;
    pub const IDB: u32 = 0x0000_0001;
    pub const EPB: u32 = 0x0000_0006;
    pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

    pub const OPT_END: u16 = 0;
    pub const OPT_COMMENT: u16 = 1;
    pub const SHB_USERAPPL: u16 = 4;
    pub const IF_NAME: u16 = 2;
    pub const IF_DESCRIPTION: u16 = 3;
    pub const IF_TSRESOL: u16 = 9;
    pub const EPB_FLAGS: u16 = 2;
}

/// Bytes an option takes: its 4-byte header and its value padded to 4.
fn option_len(value: &[u8]) -> usize {
    4 + value.len().next_multiple_of(4)
}

/// Option values longer than this are cut (the length field is 16 bits).
const MAX_OPTION: usize = 0xFFFC;

fn put_option(out: &mut impl Out, code: u16, value: &[u8]) {
    let value = value.get(..MAX_OPTION).unwrap_or(value);
    out.put(&code.to_le_bytes());
    out.put(&(value.len() as u16).to_le_bytes());
    out.put(value);
    out.put(&[0; 3][..value.len().next_multiple_of(4) - value.len()]);
}

/// Options as (code, value), then opt_endofopt, and the block's total length twice.
struct Block<'a> {
    kind: u32,
    /// The fixed part after the two header words.
    body: &'a [u8],
    /// The packet data (EPB), padded to 4.
    data: &'a [u8],
    options: &'a [(u16, &'a [u8])],
}

impl Block<'_> {
    fn write(&self, out: &mut impl Out) {
        let options: usize = self
            .options
            .iter()
            .map(|(_, v)| option_len(v.get(..MAX_OPTION).unwrap_or(v)))
            .sum::<usize>()
            + if self.options.is_empty() { 0 } else { 4 };
        let total = 12 + self.body.len() + self.data.len().next_multiple_of(4) + options;
        let total = u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes();
        out.put(&self.kind.to_le_bytes());
        out.put(&total);
        out.put(self.body);
        out.put(self.data);
        out.put(&[0; 3][..self.data.len().next_multiple_of(4) - self.data.len()]);
        for (code, value) in self.options {
            put_option(out, *code, value);
        }
        if !self.options.is_empty() {
            put_option(out, code::OPT_END, &[]);
        }
        out.put(&total);
    }
}

/// The section header that starts a file: `application` names the writer.
pub fn section_header(out: &mut impl Out, application: &str) {
    section_header_commented(out, application, "");
}

/// [`section_header`] with a comment (`opt_comment`, which may span lines; empty for none):
/// Wireshark shows it under Statistics > Capture File Properties, `capinfos` prints it.
pub fn section_header_commented(out: &mut impl Out, application: &str, comment: &str) {
    let mut body = [0u8; 16];
    body[..4].copy_from_slice(&code::BYTE_ORDER_MAGIC.to_le_bytes());
    body[4..6].copy_from_slice(&1u16.to_le_bytes()); // major
    body[6..8].copy_from_slice(&0u16.to_le_bytes()); // minor
    body[8..].copy_from_slice(&(-1i64).to_le_bytes()); // section length: not given
    let with_comment = [
        (code::SHB_USERAPPL, application.as_bytes()),
        (code::OPT_COMMENT, comment.as_bytes()),
    ];
    let options = if comment.is_empty() {
        &with_comment[..1]
    } else {
        &with_comment[..]
    };
    Block {
        kind: code::SHB,
        body: &body,
        data: &[],
        options,
    }
    .write(out);
}

/// One interface: `name` is what Wireshark shows (`netns:link`), `description` a longer
/// label (`board:netns:link`). Interfaces are numbered from 0 in the order written.
pub fn interface(
    out: &mut impl Out,
    link_type: LinkType,
    snaplen: u32,
    name: &str,
    description: &str,
) {
    let mut body = [0u8; 8];
    body[..2].copy_from_slice(&link_type.0.to_le_bytes());
    body[4..].copy_from_slice(&snaplen.to_le_bytes());
    Block {
        kind: code::IDB,
        body: &body,
        data: &[],
        options: &[
            (code::IF_NAME, name.as_bytes()),
            (code::IF_DESCRIPTION, description.as_bytes()),
            (code::IF_TSRESOL, &[9]),
        ],
    }
    .write(out);
}

/// One packet as captured on interface `interface`.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub interface: u32,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Its length on the wire (the captured bytes may be fewer).
    pub wire_len: u32,
    pub pkttype: PacketType,
    pub data: &'a [u8],
    /// Shown by Wireshark as the packet's comment (`frame.comment`); empty for none.
    pub comment: &'a str,
}

/// The direction bits of `epb_flags`: inbound 1, outbound 2.
fn direction(pkttype: PacketType) -> u32 {
    if pkttype == PacketType::OUTGOING {
        2
    } else {
        1
    }
}

/// An enhanced packet block.
pub fn packet(out: &mut impl Out, p: &Packet<'_>) {
    let data = p.data.get(..u32::MAX as usize).unwrap_or(p.data);
    let mut body = [0u8; 20];
    body[..4].copy_from_slice(&p.interface.to_le_bytes());
    body[4..8].copy_from_slice(&((p.ts_ns >> 32) as u32).to_le_bytes());
    body[8..12].copy_from_slice(&(p.ts_ns as u32).to_le_bytes());
    body[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
    body[16..].copy_from_slice(&p.wire_len.max(data.len() as u32).to_le_bytes());
    let flags = direction(p.pkttype).to_le_bytes();
    let with_comment = [
        (code::EPB_FLAGS, &flags[..]),
        (code::OPT_COMMENT, p.comment.as_bytes()),
    ];
    let options = if p.comment.is_empty() {
        &with_comment[..1]
    } else {
        &with_comment[..]
    };
    Block {
        kind: code::EPB,
        body: &body,
        data,
        options,
    }
    .write(out);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    struct Bytes(Vec<u8>);

    impl Out for Bytes {
        fn put(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Every block's two length words agree, are a multiple of 4 and cover the block.
    fn blocks(b: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let len = u32_at(b, at + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(b, at + len - 4) as usize, len);
            out.push((u32_at(b, at), &b[at..at + len]));
            at += len;
        }
        out
    }

    #[test]
    fn a_packet_block_byte_for_byte() {
        let mut b = Bytes(Vec::new());
        packet(
            &mut b,
            &Packet {
                interface: 3,
                ts_ns: 0x0000_0001_0000_0002,
                wire_len: 98,
                pkttype: PacketType::OUTGOING,
                data: &[0xAA, 0xBB, 0xCC],
                comment: "",
            },
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            6, 0, 0, 0,   48, 0, 0, 0,     // EPB, 48 bytes
            3, 0, 0, 0,                    // interface 3
            1, 0, 0, 0,   2, 0, 0, 0,      // timestamp high, low
            3, 0, 0, 0,   98, 0, 0, 0,     // captured 3, on the wire 98
            0xAA, 0xBB, 0xCC, 0,           // data, padded
            2, 0, 4, 0,   2, 0, 0, 0,      // epb_flags: outbound
            0, 0, 0, 0,                    // opt_endofopt
            48, 0, 0, 0,
        ];
        assert_eq!(b.0, want);
    }

    #[test]
    fn a_commented_section_header_byte_for_byte() {
        let mut b = Bytes(Vec::new());
        section_header_commented(&mut b, "hc", "off\n+5");
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x0A, 0x0D, 0x0D, 0x0A,  52, 0, 0, 0,   // SHB, 52 bytes
            0x4D, 0x3C, 0x2B, 0x1A,                 // byte-order magic
            1, 0, 0, 0,                             // version 1.0
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // section length unknown
            4, 0, 2, 0,  b'h', b'c', 0, 0,          // shb_userappl "hc", padded
            1, 0, 6, 0,  b'o', b'f', b'f', b'\n', b'+', b'5', 0, 0, // opt_comment
            0, 0, 0, 0,                             // opt_endofopt
            52, 0, 0, 0,
        ];
        assert_eq!(b.0, want);
        // Without a comment: the plain header.
        let (mut plain, mut empty) = (Bytes(Vec::new()), Bytes(Vec::new()));
        section_header(&mut plain, "hc");
        section_header_commented(&mut empty, "hc", "");
        assert_eq!(plain.0, empty.0);
        assert_eq!(u32_at(&plain.0, 4), 40);
    }

    #[test]
    fn a_file_of_header_interface_and_commented_packet_is_well_framed() {
        let mut b = Bytes(Vec::new());
        section_header(&mut b, "hopcap-agent 0.1.0");
        interface(&mut b, LinkType::ETHERNET, 192, "ctr:eth0", "pi1:ctr:eth0");
        packet(
            &mut b,
            &Packet {
                interface: 0,
                ts_ns: 1_795_694_400_123_456_789,
                wire_len: 60,
                pkttype: PacketType::HOST,
                data: &[1; 60],
                comment: "journey 7 hop 2",
            },
        );
        let kinds: Vec<u32> = blocks(&b.0).iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [code::SHB, code::IDB, code::EPB]);
        let idb = blocks(&b.0)[1].1;
        assert_eq!(u32_at(idb, 8) & 0xFFFF, 1, "LINKTYPE_ETHERNET");
        assert_eq!(u32_at(idb, 12), 192, "snaplen");
        let text = std::string::String::from_utf8_lossy(&b.0);
        assert!(text.contains("pi1:ctr:eth0") && text.contains("journey 7 hop 2"));
    }

    #[test]
    fn captured_length_never_exceeds_the_wire_length_field() {
        let mut b = Bytes(Vec::new());
        let p = Packet {
            interface: 0,
            ts_ns: 0,
            wire_len: 0, // unknown: at least what was captured
            pkttype: PacketType::HOST,
            data: &[0; 5],
            comment: "",
        };
        packet(&mut b, &p);
        assert_eq!(u32_at(&b.0, 20), 5);
        assert_eq!(u32_at(&b.0, 24), 5);
    }
}
