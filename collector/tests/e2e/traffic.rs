//! Traffic between a bed's own namespaces: the system `ping` with a fixed ICMP id (`-e`), and
//! TCP/UDP echo servers and clients in python3 with fixed ports, so every flow a test makes
//! is known in advance (and MASQUERADE, with no clash in a fresh bed, keeps ids and ports).

use super::bed::Bed;
use super::collector::{Collector, PATIENCE};
use super::flows::L4;
use super::proc::Proc;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Servers echo upper-cased; clients check the echo and say "done".
const PY: &str = r#"
import socket, sys
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 0
def recv_exactly(c, k):
    got = b""
    while len(got) < k:
        d = c.recv(k - len(got))
        if not d: raise SystemExit("short read")
        got += d
    return got
if mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(8); s.settimeout(60); print("ready", flush=True)
    for _ in range(n):
        c, _ = s.accept(); c.settimeout(30)
        while True:
            d = c.recv(200)
            if not d: break
            c.sendall(d.upper())
        c.close()
elif mode == "udp-server":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port)); s.settimeout(60)
    print("ready", flush=True)
    for _ in range(n):
        d, a = s.recvfrom(200); s.sendto(d.upper(), a)
elif mode == "tcp-client":
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("0.0.0.0", sport)); c.settimeout(30); c.connect((host, port))
    for i in range(n):
        m = b"hello %d" % i; c.sendall(m)
        assert recv_exactly(c, len(m)) == m.upper()
    c.shutdown(socket.SHUT_WR); assert c.recv(10) == b""; c.close(); print("done", flush=True)
elif mode == "udp-client":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", sport)); u.settimeout(10)
    for i in range(n):
        m = b"datagram %d" % i; u.sendto(m, (host, port))
        d, _ = u.recvfrom(200); assert d == m.upper()
    print("done", flush=True)
"#;

fn python() -> PathBuf {
    PathBuf::from("python3")
}

/// An echo server (`tcp` or `udp`) in `role` on host:port serving `n` connections or
/// datagrams; returns once it listens. It ends by itself; [`Proc::wait`] collects it.
pub fn server(
    bed: &Bed,
    role: &str,
    l4: &str,
    host: &str,
    port: u16,
    n: usize,
    dir: &Path,
) -> Proc {
    let mode = format!("{l4}-server");
    let (port, n) = (port.to_string(), n.to_string());
    let mut p = Proc::spawn(
        &bed.ns(role),
        &python(),
        &["-c", PY, &mode, host, &port, &n],
        &format!("{l4}-server-{role}-{port}"),
        dir,
    );
    p.wait_for("ready", PATIENCE, |p| p.stdout().contains("ready"));
    p
}

/// A client in `role` from source port `sport` to host:port: `n` request/echo rounds (TCP,
/// then a clean close) or datagrams (UDP). Panics unless every echo came back.
pub fn client(bed: &Bed, role: &str, l4: &str, (host, port): (&str, u16), sport: u16, n: usize) {
    let mode = format!("{l4}-client");
    let out = bed.exec(
        role,
        &[
            "python3",
            "-c",
            PY,
            &mode,
            host,
            &port.to_string(),
            &n.to_string(),
            &sport.to_string(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
}

/// `ping -e id -c count -i interval dst` from `role`; panics unless every reply came.
pub fn ping(bed: &Bed, role: &str, dst: &str, id: u16, count: usize, interval: &str) {
    let out = bed.exec(
        role,
        &[
            "ping",
            "-q",
            "-n",
            "-e",
            &id.to_string(),
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "5",
            dst,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{count} packets transmitted, {count} received")),
        "{text}"
    );
}

/// A ping running in the background (stopped by the test, or ending after `count`).
pub fn ping_background(
    bed: &Bed,
    role: &str,
    dst: &str,
    id: u16,
    args: &[&str],
    dir: &Path,
) -> Proc {
    let mut all = vec!["-n".to_string(), "-e".into(), id.to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.push(dst.into());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    Proc::spawn(
        &bed.ns(role),
        Path::new("ping"),
        &all,
        &format!("ping-{id}"),
        dir,
    )
}

/// Pings `dst` from `role` with ICMP id `id`, one echo at a time, until one echo request is
/// stored on `links` links (and printed on as many by every agent in `printers`). A readiness
/// check, and a marker: once a packet is stored everywhere, so is everything captured before
/// it. With --sample, it takes as many pings as it takes one to be sampled.
pub fn ping_until_seen(
    bed: &Bed,
    role: &str,
    dst: &str,
    id: u16,
    links: usize,
    collector: &Collector,
    printers: &[&Proc],
) {
    let stored = format!(
        "SELECT max(n) FROM (SELECT count(DISTINCT link) AS n FROM observations \
         WHERE icmp_id = {id} AND icmp_type = 8 GROUP BY fingerprint)"
    );
    let give_up = Instant::now() + PATIENCE;
    loop {
        ping(bed, role, dst, id, 1, "0.2");
        std::thread::sleep(Duration::from_millis(300));
        let printed = printers.iter().all(|p| {
            let mut hops: Vec<_> = super::sightings(&super::json_lines(&p.stdout()))
                .into_iter()
                .filter(|s| s.l4 == Some(L4::Icmp) && s.sport == id && s.dst == dst)
                .map(|s| (s.fingerprint, s.hop))
                .collect();
            hops.sort();
            hops.dedup();
            hops.chunk_by(|a, b| a.0 == b.0).any(|c| c.len() >= links)
        });
        if printed && collector.count(&stored) >= links as i64 {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "ping id {id} not seen on {links} links after {PATIENCE:?}:\n{}",
            collector.log()
        );
    }
}
