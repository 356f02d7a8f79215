//! The ingest side's seam to the network: a [`Listener`] hands out connections, each a
//! [`Duplex`] byte stream that the connection thread reads frames from and writes acks to.
//! Two transports: Noise over TCP ([`super::noise::NoiseListen`], whose handshake runs on the
//! connection's own thread at its first read) and plain TCP ([`TcpListen`], `serve
//! --insecure`). Nothing above this needs a socket.
//!
//! A secure transport authenticates the board by its key; the name it is trusted as is bound
//! to the connection's thread ([`authenticated_board`]) when the handshake completes, before
//! any byte from the board is handed up, and the hello must claim that name.

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

thread_local! {
    static AUTHENTICATED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The board name the current connection's transport authenticated (its key's entry in the
/// trusted file), on that connection's own thread; `None` over plain TCP.
pub fn authenticated_board() -> Option<String> {
    AUTHENTICATED.with(|a| a.borrow().clone())
}

/// Set by a secure transport on the connection's thread once its handshake completes, and
/// cleared when the connection is dropped.
pub(super) fn set_authenticated_board(board: Option<String>) {
    AUTHENTICATED.with(|a| *a.borrow_mut() = board);
}

/// One accepted connection.
pub trait Duplex: Read + Write + Send {
    /// Reads wait at most `read`, then fail with `WouldBlock` or `TimedOut` (the connection
    /// loop's poll); a write that makes no progress for `write` fails.
    fn set_timeouts(&mut self, read: Duration, write: Duration) -> io::Result<()>;

    /// Ends the stream in both directions (a secure transport sends its close first).
    fn shutdown(&mut self);
}

/// Where connections come from.
pub trait Listener: Send {
    /// The next waiting connection and its peer's address (for logs), without blocking.
    fn accept(&mut self) -> io::Result<Option<(Box<dyn Duplex>, String)>>;

    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Plain TCP.
#[derive(Debug)]
pub struct TcpListen(TcpListener);

impl TcpListen {
    pub fn new(listener: TcpListener) -> io::Result<TcpListen> {
        listener.set_nonblocking(true)?;
        Ok(TcpListen(listener))
    }

    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListen> {
        TcpListen::new(TcpListener::bind(addr)?)
    }
}

impl Listener for TcpListen {
    fn accept(&mut self) -> io::Result<Option<(Box<dyn Duplex>, String)>> {
        match self.0.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                Ok(Some((Box::new(TcpDuplex(stream)), peer.to_string())))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[derive(Debug)]
struct TcpDuplex(TcpStream);

impl Read for TcpDuplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TcpDuplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Duplex for TcpDuplex {
    fn set_timeouts(&mut self, read: Duration, write: Duration) -> io::Result<()> {
        self.0.set_read_timeout(Some(read))?;
        self.0.set_write_timeout(Some(write))
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
