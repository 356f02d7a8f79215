//! Conversations with the kernel over one namespace's netlink sockets: dumps, single queries,
//! draining pending events. Safe code over `sys::netlink`.

use super::nlmsg::{
    align4, Messages, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_DUMP_INTR, NLM_F_MULTI,
};
use super::rtnl::{self, AddrMsg, Event, LinkMsg};
use crate::sys::netlink::NetlinkSocket;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Big enough for any datagram the kernel sends (dump skbs are at most 32 KiB).
pub const RECV_BUF: usize = 64 * 1024;
/// A dump interrupted by concurrent changes is retried this many times.
const DUMP_TRIES: usize = 5;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"))
}

/// Sends `request` and collects the answer's messages (DONE and ACKs left out), concatenated as
/// they came: a byte stream [`Messages`] reads again. A dump that the kernel marks interrupted
/// (the table changed meanwhile) is asked again.
pub fn ask_raw(sock: &mut NetlinkSocket, build: impl Fn(u32) -> Vec<u8>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; RECV_BUF];
    for _ in 0..DUMP_TRIES {
        let seq = sock.next_seq();
        sock.send(&build(seq))?;
        let mut out = Vec::new();
        let mut interrupted = false;
        'answer: loop {
            let len = sock.recv(&mut buf)?;
            let mut multi = false;
            for msg in Messages::new(buf.get(..len).unwrap_or(&[])) {
                let msg = msg.map_err(|e| invalid(&format!("{e:?}")))?;
                if msg.seq != seq {
                    continue; // a late answer to an earlier request
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                multi |= msg.flags & NLM_F_MULTI != 0;
                match msg.ty {
                    NLMSG_DONE => break 'answer,
                    NLMSG_ERROR => match msg.error_code() {
                        Some(0) => break 'answer,
                        Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                        None => return Err(invalid("error message")),
                    },
                    NLMSG_OVERRUN => return Err(invalid("overrun")),
                    _ => {
                        out.extend_from_slice(msg.raw);
                        out.resize(align4(out.len()), 0);
                    }
                }
            }
            if !multi && !out.is_empty() {
                break; // a single answer has no DONE
            }
        }
        if !interrupted {
            return Ok(out);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINTR))
}

/// Every link of the socket's namespace.
pub fn links(sock: &mut NetlinkSocket) -> io::Result<Vec<LinkMsg>> {
    let raw = ask_raw(sock, rtnl::getlink_dump)?;
    read_events(&raw)
        .map(|events| {
            events
                .into_iter()
                .filter_map(|e| match e {
                    Event::NewLink(l) => Some(l),
                    _ => None,
                })
                .collect()
        })
        .map_err(|e| invalid(&format!("{e:?}")))
}

/// One link by ifindex, `None` when it does not exist (any more).
pub fn link(sock: &mut NetlinkSocket, ifindex: u32) -> io::Result<Option<LinkMsg>> {
    match ask_raw(sock, |seq| rtnl::getlink_one(seq, ifindex)) {
        Ok(raw) => Ok(read_events(&raw)
            .map_err(|e| invalid(&format!("{e:?}")))?
            .into_iter()
            .find_map(|e| match e {
                Event::NewLink(l) => Some(l),
                _ => None,
            })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every IPv4/IPv6 address of the socket's namespace.
pub fn addrs(sock: &mut NetlinkSocket) -> io::Result<Vec<AddrMsg>> {
    let raw = ask_raw(sock, rtnl::getaddr_dump)?;
    Ok(read_events(&raw)
        .map_err(|e| invalid(&format!("{e:?}")))?
        .into_iter()
        .filter_map(|e| match e {
            Event::NewAddr(a) => Some(a),
            _ => None,
        })
        .collect())
}

/// The id the socket's namespace gives the namespace open as `netns`; `None` if unassigned.
pub fn nsid(sock: &mut NetlinkSocket, netns: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let fd = u32::try_from(netns.as_raw_fd()).map_err(|_| invalid("fd"))?;
    let raw = ask_raw(sock, |seq| rtnl::getnsid(seq, fd))?;
    for msg in Messages::new(&raw) {
        let msg = msg.map_err(|e| invalid(&format!("{e:?}")))?;
        if msg.ty == rtnl::RTM_NEWNSID {
            return rtnl::parse_nsid(msg.payload).map_err(|e| invalid(&format!("{e:?}")));
        }
    }
    Ok(None)
}

/// The events in a message stream, in order; messages of other types are skipped.
pub fn read_events(raw: &[u8]) -> Result<Vec<Event>, super::nlmsg::Error> {
    let mut out = Vec::new();
    for msg in Messages::new(raw) {
        if let Some(event) = rtnl::parse_event(&msg?)? {
            out.push(event);
        }
    }
    Ok(out)
}

/// Reads every datagram pending on a nonblocking event socket, appending to `out`.
/// `Err(ENOBUFS)`: events were lost and the caller must resync.
pub fn drain(sock: &NetlinkSocket, buf: &mut [u8], out: &mut Vec<Event>) -> io::Result<()> {
    loop {
        let len = match sock.recv(buf) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let datagram = buf.get(..len).unwrap_or(&[]);
        match read_events(datagram) {
            Ok(events) => out.extend(events),
            // A malformed datagram (never seen from a kernel) loses its events: resync.
            Err(_) => return Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
        }
    }
}
