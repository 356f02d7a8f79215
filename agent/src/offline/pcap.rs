//! Classic pcap: a 24-byte file header, then records of a 16-byte header (24 in the
//! "modified" format of Alexey Kuznetsov's patches) and the captured bytes.

use super::{OfflineError, PacketRecord, Source, MAX_RECORD_LEN};
use hopcap_proto::types::LinkType;

const FILE_HEADER_LEN: usize = 24;
/// libpcap's LT_RESERVED1: must be zero. The bits above it (FCS length) are allowed and masked.
const LINKTYPE_RESERVED_BITS: u32 = 0x03FF_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    LittleEndian,
    BigEndian,
    /// Little-endian with 8 more bytes per record header (ifindex, protocol, pkttype).
    Modified,
}

impl Layout {
    /// The u32 at `at` in this layout's byte order (`bytes` holds a whole header).
    fn u32_at(self, bytes: &[u8], at: usize) -> u32 {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        match self {
            Layout::BigEndian => u32::from_be_bytes(b),
            Layout::LittleEndian | Layout::Modified => u32::from_le_bytes(b),
        }
    }

    fn u16_at(self, bytes: &[u8], at: usize) -> u16 {
        let b = [bytes[at], bytes[at + 1]];
        match self {
            Layout::BigEndian => u16::from_be_bytes(b),
            Layout::LittleEndian | Layout::Modified => u16::from_le_bytes(b),
        }
    }
}

pub(super) struct PcapReader {
    layout: Layout,
    nanos: bool,
    link_type: LinkType,
}

impl PcapReader {
    /// Reads the file header; `magic` is its first four bytes, already read.
    pub(super) fn open(src: &mut Source, magic: [u8; 4]) -> Result<PcapReader, OfflineError> {
        // The magic as a little-endian reader sees it tells the byte order of the rest.
        let (layout, nanos) = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 => (Layout::LittleEndian, false),
            0xa1b2_3c4d => (Layout::LittleEndian, true),
            0xd4c3_b2a1 => (Layout::BigEndian, false),
            0x4d3c_b2a1 => (Layout::BigEndian, true),
            0xa1b2_cd34 => (Layout::Modified, false),
            _ => {
                return Err(OfflineError::BadMagic {
                    magic: u32::from_be_bytes(magic),
                })
            }
        };
        let mut header = [0u8; FILE_HEADER_LEN];
        header[..4].copy_from_slice(&magic);
        let got = 4 + src.fill(&mut header[4..])?;
        if got < FILE_HEADER_LEN {
            return Err(OfflineError::CutShort {
                offset: 0,
                needed: FILE_HEADER_LEN as u64,
                had: got as u64,
            });
        }
        let (major, minor) = (layout.u16_at(&header, 4), layout.u16_at(&header, 6));
        if major != 2 {
            return Err(OfflineError::UnsupportedVersion { major, minor });
        }
        // thiszone, sigfigs and snaplen (8..20) tell a reader nothing it needs.
        let field = layout.u32_at(&header, 20);
        if field & LINKTYPE_RESERVED_BITS != 0 {
            return Err(OfflineError::ReservedLinkTypeBits { field });
        }
        Ok(PcapReader {
            layout,
            nanos,
            link_type: LinkType((field & 0xFFFF) as u16),
        })
    }

    fn record_header_len(&self) -> usize {
        match self.layout {
            Layout::Modified => 24,
            _ => 16,
        }
    }

    pub(super) fn next_packet(
        &mut self,
        src: &mut Source,
    ) -> Option<Result<PacketRecord, OfflineError>> {
        self.read_record(src).transpose()
    }

    fn read_record(&mut self, src: &mut Source) -> Result<Option<PacketRecord>, OfflineError> {
        let start = src.pos;
        let hdr_len = self.record_header_len();
        let mut header = [0u8; 24];
        let got = src.fill(&mut header[..hdr_len])?;
        if got == 0 {
            return Ok(None);
        }
        if got < hdr_len {
            return Err(OfflineError::CutShort {
                offset: start,
                needed: hdr_len as u64,
                had: got as u64,
            });
        }
        let caplen = self.layout.u32_at(&header, 8);
        let len = hdr_len as u64 + u64::from(caplen);
        if u64::from(caplen) > MAX_RECORD_LEN {
            return Err(OfflineError::BlockTooLong {
                offset: start,
                len,
                max: MAX_RECORD_LEN,
            });
        }
        let mut record = Vec::with_capacity(len as usize);
        record.extend_from_slice(&header[..hdr_len]);
        src.finish_record(start, len, &mut record)?;
        let ts_sec = self.layout.u32_at(&header, 0);
        let ts_frac = self.layout.u32_at(&header, 4);
        let wire_len = self.layout.u32_at(&header, 12);
        // Fractions >= 1 s (damaged files) are added as they are, not wrapped into seconds.
        let frac_ns = if self.nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        record.drain(..hdr_len);
        Ok(Some(PacketRecord {
            link_type: self.link_type,
            ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac_ns,
            wire_len,
            interface_id: 0,
            data: record,
        }))
    }
}
