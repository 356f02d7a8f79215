//! The real agent and collector over Noise, on the Pi + Docker bed: what crosses the wire is
//! read through a small TCP proxy on the board's loopback (the collector listens beside it),
//! and an agent pinning another collector's key never connects to it. Root only.

mod e2e;

use e2e::agent::Agent;
use e2e::bed::{Bed, CTR, FAR};
use e2e::collector::{board_key, Collector, PATIENCE};
use e2e::proc::Proc;
use e2e::{scratch, traffic};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A board name that would stand out in a capture.
const BOARD: &str = "wire-secret-board-7";

/// Forwards 127.0.0.1:LISTEN to 127.0.0.1:TO, appending what the agent sends to FILE.
const PROXY: &str = r#"
import socket, sys, threading
listen, to, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def pump(a, b, record):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if record:
                with lock, open(path, "ab") as f:
                    f.write(d)
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen))
srv.listen(8)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", to))
    threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, False), daemon=True).start()
"#;

fn proxy(netns: &str, listen: u16, to: u16, wire: &Path, dir: &Path) -> Proc {
    let mut p = Proc::spawn(
        netns,
        Path::new("python3"),
        &[
            "-c",
            PROXY,
            &listen.to_string(),
            &to.to_string(),
            &wire.to_string_lossy(),
        ],
        &format!("proxy{listen}"),
        dir,
    );
    p.wait_for("the proxy", PATIENCE, |p| p.stdout().contains("ready"));
    p
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Streams a ping through the proxy (`security`: the agent's extra flags), waits until the
/// collector stored it, stops; returns the bytes the agent sent.
fn capture_the_wire(bed: &Bed, dir: &Path, port: u16, serve_extra: &[&str], id: u16) -> Vec<u8> {
    let pi = bed.ns("pi");
    let sub = dir.join(format!("p{port}"));
    std::fs::create_dir_all(&sub).unwrap();
    let collector = Collector::start_with(&pi, &format!("127.0.0.1:{port}"), &sub, serve_extra);
    let wire = sub.join("wire.bin");
    let mut proxy = proxy(&pi, port + 1, port, &wire, &sub);
    let target = format!("127.0.0.1:{}", port + 1);
    let ctr = bed.ns("ctr");
    let mut args = vec!["--id", BOARD, "--netns", &ctr, "--collector", &target];
    args.extend(serve_extra); // --insecure on both sides, or nothing (keys)
    let agent = Agent::start(&pi, &args, 2, "agent", &sub);
    traffic::ping(bed, "ctr", FAR, id, 5, "0.05");
    collector.wait_count(
        "the pings stored",
        &format!("SELECT count(*) FROM observations WHERE icmp_id = {id}"),
        10,
    );
    let summary = agent.stop();
    assert!(summary.records_acked > 0);
    proxy.kill();
    std::fs::read(&wire).expect("the proxy recorded the agent's bytes")
}

#[test]
fn the_wire_carries_no_board_name_and_no_captured_address() {
    let dir = scratch("noise-wire");
    let bed = Bed::pi_docker("nw");
    let ctr = CTR.parse::<Ipv4Addr>().unwrap().octets();
    let far = FAR.parse::<Ipv4Addr>().unwrap().octets();

    let secure = capture_the_wire(&bed, dir.path(), 7100, &[], 3101);
    assert!(secure.len() > 1000, "{} bytes recorded", secure.len());
    assert!(
        !contains(&secure, BOARD.as_bytes()),
        "the board name in clear"
    );
    assert!(!contains(&secure, &ctr), "the container's address in clear");
    assert!(!contains(&secure, &far), "the far address in clear");

    // The same run in plaintext shows what the test would catch.
    let plain = capture_the_wire(&bed, dir.path(), 7200, &["--insecure"], 3102);
    assert!(contains(&plain, BOARD.as_bytes()), "the check sees a name");
    assert!(
        contains(&plain, &ctr) || contains(&plain, &far),
        "the check sees addresses"
    );
}

#[test]
fn an_agent_refuses_a_collector_with_another_key() {
    let dir = scratch("noise-impostor");
    let bed = Bed::pi_docker("ni");
    let pi = bed.ns("pi");
    // The board's key pins the collector of `dir/keys`; the collector that listens has keys
    // of its own (made in `other/keys`).
    let key = board_key(dir.path(), BOARD);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let impostor = Collector::start(&pi, "127.0.0.1:7300", &other);
    let key_arg = key.to_string_lossy().into_owned();
    let mut agent = Proc::spawn(
        &pi,
        e2e::bins::agent(),
        &[
            "--id",
            BOARD,
            "--collector",
            "127.0.0.1:7300",
            "--key",
            &key_arg,
        ],
        "agent",
        dir.path(),
    );
    agent.wait_for("a refused handshake", PATIENCE, |p| {
        p.stderr().contains("Noise handshake")
    });
    let give_up = Instant::now() + Duration::from_secs(3);
    while Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = agent.stderr();
    assert_eq!(agent.connects(), 0, "never connected:\n{log}");
    assert!(log.contains("does not hold the pinned key"), "{log}");
    agent.stop();
    assert!(
        impostor
            .log()
            .contains("refused: not a Noise IK handshake to this collector's key"),
        "{}",
        impostor.log()
    );
    assert_eq!(impostor.count("SELECT count(*) FROM boards"), 0);
}
