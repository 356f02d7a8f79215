//! An AF_PACKET socket that is not bound to one link: it receives every link of the network
//! namespace it was created in. It is opened with protocol 0 (receives nothing), configured
//! (filter, ring or recv options), then [`PacketSocket::start`]ed, so no unfiltered frame is
//! queued before the ring exists (queued frames would keep poll() readable forever).

use std::io;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An owned AF_PACKET SOCK_RAW socket, nonblocking.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

/// PACKET_STATISTICS since the previous read (the kernel resets them on each read).
/// `packets` counts every frame the filter accepted, including the `drops`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub packets: u32,
    pub drops: u32,
    /// Times the ring was full and the kernel froze the queue (TPACKET_V3 only).
    pub freeze_q: u32,
}

/// What PACKET_AUXDATA says about a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuxData {
    pub status: u32,
    pub len: u32,
    pub snaplen: u32,
    pub vlan_tci: u16,
}

/// Everything recvmsg told about one frame besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// Captured length (after the filter's cut); may exceed the buffer, see `truncated`.
    pub len: usize,
    /// The buffer was shorter than the captured frame.
    pub truncated: bool,
    pub ifindex: u32,
    pub hatype: u16,
    pub pkttype: u8,
    /// sll_protocol, host order.
    pub protocol: u16,
    /// Absent when PACKET_AUXDATA could not be enabled (qemu-user).
    pub aux: Option<AuxData>,
    /// The kernel's receive time: (seconds, nanoseconds) since the Unix epoch.
    pub timestamp: Option<(i64, i64)>,
}

// Timestamp cmsg types: the _OLD ones carry the platform's timespec/timeval (two longs), the
// _NEW ones (32-bit platforms with a 64-bit time_t) two i64.
const SCM_TIMESTAMP_OLD: libc::c_int = 29;
const SCM_TIMESTAMPNS_OLD: libc::c_int = 35;
const SCM_TIMESTAMP_NEW: libc::c_int = 63;
const SCM_TIMESTAMPNS_NEW: libc::c_int = 64;
/// Classic BPF programs may hold at most this many instructions (BPF_MAXINSNS).
pub const BPF_MAX_INSNS: usize = 4096;

/// Room for a PACKET_AUXDATA and a SO_TIMESTAMPNS cmsg, aligned for cmsghdr.
#[repr(C, align(8))]
struct ControlBuf([u8; 128]);

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl PacketSocket {
    /// A packet socket in the calling thread's network namespace that receives nothing until
    /// [`start`](Self::start).
    pub fn open() -> io::Result<Self> {
        let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: plain syscall with constant arguments; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, kind, 0) };
        check(fd)?;
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Starts receiving every protocol on every link of the namespace (ifindex 0).
    pub fn start(&self) -> io::Result<()> {
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: 0,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_ll of `len` bytes, read by the kernel only.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                len,
            )
        };
        check(rc)
    }

    fn set_option<T: Copy>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> io::Result<()> {
        let len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` points to a live, initialised T of `len` bytes for the whole call; the
        // kernel only reads it. T is Copy plain data (an int or a repr(C) uapi struct).
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                len,
            )
        };
        check(rc)
    }

    /// Attaches (or atomically replaces) the classic BPF filter. A frame is cut by the kernel
    /// to the value the program returns; 0 drops it.
    pub fn attach_filter(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        if program.is_empty() || program.len() > BPF_MAX_INSNS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "BPF program of {} instructions (1..={BPF_MAX_INSNS})",
                    program.len()
                ),
            ));
        }
        let fprog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            // The kernel copies the program and never writes through this pointer.
            filter: program.as_ptr().cast_mut(),
        };
        self.set_option(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
    }

    /// Asks for a PACKET_AUXDATA cmsg with every recvmsg (true length, VLAN tag, status).
    pub fn enable_auxdata(&self) -> io::Result<()> {
        self.set_option(libc::SOL_PACKET, libc::PACKET_AUXDATA, &(1 as libc::c_int))
    }

    /// Asks for a kernel timestamp cmsg with every recvmsg: SO_TIMESTAMPNS, else (qemu-user
    /// only emulates this one) SO_TIMESTAMP in microseconds. Returns the resolution in ns.
    pub fn enable_timestamps(&self) -> io::Result<u32> {
        let on: libc::c_int = 1;
        self.set_option(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)
            .map(|()| 1)
            .or_else(|_| {
                self.set_option(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &on)
                    .map(|()| 1000)
            })
    }

    /// Sets the kernel receive queue for the recv path: SO_RCVBUFFORCE (root may exceed
    /// net.core.rmem_max), else SO_RCVBUF.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        self.set_option(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes)
            .or_else(|_| self.set_option(libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes))
    }

    /// Selects TPACKET_V3; fails with ENOPROTOOPT under qemu-user.
    pub fn set_tpacket_v3(&self) -> io::Result<()> {
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        self.set_option(libc::SOL_PACKET, libc::PACKET_VERSION, &version)
    }

    /// Registers the RX ring the caller will mmap.
    pub fn set_rx_ring(&self, request: &libc::tpacket_req3) -> io::Result<()> {
        self.set_option(libc::SOL_PACKET, libc::PACKET_RX_RING, request)
    }

    /// Reads (and so resets) PACKET_STATISTICS. EOPNOTSUPP under qemu-user.
    pub fn statistics(&self) -> io::Result<KernelCounters> {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `stats` is a writable buffer of `len` bytes; the kernel writes at most `len`
        // bytes (8 for a non-V3 socket, leaving freeze_q at 0) and stores the count in `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        check(rc)?;
        Ok(KernelCounters {
            packets: stats.tp_packets,
            drops: stats.tp_drops,
            freeze_q: stats.tp_freeze_q_cnt,
        })
    }

    /// Receives one frame into `buf`; `Ok(None)` when none is queued.
    pub fn recv_frame(&self, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
        let mut addr = libc::sockaddr_ll {
            sll_family: 0,
            sll_protocol: 0,
            sll_ifindex: 0,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let mut control = ControlBuf([0; 128]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data (pointers and integers, some private padding) for which
        // all-zero bytes are a valid value.
        let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with the lengths
        // given; the kernel writes within those bounds. MSG_TRUNC only changes the return value
        // to the frame's full captured length.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        let len = n as usize;
        let mut meta = RecvMeta {
            len,
            truncated: len > buf.len(),
            ifindex: addr.sll_ifindex as u32,
            hatype: addr.sll_hatype,
            pkttype: addr.sll_pkttype,
            protocol: u16::from_be(addr.sll_protocol),
            aux: None,
            timestamp: None,
        };
        let base = control.0.as_ptr() as usize;
        // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR reads only msg_control and
        // msg_controllen, which describe `control`.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: a non-null pointer from CMSG_FIRSTHDR/CMSG_NXTHDR points to a complete
            // cmsghdr inside `control` (the macros check it against msg_controllen), which is
            // aligned for cmsghdr.
            let (hdr, data) = unsafe { (cmsg.read(), libc::CMSG_DATA(cmsg)) };
            // Offsets into `control`, so the payload is read as a bounds-checked byte slice.
            let start = (data as usize).wrapping_sub(base);
            #[allow(clippy::unnecessary_cast)] // cmsg_len is a socklen_t on musl
            let cmsg_len = hdr.cmsg_len as usize;
            let end = (cmsg as usize).wrapping_sub(base).saturating_add(cmsg_len);
            let payload = control
                .0
                .get(start..end.min(control.0.len()))
                .unwrap_or(&[]);
            parse_cmsg(hdr.cmsg_level, hdr.cmsg_type, payload, &mut meta);
            // SAFETY: `cmsg` is the current valid header of `msg`; CMSG_NXTHDR returns the next
            // one inside msg_control or null.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        Ok(Some(meta))
    }
}

fn ne_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn ne_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn ne_i64(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_ne_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn ne_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Reads the control messages this socket asks for; others are ignored.
fn parse_cmsg(level: libc::c_int, kind: libc::c_int, payload: &[u8], meta: &mut RecvMeta) {
    use libc::tpacket_auxdata as A;
    if level == libc::SOL_PACKET && kind == libc::PACKET_AUXDATA {
        let aux = (|| {
            Some(AuxData {
                status: ne_u32(payload, offset_of!(A, tp_status))?,
                len: ne_u32(payload, offset_of!(A, tp_len))?,
                snaplen: ne_u32(payload, offset_of!(A, tp_snaplen))?,
                vlan_tci: ne_u16(payload, offset_of!(A, tp_vlan_tci))?,
            })
        })();
        meta.aux = aux.or(meta.aux);
    } else if level == libc::SOL_SOCKET {
        let sub_second_ns = match kind {
            SCM_TIMESTAMPNS_OLD | SCM_TIMESTAMPNS_NEW => 1,
            SCM_TIMESTAMP_OLD | SCM_TIMESTAMP_NEW => 1000,
            _ => return,
        };
        // 16 bytes: two 64-bit fields (64-bit platforms, or the _NEW layouts); 8: two i32.
        let time = match payload.len() {
            16.. => ne_i64(payload, 0).zip(ne_i64(payload, 8)),
            8.. => ne_i32(payload, 0)
                .zip(ne_i32(payload, 4))
                .map(|(s, n)| (s.into(), n.into())),
            _ => None,
        };
        let time = time.map(|(sec, sub)| (sec, sub.saturating_mul(sub_second_ns)));
        meta.timestamp = time.or(meta.timestamp);
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecvMeta {
        RecvMeta {
            len: 0,
            truncated: false,
            ifindex: 0,
            hatype: 0,
            pkttype: 0,
            protocol: 0,
            aux: None,
            timestamp: None,
        }
    }

    #[test]
    fn auxdata_cmsg_is_read_by_layout() {
        let mut payload = [0u8; size_of::<libc::tpacket_auxdata>()];
        payload[0..4].copy_from_slice(&(libc::TP_STATUS_VLAN_VALID).to_ne_bytes());
        payload[4..8].copy_from_slice(&1514u32.to_ne_bytes());
        payload[8..12].copy_from_slice(&96u32.to_ne_bytes());
        let tci = offset_of!(libc::tpacket_auxdata, tp_vlan_tci);
        payload[tci..tci + 2].copy_from_slice(&0x2064u16.to_ne_bytes());
        let mut m = meta();
        parse_cmsg(libc::SOL_PACKET, libc::PACKET_AUXDATA, &payload, &mut m);
        let aux = m.aux.expect("aux parsed");
        assert_eq!(
            (aux.status, aux.len, aux.snaplen, aux.vlan_tci),
            (16, 1514, 96, 0x2064)
        );
    }

    #[test]
    fn short_cmsgs_are_ignored() {
        let mut m = meta();
        parse_cmsg(libc::SOL_PACKET, libc::PACKET_AUXDATA, &[1, 2, 3], &mut m);
        parse_cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS_OLD, &[1, 2, 3, 4], &mut m);
        assert_eq!(m, meta());
    }

    #[test]
    fn both_timespec_layouts_are_read() {
        let mut wide = [0u8; 16];
        wide[..8].copy_from_slice(&1_700_000_000i64.to_ne_bytes());
        wide[8..].copy_from_slice(&123_456_789i64.to_ne_bytes());
        let mut m = meta();
        parse_cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS_NEW, &wide, &mut m);
        assert_eq!(m.timestamp, Some((1_700_000_000, 123_456_789)));
        let mut narrow = [0u8; 8];
        narrow[..4].copy_from_slice(&1_600_000_000i32.to_ne_bytes());
        narrow[4..].copy_from_slice(&5i32.to_ne_bytes());
        let mut m = meta();
        parse_cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS_OLD, &narrow, &mut m);
        assert_eq!(m.timestamp, Some((1_600_000_000, 5)));
        let mut m = meta();
        parse_cmsg(libc::SOL_SOCKET, SCM_TIMESTAMP_OLD, &narrow, &mut m);
        assert_eq!(m.timestamp, Some((1_600_000_000, 5000)), "microseconds");
        let mut m = meta();
        parse_cmsg(libc::SOL_SOCKET, SCM_TIMESTAMP_NEW, &wide, &mut m);
        assert_eq!(m.timestamp, Some((1_700_000_000, 123_456_789_000)));
    }
}
