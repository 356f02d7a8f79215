//! The collector over Noise (`serve --key --trusted`), as a stranger, an impostor and a
//! revoked board see it: the real binary on loopback, clients speaking Noise IK with snow
//! themselves (or plain frames), keys made with `hopcap-collector keys`.

mod wire;

use hopcap_collector::keys;
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::parse_ack;
use hopcap_proto::message::Message;
use hopcap_proto::record::LinkInfo;
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wire::{frame, hello, links_of};

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

struct Serve {
    child: std::process::Child,
    addr: SocketAddr,
    log: PathBuf,
    db: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(dir: &Path, keys: &Path) -> Serve {
        let log = dir.join("serve.err");
        let db = dir.join("n.db");
        let child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .arg("--key")
            .arg(keys::collector_key_path(keys))
            .arg("--trusted")
            .arg(keys::trusted_path(keys))
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let give_up = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                break rest.split(',').next().unwrap().parse().unwrap();
            }
            assert!(Instant::now() < give_up, "serve did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Serve {
            child,
            addr,
            log,
            db,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    fn wait_log(&self, text: &str) {
        let give_up = Instant::now() + Duration::from_secs(20);
        while !self.log().contains(text) {
            assert!(
                Instant::now() < give_up,
                "no {text:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Observations stored for `board` (`boards --json`; 0 for an unknown board).
    fn observations(&self, board: &str) -> i64 {
        let out = Command::new(BIN)
            .args(["boards", "--json", "--db"])
            .arg(&self.db)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|b| b["name"] == board)
            .map(|b| b["observations"].as_i64().unwrap_or(0))
            .sum()
    }

    fn boards(&self) -> usize {
        let out = Command::new(BIN)
            .args(["boards", "--json", "--db"])
            .arg(&self.db)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

fn keys_cmd(args: &[&str], dir: &Path) {
    let out = Command::new(BIN)
        .arg("keys")
        .args(&args[..1])
        .arg(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `private` and `collector` of a board key file.
fn board_key(dir: &Path, name: &str) -> ([u8; 32], [u8; 32]) {
    let text = std::fs::read_to_string(keys::board_key_path(dir, name)).unwrap();
    let field = |f: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{f} ")))
            .unwrap();
        keys::parse_key(line.split_whitespace().nth(1).unwrap()).unwrap()
    };
    (field("private"), field("collector"))
}

/// Three veths, one full dump.
fn links() -> Vec<u8> {
    let all: Vec<LinkInfo> = (0..3).map(|k| veth(k, "", &format!("veth{k}"))).collect();
    links_of(&all, true)
}

fn batch(seed: u64) -> Vec<u8> {
    let mut enc = Box::new(BatchEncoder::new("x", 64 * 1024));
    let mut g = SampleGen::new(seed, 1_795_694_400_000_000_000);
    for _ in 0..100 {
        for o in g.packet(&[0, 1, 2], 3) {
            enc.push(&o).unwrap();
        }
    }
    frame(&Message::Batch(enc.finish()))
}

/// One whole conversation's first frames: hello, links, one 300-record batch.
fn conversation(name: &str, seed: u64) -> Vec<u8> {
    [hello(name), links(), batch(seed)].concat()
}

/// A Noise IK client with snow, as the agent is (length-prefixed messages).
struct NoiseClient {
    tcp: TcpStream,
    noise: snow::TransportState,
}

fn send(tcp: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    tcp.write_all(&(msg.len() as u16).to_be_bytes())?;
    tcp.write_all(msg)
}

fn recv(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut msg)?;
    Ok(msg)
}

impl NoiseClient {
    /// The handshake; `Err` when the collector does not complete it.
    fn connect(
        addr: SocketAddr,
        private: &[u8; 32],
        collector: &[u8; 32],
    ) -> std::io::Result<NoiseClient> {
        let mut tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut hs = snow::Builder::new(keys::PATTERN.parse().unwrap())
            .local_private_key(private)
            .unwrap()
            .remote_public_key(collector)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut buf = vec![0u8; 65535];
        let n = hs.write_message(&[], &mut buf).unwrap();
        send(&mut tcp, &buf[..n])?;
        let reply = recv(&mut tcp)?;
        hs.read_message(&reply, &mut buf)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(NoiseClient {
            tcp,
            noise: hs.into_transport_mode().unwrap(),
        })
    }

    fn write(&mut self, plain: &[u8]) -> std::io::Result<()> {
        let mut buf = vec![0u8; 65535];
        for chunk in plain.chunks(60_000) {
            let n = self.noise.write_message(chunk, &mut buf).unwrap();
            send(&mut self.tcp, &buf[..n])?;
        }
        Ok(())
    }

    /// Reads until batch `seq` is acknowledged; `None` if the collector closes first.
    fn wait_ack(&mut self, seq: u64) -> Option<u64> {
        let mut plain = Vec::new();
        let mut buf = vec![0u8; 65535];
        loop {
            let msg = recv(&mut self.tcp).ok()?;
            let n = self.noise.read_message(&msg, &mut buf).ok()?;
            plain.extend_from_slice(&buf[..n]);
            while let Some((used, acked)) = parse_ack(&plain).unwrap() {
                plain.drain(..used);
                if acked >= seq {
                    return Some(acked);
                }
            }
        }
    }
}

/// True when the collector closes the connection within 10 s.
fn closed(tcp: &mut TcpStream) -> bool {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 256];
    loop {
        match tcp.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return true
            }
            Err(_) => return false,
        }
    }
}

fn setup(tag: &str) -> (ScratchDir, PathBuf, Serve) {
    let dir = ScratchDir::new(tag).unwrap();
    let k = dir.join("keys");
    keys_cmd(&["init", "--boards", "pi1,pi2"], &k);
    let serve = Serve::start(dir.path(), &k);
    (dir, k, serve)
}

#[test]
fn a_trusted_board_is_stored() {
    let (_dir, k, serve) = setup("noise-ok");
    let (private, collector) = board_key(&k, "pi1");
    let mut c = NoiseClient::connect(serve.addr, &private, &collector).unwrap();
    c.write(&conversation("pi1", 1)).unwrap();
    assert_eq!(c.wait_ack(0), Some(0), "{}", serve.log());
    assert_eq!(serve.observations("pi1"), 300);
    serve.wait_log("Noise session with board \"pi1\"");
}

#[test]
fn plain_frames_are_refused_and_nothing_is_stored() {
    let (_dir, _k, serve) = setup("noise-plain");
    let mut tcp = TcpStream::connect(serve.addr).unwrap();
    tcp.write_all(&conversation("pi1", 2)).unwrap();
    let started = Instant::now();
    assert!(closed(&mut tcp), "a plaintext agent is hung up on");
    assert!(started.elapsed() < Duration::from_secs(8));
    // "HC" reads as a 18 499-byte first message that never completes: dropped at the
    // handshake's deadline. (Had it sent that much, it would fail to decrypt.)
    serve.wait_log("refused: no Noise handshake within 5s");
    assert_eq!(serve.boards(), 0, "nothing stored:\n{}", serve.log());
    // Enough plaintext to fill a first message: it does not decrypt.
    let mut tcp = TcpStream::connect(serve.addr).unwrap();
    let mut junk = conversation("pi1", 2);
    junk.resize(20_000, 0);
    tcp.write_all(&junk).unwrap();
    assert!(closed(&mut tcp));
    serve.wait_log("refused: not a Noise IK handshake to this collector's key");
    assert_eq!(serve.boards(), 0, "nothing stored:\n{}", serve.log());
}

#[test]
fn a_stalled_handshake_is_dropped_within_seconds() {
    let (_dir, _k, serve) = setup("noise-stall");
    let mut tcp = TcpStream::connect(serve.addr).unwrap();
    tcp.write_all(&[0x00, 0x60, 1, 2, 3]).unwrap(); // a first message announced, never sent
    let started = Instant::now();
    assert!(closed(&mut tcp));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
    serve.wait_log("no Noise handshake within 5s");
}

#[test]
fn an_untrusted_key_is_refused_by_fingerprint() {
    let (_dir, k, serve) = setup("noise-untrusted");
    let (_, collector) = board_key(&k, "pi1");
    let (stranger, stranger_pub) = keys::generate().unwrap();
    let refused = NoiseClient::connect(serve.addr, &stranger.0, &collector);
    assert!(refused.is_err(), "the handshake is not completed");
    serve.wait_log(&format!(
        "untrusted board key, fingerprint {}",
        keys::fingerprint(&stranger_pub)
    ));
    assert_eq!(serve.boards(), 0);
}

#[test]
fn a_board_claiming_another_name_is_refused_and_the_other_untouched() {
    let (_dir, k, serve) = setup("noise-impostor");
    let (pi2, collector) = board_key(&k, "pi2");
    let (pi1, _) = board_key(&k, "pi1");
    let mut real = NoiseClient::connect(serve.addr, &pi2, &collector).unwrap();
    real.write(&conversation("pi2", 3)).unwrap();
    assert_eq!(real.wait_ack(0), Some(0));
    drop(real);
    let before = serve.observations("pi2");
    assert_eq!(before, 300);
    // pi1's key, pi2's name.
    let mut liar = NoiseClient::connect(serve.addr, &pi1, &collector).unwrap();
    liar.write(&conversation("pi2", 4)).unwrap();
    assert_eq!(liar.wait_ack(0), None, "closed without an ack");
    serve.wait_log("refused: hello claims board \"pi2\", but the connection's key is \"pi1\"'s");
    assert_eq!(serve.observations("pi2"), before, "pi2's rows untouched");
    assert_eq!(serve.observations("pi1"), 0);
}

#[test]
fn a_revoked_board_cannot_connect_and_its_live_connection_is_cut() {
    let (_dir, k, serve) = setup("noise-revoke");
    let (pi1, collector) = board_key(&k, "pi1");
    let mut live = NoiseClient::connect(serve.addr, &pi1, &collector).unwrap();
    live.write(&conversation("pi1", 5)).unwrap();
    assert_eq!(live.wait_ack(0), Some(0));
    keys_cmd(&["revoke", "pi1"], &k);
    assert!(!keys::board_key_path(&k, "pi1").exists());
    // The live connection: cut at its next read (within a second or so).
    assert!(closed(&mut live.tcp), "the live connection is cut");
    serve.wait_log("board \"pi1\" (key");
    assert!(serve.log().contains("is no longer trusted: connection cut"));
    // A new connection: refused at the handshake.
    assert!(NoiseClient::connect(serve.addr, &pi1, &collector).is_err());
    serve.wait_log("untrusted board key");
    assert_eq!(serve.observations("pi1"), 300);
    // pi2 is still welcome, and a board added while serving is too.
    let (pi2, _) = board_key(&k, "pi2");
    assert!(NoiseClient::connect(serve.addr, &pi2, &collector).is_ok());
    keys_cmd(&["add", "pi3"], &k);
    let (pi3, _) = board_key(&k, "pi3");
    let mut c = NoiseClient::connect(serve.addr, &pi3, &collector).unwrap();
    c.write(&conversation("pi3", 6)).unwrap();
    assert_eq!(c.wait_ack(0), Some(0));
}

#[test]
fn serve_without_keys_refuses_to_start_and_says_how_to_make_them() {
    let dir = ScratchDir::new("noise-nokeys").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("x.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hopcap-collector keys init"), "{err}");
    assert!(!dir.join("x.db").exists());
}
