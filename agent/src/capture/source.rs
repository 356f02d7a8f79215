//! One packet socket of one network namespace, read through the TPACKET_V3 ring or, where the
//! ring is unavailable (qemu-user: ENOPROTOOPT), through recvmsg into a reusable buffer. Both
//! hand out the same [`FrameRef`].

use crate::clock::realtime_ns;
use crate::sys::ring::{RingGeometry, RxRing};
use crate::sys::socket::PacketSocket;
use crate::sys::{FrameRef, PacketType};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

/// How a source reads frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureMode {
    /// TPACKET_V3 mmap ring: no copy, no syscall per frame.
    Ring,
    /// poll + recvmsg per frame into one buffer (emulation, or forced).
    Recv,
}

/// Settings for every source.
///
/// Memory per namespace: ring mode maps `ring.block_size * ring.block_count` in the agent's
/// own namespace and `other_ring`'s in each other one (see [`ring_budget`]); recv mode
/// allocates `recv_frame_bytes` (64 KiB) plus a kernel queue of up to about 2 x
/// `recv_queue_bytes` (charged as frames arrive, not up front).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The ring of the agent's own namespace (the board's).
    pub ring: RingGeometry,
    /// The ring of every other namespace (a container's).
    pub other_ring: RingGeometry,
    /// Bytes kept per frame by the default filter (`ret #snaplen`). A filter set later decides
    /// on its own: the kernel cuts each frame to the filter's return value.
    pub snaplen: u32,
    /// Use the recv path even where the ring works (tests, comparison).
    pub force_recv: bool,
    /// SO_RCVBUF(FORCE) for the recv path.
    pub recv_queue_bytes: usize,
    /// The recv path's frame buffer; longer frames are cut to it.
    pub recv_frame_bytes: usize,
    /// Frames taken from one source per poll before the next source's turn. Ring blocks are
    /// taken whole, so this may be exceeded by up to one block.
    pub drain_budget: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        let (ring, other_ring) = ring_budget(DEFAULT_RING_BUDGET, false);
        Self {
            ring,
            other_ring,
            snaplen: 256,
            force_recv: false,
            recv_queue_bytes: 1 << 20,
            recv_frame_bytes: 64 * 1024,
            drain_budget: 4096,
        }
    }
}

/// The default ring memory, all namespaces together: 1.75 MiB. On the bench's flood (~250 000
/// frames/s, `scripts/bench-agent.sh --load udp`) 256 KiB dropped thousands of frames where
/// tcpdump's 2 MiB dropped none; 1.5 MiB dropped none in 4 runs, 1.75 MiB none in 9, and keeps
/// the agent's peak RSS under half of tcpdump's (issue 11).
pub const DEFAULT_RING_BUDGET: usize = 1792 << 10;

/// The rings of the own namespace and of each other one, for `budget` bytes of ring memory
/// in all. Every frame of a container is seen once in its namespace and at least twice in
/// the board's (veth and bridge; a third time on the uplink), so the board's namespace gets
/// half the budget when others are captured (`others`), the whole of it otherwise, and each
/// other namespace a quarter: half the board's ring for at most half its traffic, so a busy
/// container's ring lasts as long as the board's. (A sixth dropped frames in the container's
/// ring on the bench's flood from it, `--big`.) Two containers fill the budget; each one more
/// adds a quarter. Never less than 2 blocks.
pub fn ring_budget(budget: usize, others: bool) -> (RingGeometry, RingGeometry) {
    let own = if others { budget / 2 } else { budget };
    (ring_of(own), ring_of(budget / 4))
}

/// A ring of about `bytes` in the largest blocks of 256, 128 or 64 KiB that still make 8 of
/// them: the kernel wakes the agent once a block is full, so under a flood bigger blocks mean
/// fewer wake-ups (measured: a tenth of the agent's CPU was the scheduler switching it in),
/// while 8 blocks or more keep the ring from being handed over in large halves. Never less
/// than 2 blocks.
fn ring_of(bytes: usize) -> RingGeometry {
    let block = [256 * 1024, 128 * 1024]
        .into_iter()
        .find(|b| bytes / b >= 8)
        .unwrap_or(64 * 1024);
    RingGeometry {
        block_size: block as u32,
        block_count: (bytes / block).clamp(2, u32::MAX as usize) as u32,
        ..RingGeometry::default()
    }
}

/// Counters of one source since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Frames handed out (the next frame's sequence number).
    pub frames: u64,
    /// PACKET_STATISTICS: frames the filter accepted (including drops) ...
    pub kernel_packets: u64,
    /// ... and frames the kernel dropped for lack of room.
    pub kernel_drops: u64,
    /// Times the ring was full and the kernel froze it.
    pub freeze_q: u64,
    /// Frames that came with TP_STATUS_LOSING (drops happened before them).
    pub losing_frames: u64,
    /// Ring blocks whose layout failed the checks (the rest of the block was skipped).
    pub malformed_blocks: u64,
    /// Frames longer than the recv buffer (cut to it).
    pub cut_frames: u64,
    /// recvmsg errors other than "nothing queued".
    pub errors: u64,
    /// Frames without a kernel timestamp, stamped when read instead (recv mode only).
    pub receipt_stamped: u64,
    /// False where PACKET_STATISTICS is unsupported (qemu-user): kernel_* stay 0.
    pub kernel_stats: bool,
    /// False where PACKET_AUXDATA is unsupported (recv mode under qemu-user): wire_len is
    /// then the captured length, because the kernel reports only that.
    pub exact_wire_len: bool,
}

/// The classic BPF program `ret #snaplen`: accept every frame, keep `snaplen` bytes of it.
pub fn accept_filter(snaplen: u32) -> [libc::sock_filter; 1] {
    [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: snaplen,
    }]
}

#[derive(Debug)]
enum Reader {
    Ring(RxRing),
    Recv(Vec<u8>),
}

/// One packet socket (one namespace) and the way it is read.
#[derive(Debug)]
pub struct CaptureSource {
    // Declared before the socket: the ring is unmapped first.
    reader: Reader,
    socket: PacketSocket,
    stats: SourceStats,
}

impl CaptureSource {
    /// Opens a source in the calling thread's network namespace with `filter` attached before
    /// any frame is received: the ring if it can be set up (and not `force_recv`), else recv.
    /// `own`: the namespace is the agent's own (its ring is `config.ring`, else `other_ring`).
    pub fn open(
        config: &CaptureConfig,
        own: bool,
        filter: &[libc::sock_filter],
    ) -> io::Result<Self> {
        if !config.force_recv {
            let geometry = if own {
                &config.ring
            } else {
                &config.other_ring
            };
            match Self::open_ring(geometry, filter) {
                Ok(source) => return Ok(source),
                // ENOPROTOOPT is qemu-user; anything else deserves a look.
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                    log::info!("packet ring unavailable ({e}); using recvmsg")
                }
                Err(e) => log::warn!("packet ring setup failed ({e}); using recvmsg"),
            }
        }
        Self::open_recv(config, filter)
    }

    fn open_ring(geometry: &RingGeometry, filter: &[libc::sock_filter]) -> io::Result<Self> {
        let socket = PacketSocket::open()?;
        socket.attach_filter(filter)?;
        let ring = RxRing::new(&socket, geometry)?;
        socket.start()?;
        Ok(Self::new(socket, Reader::Ring(ring), true))
    }

    fn open_recv(config: &CaptureConfig, filter: &[libc::sock_filter]) -> io::Result<Self> {
        let socket = PacketSocket::open()?;
        socket.attach_filter(filter)?;
        // Optional: without auxdata wire_len falls back to the captured length, without
        // kernel timestamps the receive time is used.
        let auxdata = socket.enable_auxdata();
        if let Err(e) = &auxdata {
            log::info!("PACKET_AUXDATA unavailable ({e}): wire length = captured length");
        }
        match socket.enable_timestamps() {
            Ok(1) => {}
            Ok(ns) => log::info!("kernel timestamps in steps of {ns} ns"),
            Err(e) => log::info!("no kernel timestamps ({e}): frames stamped on receipt"),
        }
        if let Err(e) = socket.set_recv_buffer(config.recv_queue_bytes) {
            log::info!("receive queue size unchanged ({e})");
        }
        socket.start()?;
        Ok(Self::new(
            socket,
            Reader::Recv(vec![0; config.recv_frame_bytes.max(64)]),
            auxdata.is_ok(),
        ))
    }

    fn new(socket: PacketSocket, reader: Reader, exact_wire_len: bool) -> Self {
        let kernel_stats = socket.statistics().is_ok();
        let stats = SourceStats {
            kernel_stats,
            exact_wire_len,
            ..SourceStats::default()
        };
        Self {
            reader,
            socket,
            stats,
        }
    }

    pub fn mode(&self) -> CaptureMode {
        match self.reader {
            Reader::Ring(_) => CaptureMode::Ring,
            Reader::Recv(_) => CaptureMode::Recv,
        }
    }

    /// Bytes this source holds for frames (ring mapping or recv buffer).
    pub fn buffer_bytes(&self) -> usize {
        match &self.reader {
            Reader::Ring(ring) => ring.len(),
            Reader::Recv(buf) => buf.len(),
        }
    }

    /// Replaces the filter; frames already captured keep the old filter's verdict.
    pub fn set_filter(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
        self.socket.attach_filter(filter)
    }

    /// Whether frames wait in the ring (recv mode: unknown, false; poll tells).
    pub fn has_ready(&self) -> bool {
        match &self.reader {
            Reader::Ring(ring) => ring.has_ready_block(),
            Reader::Recv(_) => false,
        }
    }

    /// Hands waiting frames to `f(seq, frame)` in capture order, about `budget` of them at
    /// most; returns how many. Never blocks.
    pub fn drain(&mut self, budget: usize, mut f: impl FnMut(u64, FrameRef<'_>)) -> usize {
        let stats = &mut self.stats;
        let mut deliver = |frame: FrameRef<'_>| {
            stats.losing_frames += u64::from(frame.losing);
            f(stats.frames, frame);
            stats.frames += 1;
        };
        let mut tally = Tally::default();
        match &mut self.reader {
            Reader::Ring(ring) => drain_ring(ring, budget, &mut tally, &mut deliver),
            Reader::Recv(buf) => drain_recv(&self.socket, buf, budget, &mut tally, &mut deliver),
        }
        self.stats.malformed_blocks += tally.malformed;
        self.stats.cut_frames += tally.cut;
        self.stats.errors += tally.errors;
        self.stats.receipt_stamped += tally.stamped;
        tally.taken as usize
    }

    /// Counters, after adding what PACKET_STATISTICS reports since the last call.
    pub fn stats(&mut self) -> SourceStats {
        if self.stats.kernel_stats {
            match self.socket.statistics() {
                Ok(k) => {
                    self.stats.kernel_packets += u64::from(k.packets);
                    self.stats.kernel_drops += u64::from(k.drops);
                    self.stats.freeze_q += u64::from(k.freeze_q);
                }
                Err(e) => log::warn!("PACKET_STATISTICS: {e}"),
            }
        }
        self.stats
    }
}

impl AsFd for CaptureSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// What one drain saw besides the frames it handed out.
#[derive(Default)]
struct Tally {
    taken: u64,
    malformed: u64,
    cut: u64,
    errors: u64,
    stamped: u64,
}

/// Takes whole ready blocks until the budget is reached; each block goes back to the kernel
/// as soon as its frames were handed out.
fn drain_ring(
    ring: &mut RxRing,
    budget: usize,
    tally: &mut Tally,
    deliver: &mut impl FnMut(FrameRef<'_>),
) {
    while (tally.taken as usize) < budget {
        let Some(block) = ring.next_block() else {
            break;
        };
        let frames = match block.frames() {
            Ok(frames) => frames,
            Err(e) => {
                log::warn!("skipping malformed ring block: {e}");
                tally.malformed += 1;
                continue;
            }
        };
        for frame in frames {
            match frame {
                Ok(frame) => {
                    deliver(frame);
                    tally.taken += 1;
                }
                Err(e) => {
                    log::warn!("skipping rest of ring block: {e}");
                    tally.malformed += 1;
                }
            }
        }
    }
}

/// Receives frames one by one into `buf` until none is queued or the budget is reached.
fn drain_recv(
    socket: &PacketSocket,
    buf: &mut [u8],
    budget: usize,
    tally: &mut Tally,
    deliver: &mut impl FnMut(FrameRef<'_>),
) {
    while (tally.taken as usize) < budget {
        let meta = match socket.recv_frame(buf) {
            Ok(Some(meta)) => meta,
            Ok(None) => break,
            Err(e) => {
                log::warn!("recvmsg on packet socket: {e}");
                tally.errors += 1;
                break;
            }
        };
        let cap = meta.len.min(buf.len());
        tally.cut += u64::from(meta.truncated);
        tally.stamped += u64::from(meta.timestamp.is_none());
        let ts_ns = meta.timestamp.map_or_else(realtime_ns, |(sec, nsec)| {
            (sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(nsec as u64)
        });
        let status = meta.aux.map_or(0, |a| a.status);
        deliver(FrameRef {
            data: buf.get(..cap).unwrap_or(&[]),
            ts_ns,
            wire_len: meta.aux.map_or(meta.len as u32, |a| a.len),
            cap_len: cap as u32,
            ifindex: meta.ifindex,
            pkttype: PacketType(meta.pkttype),
            hatype: meta.hatype,
            protocol: meta.protocol,
            vlan_tci: meta
                .aux
                .filter(|_| status & libc::TP_STATUS_VLAN_VALID != 0)
                .map(|a| a.vlan_tci),
            losing: status & libc::TP_STATUS_LOSING != 0,
        });
        tally.taken += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_split_by_traffic_in_blocks_that_make_eight() {
        let kib = |g: RingGeometry| (g.block_size / 1024, g.block_count);
        // Alone: the whole budget; with containers: half, and a quarter each.
        let (own, other) = ring_budget(DEFAULT_RING_BUDGET, false);
        assert_eq!((kib(own), kib(other)), ((128, 14), (64, 7)));
        let (own, other) = ring_budget(DEFAULT_RING_BUDGET, true);
        assert_eq!((kib(own), kib(other)), ((64, 14), (64, 7)));
        assert_eq!(kib(ring_budget(4 << 20, false).0), (256, 16));
        // Tiny budgets still make a ring of two blocks.
        assert_eq!(kib(ring_budget(16 << 10, true).1), (64, 2));
    }
}
