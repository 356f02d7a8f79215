//! pcapng: a sequence of sections, each a Section Header Block (which sets the byte order)
//! followed by Interface Description Blocks and packet blocks that name an interface.
//! Interfaces are numbered per section; blocks this reader has no use for are skipped.

use super::timestamp::{ticks_to_ns, units_per_sec};
use super::{OfflineError, PacketRecord, Source, MAX_RECORD_LEN};
use hopcap_proto::types::LinkType;

/// Block types (pcapng spec, section 11.1). The SHB's reads the same in both byte orders, so
/// it can be found before the byte order is known.
const SHB_TYPE: u32 = 0x0A0D_0D0A;
pub(super) const SHB_TYPE_BYTES: [u8; 4] = SHB_TYPE.to_le_bytes();
const IDB_TYPE: u32 = 1;
/// The obsolete Packet Block, still found in old files.
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
/// Smallest whole block of each type: its fixed fields and the 12 bytes of type and lengths.
const SHB_MIN_LEN: u32 = 28;
const IDB_MIN_LEN: u32 = 20;
const SPB_MIN_LEN: u32 = 16;
const EPB_MIN_LEN: u32 = 32;
const PB_MIN_LEN: u32 = 32;
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// Fixed part of each block: type, length, and the trailing length copy.
const BLOCK_OVERHEAD: u32 = 12;

struct Interface {
    /// if_name, if the file gives one.
    name: String,
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second (if_tsresol: 10^n or 2^n; 10^6 by default).
    units_per_sec: u64,
    /// if_tsoffset: seconds to add to every timestamp.
    offset_secs: i64,
}

pub(super) struct PcapNgReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

/// A whole block as read from the file: type, lengths and trailer included.
struct RawBlock {
    offset: u64,
    block_type: u32,
    bytes: Vec<u8>,
}

impl RawBlock {
    fn len(&self) -> u32 {
        self.bytes.len() as u32
    }
}

impl PcapNgReader {
    /// Reads the first Section Header Block; its four type bytes are already read.
    pub(super) fn open(src: &mut Source, magic: [u8; 4]) -> Result<PcapNgReader, OfflineError> {
        let mut reader = PcapNgReader {
            big_endian: false,
            interfaces: Vec::new(),
        };
        match reader.read_block(src, &magic)? {
            Some(block) => reader.section_header(&block)?,
            // Not reached: the four magic bytes make the block non-empty.
            None => {
                return Err(OfflineError::CutShort {
                    offset: 0,
                    needed: 12,
                    had: 4,
                })
            }
        }
        Ok(reader)
    }

    pub(super) fn next_packet(
        &mut self,
        src: &mut Source,
    ) -> Option<Result<PacketRecord, OfflineError>> {
        loop {
            let block = match self.read_block(src, &[]) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let packet = match block.block_type {
                SHB_TYPE => self.section_header(&block).map(|()| None),
                IDB_TYPE => self.interface(&block).map(|()| None),
                EPB_TYPE => self.enhanced_packet(block).map(Some),
                SPB_TYPE => self.simple_packet(block).map(Some),
                PB_TYPE => self.obsolete_packet(block).map(Some),
                _ => Ok(None),
            };
            match packet {
                Ok(None) => continue,
                Ok(Some(p)) => return Some(Ok(p)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = bytes.get(at..at + 4) {
            b.copy_from_slice(s);
        }
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Reads one whole block. `preread` holds its first bytes when the caller already read them.
    fn read_block(
        &mut self,
        src: &mut Source,
        preread: &[u8],
    ) -> Result<Option<RawBlock>, OfflineError> {
        let offset = src.pos - preread.len() as u64;
        let mut head = [0u8; 12];
        head[..preread.len()].copy_from_slice(preread);
        let got = preread.len() + src.fill(&mut head[preread.len()..8])?;
        if got == 0 {
            return Ok(None);
        }
        let cut = |had: usize| OfflineError::CutShort {
            offset,
            needed: 8,
            had: had as u64,
        };
        if got < 8 {
            return Err(cut(got));
        }
        let mut head_len = 8;
        if head[..4] == SHB_TYPE_BYTES {
            // The byte-order magic after the length decides how this section is read.
            head_len = 12;
            let more = src.fill(&mut head[8..12])?;
            if more < 4 {
                return Err(OfflineError::CutShort {
                    offset,
                    needed: 12,
                    had: (8 + more) as u64,
                });
            }
            self.big_endian = match head[8..12] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => {
                    return Err(OfflineError::BadBlock {
                        offset,
                        block_type: SHB_TYPE,
                    })
                }
            };
        }
        let block_type = self.u32_at(&head, 0);
        let len = self.u32_at(&head, 4);
        let min_len = if block_type == SHB_TYPE {
            SHB_MIN_LEN
        } else {
            BLOCK_OVERHEAD
        };
        if len < min_len || len % 4 != 0 {
            return Err(OfflineError::BadBlockLength {
                offset,
                len,
                trailer: len,
            });
        }
        if u64::from(len) > MAX_RECORD_LEN {
            return Err(OfflineError::BlockTooLong {
                offset,
                len: u64::from(len),
                max: MAX_RECORD_LEN,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        bytes.extend_from_slice(&head[..head_len]);
        src.finish_record(offset, u64::from(len), &mut bytes)?;
        let trailer = self.u32_at(&bytes, len as usize - 4);
        if trailer != len {
            return Err(OfflineError::BadBlockLength {
                offset,
                len,
                trailer,
            });
        }
        Ok(Some(RawBlock {
            offset,
            block_type,
            bytes,
        }))
    }

    fn section_header(&mut self, block: &RawBlock) -> Result<(), OfflineError> {
        // read_block checked the byte-order magic and the minimum length.
        let (major, minor) = (self.u16_at(&block.bytes, 12), self.u16_at(&block.bytes, 14));
        if major != 1 {
            return Err(OfflineError::UnsupportedVersion { major, minor });
        }
        self.walk_options(block, 24, |_, _| {})?;
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, block: &RawBlock) -> Result<(), OfflineError> {
        if block.len() < IDB_MIN_LEN {
            return Err(bad_block(block));
        }
        let link_type = LinkType(self.u16_at(&block.bytes, 8));
        let snaplen = self.u32_at(&block.bytes, 12);
        let mut tsresol = 6;
        let mut offset_secs = 0;
        let mut name = String::new();
        let big_endian = self.big_endian;
        self.walk_options(block, 16, |code, value| match code {
            OPT_IF_NAME => name = String::from_utf8_lossy(value).into_owned(),
            OPT_IF_TSRESOL => {
                if let Some(&r) = value.first() {
                    tsresol = r;
                }
            }
            OPT_IF_TSOFFSET => {
                if let Ok(b) = <[u8; 8]>::try_from(value) {
                    offset_secs = if big_endian {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
            }
            _ => {}
        })?;
        let units_per_sec = units_per_sec(tsresol).ok_or(OfflineError::BadTsResol {
            offset: block.offset,
            value: tsresol,
        })?;
        self.interfaces.push(Interface {
            name,
            link_type,
            snaplen,
            units_per_sec,
            offset_secs,
        });
        Ok(())
    }

    /// The name the file gives interface `id` of the current section.
    pub(super) fn interface_name(&self, id: u32) -> Option<&str> {
        let name = self.interfaces.get(id as usize)?.name.as_str();
        (!name.is_empty()).then_some(name)
    }

    fn lookup(&self, block: &RawBlock, id: u32) -> Result<&Interface, OfflineError> {
        self.interfaces
            .get(id as usize)
            .ok_or(OfflineError::UnknownInterface {
                offset: block.offset,
                id,
                count: self.interfaces.len() as u32,
            })
    }

    fn enhanced_packet(&self, block: RawBlock) -> Result<PacketRecord, OfflineError> {
        let b = &block.bytes;
        if block.len() < EPB_MIN_LEN {
            return Err(bad_block(&block));
        }
        let id = self.u32_at(b, 8);
        let ticks = (u64::from(self.u32_at(b, 12)) << 32) | u64::from(self.u32_at(b, 16));
        let caplen = self.u32_at(b, 20);
        let wire_len = self.u32_at(b, 24);
        // The data, padded to 32 bits, must fit before the trailing length (in u64: a
        // caplen near u32::MAX must not wrap on a 32-bit board).
        let padded = u64::from(caplen).next_multiple_of(4);
        if padded > u64::from(block.len() - EPB_MIN_LEN) {
            return Err(bad_block(&block));
        }
        let (caplen, options_at) = (caplen as usize, 28 + padded as usize);
        self.walk_options(&block, options_at, |_, _| {})?;
        self.timed_packet(block, id, ticks, wire_len, caplen)
    }

    /// The record of an (enhanced or obsolete) packet block, whose data starts at byte 28:
    /// `ticks` in its interface's units, `caplen` checked against the block by the caller.
    fn timed_packet(
        &self,
        mut block: RawBlock,
        id: u32,
        ticks: u64,
        wire_len: u32,
        caplen: usize,
    ) -> Result<PacketRecord, OfflineError> {
        let iface = self.lookup(&block, id)?;
        let ts_ns = ticks_to_ns(ticks, iface.units_per_sec, iface.offset_secs);
        let link_type = iface.link_type;
        Ok(PacketRecord {
            link_type,
            ts_ns,
            wire_len,
            interface_id: id,
            data: take_data(&mut block.bytes, 28, caplen),
        })
    }

    /// A Simple Packet Block: no interface field (always interface 0), no timestamp.
    fn simple_packet(&self, mut block: RawBlock) -> Result<PacketRecord, OfflineError> {
        if block.len() < SPB_MIN_LEN {
            return Err(bad_block(&block));
        }
        let wire_len = self.u32_at(&block.bytes, 8);
        let room = block.bytes.len() - SPB_MIN_LEN as usize;
        let iface = self.lookup(&block, 0)?;
        // The captured length is implied: the wire length, cut to the snap length and block.
        let mut caplen = (wire_len as usize).min(room);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(PacketRecord {
            link_type: iface.link_type,
            ts_ns: 0,
            wire_len,
            interface_id: 0,
            data: take_data(&mut block.bytes, 12, caplen),
        })
    }

    /// The obsolete Packet Block: a 16-bit interface id and drop count where the EPB has a
    /// 32-bit interface id.
    fn obsolete_packet(&self, block: RawBlock) -> Result<PacketRecord, OfflineError> {
        let b = &block.bytes;
        let len = b.len();
        let caplen = self.u32_at(b, 20) as usize;
        if len < PB_MIN_LEN as usize || caplen > len - PB_MIN_LEN as usize {
            return Err(bad_block(&block));
        }
        let id_bytes = [b[8], b[9]];
        let id = u32::from(if self.big_endian {
            u16::from_be_bytes(id_bytes)
        } else {
            u16::from_le_bytes(id_bytes)
        });
        let ticks = (u64::from(self.u32_at(b, 12)) << 32) | u64::from(self.u32_at(b, 16));
        let wire_len = self.u32_at(b, 24);
        self.timed_packet(block, id, ticks, wire_len, caplen)
    }

    /// Walks the options area, from `start` to the trailing length, up to opt_endofopt.
    /// An option that overruns its block makes the file unreadable, as in libpcap and
    /// Wireshark (some parsers silently drop it).
    fn walk_options(
        &self,
        block: &RawBlock,
        start: usize,
        mut f: impl FnMut(u16, &[u8]),
    ) -> Result<(), OfflineError> {
        let area = block
            .bytes
            .get(start..block.bytes.len().saturating_sub(4))
            .unwrap_or(&[]);
        let mut at = 0;
        while let Some(head) = area.get(at..at + 4) {
            let code = self.u16_of(head[0], head[1]);
            let len = self.u16_of(head[2], head[3]);
            if code == OPT_ENDOFOPT {
                break;
            }
            let value_at = at + 4;
            let Some(value) = area.get(value_at..value_at + usize::from(len)) else {
                return Err(OfflineError::BadOption {
                    offset: block.offset + (start + at) as u64,
                    len,
                    room: (area.len() - value_at) as u64,
                });
            };
            f(code, value);
            at = value_at + usize::from(len).next_multiple_of(4);
        }
        Ok(())
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        match bytes.get(at..at + 2) {
            Some(b) => self.u16_of(b[0], b[1]),
            None => 0,
        }
    }

    fn u16_of(&self, a: u8, b: u8) -> u16 {
        if self.big_endian {
            u16::from_be_bytes([a, b])
        } else {
            u16::from_le_bytes([a, b])
        }
    }
}

fn bad_block(block: &RawBlock) -> OfflineError {
    OfflineError::BadBlock {
        offset: block.offset,
        block_type: block.block_type,
    }
}

/// Keeps `len` bytes of the block from `at` as the packet data, reusing the block's buffer.
fn take_data(bytes: &mut Vec<u8>, at: usize, len: usize) -> Vec<u8> {
    let end = (at + len).min(bytes.len());
    bytes.truncate(end);
    bytes.drain(..at.min(end));
    std::mem::take(bytes)
}
