//! Noise `IK_25519_ChaChaPoly_BLAKE2s` (the `snow` crate) over TCP, behind the ingest seam:
//! [`NoiseListen`] accepts TCP connections and hands each out as a [`Duplex`] whose handshake
//! runs on the connection's own thread at its first read or write, within
//! [`HANDSHAKE_TIMEOUT`]. A board is accepted when its static key is in the trusted file,
//! and the connection is then bound to that file's name for that key
//! ([`super::transport::authenticated_board`]): the hello must claim that name.
//!
//! The trusted file is read again when it changes (checked at every handshake, and once a
//! second on a live connection): `keys add` takes effect for the next connection, and
//! `keys revoke` also ends a revoked board's live connection within about a second.
//!
//! The only glue written here is the framing: a 2-byte big-endian length before every Noise
//! message (at most 65 535 bytes).

use super::transport::{set_authenticated_board, Duplex, Listener};
use crate::keys::{fingerprint, hex, PrivateKey, PublicKey, Trusted, PATTERN};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A peer that has not completed the handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_MESSAGE: usize = 65535;
const TAG: usize = 16;
const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG;
/// How often a live connection looks whether its board was revoked.
const RECHECK: Duration = Duration::from_secs(1);

/// The trusted boards file, read again whenever it changes.
#[derive(Debug)]
pub struct Trust {
    path: PathBuf,
    state: Mutex<TrustState>,
}

#[derive(Debug, Default)]
struct TrustState {
    /// (modification time ns, inode, length) of the version read.
    stamp: Option<(i128, u64, u64)>,
    by_key: HashMap<PublicKey, String>,
}

fn stamp(path: &Path) -> io::Result<(i128, u64, u64)> {
    let m = std::fs::metadata(path)?;
    let ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    Ok((ns, m.ino(), m.len()))
}

impl Trust {
    /// Reads `path` now: a missing or malformed file is an error at start.
    pub fn open(path: &Path) -> io::Result<Trust> {
        let trust = Trust {
            path: path.to_path_buf(),
            state: Mutex::new(TrustState::default()),
        };
        trust.current()?;
        Ok(trust)
    }

    /// How many boards it trusts now.
    pub fn len(&self) -> io::Result<usize> {
        Ok(self.current()?.len())
    }

    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The board name `key` is trusted as, now.
    pub fn board_of(&self, key: &PublicKey) -> io::Result<Option<String>> {
        Ok(self.current()?.get(key).cloned())
    }

    fn current(&self) -> io::Result<HashMap<PublicKey, String>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamp(&self.path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        if state.stamp != Some(now) {
            let trusted = Trusted::read(&self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            state.by_key = trusted.by_key();
            state.stamp = Some(now);
            log::debug!(
                "{}: {} trusted boards",
                self.path.display(),
                state.by_key.len()
            );
        }
        Ok(state.by_key.clone())
    }
}

/// TCP connections, each secured by Noise before anything is read from it.
#[derive(Debug)]
pub struct NoiseListen {
    tcp: TcpListener,
    key: Arc<PrivateKey>,
    trust: Arc<Trust>,
}

impl NoiseListen {
    pub fn new(tcp: TcpListener, key: PrivateKey, trust: Trust) -> io::Result<NoiseListen> {
        tcp.set_nonblocking(true)?;
        Ok(NoiseListen {
            tcp,
            key: Arc::new(key),
            trust: Arc::new(trust),
        })
    }

    pub fn bind(addr: SocketAddr, key: PrivateKey, trust: Trust) -> io::Result<NoiseListen> {
        NoiseListen::new(TcpListener::bind(addr)?, key, trust)
    }
}

impl Listener for NoiseListen {
    fn accept(&mut self) -> io::Result<Option<(Box<dyn Duplex>, String)>> {
        match self.tcp.accept() {
            Ok((tcp, peer)) => {
                tcp.set_nonblocking(false)?;
                tcp.set_nodelay(true)?;
                Ok(Some((
                    Box::new(NoiseDuplex {
                        tcp,
                        key: Arc::clone(&self.key),
                        trust: Arc::clone(&self.trust),
                        session: None,
                        failed: false,
                        timeouts: (Duration::from_millis(50), Duration::from_secs(5)),
                        raw: Vec::new(),
                        plain: Vec::new(),
                        read_pos: 0,
                        out: Vec::new(),
                        checked: Instant::now(),
                    }),
                    peer.to_string(),
                )))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

struct Session {
    noise: snow::TransportState,
    board: String,
    key: PublicKey,
}

/// One connection: handshake first (on its own thread), then one Noise message per read or
/// write.
struct NoiseDuplex {
    tcp: TcpStream,
    key: Arc<PrivateKey>,
    trust: Arc<Trust>,
    session: Option<Session>,
    /// The handshake failed, or a write broke the session: nothing more goes through.
    failed: bool,
    /// (read, write) as the connection loop asked.
    timeouts: (Duration, Duration),
    /// Received bytes not yet a whole message.
    raw: Vec<u8>,
    /// Decrypted bytes not yet handed out, from `read_pos`.
    plain: Vec<u8>,
    read_pos: usize,
    out: Vec<u8>,
    /// When the board's trust was last looked at.
    checked: Instant,
}

/// Why a Noise connection was refused, and under which cause its log line is rate-limited
/// (a revoked board and an untrusted key are told apart, so neither hides the other).
#[derive(Debug)]
pub struct Refusal {
    pub cause: &'static str,
    pub text: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Refusal {}

fn refused_as(cause: &'static str, why: String) -> io::Error {
    io::Error::new(ErrorKind::PermissionDenied, Refusal { cause, text: why })
}

fn refused(why: String) -> io::Error {
    refused_as("refused-noise", why)
}

/// The rate-limit cause of a connection's I/O error: a [`Refusal`]'s own, else `close-io`.
pub fn log_cause(e: &io::Error) -> &'static str {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Refusal>())
        .map_or("close-io", |r| r.cause)
}

impl NoiseDuplex {
    fn ready(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(refused("Noise session closed".into()));
        }
        if self.session.is_none() {
            match self.handshake() {
                Ok(s) => {
                    set_authenticated_board(Some(s.board.clone()));
                    self.session = Some(s);
                }
                Err(e) => {
                    self.failed = true;
                    // Never a timeout's kind: the connection loop takes those for its poll.
                    let cause = match e.kind() {
                        ErrorKind::PermissionDenied => log_cause(&e),
                        ErrorKind::TimedOut => "refused-handshake-timeout",
                        _ => "refused-handshake",
                    };
                    return Err(refused_as(cause, e.to_string()));
                }
            }
        }
        Ok(())
    }

    /// IK as the responder: read the board's first message (its static key, encrypted to
    /// ours), look the key up, answer. Within [`HANDSHAKE_TIMEOUT`] in all.
    fn handshake(&mut self) -> io::Result<Session> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let params = PATTERN.parse().map_err(noise_error)?;
        let mut hs = snow::Builder::new(params)
            .local_private_key(&self.key.0)
            .and_then(|b| b.build_responder())
            .map_err(noise_error)?;
        self.tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let first = read_message(&mut self.tcp, deadline).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("refused: no Noise handshake within {HANDSHAKE_TIMEOUT:?} ({e})"),
            )
        })?;
        let mut payload = vec![0u8; MAX_MESSAGE];
        hs.read_message(&first, &mut payload).map_err(|e| {
            refused_as(
                "refused-not-noise",
                format!(
                    "refused: not a Noise IK handshake to this collector's key ({e}): a plaintext \
                 or --insecure agent, or one that pins another collector key"
                ),
            )
        })?;
        let mut key = [0u8; 32];
        match hs.get_remote_static() {
            Some(k) if k.len() == 32 => key.copy_from_slice(k),
            _ => {
                return Err(refused(
                    "refused: the handshake carries no board key".into(),
                ))
            }
        }
        let Some(board) = self.trust.board_of(&key)? else {
            return Err(refused_as(
                "refused-untrusted-key",
                format!(
                    "refused: untrusted board key, fingerprint {} (public key {}; not in the \
                 trusted file: `hopcap-collector keys add DIR NAME --public {}` trusts it)",
                    fingerprint(&key),
                    hex(&key),
                    hex(&key)
                ),
            ));
        };
        let n = hs.write_message(&[], &mut payload).map_err(noise_error)?;
        write_message(&mut self.tcp, &payload[..n])?;
        let noise = hs.into_transport_mode().map_err(noise_error)?;
        self.tcp.set_read_timeout(Some(self.timeouts.0))?;
        self.tcp.set_write_timeout(Some(self.timeouts.1))?;
        log::info!(
            "{}: Noise session with board {board:?} (key {})",
            self.tcp
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            fingerprint(&key)
        );
        self.checked = Instant::now();
        Ok(Session { noise, board, key })
    }

    /// Ends a live connection whose board was revoked since (looked at once a second).
    fn still_trusted(&mut self) -> io::Result<()> {
        if self.checked.elapsed() < RECHECK {
            return Ok(());
        }
        self.checked = Instant::now();
        let Some(s) = &self.session else {
            return Ok(());
        };
        match self.trust.board_of(&s.key)? {
            Some(name) if name == s.board => Ok(()),
            _ => {
                self.failed = true;
                Err(refused_as(
                    "refused-revoked",
                    format!(
                        "board {:?} (key {}) is no longer trusted: connection cut",
                        s.board,
                        fingerprint(&s.key)
                    ),
                ))
            }
        }
    }
}

fn noise_error(e: snow::Error) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("noise: {e}"))
}

fn write_message(tcp: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| io::Error::new(ErrorKind::InvalidData, "Noise message too long"))?;
    let mut framed = Vec::with_capacity(2 + msg.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    tcp.write_all(&framed)
}

/// One whole Noise message (blocking), by `deadline`.
fn read_message(tcp: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    read_exact_by(tcp, &mut len, deadline)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact_by(tcp, &mut msg, deadline)?;
    Ok(msg)
}

fn read_exact_by(tcp: &mut TcpStream, mut buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "timed out"));
        }
        tcp.set_read_timeout(Some(left))?;
        match tcp.read(buf) {
            Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed")),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(io::Error::new(ErrorKind::TimedOut, "timed out"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Read for NoiseDuplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ready()?;
        self.still_trusted()?;
        loop {
            if self.read_pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.read_pos);
                buf[..n].copy_from_slice(&self.plain[self.read_pos..self.read_pos + n]);
                self.read_pos += n;
                return Ok(n);
            }
            if self.raw.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([self.raw[0], self.raw[1]]));
                if self.raw.len() >= 2 + len {
                    self.plain.resize(MAX_MESSAGE, 0);
                    let Some(session) = self.session.as_mut() else {
                        return Err(refused("no Noise session".into()));
                    };
                    let n = session
                        .noise
                        .read_message(&self.raw[2..2 + len], &mut self.plain)
                        .map_err(|e| {
                            io::Error::new(ErrorKind::InvalidData, format!("Noise message: {e}"))
                        })?;
                    self.plain.truncate(n);
                    self.read_pos = 0;
                    self.raw.drain(..2 + len);
                    continue;
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.tcp.read(&mut chunk) {
                Ok(0) if self.raw.is_empty() => return Ok(0),
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "closed in the middle of a Noise message",
                    ))
                }
                Ok(n) => self.raw.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for NoiseDuplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(MAX_PLAINTEXT);
        self.out.resize(2 + MAX_MESSAGE, 0);
        self.ready()?;
        let Some(session) = self.session.as_mut() else {
            return Err(refused("no Noise session".into()));
        };
        let n = session
            .noise
            .write_message(&buf[..take], &mut self.out[2..])
            .map_err(noise_error)?;
        // n <= MAX_MESSAGE: it fits the prefix.
        self.out[..2].copy_from_slice(&(n as u16).to_be_bytes());
        if let Err(e) = self.tcp.write_all(&self.out[..2 + n]) {
            self.failed = true;
            return Err(e);
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Duplex for NoiseDuplex {
    fn set_timeouts(&mut self, read: Duration, write: Duration) -> io::Result<()> {
        self.timeouts = (read, write);
        if self.session.is_some() {
            self.tcp.set_read_timeout(Some(read))?;
            self.tcp.set_write_timeout(Some(write))?;
        }
        Ok(())
    }

    fn shutdown(&mut self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

impl Drop for NoiseDuplex {
    fn drop(&mut self) {
        if self.session.is_some() {
            set_authenticated_board(None);
        }
    }
}
