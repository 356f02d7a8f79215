//! The TPACKET_V3 RX ring: blocks of frames the kernel fills in a shared mapping and hands
//! over by setting TP_STATUS_USER in the block descriptor. A block is read only while user-owned
//! (status loaded with Acquire) and given back by storing TP_STATUS_KERNEL with Release when
//! its [`BlockGuard`] drops, as libpcap's packet_mmap_v3_acquire/_release do.

use super::block::{self, BlockError, BlockHeader, Frames, BLOCK_STATUS};
use super::socket::PacketSocket;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Ring size and block timing. Memory per ring is `block_size * block_count`, kernel pages
/// mapped into the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Bytes per block; rounded up to a page multiple (Pi 5 kernels use 16 KiB pages).
    pub block_size: u32,
    pub block_count: u32,
    /// V3 frames are variable-sized; this only has to hold the headers (>= TPACKET3_HDRLEN,
    /// 16-aligned) and sets the nominal tp_frame_nr the kernel checks.
    pub frame_size: u32,
    /// A block not yet full is handed over after this many ms.
    pub retire_tov_ms: u32,
}

impl Default for RingGeometry {
    /// A template of 4 x 64 KiB; the agent sizes its rings from a budget with
    /// `capture::ring_budget` (blocks of 64 to 256 KiB, 8 or more of them).
    fn default() -> Self {
        Self {
            block_size: 64 * 1024,
            block_count: 4,
            frame_size: 2048,
            retire_tov_ms: 50,
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

impl RingGeometry {
    /// The tpacket_req3 for this geometry, after checking and page rounding.
    pub fn request(&self) -> io::Result<libc::tpacket_req3> {
        let page = page_size();
        let block_size = (self.block_size as usize)
            .div_ceil(page)
            .saturating_mul(page);
        let block_size = u32::try_from(block_size)
            .map_err(|_| invalid(format!("block size {} too large", self.block_size)))?;
        let frame_ok = self.frame_size as usize >= block::FRAME_HDR_LEN
            && self.frame_size % 16 == 0
            && self.frame_size <= block_size;
        if !frame_ok || self.block_count == 0 {
            return Err(invalid(format!("bad ring geometry {self:?} (page {page})")));
        }
        let frames_per_block = block_size / self.frame_size;
        let frame_nr = frames_per_block
            .checked_mul(self.block_count)
            .filter(|_| {
                (block_size as usize)
                    .checked_mul(self.block_count as usize)
                    .is_some()
            })
            .ok_or_else(|| invalid(format!("ring geometry {self:?} overflows")))?;
        Ok(libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: self.block_count,
            tp_frame_size: self.frame_size,
            tp_frame_nr: frame_nr,
            tp_retire_blk_tov: self.retire_tov_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        })
    }

    /// Bytes mapped for one ring of this geometry (after page rounding).
    pub fn bytes(&self) -> io::Result<usize> {
        let req = self.request()?;
        Ok(req.tp_block_size as usize * req.tp_block_nr as usize)
    }
}

/// An mmap'ed TPACKET_V3 RX ring. The mapping keeps the socket's ring alive on its own; drop
/// unmaps it.
#[derive(Debug)]
pub struct RxRing {
    base: NonNull<u8>,
    block_size: usize,
    block_count: usize,
    /// The block the kernel fills after the last one handed out: blocks come in ring order.
    next: usize,
}

// SAFETY: RxRing exclusively owns its mapping (no other handle to it exists in this process);
// moving it to another thread moves that ownership. It is not Sync-shared: &mut is needed to
// take blocks.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Switches `socket` to TPACKET_V3, registers a ring of `geometry` and maps it. Fails with
    /// ENOPROTOOPT where PACKET_VERSION is unsupported (qemu-user).
    pub fn new(socket: &PacketSocket, geometry: &RingGeometry) -> io::Result<Self> {
        let req = geometry.request()?;
        socket.set_tpacket_v3()?;
        socket.set_rx_ring(&req)?;
        let block_size = req.tp_block_size as usize;
        let block_count = req.tp_block_nr as usize;
        let len = block_size * block_count; // checked in request()
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: maps the ring just registered on this socket, with exactly its size, at an
        // address the kernel picks; the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                socket.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| invalid("null mapping".into()))?;
        Ok(Self {
            base,
            block_size,
            block_count,
            next: 0,
        })
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.block_size * self.block_count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn block_ptr(&self, index: usize) -> NonNull<u8> {
        // SAFETY: callers pass index < block_count, so the offset stays inside the mapping.
        unsafe { self.base.add(index * self.block_size) }
    }

    /// Whether the next block is ready, without taking it.
    pub fn has_ready_block(&self) -> bool {
        // SAFETY: `next` < block_count; see status_word.
        let word = unsafe { status_word(self.block_ptr(self.next)) };
        word.load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The next block if the kernel has handed it over; it goes back when the guard drops.
    pub fn next_block(&mut self) -> Option<BlockGuard<'_>> {
        let block = self.block_ptr(self.next);
        // SAFETY: `block` starts a block of this live mapping; see status_word.
        let status = unsafe { status_word(block) }.load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        self.next = (self.next + 1) % self.block_count;
        Some(BlockGuard {
            block,
            len: self.block_size,
            _ring: PhantomData,
        })
    }
}

/// The block_status word of the block at `block`.
///
/// # Safety
/// `block` must start a block of a live ring mapping that outlives `'a`.
unsafe fn status_word<'a>(block: NonNull<u8>) -> &'a AtomicU32 {
    // SAFETY: the word lies inside the block (BLOCK_STATUS < descriptor size <= block size) and
    // is 4-aligned (blocks are page-aligned, BLOCK_STATUS is a multiple of 4). This process
    // touches it only atomically, the kernel with ordered stores, so an AtomicU32 view is the
    // sound way to share it.
    unsafe { AtomicU32::from_ptr(block.as_ptr().add(BLOCK_STATUS).cast()) }
}

/// A user-owned block. Its frames borrow from the guard; dropping it returns the block.
#[derive(Debug)]
pub struct BlockGuard<'a> {
    block: NonNull<u8>,
    len: usize,
    _ring: PhantomData<&'a mut RxRing>,
}

impl BlockGuard<'_> {
    /// The whole block as mapped.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the block lies in the mapping, which outlives the guard (it borrows the
        // ring). Its status had TP_STATUS_USER (Acquire, so the kernel's writes are visible),
        // and the kernel does not write a user-owned block, so the bytes stay unchanged until
        // Drop hands it back, after every borrow of `self` has ended.
        unsafe { std::slice::from_raw_parts(self.block.as_ptr(), self.len) }
    }

    pub fn header(&self) -> Result<BlockHeader, BlockError> {
        block::header(self.bytes())
    }

    /// The block's frames; each kernel offset is checked, see [`block`].
    pub fn frames(&self) -> Result<Frames<'_>, BlockError> {
        block::frames(self.bytes())
    }
}

impl Drop for BlockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the block belongs to the ring the guard borrows, still mapped.
        let word = unsafe { status_word(self.block) };
        word.store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(); no BlockGuard can outlive the ring.
        let rc = unsafe { libc::munmap(self.base.as_ptr().cast(), self.len()) };
        if rc != 0 {
            log::warn!("munmap of packet ring: {}", io::Error::last_os_error());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_is_valid_and_small() {
        let g = RingGeometry::default();
        let req = g.request().unwrap();
        assert_eq!(req.tp_block_size as usize % page_size(), 0);
        assert_eq!(
            req.tp_frame_nr,
            req.tp_block_nr * (req.tp_block_size / req.tp_frame_size)
        );
        assert!(g.bytes().unwrap() <= 256 * 1024 || page_size() > 64 * 1024);
    }

    #[test]
    fn odd_block_sizes_round_up_to_pages() {
        let g = RingGeometry {
            block_size: 5000,
            ..RingGeometry::default()
        };
        let req = g.request().unwrap();
        assert!(req.tp_block_size >= 5000);
        assert_eq!(req.tp_block_size as usize % page_size(), 0);
    }

    #[test]
    fn bad_geometries_are_refused() {
        let d = RingGeometry::default();
        for bad in [
            RingGeometry {
                frame_size: 32,
                ..d
            },
            RingGeometry {
                frame_size: 2047,
                ..d
            },
            RingGeometry {
                frame_size: 1 << 20,
                ..d
            },
            RingGeometry {
                block_count: 0,
                ..d
            },
            RingGeometry {
                block_size: u32::MAX,
                ..d
            },
            RingGeometry {
                block_size: 1 << 30,
                block_count: u32::MAX,
                ..d
            },
        ] {
            assert!(bad.request().is_err(), "{bad:?}");
        }
    }
}
