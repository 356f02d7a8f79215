//! The exporter's secure transport: Noise `IK_25519_ChaChaPoly_BLAKE2s` (the `snow` crate)
//! over TCP, behind the same [`Connector`]/[`Stream`] seam as plain TCP.
//!
//! The board knows the collector's public key in advance (pinned in its key file), so IK
//! needs one round trip: the agent's first message carries its own static key encrypted to
//! the collector's; only the holder of the pinned key can read it and answer, so a collector
//! with another key never completes the handshake. The collector decides from the board's key
//! whether it trusts it and under which board name.
//!
//! The only glue written here is the framing: every Noise message travels on TCP behind a
//! 2-byte big-endian length (at most 65 535 bytes, so at most 65 519 bytes of plaintext).

use super::transport::{recv_nowait, Connector, Stream, TcpConnector};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The Noise protocol name both ends use.
pub const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// The largest Noise message (the 2-byte length prefix's limit).
pub const MAX_MESSAGE: usize = 65535;
/// ChaChaPoly's tag.
const TAG: usize = 16;
/// The largest plaintext one transport message carries.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG;
/// A collector that has not answered the handshake by then is given up (then retried).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A board's key file (`hopcap-collector keys init/add` writes it): the board's private key,
/// usually its name and the collector's public key.
#[derive(Clone, PartialEq, Eq)]
pub struct BoardKey {
    pub board: Option<String>,
    private: [u8; 32],
    pub collector: Option<[u8; 32]>,
}

impl std::fmt::Debug for BoardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardKey")
            .field("board", &self.board)
            .field(
                "collector",
                &self.collector.as_ref().map(|k| fingerprint(k)),
            )
            .finish_non_exhaustive()
    }
}

impl BoardKey {
    /// Reads a key file: lines `board NAME`, `private HEX`, `collector HEX`; `#` comments.
    pub fn read(path: &Path) -> io::Result<BoardKey> {
        use std::os::unix::fs::PermissionsExt;
        let text = std::fs::read_to_string(path)?;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{}: a private key readable by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
        let mut key = BoardKey {
            board: None,
            private: [0; 32],
            collector: None,
        };
        let mut private = false;
        for (field, value) in fields(&text) {
            match field {
                "board" => key.board = Some(value.to_string()),
                "private" => {
                    key.private = parse_key(value)?;
                    private = true;
                }
                "collector" => key.collector = Some(parse_key(value)?),
                _ => {}
            }
        }
        if !private {
            return Err(invalid("no `private` line: not a hopcap board key file"));
        }
        Ok(key)
    }
}

/// Reads a public key file: one line of 64 hex digits (`collector.pub`), optionally named
/// (`public HEX` or `collector HEX`).
pub fn read_public(path: &Path) -> io::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)?;
    for (field, value) in fields(&text) {
        if matches!(field, "" | "public" | "collector") {
            return parse_key(value);
        }
    }
    Err(invalid("no public key in the file"))
}

/// `(field, value)` per non-comment line; a line of one word is `("", word)`.
fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((f, v)) => (f, v.trim()),
            None => ("", l),
        })
}

fn parse_key(hex: &str) -> io::Result<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return Err(invalid("a key is 64 hex digits"));
    }
    let mut key = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or_else(|| invalid("not hex"));
        key[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(key)
}

/// A public key's fingerprint in logs: its first 8 bytes in hex.
pub fn fingerprint(key: &[u8]) -> String {
    key.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, why.to_string())
}

fn noise_error(e: snow::Error) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("noise: {e}"))
}

/// Noise IK to one collector whose public key is pinned.
#[derive(Debug)]
pub struct NoiseConnector {
    tcp: TcpConnector,
    key: BoardKey,
    collector: [u8; 32],
    label: String,
}

impl NoiseConnector {
    pub fn new(tcp: TcpConnector, key: BoardKey, collector: [u8; 32]) -> NoiseConnector {
        let label = label(&tcp, &collector);
        NoiseConnector {
            tcp,
            key,
            collector,
            label,
        }
    }

    fn handshake(&self, tcp: &mut TcpStream) -> io::Result<snow::TransportState> {
        let params = PATTERN.parse().map_err(noise_error)?;
        let mut hs = snow::Builder::new(params)
            .local_private_key(&self.key.private)
            .and_then(|b| b.remote_public_key(&self.collector))
            .and_then(|b| b.build_initiator())
            .map_err(noise_error)?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut msg = vec![0u8; MAX_MESSAGE];
        let n = hs.write_message(&[], &mut msg).map_err(noise_error)?;
        write_message(tcp, &msg[..n])?;
        let reply = read_message(tcp, deadline).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "Noise handshake: {e} (the collector does not trust this board's key, or \
                     it does not hold the pinned key {})",
                    fingerprint(&self.collector)
                ),
            )
        })?;
        hs.read_message(&reply, &mut msg).map_err(|e| {
            io::Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "Noise handshake: the collector failed to prove it holds the pinned key \
                     {} ({e}): refused",
                    fingerprint(&self.collector)
                ),
            )
        })?;
        tcp.set_read_timeout(None)?;
        hs.into_transport_mode().map_err(noise_error)
    }
}

fn label(tcp: &TcpConnector, collector: &[u8; 32]) -> String {
    format!("{} (Noise, key {})", tcp.peer(), fingerprint(collector))
}

impl Connector for NoiseConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Stream>> {
        let opened = self.tcp.open();
        // The carrier may have moved on to the collector's next address.
        self.label = format!(
            "{} (Noise, key {})",
            self.tcp.peer(),
            fingerprint(&self.collector)
        );
        let mut tcp = opened?;
        let noise = self.handshake(&mut tcp)?;
        Ok(Box::new(NoiseStream {
            tcp,
            noise,
            raw: Vec::with_capacity(1024),
            plain: Vec::new(),
            read_pos: 0,
            out: vec![0u8; 2 + MAX_MESSAGE],
            broken: false,
        }))
    }

    fn peer(&self) -> &str {
        &self.label
    }
}

/// Writes one Noise message behind its length.
fn write_message(tcp: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| invalid("Noise message too long"))?;
    let mut framed = Vec::with_capacity(2 + msg.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    tcp.write_all(&framed)
}

/// Reads one whole Noise message (blocking), by `deadline`.
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
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed by the peer",
                ))
            }
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

/// An established Noise session: every write is one (or more) encrypted messages.
struct NoiseStream {
    tcp: TcpStream,
    noise: snow::TransportState,
    /// Received bytes not yet a whole message.
    raw: Vec<u8>,
    /// Decrypted bytes not yet handed out, from `read_pos`.
    plain: Vec<u8>,
    read_pos: usize,
    /// One framed message being written.
    out: Vec<u8>,
    /// A write failed part-way: the session's nonces no longer match the collector's.
    broken: bool,
}

impl Write for NoiseStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::new(
                ErrorKind::BrokenPipe,
                "Noise session broken",
            ));
        }
        let take = buf.len().min(MAX_PLAINTEXT);
        let n = self
            .noise
            .write_message(&buf[..take], &mut self.out[2..])
            .map_err(noise_error)?;
        // n <= MAX_MESSAGE, so it fits the prefix.
        self.out[..2].copy_from_slice(&(n as u16).to_be_bytes());
        if let Err(e) = self.tcp.write_all(&self.out[..2 + n]) {
            self.broken = true;
            return Err(e);
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Stream for NoiseStream {
    /// Hands out as much as has arrived, across messages, like a TCP read: the exporter
    /// takes a short read to mean "nothing more for now".
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut done = 0;
        loop {
            let n = (buf.len() - done).min(self.plain.len() - self.read_pos);
            buf[done..done + n].copy_from_slice(&self.plain[self.read_pos..self.read_pos + n]);
            self.read_pos += n;
            done += n;
            if done == buf.len() {
                return Ok(Some(done));
            }
            if self.raw.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([self.raw[0], self.raw[1]]));
                if self.raw.len() >= 2 + len {
                    self.plain.resize(MAX_MESSAGE, 0);
                    let n = self
                        .noise
                        .read_message(&self.raw[2..2 + len], &mut self.plain)
                        .map_err(noise_error)?;
                    self.plain.truncate(n);
                    self.read_pos = 0;
                    self.raw.drain(..2 + len);
                    continue;
                }
            }
            let mut chunk = [0u8; 4096];
            match recv_nowait(&self.tcp, &mut chunk)? {
                // What was handed out first; the close (or the wait) shows at the next call.
                None | Some(0) if done > 0 => return Ok(Some(done)),
                None => return Ok(None),
                Some(0) if self.raw.is_empty() => return Ok(Some(0)),
                Some(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "collector closed mid-message",
                    ))
                }
                Some(n) => self.raw.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::TcpOptions;
    use std::net::TcpListener;

    fn keypair() -> ([u8; 32], [u8; 32]) {
        let k = snow::Builder::new(PATTERN.parse().unwrap())
            .generate_keypair()
            .unwrap();
        (k.private.try_into().unwrap(), k.public.try_into().unwrap())
    }

    /// A collector stand-in: answers the handshake with `key`, reads `expect` plaintext bytes,
    /// then sends three messages at once and hangs up.
    fn responder(
        key: [u8; 32],
        expect: usize,
    ) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut tcp, _) = l.accept().unwrap();
            let mut hs = snow::Builder::new(PATTERN.parse().unwrap())
                .local_private_key(&key)
                .unwrap()
                .build_responder()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut buf = vec![0u8; MAX_MESSAGE];
            let first = read_message(&mut tcp, deadline).unwrap();
            if hs.read_message(&first, &mut buf).is_err() {
                return Vec::new(); // another collector: hang up
            }
            let n = hs.write_message(&[], &mut buf).unwrap();
            write_message(&mut tcp, &buf[..n]).unwrap();
            let mut noise = hs.into_transport_mode().unwrap();
            let mut got = Vec::new();
            while got.len() < expect {
                let m = read_message(&mut tcp, deadline).unwrap();
                let n = noise.read_message(&m, &mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let mut out = Vec::new();
            for reply in [&b"ack1"[..], b"ack2", b"ack3"] {
                let n = noise.write_message(reply, &mut buf).unwrap();
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(&out).unwrap();
            got
        });
        (addr, t)
    }

    fn board_key(collector: Option<[u8; 32]>) -> BoardKey {
        BoardKey {
            board: Some("pi1".into()),
            private: keypair().0,
            collector,
        }
    }

    #[test]
    fn a_session_carries_big_writes_and_hands_out_every_reply() {
        let (private, public) = keypair();
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let (addr, peer) = responder(private, big.len());
        let tcp = TcpConnector::new(addr, TcpOptions::default());
        let mut c = NoiseConnector::new(tcp, board_key(Some(public)), public);
        let mut s = c.connect().unwrap();
        s.write_all(&big).unwrap();
        assert_eq!(peer.join().unwrap(), big, "200 kB across several messages");
        let mut got = Vec::new();
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let mut buf = [0u8; 256];
            match s.try_read(&mut buf).unwrap() {
                Some(0) => break,
                Some(n) => got.extend_from_slice(&buf[..n]),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
            assert!(Instant::now() < give_up);
        }
        assert_eq!(got, b"ack1ack2ack3");
    }

    #[test]
    fn a_collector_with_another_key_is_refused() {
        let (private, _) = keypair();
        let (_, pinned) = keypair();
        let (addr, peer) = responder(private, 0);
        let tcp = TcpConnector::new(addr, TcpOptions::default());
        let mut c = NoiseConnector::new(tcp, board_key(None), pinned);
        let e = c.connect().err().expect("refused");
        assert!(e.to_string().contains("pinned key"), "{e}");
        assert!(peer.join().unwrap().is_empty());
    }

    #[test]
    fn key_files_parse() {
        let dir = std::env::temp_dir().join(format!("hopcap-noise-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let k = dir.join("b.key");
        let hex_a = "00".repeat(31) + "ff";
        let hex_b = "ab".repeat(32);
        std::fs::write(
            &k,
            format!("# comment\nboard pi1\nprivate {hex_a}\ncollector {hex_b} # pinned\n"),
        )
        .unwrap();
        let key = BoardKey::read(&k).unwrap();
        assert_eq!(key.board.as_deref(), Some("pi1"));
        assert_eq!(key.private[31], 0xff);
        assert_eq!(key.collector, Some([0xab; 32]));
        assert!(
            !format!("{key:?}").contains(&hex_a),
            "Debug shows no private key"
        );
        let p = dir.join("c.pub");
        std::fs::write(&p, format!("{hex_b}\n")).unwrap();
        assert_eq!(read_public(&p).unwrap(), [0xab; 32]);
        std::fs::write(&p, "abc\n").unwrap();
        assert!(read_public(&p).is_err());
        std::fs::write(&k, "board pi1\n").unwrap();
        assert!(BoardKey::read(&k).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(fingerprint(&[0xab; 32]), "abababababababab");
    }
}
