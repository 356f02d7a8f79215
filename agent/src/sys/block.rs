//! Reading one TPACKET_V3 block as plain bytes. The layout comes from libc's uapi structs
//! (`offset_of!`); every offset and length the kernel wrote is checked against the block
//! before a slice is made, so a bad value ends the walk with a [`BlockError`], never an
//! out-of-bounds read. Safe code: the ring hands in the block as `&[u8]`, tests hand in
//! crafted buffers.

use super::{FrameRef, PacketType};
use core::mem::{offset_of, size_of};
use libc::{sockaddr_ll, tpacket3_hdr, tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1};

/// Byte offsets of the fields read, inside a block and inside a frame.
mod field {
    use super::*;
    const BH: usize = offset_of!(tpacket_block_desc, hdr);
    pub const BLOCK_STATUS: usize = BH + offset_of!(tpacket_hdr_v1, block_status);
    pub const NUM_PKTS: usize = BH + offset_of!(tpacket_hdr_v1, num_pkts);
    pub const FIRST_PKT: usize = BH + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
    pub const BLK_LEN: usize = BH + offset_of!(tpacket_hdr_v1, blk_len);
    pub const SEQ_NUM: usize = BH + offset_of!(tpacket_hdr_v1, seq_num);
    /// The descriptor's size: no frame starts before it.
    pub const BLOCK_DESC_LEN: usize = BH + size_of::<tpacket_hdr_v1>();

    pub const NEXT_OFFSET: usize = offset_of!(tpacket3_hdr, tp_next_offset);
    pub const SEC: usize = offset_of!(tpacket3_hdr, tp_sec);
    pub const NSEC: usize = offset_of!(tpacket3_hdr, tp_nsec);
    pub const SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
    pub const LEN: usize = offset_of!(tpacket3_hdr, tp_len);
    pub const STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
    pub const MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
    pub const VLAN_TCI: usize =
        offset_of!(tpacket3_hdr, hv1) + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
    /// The sockaddr_ll follows the header at TPACKET_ALIGN(sizeof(tpacket3_hdr)).
    pub const SLL: usize = (size_of::<tpacket3_hdr>() + 15) & !15;
    pub const IFINDEX: usize = SLL + offset_of!(sockaddr_ll, sll_ifindex);
    pub const PROTOCOL: usize = SLL + offset_of!(sockaddr_ll, sll_protocol);
    pub const HATYPE: usize = SLL + offset_of!(sockaddr_ll, sll_hatype);
    pub const PKTTYPE: usize = SLL + offset_of!(sockaddr_ll, sll_pkttype);
    /// Header plus sockaddr_ll (TPACKET3_HDRLEN): captured bytes start at or after it.
    pub const FRAME_HDR_LEN: usize = SLL + size_of::<sockaddr_ll>();
}

pub use field::{BLOCK_DESC_LEN, BLOCK_STATUS, FRAME_HDR_LEN};

/// Why a block (or the rest of it) could not be read. Offsets are from the block start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The block is shorter than its descriptor.
    Truncated { needed: usize, had: usize },
    /// blk_len lies outside [descriptor, block size].
    BlockLen { blk_len: u32, block_size: usize },
    /// A frame header at `offset` does not fit in [descriptor end, `limit`).
    FrameOffset { offset: usize, limit: usize },
    /// A frame's captured bytes [`start`, `end`) are not inside its frame area below `limit`.
    FrameData {
        offset: usize,
        start: usize,
        end: usize,
        limit: usize,
    },
    /// tp_next_offset does not move forward although frames remain.
    NextOffset {
        offset: usize,
        next: u32,
        frames_left: u32,
    },
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockError::Truncated { needed, had } => {
                write!(f, "block of {had} bytes, its descriptor needs {needed}")
            }
            BlockError::BlockLen {
                blk_len,
                block_size,
            } => write!(f, "blk_len {blk_len} outside the {block_size}-byte block"),
            BlockError::FrameOffset { offset, limit } => {
                write!(f, "frame header at offset {offset} does not fit below {limit}")
            }
            BlockError::FrameData {
                offset,
                start,
                end,
                limit,
            } => write!(
                f,
                "frame at offset {offset}: bytes {start}..{end} not inside its area below {limit}"
            ),
            BlockError::NextOffset {
                offset,
                next,
                frames_left,
            } => write!(
                f,
                "frame at offset {offset}: tp_next_offset {next} does not move on, {frames_left} frames left"
            ),
        }
    }
}

impl std::error::Error for BlockError {}

/// The descriptor fields of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub status: u32,
    pub num_pkts: u32,
    pub offset_to_first_pkt: u32,
    pub blk_len: u32,
    pub seq_num: u64,
}

/// A native-endian u32 at `at`; callers check the length first, a short slice reads 0.
fn ne_u32(bytes: &[u8], at: usize) -> u32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn ne_u16(bytes: &[u8], at: usize) -> u16 {
    at.checked_add(2)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u16::from_ne_bytes)
}

fn ne_u64(bytes: &[u8], at: usize) -> u64 {
    at.checked_add(8)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Reads a block's descriptor.
pub fn header(block: &[u8]) -> Result<BlockHeader, BlockError> {
    if block.len() < BLOCK_DESC_LEN {
        return Err(BlockError::Truncated {
            needed: BLOCK_DESC_LEN,
            had: block.len(),
        });
    }
    Ok(BlockHeader {
        status: ne_u32(block, field::BLOCK_STATUS),
        num_pkts: ne_u32(block, field::NUM_PKTS),
        offset_to_first_pkt: ne_u32(block, field::FIRST_PKT),
        blk_len: ne_u32(block, field::BLK_LEN),
        seq_num: ne_u64(block, field::SEQ_NUM),
    })
}

/// The frames of one block, in the order the kernel wrote them. After an error it ends.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    /// The block up to blk_len: no frame byte lies beyond it.
    used: &'a [u8],
    offset: usize,
    left: u32,
    block_losing: bool,
    /// A bad tp_next_offset, reported after the frame that carried it.
    pending: Option<BlockError>,
}

/// Walks the frames of `block` (the whole block as mapped).
pub fn frames(block: &[u8]) -> Result<Frames<'_>, BlockError> {
    let h = header(block)?;
    let blk_len = h.blk_len as usize;
    let used = match block.get(..blk_len) {
        Some(used) if blk_len >= BLOCK_DESC_LEN => used,
        _ => {
            return Err(BlockError::BlockLen {
                blk_len: h.blk_len,
                block_size: block.len(),
            })
        }
    };
    Ok(Frames {
        used,
        offset: h.offset_to_first_pkt as usize,
        left: h.num_pkts,
        block_losing: h.status & libc::TP_STATUS_LOSING != 0,
        pending: None,
    })
}

impl<'a> Frames<'a> {
    /// How many frames the descriptor still announces.
    pub fn remaining(&self) -> u32 {
        self.left
    }

    fn frame_at(&self, offset: usize) -> Result<(FrameRef<'a>, u32), BlockError> {
        let limit = self.used.len();
        let hdr = offset
            .checked_add(FRAME_HDR_LEN)
            .filter(|_| offset >= BLOCK_DESC_LEN)
            .and_then(|end| self.used.get(offset..end))
            .ok_or(BlockError::FrameOffset { offset, limit })?;
        let mac = usize::from(ne_u16(hdr, field::MAC));
        let snaplen = ne_u32(hdr, field::SNAPLEN);
        let start = offset.saturating_add(mac);
        let end = start.saturating_add(snaplen as usize);
        let data = self
            .used
            .get(start..end)
            .filter(|_| mac >= FRAME_HDR_LEN)
            .ok_or(BlockError::FrameData {
                offset,
                start,
                end,
                limit,
            })?;
        let status = ne_u32(hdr, field::STATUS);
        let ts_ns = u64::from(ne_u32(hdr, field::SEC)) * 1_000_000_000
            + u64::from(ne_u32(hdr, field::NSEC));
        let frame = FrameRef {
            data,
            ts_ns,
            wire_len: ne_u32(hdr, field::LEN),
            cap_len: snaplen,
            ifindex: ne_u32(hdr, field::IFINDEX),
            pkttype: PacketType(hdr.get(field::PKTTYPE).copied().unwrap_or(0)),
            hatype: ne_u16(hdr, field::HATYPE),
            protocol: u16::from_be(ne_u16(hdr, field::PROTOCOL)),
            // tp_vlan_tci is a u32 of which the TCI is the low 16 bits.
            vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0)
                .then(|| ne_u32(hdr, field::VLAN_TCI) as u16),
            losing: self.block_losing || status & libc::TP_STATUS_LOSING != 0,
        };
        Ok((frame, ne_u32(hdr, field::NEXT_OFFSET)))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<FrameRef<'a>, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let offset = self.offset;
        let (frame, next) = match self.frame_at(offset) {
            Ok(found) => found,
            Err(e) => {
                self.left = 0;
                return Some(Err(e));
            }
        };
        if self.left > 0 {
            // Each frame holds at least its header, so a smaller step cannot be right and a
            // zero step would loop.
            if (next as usize) < FRAME_HDR_LEN {
                let frames_left = self.left;
                self.left = 0;
                self.pending = Some(BlockError::NextOffset {
                    offset,
                    next,
                    frames_left,
                });
            } else {
                self.offset = offset.saturating_add(next as usize);
            }
        }
        Some(Ok(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 4096;

    struct FakeFrame {
        len: u32,
        ifindex: i32,
        pkttype: u8,
        bytes: Vec<u8>,
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Lays frames out as the kernel does: descriptor, then each frame 16-aligned with its
    /// data at the first 16-aligned offset after the header + sockaddr_ll.
    fn fake_block(frames: &[FakeFrame], status: u32) -> (Vec<u8>, Vec<usize>) {
        let mut b = vec![0u8; BLOCK];
        let mac = (FRAME_HDR_LEN + 15) & !15;
        let mut offsets = Vec::new();
        let mut off = (BLOCK_DESC_LEN + 15) & !15;
        for (i, f) in frames.iter().enumerate() {
            offsets.push(off);
            let total = (mac + f.bytes.len() + 15) & !15;
            let next = if i + 1 == frames.len() {
                0
            } else {
                total as u32
            };
            put32(&mut b, off + field::NEXT_OFFSET, next);
            put32(&mut b, off + field::SEC, 1_700_000_000 + i as u32);
            put32(&mut b, off + field::NSEC, 250);
            put32(&mut b, off + field::SNAPLEN, f.bytes.len() as u32);
            put32(&mut b, off + field::LEN, f.len);
            b[off + field::MAC..off + field::MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            put32(&mut b, off + field::IFINDEX, f.ifindex as u32);
            b[off + field::PROTOCOL..off + field::PROTOCOL + 2]
                .copy_from_slice(&0x0800u16.to_be_bytes());
            b[off + field::HATYPE..off + field::HATYPE + 2].copy_from_slice(&1u16.to_ne_bytes());
            b[off + field::PKTTYPE] = f.pkttype;
            b[off + mac..off + mac + f.bytes.len()].copy_from_slice(&f.bytes);
            off += total;
        }
        put32(&mut b, field::BLOCK_STATUS, status);
        put32(&mut b, field::NUM_PKTS, frames.len() as u32);
        put32(
            &mut b,
            field::FIRST_PKT,
            offsets.first().copied().unwrap_or(0) as u32,
        );
        put32(&mut b, field::BLK_LEN, off as u32);
        (b, offsets)
    }

    fn two_frames() -> (Vec<u8>, Vec<usize>) {
        let a = FakeFrame {
            len: 98,
            ifindex: 7,
            pkttype: 4,
            bytes: (0..60).collect(),
        };
        let b = FakeFrame {
            len: 60,
            ifindex: 9,
            pkttype: 0,
            bytes: vec![0xab; 60],
        };
        fake_block(&[a, b], libc::TP_STATUS_USER)
    }

    #[test]
    fn well_formed_block_yields_every_frame() {
        let (block, _) = two_frames();
        let got: Vec<_> = frames(&block).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data, (0..60).collect::<Vec<u8>>().as_slice());
        assert_eq!(
            (got[0].wire_len, got[0].cap_len, got[0].ifindex),
            (98, 60, 7)
        );
        assert_eq!(got[0].pkttype, PacketType::OUTGOING);
        assert_eq!((got[0].hatype, got[0].protocol), (1, 0x0800));
        assert_eq!(got[0].ts_ns, 1_700_000_000 * 1_000_000_000 + 250);
        assert_eq!(got[1].data, &[0xab; 60][..]);
        assert_eq!((got[1].ifindex, got[1].pkttype), (9, PacketType::HOST));
        assert!(got.iter().all(|f| !f.losing && f.vlan_tci.is_none()));
    }

    #[test]
    fn vlan_and_losing_flags_are_read() {
        let (mut block, offs) = two_frames();
        put32(
            &mut block,
            offs[1] + field::STATUS,
            libc::TP_STATUS_VLAN_VALID,
        );
        put32(&mut block, offs[1] + field::VLAN_TCI, 0x0000_2064);
        put32(
            &mut block,
            field::BLOCK_STATUS,
            libc::TP_STATUS_USER | libc::TP_STATUS_LOSING,
        );
        let got: Vec<_> = frames(&block).unwrap().map(Result::unwrap).collect();
        assert_eq!(got[0].vlan_tci, None);
        assert_eq!(got[1].vlan_tci, Some(0x2064));
        assert!(got.iter().all(|f| f.losing));
    }

    #[test]
    fn short_block_and_bad_blk_len_are_errors() {
        assert_eq!(
            frames(&[0u8; 20]).unwrap_err(),
            BlockError::Truncated {
                needed: BLOCK_DESC_LEN,
                had: 20
            }
        );
        let (mut block, _) = two_frames();
        put32(&mut block, field::BLK_LEN, BLOCK as u32 + 1);
        assert_eq!(
            frames(&block).unwrap_err(),
            BlockError::BlockLen {
                blk_len: BLOCK as u32 + 1,
                block_size: BLOCK
            }
        );
        put32(&mut block, field::BLK_LEN, 8);
        assert!(matches!(
            frames(&block),
            Err(BlockError::BlockLen { blk_len: 8, .. })
        ));
    }

    #[test]
    fn first_offset_outside_the_block_is_an_error() {
        for bad in [0u32, 8, u32::MAX, BLOCK as u32 - 10] {
            let (mut block, _) = two_frames();
            put32(&mut block, field::FIRST_PKT, bad);
            let mut it = frames(&block).unwrap();
            assert!(
                matches!(it.next(), Some(Err(BlockError::FrameOffset { .. }))),
                "{bad}"
            );
            assert!(it.next().is_none(), "the walk ends after an error");
        }
    }

    #[test]
    fn data_beyond_blk_len_is_an_error() {
        let (mut block, offs) = two_frames();
        put32(&mut block, offs[1] + field::SNAPLEN, u32::MAX);
        let mut it = frames(&block).unwrap();
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(BlockError::FrameData { .. }))));
        // tp_mac pointing back into the header is rejected too.
        let (mut block, offs) = two_frames();
        block[offs[0] + field::MAC..offs[0] + field::MAC + 2].copy_from_slice(&4u16.to_ne_bytes());
        assert!(matches!(
            frames(&block).unwrap().next(),
            Some(Err(BlockError::FrameData { .. }))
        ));
    }

    #[test]
    fn zero_next_offset_with_frames_left_stops() {
        let (mut block, offs) = two_frames();
        put32(&mut block, offs[0] + field::NEXT_OFFSET, 0);
        let got: Vec<_> = frames(&block).unwrap().collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        let expect = BlockError::NextOffset {
            offset: offs[0],
            next: 0,
            frames_left: 1,
        };
        assert_eq!(got[1], Err(expect));
    }

    #[test]
    fn num_pkts_larger_than_the_frames_ends_in_an_error_not_a_loop() {
        let (mut block, _) = two_frames();
        put32(&mut block, field::NUM_PKTS, u32::MAX);
        let got: Vec<_> = frames(&block).unwrap().collect();
        assert!(got.len() <= 3);
        assert!(got.last().unwrap().is_err());
    }

    #[test]
    fn every_truncation_of_a_block_is_handled() {
        let (block, _) = two_frames();
        for cut in 0..=block.len() {
            let short = &block[..cut];
            if let Ok(it) = frames(short) {
                for frame in it.flatten() {
                    assert!(frame.data.len() <= short.len());
                }
            }
        }
    }
}
