//! The exporter's seam to the network: a [`Connector`] opens a [`Stream`], one duplex byte
//! stream that both writes batches and reads acks: plain TCP ([`TcpConnector`], only with
//! `--insecure`) or Noise over TCP ([`super::noise::NoiseConnector`]). Nothing above this needs
//! a socket: no `try_clone` (a secure session cannot be split in two), no raw fd, one object
//! read and written by one thread.

use nix::sys::socket::{recv, MsgFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A connected stream to the collector. Writes block (bounded by the transport's write
/// timeout); reads never do, so one thread can interleave sending and ack reading.
pub trait Stream: Write + Send {
    /// Reads what has already arrived, without waiting: `Some(n)` with `n > 0` bytes,
    /// `Some(0)` when the peer closed the stream, `None` when nothing is there yet.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Ends the stream in both directions (a TLS transport sends its close first).
    fn shutdown(&mut self) -> io::Result<()>;

    /// Ends the writing direction only: the peer reads to the end, and replies can still be
    /// read. By default, both directions.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown()
    }
}

/// Opens streams to one collector: at start, and again after every loss.
pub trait Connector: Send {
    fn connect(&mut self) -> io::Result<Box<dyn Stream>>;

    /// Where it connects, for log lines.
    fn peer(&self) -> &str;
}

/// Socket settings of [`TcpConnector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    pub connect_timeout: Duration,
    /// A write that makes no progress for this long counts as a dead connection.
    pub write_timeout: Duration,
    /// Data unacknowledged by the peer's TCP for this long ends the connection
    /// (TCP_USER_TIMEOUT): a collector that vanished without a reset is noticed in bounded
    /// time, not after minutes of retransmissions.
    pub user_timeout: Duration,
    /// Keepalive probes after this much silence (the agent sends stats every 5 s, so this
    /// only matters if that ever changes).
    pub keepalive_idle: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            user_timeout: Duration::from_secs(30),
            keepalive_idle: Duration::from_secs(10),
        }
    }
}

/// Plain TCP to one of the collector's addresses (its ingest nodes, in scaled mode): the
/// first, and after a failed attempt the next, round the list; a working address is kept.
#[derive(Debug)]
pub struct TcpConnector {
    addrs: Vec<SocketAddr>,
    current: usize,
    /// The last attempt failed: the next tries the next address.
    failed: bool,
    label: String,
    opts: TcpOptions,
}

impl TcpConnector {
    pub fn new(addr: SocketAddr, opts: TcpOptions) -> TcpConnector {
        TcpConnector::any_of(vec![addr], opts)
    }

    /// `addrs` must not be empty (the agent refuses a `--collector` that resolves to
    /// nothing); an empty list fails every attempt.
    pub fn any_of(addrs: Vec<SocketAddr>, opts: TcpOptions) -> TcpConnector {
        let label = addrs.first().map_or_else(String::new, ToString::to_string);
        TcpConnector {
            addrs,
            current: 0,
            failed: false,
            label,
            opts,
        }
    }
}

impl TcpConnector {
    /// A connected socket with the options set (the Noise connector's carrier too).
    pub fn open(&mut self) -> io::Result<TcpStream> {
        if self.failed && self.addrs.len() > 1 {
            self.current = (self.current + 1) % self.addrs.len();
            self.label = self.addrs[self.current].to_string();
        }
        let Some(&addr) = self.addrs.get(self.current) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no collector address",
            ));
        };
        let socket = self.connect_to(addr);
        self.failed = socket.is_err();
        socket
    }

    fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let o = &self.opts;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_tcp_nodelay(true)?;
        socket.set_write_timeout(Some(o.write_timeout))?;
        socket.set_tcp_user_timeout(Some(o.user_timeout))?;
        socket.set_keepalive(true)?;
        socket.set_tcp_keepalive(
            &TcpKeepalive::new()
                .with_time(o.keepalive_idle)
                .with_interval(Duration::from_secs(5))
                .with_retries(3),
        )?;
        socket.connect_timeout(&SockAddr::from(addr), o.connect_timeout)?;
        Ok(TcpStream::from(socket))
    }
}

impl Connector for TcpConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(TcpTransport(self.open()?)))
    }

    fn peer(&self) -> &str {
        &self.label
    }
}

#[derive(Debug)]
struct TcpTransport(TcpStream);

impl Write for TcpTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stream for TcpTransport {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv_nowait(&self.0, buf)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }
}

/// What has arrived on `tcp`, without waiting: [`Stream::try_read`]'s contract.
pub(super) fn recv_nowait(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match recv(tcp.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => return Ok(Some(n)),
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod failover_tests {
    use super::*;
    use std::net::TcpListener;

    /// A port nothing listens on (bound, then closed).
    fn dead_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn a_dead_address_is_left_for_the_next_and_a_live_one_kept() {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let (dead, up) = (dead_port(), live.local_addr().unwrap());
        let mut c = TcpConnector::any_of(vec![dead, up], TcpOptions::default());
        assert!(c.open().is_err());
        assert_eq!(
            c.peer(),
            dead.to_string(),
            "a failure is logged under its address"
        );
        assert!(c.open().is_ok());
        assert_eq!(c.peer(), up.to_string());
        // A working address is kept; when it dies, the list goes round.
        assert!(c.open().is_ok());
        assert_eq!(c.peer(), up.to_string());
        drop(live);
        assert!(c.open().is_err());
        assert!(c.open().is_err());
        assert_eq!(c.peer(), dead.to_string());
    }

    #[test]
    fn no_address_is_an_error_not_a_panic() {
        let mut c = TcpConnector::any_of(Vec::new(), TcpOptions::default());
        assert_eq!(c.open().unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
