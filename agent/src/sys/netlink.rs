//! rtnetlink sockets (NETLINK_ROUTE). One kind asks (link/address dumps, nsid queries), the
//! other listens (link and address events) on a nonblocking fd the agent polls.
//!
//! A netlink socket belongs to the network namespace it was created in, so a socket for another
//! namespace is created while the calling thread is inside it ([`NetlinkSocket::open_in`], through
//! [`super::netns::in_netns`]).
//! nix wraps every call used here safely, so this file holds no `unsafe` block. Parsing of what
//! the sockets receive is safe code in `crate::links`.

use super::netns::in_netns;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::{TimeVal, TimeValLike};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Multicast groups (RTMGRP_* bits) for [`NetlinkSocket::open_events`].
pub mod groups {
    pub const LINK: u32 = 0x1;
    pub const IPV4_IFADDR: u32 = 0x10;
    pub const IPV6_IFADDR: u32 = 0x100;
}

/// Receive buffer limit of an event socket: a burst of container starts must not overflow it
/// (an overflow costs a full resync, see `ENOBUFS` in [`NetlinkSocket::recv`]).
const EVENT_RCVBUF: usize = 1 << 20;
/// A query socket never waits longer than this for the kernel's answer.
const QUERY_TIMEOUT_S: i64 = 2;

/// A NETLINK_ROUTE socket bound to the namespace it was created in.
#[derive(Debug)]
pub struct NetlinkSocket {
    fd: OwnedFd,
    seq: u32,
}

impl NetlinkSocket {
    /// A blocking socket (with a receive timeout) for requests, in the calling thread's namespace.
    pub fn open_query() -> io::Result<Self> {
        let fd = new_socket(SockFlag::SOCK_CLOEXEC)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::seconds(QUERY_TIMEOUT_S),
        )?;
        Ok(Self { fd, seq: 0 })
    }

    /// A nonblocking socket subscribed to `groups` (see [`groups`]), in the calling thread's
    /// namespace.
    pub fn open_events(groups: u32) -> io::Result<Self> {
        let fd = new_socket(SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)?;
        // Root may raise the limit past rmem_max; anyone else keeps what SO_RCVBUF gives.
        if setsockopt(&fd, sockopt::RcvBufForce, &EVENT_RCVBUF).is_err() {
            setsockopt(&fd, sockopt::RcvBuf, &EVENT_RCVBUF)?;
        }
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        Ok(Self { fd, seq: 0 })
    }

    /// Runs `open` (one of the constructors) inside the namespace `netns` (an open
    /// /run/netns/NAME or /proc/PID/ns/net), then returns the thread to where it was.
    pub fn open_in(
        netns: BorrowedFd<'_>,
        open: impl FnOnce() -> io::Result<Self>,
    ) -> io::Result<Self> {
        // Through the fd itself, not the path it came from: a /proc/PID may belong to another
        // process (and namespace) by now.
        let path = format!("/proc/thread-self/fd/{}", netns.as_raw_fd());
        in_netns(Path::new(&path), open)?
    }

    /// A fresh sequence number for the next request.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request (already framed) to the kernel.
    pub fn send(&self, request: &[u8]) -> io::Result<()> {
        let sent = send(self.fd.as_raw_fd(), request, MsgFlags::empty())?;
        if sent != request.len() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        Ok(())
    }

    /// Receives one datagram (one or more netlink messages) into `buf`.
    /// `WouldBlock` on an event socket: nothing pending. `ENOBUFS`: the kernel dropped events
    /// (the caller must resync). `EMSGSIZE`: the datagram did not fit `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // MSG_TRUNC makes the kernel report the datagram's real length, so a cut one is seen.
        let len = recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC)?;
        if len > buf.len() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        Ok(len)
    }
}

impl AsFd for NetlinkSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn new_socket(flags: SockFlag) -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Netlink,
        SockType::Raw,
        flags,
        SockProtocol::NetlinkRoute,
    )?)
}
