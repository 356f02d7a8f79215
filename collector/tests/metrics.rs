//! `serve --metrics`: the real binary, fake agents over loopback, and the scrape parsed by a
//! real Prometheus text parser (Python's `prometheus_client.parser`, Debian's
//! python3-prometheus-client).

mod wire;

use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::parse_ack;
use hopcap_proto::message::{Message, Tally};
use hopcap_proto::record::LinkInfo;
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wire::{connect, frame, hello, links_of, stats, T0};

/// Generous: a loaded 2-core CI machine, not a timing claim.
const PATIENCE: Duration = Duration::from_secs(30);

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve --insecure --listen 127.0.0.1:0 --metrics 127.0.0.1:0`: the agents' and the
/// metrics' addresses, from its log.
struct Serve {
    _child: Child,
    addr: SocketAddr,
    metrics: SocketAddr,
}

impl Serve {
    fn start(db: &Path) -> Serve {
        Serve::start_with(db, true)
    }

    /// Without `metrics`, no `--metrics` (and `self.metrics` is a closed port).
    fn start_with(db: &Path, metrics: bool) -> Serve {
        let flags: &[&str] = if metrics {
            &["--metrics", "127.0.0.1:0"]
        } else {
            &[]
        };
        // The measurement below may run a release build: HOPCAP_COLLECTOR_BIN names it.
        let bin = std::env::var_os("HOPCAP_COLLECTOR_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_hopcap-collector").into());
        let mut child = Child(
            Command::new(bin)
                .args(["serve", "--insecure", "--listen", "127.0.0.1:0"])
                .args(flags)
                .arg("--db")
                .arg(db)
                .env("RUST_LOG", "info")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
        let (mut addr, mut metrics) = (None, (!metrics).then(|| "127.0.0.1:9".parse().unwrap()));
        while addr.is_none() || metrics.is_none() {
            let line = lines.next().expect("serve logs its addresses").unwrap();
            if let Some(rest) = line.split("metrics on http://").nth(1) {
                metrics = Some(rest.split('/').next().unwrap().parse().unwrap());
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = Some(rest.split(',').next().unwrap().parse().unwrap());
            }
        }
        // Keep draining the log so that serve never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Serve {
            _child: child,
            addr: addr.unwrap(),
            metrics: metrics.unwrap(),
        }
    }
}

/// One raw exchange: `request` sent as is, the whole answer read (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (and close) before a long request is all written.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path`: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    status_and_body(&answer)
}

fn status_and_body(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A parsed scrape: each family's type, and every sample as (name, labels, value).
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

const PARSER: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = {"types": {}, "samples": []}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out["types"][fam.name] = fam.type
    for s in fam.samples:
        v = s.value
        v = "+Inf" if v == math.inf else ("NaN" if v != v else v)
        out["samples"].append([s.name, s.labels, v])
print(json.dumps(out))
"#;

/// The exposition, parsed by Python's prometheus_client (the Debian package installs it for
/// /usr/bin/python3).
fn parse(text: &str) -> Scrape {
    let mut p = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (apt install python3-prometheus-client)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let types = v["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let value = match &s[2] {
                Value::String(x) if x == "+Inf" => f64::INFINITY,
                Value::String(_) => f64::NAN,
                x => x.as_f64().unwrap(),
            };
            (s[0].as_str().unwrap().to_string(), labels, value)
        })
        .collect();
    Scrape { types, samples }
}

impl Scrape {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    }

    /// Every series of histogram `family`: its buckets rise, its +Inf bucket is its count.
    /// Returns (labels, count) per series.
    fn check_histogram(&self, family: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        assert_eq!(
            self.types.get(family).map(String::as_str),
            Some("histogram")
        );
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for (name, labels, v) in &self.samples {
            if name != &format!("{family}_bucket") {
                continue;
            }
            let mut key = labels.clone();
            let le: f64 = match key.remove("le").unwrap().as_str() {
                "+Inf" => f64::INFINITY,
                x => x.parse().unwrap(),
            };
            series.entry(key).or_default().push((le, *v));
        }
        let mut out = Vec::new();
        for (labels, buckets) in series {
            let l: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}{labels:?}: buckets not cumulative: {buckets:?}"
            );
            let inf = buckets.last().unwrap();
            assert_eq!(inf.0, f64::INFINITY, "{family}{labels:?}: no +Inf bucket");
            let count = self.value(&format!("{family}_count"), &l).unwrap();
            assert_eq!(inf.1, count, "{family}{labels:?}: +Inf != count");
            assert!(self.value(&format!("{family}_sum"), &l).is_some());
            out.push((labels, count));
        }
        out
    }
}

fn links() -> Vec<u8> {
    let all: Vec<LinkInfo> = vec![
        veth(0, "", "veth0"),
        veth(1, "ctr", "eth0"),
        veth(2, "", "wlan0"),
    ];
    links_of(&all, true)
}

/// One batch of 100 packets x 3 hops on links 0-2.
fn batch(enc: &mut BatchEncoder, g: &mut SampleGen) -> Vec<u8> {
    for _ in 0..100 {
        for o in g.packet(&[0, 1, 2], 3) {
            enc.push(&o).expect("a 300-record batch fits");
        }
    }
    enc.finish().to_vec()
}

/// Reads acks until `seq` is acknowledged.
fn wait_ack(s: &mut TcpStream, seq: u64) {
    let mut buf = Vec::new();
    loop {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).expect("an ack");
        assert!(n > 0, "the collector closed the connection");
        buf.extend_from_slice(&b[..n]);
        while let Some((used, acked)) = parse_ack(&buf).unwrap() {
            buf.drain(..used);
            if acked >= seq {
                return;
            }
        }
    }
}

/// A board's agent: hello, links, `batches` batches (acknowledged), its tally and a stats
/// report; the connection stays open.
fn agent(addr: SocketAddr, name: &str, batches: u64, seed: u64) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(&[hello(name), links()].concat()).unwrap();
    let mut enc = Box::new(BatchEncoder::new(name, 64 * 1024));
    let mut g = SampleGen::new(seed, T0);
    for seq in 0..batches {
        s.write_all(&frame(&Message::Batch(&batch(&mut enc, &mut g))))
            .unwrap();
        wait_ack(&mut s, seq);
    }
    let tally = Tally {
        batches,
        records: batches * 300,
        ..Tally::default()
    };
    s.write_all(&[frame(&Message::Tally(tally)), stats(7)].concat())
        .unwrap();
    s
}

/// Scrapes until `ready` holds of the parsed page; the page then.
fn scrape_until(addr: SocketAddr, what: &str, ready: impl Fn(&Scrape) -> bool) -> (Scrape, String) {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        let page = parse(&body);
        if ready(&page) {
            return (page, body);
        }
        assert!(Instant::now() < give_up, "{what}: never came:\n{body}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn metrics_parse_and_health_follows_the_database() {
    let dir = ScratchDir::new("metrics").unwrap();
    let db = dir.join("m.db");
    let serve = Serve::start(&db);
    let m = serve.metrics;
    assert_eq!(get(m, "/healthz"), (200, "ok\n".into()));

    let _pi = agent(serve.addr, "pi1", 5, 1);
    let _pj = agent(serve.addr, "pi2", 2, 2);
    let t = Instant::now();
    let (page, body) = scrape_until(m, "the boards' figures and hop latencies", |p| {
        let seen = |b| p.value("hopcap_board_records_seen_total", &[("board", b)]);
        let hop = p.value(
            "hopcap_hop_latency_seconds_count",
            &[("from", "pi1:veth0"), ("to", "pi1:ctr:eth0")],
        );
        seen("pi1") == Some(1500.0) && seen("pi2") == Some(600.0) && hop.is_some_and(|n| n > 0.0)
    });
    println!(
        "scrape: {} bytes, {} samples, ready {:?} after the agents",
        body.len(),
        page.samples.len(),
        t.elapsed()
    );
    for (board, n) in [("pi1", 1500.0), ("pi2", 600.0)] {
        let b = [("board", board)];
        assert_eq!(page.value("hopcap_board_records_stored_total", &b), Some(n));
        assert_eq!(page.value("hopcap_board_queue_drops_total", &b), Some(0.0));
        assert_eq!(
            page.value("hopcap_board_records_lost_in_transit_total", &b),
            Some(0.0)
        );
        assert_eq!(page.value("hopcap_board_kernel_drops_total", &b), Some(7.0));
        assert_eq!(page.value("hopcap_board_connected", &b), Some(1.0));
        assert!(page
            .value("hopcap_board_hello_clock_offset_seconds", &b)
            .is_some());
    }
    // Counters are typed as such (the parser strips _total from the family's name).
    assert_eq!(
        page.types
            .get("hopcap_board_records_seen")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(page.value("hopcap_ingest_records_total", &[]), Some(2100.0));
    assert_eq!(page.value("hopcap_ingest_batches_total", &[]), Some(7.0));
    assert_eq!(page.value("hopcap_ingest_connections", &[]), Some(2.0));
    assert_eq!(page.value("hopcap_writer_healthy", &[]), Some(1.0));
    assert!(page.value("hopcap_writer_queue_depth", &[]).is_some());
    assert!(page.value("hopcap_database_size_bytes", &[]).unwrap() > 4096.0);
    // The one board's clock is its own reference.
    assert!(page
        .value(
            "hopcap_board_clock_offset_seconds",
            &[("board", "pi1"), ("reference", "pi1")]
        )
        .is_some());
    let acks = page.check_histogram("hopcap_ack_latency_seconds");
    assert_eq!(acks.len(), 1);
    assert!(acks[0].1 >= 7.0, "every batch's ack timed: {acks:?}");
    let hops = page.check_histogram("hopcap_hop_latency_seconds");
    let pairs: Vec<(String, String)> = hops
        .iter()
        .map(|(l, _)| (l["from"].clone(), l["to"].clone()))
        .collect();
    // Hop names as the rest of the CLI prints them (board:link, board:netns:link); which hop
    // follows which is the correlator's call.
    for want in [("pi1:veth0", "pi1:ctr:eth0"), ("pi2:veth0", "pi2:ctr:eth0")] {
        assert!(
            pairs.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {pairs:?}"
        );
    }
    let names = ["veth0", "ctr:eth0", "wlan0"];
    for (from, to) in &pairs {
        let board = from.split(':').next().unwrap();
        for hop in [from, to] {
            let ok = names.iter().any(|n| *hop == format!("{board}:{n}"));
            assert!(ok, "{hop} in {pairs:?}");
        }
    }

    // Whatever comes, the server answers and lives on.
    assert_eq!(get(m, "/nope").0, 404);
    assert_eq!(get(m, "/metricsx").0, 404);
    for bad in [
        &b"BLAH\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x00\xff\xfe\r\n\r\n",
    ] {
        let (status, _) = status_and_body(&exchange(m, bad));
        assert_eq!(status, 400, "{bad:?}");
    }
    assert_eq!(
        status_and_body(&exchange(m, b"POST /metrics HTTP/1.1\r\n\r\n")).0,
        405
    );
    let huge = format!("GET /{} HTTP/1.1\r\n", "a".repeat(20_000));
    assert_eq!(status_and_body(&exchange(m, huge.as_bytes())).0, 431);
    // A client that says nothing and one that goes away half-way.
    let silent = TcpStream::connect(m).unwrap();
    drop(TcpStream::connect(m).unwrap());
    let mut half = TcpStream::connect(m).unwrap();
    half.write_all(b"GET /metr").unwrap();
    drop(half);
    let t = Instant::now();
    let (status, _) = get(m, "/metrics");
    println!("a scrape beside a silent client: {:?}", t.elapsed());
    assert_eq!(status, 200);
    drop(silent);
    // Eight scrapes at once at most: of eight silent hogs and a ninth scrape, at least one is
    // closed unanswered, and once the hogs go, scrapes are served again. (Which one is closed
    // depends on timing: a connection of the lines above may still hold a slot for a moment,
    // and then a hog is closed instead of the ninth.)
    let hogs: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(m).unwrap()).collect();
    let ninth = get(m, "/healthz").0;
    let closed = hogs.iter().filter(|h| closed_by_server(h)).count();
    let refused = closed + usize::from(ninth == 0);
    assert!(
        refused >= 1,
        "nine at once: the ninth got {ninth}, {closed} hogs closed"
    );
    drop(hogs);
    let give_up = Instant::now() + PATIENCE;
    while get(m, "/healthz").0 != 200 {
        assert!(
            Instant::now() < give_up,
            "served again once the eight are gone"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let head = exchange(m, b"HEAD /healthz HTTP/1.0\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head:?}"
    );

    // The database file deleted under the collector: unhealthy, with the reason.
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let give_up = Instant::now() + PATIENCE;
    let (status, why) = loop {
        let (status, why) = get(m, "/healthz");
        if status != 200 || Instant::now() > give_up {
            break (status, why);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("is gone"), "{why}");
    let (page, _) = scrape_until(m, "writer unhealthy", |p| {
        p.value("hopcap_writer_healthy", &[]) == Some(0.0)
    });
    assert_eq!(page.value("hopcap_ingest_connections", &[]), Some(2.0));
}

/// Measurement, not a check (run by hand; with a release collector for figures that mean
/// something: `cargo build --release -p hopcap-collector && HOPCAP_COLLECTOR_BIN=
/// target/release/hopcap-collector cargo test -p hopcap-collector --test metrics --
/// --ignored --nocapture`).
/// Ingest of 16 boards × 50 batches × 300 records without and with `--metrics` (scraped
/// every 100 ms meanwhile), then the scrape's latency and size with those boards.
#[test]
#[ignore]
fn measure_scrape_and_ingest_with_metrics() {
    const BOARDS: u64 = 16;
    const BATCHES: u64 = 50;
    for with in [false, true, false, true] {
        let dir = ScratchDir::new("metrics-measure").unwrap();
        let serve = Serve::start_with(&dir.join("m.db"), with);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scraper = with.then(|| {
            let (m, stop) = (serve.metrics, std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(get(m, "/metrics").0, 200);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                n
            })
        });
        let t = Instant::now();
        let agents: Vec<_> = (0..BOARDS)
            .map(|i| {
                let addr = serve.addr;
                std::thread::spawn(move || agent(addr, &format!("board{i:02}"), BATCHES, i))
            })
            .collect();
        let conns: Vec<TcpStream> = agents.into_iter().map(|a| a.join().unwrap()).collect();
        let took = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let scrapes = scraper.map(|s| s.join().unwrap()).unwrap_or(0);
        let records = BOARDS * BATCHES * 300;
        println!(
            "--metrics {with}: {records} records acknowledged in {took:?}: {:.0} records/s \
             ({scrapes} scrapes meanwhile)",
            records as f64 / took.as_secs_f64()
        );
        if with {
            let (_, body) = scrape_until(serve.metrics, "every board", |p| {
                (0..BOARDS).all(|i| {
                    p.value(
                        "hopcap_board_records_stored_total",
                        &[("board", &format!("board{i:02}"))],
                    ) == Some((BATCHES * 300) as f64)
                })
            });
            let mut times: Vec<Duration> = (0..50)
                .map(|_| {
                    let t = Instant::now();
                    assert_eq!(get(serve.metrics, "/metrics").0, 200);
                    t.elapsed()
                })
                .collect();
            times.sort();
            let page = parse(&body);
            println!(
                "scrape with {BOARDS} boards, {} hop pairs: {} bytes, {} samples, median {:?}, \
                 max {:?} (50 scrapes); last background pass {:?} s",
                page.check_histogram("hopcap_hop_latency_seconds").len(),
                body.len(),
                page.samples.len(),
                times[25],
                times[49],
                page.value("hopcap_metrics_refresh_seconds", &[]).unwrap()
            );
        }
        drop(conns);
    }
}

/// Whether the server closed `stream` (a read sees the end at once).
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = matches!(stream.peek(&mut byte), Ok(0));
    stream.set_nonblocking(false).unwrap();
    closed
}
