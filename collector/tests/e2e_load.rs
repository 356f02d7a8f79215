//! Load on the Pi+Docker bed, captured by the real agent and correlated by the real
//! collector; each test prints completeness and the false-merge rate.
//!
//! - `ping_flood_journeys_are_not_merged`: `ping -f`, 2000 echoes with one ICMP id, from the
//!   container through the board's NAT. Each journey must hold the sightings of exactly one
//!   packet, one per hop (no false merges), no packet may be split over several journeys,
//!   and with no capture loss reported by the agent every packet has one complete, correct
//!   journey. (Echoes still differ in their fingerprint: sequence, IP id, the timestamp in
//!   the payload.)
//! - `identical_datagrams_are_not_merged`: the hard case for the correlator: 2000 datagrams
//!   that hash alike (same length and payload, IPv4 id 0 from unconnected sockets) from 8
//!   source ports in bursts, and their echoes. The fingerprint cannot tell them apart; the
//!   journeys must still hold one sighting per hop, never mix two ports, and add up to one
//!   complete journey per datagram.

mod e2e;

use e2e::bed::{Bed, FAR};
use e2e::check::check_journey;
use e2e::collector::{Collector, PATIENCE};
use e2e::flows::{Hop, Sighting};
use e2e::pi::{self, COLLECTOR};
use e2e::proc::Proc;
use e2e::{scratch, traffic};
use std::collections::{BTreeMap, BTreeSet};

const FLOOD_ID: u16 = 7;
const ECHOES: u32 = 2000;
const MARKER_ID: u16 = 1009;

/// One echo: ICMP type (8 request, 0 reply) and sequence number.
type Echo = (u64, u64);

#[test]
fn ping_flood_journeys_are_not_merged() {
    let dir = scratch("load");
    let bed = Bed::pi_docker("l");
    let mut collector = Collector::start(&bed.ns("rtr"), COLLECTOR, dir.path());
    let agent = pi::streaming_agent(&bed, &["--ring-kb", "16384"], dir.path());
    pi::warm_up(&bed, &collector, &[]);
    let count = ECHOES.to_string();
    bed.exec(
        "ctr",
        &[
            "ping",
            "-q",
            "-n",
            "-f",
            "-e",
            &FLOOD_ID.to_string(),
            "-c",
            &count,
            "-W",
            "5",
            FAR,
        ],
    );
    traffic::ping(&bed, "ctr", FAR, MARKER_ID, 1, "0.2");
    let marker = format!("SELECT count(*) FROM observations WHERE icmp_id = {MARKER_ID}");
    collector.wait_count("the marker ping", &marker, 8);
    let summary = agent.stop();
    collector.stop();

    // Which echo each stored sighting belongs to, from the timeline (it has the sequence).
    let timeline = collector.json("timeline", &["--filter", "icmp"]);
    let mut echo_of: BTreeMap<(Hop, u64), Echo> = BTreeMap::new();
    let mut sightings_of: BTreeMap<Echo, usize> = BTreeMap::new();
    let mut fingerprints = BTreeSet::new();
    for v in &timeline {
        let t = &v["summary"]["transport"];
        let (Some(s), Some(ty), Some(seq)) = (
            Sighting::from_observation(v),
            t["type"].as_u64(),
            t["seq"].as_u64(),
        ) else {
            continue;
        };
        if s.sport != FLOOD_ID || !matches!(ty, 0 | 8) {
            continue;
        }
        echo_of.insert((s.hop, s.ts_ns), (ty, seq));
        *sightings_of.entry((ty, seq)).or_default() += 1;
        fingerprints.insert(s.fingerprint);
    }
    let packets = 2 * ECHOES as usize;
    let on_every_hop = sightings_of.values().filter(|&&n| n == 4).count();

    // Journeys of the flood: whose sightings they hold, and whether they are right.
    let flow = [pi::ping_out(&bed, "flood", FLOOD_ID)];
    let journeys = collector.json("paths", &["--filter", "icmp"]);
    let (mut flood_journeys, mut merged, mut correct) = (0usize, 0usize, 0usize);
    let mut journeys_of: BTreeMap<Echo, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for j in &journeys {
        let Some(judged) = check_journey(&flow, j) else {
            continue;
        };
        flood_journeys += 1;
        let hops: Vec<Sighting> = j["hops"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|h| Sighting::from_path_hop(j, h))
                    .collect()
            })
            .unwrap_or_default();
        let echoes: BTreeSet<Echo> = hops
            .iter()
            .filter_map(|s| echo_of.get(&(s.hop.clone(), s.ts_ns)).copied())
            .collect();
        let links: BTreeSet<&Hop> = hops.iter().map(|s| &s.hop).collect();
        if echoes.len() != 1 || links.len() != hops.len() {
            merged += 1;
            problems.push(format!("merged: {echoes:?} in {j}"));
            continue;
        }
        for e in &echoes {
            *journeys_of.entry(*e).or_default() += 1;
        }
        match judged.verdict {
            Ok(()) => correct += 1,
            Err(e) => problems.push(e),
        }
    }
    let split = journeys_of.values().filter(|&&n| n > 1).count();
    eprintln!(
        "e2e flood: {packets} packets ({} distinct fingerprints), {on_every_hop} stored on all 4 \
         hops; {flood_journeys} journeys: {correct} complete and correct ({:.2}% of packets), \
         {merged} false merges ({:.3}% of journeys), {split} packets split\n  agent: {summary:?}{}",
        fingerprints.len(),
        100.0 * correct as f64 / packets as f64,
        100.0 * merged as f64 / flood_journeys.max(1) as f64,
        problems
            .iter()
            .take(5)
            .map(|p| format!("\n  {p}"))
            .collect::<String>()
    );
    assert_eq!(merged, 0, "false merges");
    assert_eq!(split, 0, "packets split over several journeys");
    if summary.kernel_drops == 0 && summary.records_dropped == 0 {
        // Nothing was lost in capture: every echo on every hop, one correct journey each.
        assert_eq!(on_every_hop, packets, "echoes stored on all 4 hops");
        assert_eq!(correct, packets, "complete, correct journeys");
        assert_eq!(flood_journeys, packets);
    }
}

/// `client`: bursts of identical datagrams, one from each of `k` sockets (ports
/// `first..first+k`), `rounds` times, 1 ms apart; echoes are read and counted. `server`:
/// echoes `k * rounds` datagrams. Both with DF forced (IP_PMTUDISC_DO): Linux then sends
/// IPv4 id 0 from unconnected sockets, so every request hashes alike, every reply too.
const SAME_DATAGRAMS: &str = r#"
import socket, sys, time, select
mode, host, port, first, k, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def udp(bind_to):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    s.bind(bind_to)
    return s
if mode == "server":
    s = udp((host, port)); s.settimeout(60); print("ready", flush=True)
    for _ in range(k * rounds):
        d, a = s.recvfrom(100); s.sendto(d, a)
    raise SystemExit(0)
socks = [udp(("0.0.0.0", first + i)) for i in range(k)]
for s in socks:
    s.setblocking(False)
payload = b"the same datagram, the same fingerprint"
got = 0
def drain():
    global got
    for s in socks:
        try:
            while True:
                s.recv(100); got += 1
        except BlockingIOError:
            pass
for r in range(rounds):
    for s in socks:
        s.sendto(payload, (host, port))
    time.sleep(0.001)
    drain()
deadline = time.time() + 20
while got < k * rounds and time.time() < deadline:
    select.select(socks, [], [], 0.2); drain()
print(got, flush=True)
"#;

const SOCKETS: u16 = 8;
const ROUNDS: usize = 250;
const FIRST_PORT: u16 = 43000;
const ECHO_PORT: u16 = 9999;

#[test]
fn identical_datagrams_are_not_merged() {
    let dir = scratch("load-udp");
    let bed = Bed::pi_docker("u");
    let mut collector = Collector::start(&bed.ns("rtr"), COLLECTOR, dir.path());
    let agent = pi::streaming_agent(&bed, &["--ring-kb", "16384"], dir.path());
    pi::warm_up(&bed, &collector, &[]);
    let datagrams = usize::from(SOCKETS) * ROUNDS;
    let args = |mode: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["-c".into(), SAME_DATAGRAMS.into(), mode.into(), FAR.into()];
        a.extend([ECHO_PORT, FIRST_PORT, SOCKETS, ROUNDS as u16].map(|n| n.to_string()));
        a
    };
    let server_args = args("server");
    let server_args: Vec<&str> = server_args.iter().map(String::as_str).collect();
    let python = std::path::Path::new("python3");
    let mut server = Proc::spawn(&bed.ns("rtr"), python, &server_args, "echo", dir.path());
    server.wait_for("ready", PATIENCE, |p| p.stdout().contains("ready"));
    let client_args = args("client");
    let mut client: Vec<&str> = vec!["python3"];
    client.extend(client_args.iter().map(String::as_str));
    let out = bed.exec("ctr", &client);
    let echoed: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert_eq!(echoed, datagrams, "echoes received");
    assert!(server.wait(PATIENCE).success(), "{}", server.stderr());
    traffic::ping(&bed, "ctr", FAR, MARKER_ID, 1, "0.2");
    let marker = format!("SELECT count(*) FROM observations WHERE icmp_id = {MARKER_ID}");
    collector.wait_count("the marker ping", &marker, 8);
    let summary = agent.stop();
    collector.stop();

    let same = format!(
        "SELECT count(DISTINCT fingerprint) FROM observations WHERE dst_port = {ECHO_PORT} OR src_port = {ECHO_PORT}"
    );
    let fingerprints = collector.count(&same);
    let flows: Vec<_> = (0..SOCKETS)
        .map(|i| {
            let port = FIRST_PORT + i;
            let name: &'static str = Box::leak(format!("udp from {port}").into_boxed_str());
            pi::flow(
                &bed,
                name,
                e2e::flows::L4::Udp,
                e2e::flows::Ends {
                    src: e2e::bed::CTR,
                    sport: port,
                    dst: FAR,
                    dport: ECHO_PORT,
                },
                e2e::flows::Ends {
                    src: e2e::bed::WLAN,
                    sport: port,
                    dst: FAR,
                    dport: ECHO_PORT,
                },
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let journeys = collector.json("paths", &["--filter", "udp"]);
    let paths_took = started.elapsed();
    let (mut ours, mut merged, mut correct) = (0usize, 0usize, 0usize);
    let mut per_flow: BTreeMap<(usize, e2e::flows::Way), usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for j in &journeys {
        let hops: Vec<Sighting> = j["hops"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|h| Sighting::from_path_hop(j, h))
                    .collect()
            })
            .unwrap_or_default();
        let owners: BTreeSet<usize> = hops
            .iter()
            .filter_map(|s| flows.iter().position(|f| f.classify(s).is_some()))
            .collect();
        if owners.is_empty() {
            continue;
        }
        ours += 1;
        let links: BTreeSet<&Hop> = hops.iter().map(|s| &s.hop).collect();
        if owners.len() > 1 || links.len() != hops.len() {
            merged += 1;
            problems.push(format!("merged: {j}"));
            continue;
        }
        let Some(judged) = check_journey(&flows, j) else {
            continue;
        };
        *per_flow.entry((judged.key.0, judged.way)).or_default() += 1;
        match judged.verdict {
            Ok(()) => correct += 1,
            Err(e) => problems.push(e),
        }
    }
    let packets = 2 * datagrams;
    eprintln!(
        "e2e identical datagrams: {packets} packets, {fingerprints} distinct fingerprints; \
         {ours} journeys: {correct} complete and correct ({:.2}% of packets), {merged} false \
         merges ({:.3}% of journeys); paths took {paths_took:?}\n  agent: {summary:?}{}",
        100.0 * correct as f64 / packets as f64,
        100.0 * merged as f64 / ours.max(1) as f64,
        problems
            .iter()
            .take(5)
            .map(|p| format!("\n  {p}"))
            .collect::<String>()
    );
    assert_eq!(fingerprints, 1, "requests and replies all hash alike");
    assert_eq!(merged, 0, "false merges");
    if summary.kernel_drops == 0 && summary.records_dropped == 0 {
        assert_eq!(
            correct, packets,
            "one complete, correct journey per datagram"
        );
        assert_eq!(ours, packets);
        for ((f, way), n) in &per_flow {
            assert_eq!(*n, ROUNDS, "{} {way:?}", flows[*f].name);
        }
    }
}
