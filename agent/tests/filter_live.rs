//! `--filter` under a small net.core.optmem_max (root): Debian's 6.1 armmp kernel allows
//! 10 240 bytes of socket option memory, too little for the full BPF program, so the agent
//! must attach a smaller one and filter the rest in user space, keeping exactly the packets
//! the expression selects.
//!
//! The bed is scripts/testbed.sh's two boards (`up2`, namespaces hcit<pid><tag>-*): pods pa
//! and pb talk across a flannel-like VXLAN overlay (UDP 8472) between boards a and b, and a
//! server srv sits on their LAN. The agent runs on board a, whose namespace gets
//! `sysctl net.core.optmem_max=10240` (the sysctl is per namespace on this kernel: the test
//! checks that the machine's own value does not change). A second agent without a filter
//! captures the same traffic at the same time; each filtered run must equal that reference
//! run's packets that the expression selects, link by link.

mod common;

use common::agent::Agent;
use common::bed::{run, Bed};
use common::traffic;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const PB: &str = "10.244.1.2";
const SRV: &str = "192.168.50.2";
const SMALL_OPTMEM: u32 = 10240;

/// One captured packet as the test compares it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Packet {
    link: String,
    /// Carried in a tunnel (VXLAN here): the fields below are the inner packet's.
    tunnelled: bool,
    l4: String,
    src: String,
    dst: String,
    sport: u64,
    dport: u64,
}

fn packets(lines: &[String]) -> Vec<Packet> {
    let mut out = Vec::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let summary = &v["summary"];
        if summary.is_null() {
            continue;
        }
        let (net, t) = (&summary["net"], &summary["transport"]);
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        out.push(Packet {
            link: text(&v["link"]),
            tunnelled: summary["tunnels"].as_array().is_some_and(|a| !a.is_empty()),
            l4: t["kind"]
                .as_str()
                .unwrap_or(net["kind"].as_str().unwrap_or("?"))
                .to_owned(),
            src: text(&net["src"]),
            dst: text(&net["dst"]),
            sport: t["src_port"].as_u64().unwrap_or(0),
            dport: t["dst_port"].as_u64().unwrap_or(0),
        });
    }
    out.sort();
    out
}

fn optmem_of(bed: &Bed, role: &str) -> String {
    let out = bed.exec(role, &["cat", "/proc/sys/net/core/optmem_max"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn host_optmem() -> String {
    std::fs::read_to_string("/proc/sys/net/core/optmem_max")
        .expect("optmem_max")
        .trim()
        .to_owned()
}

/// Pings across the overlay and to the server, UDP to port 53 across the overlay, TCP to
/// the server: everything between the bed's namespaces.
fn traffic(bed: &Bed) {
    for (role, to) in [("pa", PB), ("a", SRV)] {
        bed.exec(
            role,
            &["ping", "-q", "-n", "-c", "3", "-i", "0.2", "-W", "2", to],
        );
    }
    traffic::udp(bed, "pb", "10.244.1.2:53", "pa", 3);
    traffic::tcp(
        bed,
        ("srv", "192.168.50.2:5201"),
        ("a", "192.168.50.2:5201"),
        3,
    );
}

struct Case {
    expr: &'static str,
    /// The expression on a packet of this traffic (every level counts: a VXLAN frame is
    /// also UDP 8472 between the boards).
    selects: fn(&Packet) -> bool,
    /// At least this many packets (the traffic above guarantees them).
    at_least: usize,
}

/// ICMP for IPv4 only (`icmp`; the JSON calls ICMPv6 icmp too).
fn v4(p: &Packet) -> bool {
    !p.src.contains(':')
}

fn port(p: &Packet, n: u64) -> bool {
    p.sport == n || p.dport == n
}

const CASES: &[Case] = &[
    Case {
        expr: "icmp",
        selects: |p| p.l4 == "icmp" && v4(p),
        // 3 echoes and replies on vethpa, cni0, flannel.1 and (in VXLAN) eth0; 3 + 3 to srv.
        at_least: 6 * 4 + 6,
    },
    Case {
        expr: "udp port 53",
        selects: |p| p.l4 == "udp" && port(p, 53),
        at_least: 6 * 4,
    },
    Case {
        expr: "tcp and host 192.168.50.2",
        selects: |p| p.l4 == "tcp" && (p.src == SRV || p.dst == SRV),
        at_least: 10,
    },
    Case {
        // Inside the tunnel: ICMP carried in the overlay's UDP 8472.
        expr: "udp port 8472 and icmp",
        selects: |p| p.tunnelled && p.l4 == "icmp" && v4(p),
        at_least: 6,
    },
];

/// Sets net.core.optmem_max inside namespace `ns` only (the sysctl is per namespace).
fn set_optmem_max(ns: &str, bytes: u32) {
    let value = format!("net.core.optmem_max={bytes}");
    run(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-qw", &value]));
}

#[test]
fn filters_fall_back_under_a_small_optmem_max_and_keep_exactly_their_packets() {
    let host_before = host_optmem();
    let bed = Bed::up2("flt");
    set_optmem_max(&bed.ns("a"), SMALL_OPTMEM);
    assert_eq!(optmem_of(&bed, "a"), SMALL_OPTMEM.to_string());
    assert_eq!(
        host_optmem(),
        host_before,
        "optmem_max must be per namespace"
    );
    assert_ne!(
        optmem_of(&bed, "b"),
        SMALL_OPTMEM.to_string(),
        "only board a is small"
    );
    // Neighbours resolved before the runs, so that every run sees the same packets.
    traffic(&bed);

    for case in CASES {
        let reference = Agent::start_on(&bed, "a", &["--json"], 1);
        let filtered = Agent::start_on(&bed, "a", &["--json", "--filter", case.expr], 1);
        traffic(&bed);
        let (filtered, reference) = (filtered.stop(), reference.stop());
        let expr = case.expr;
        assert!(
            filtered.status.success(),
            "{expr}: {}\n{:#?}",
            filtered.status,
            filtered.stderr
        );
        assert!(reference.status.success(), "{:#?}", reference.stderr);
        // The full program does not fit: one warning, with the lean program attached.
        let warnings: Vec<&String> = filtered
            .stderr
            .iter()
            .filter(|l| l.contains("kernel filter fallback"))
            .collect();
        assert_eq!(warnings.len(), 1, "{expr}: {:#?}", filtered.stderr);
        assert!(
            warnings[0].contains("lean outer-level program")
                && warnings[0].contains("optmem_max 10240"),
            "{expr}: {}",
            warnings[0]
        );
        let got = packets(&filtered.stdout);
        let want: Vec<Packet> = packets(&reference.stdout)
            .into_iter()
            .filter(case.selects)
            .collect();
        assert!(
            want.len() >= case.at_least,
            "{expr}: only {} packets expected: {want:#?}",
            want.len()
        );
        if got != want {
            let count = |ps: &[Packet]| {
                let mut m: BTreeMap<Packet, i64> = BTreeMap::new();
                ps.iter()
                    .for_each(|p| *m.entry(p.clone()).or_default() += 1);
                m
            };
            let (g, w) = (count(&got), count(&want));
            let diff: Vec<String> = g
                .keys()
                .chain(w.keys())
                .filter(|k| g.get(*k) != w.get(*k))
                .map(|k| format!("{k:?}: got {:?} want {:?}", g.get(k), w.get(k)))
                .collect();
            panic!(
                "{expr}: {} packets, want {}:\n{}",
                got.len(),
                want.len(),
                diff.join("\n")
            );
        }
        eprintln!(
            "{expr:28} {} packets kept of {} ({}), {}",
            got.len(),
            packets(&reference.stdout).len(),
            got.iter().filter(|p| p.tunnelled).count(),
            warnings[0]
        );
    }
    assert_eq!(host_optmem(), host_before);
}

/// With room for the full program (the machine's default), nothing falls back.
#[test]
fn no_fallback_when_the_full_program_fits() {
    let bed = Bed::up2("fit");
    let agent = Agent::start_on(&bed, "a", &["--json", "--filter", "udp port 53"], 1);
    traffic::udp(&bed, "pb", "10.244.1.2:53", "pa", 3);
    let done = agent.stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    assert!(
        !done.stderr.iter().any(|l| l.contains("fallback")),
        "{:#?}",
        done.stderr
    );
    let got = packets(&done.stdout);
    assert!(got.iter().all(|p| p.l4 == "udp" && port(p, 53)), "{got:#?}");
    assert_eq!(got.len(), 6 * 4, "{got:#?}");
}

/// optmem_max so small that not even a one-instruction program attaches: the agent cannot
/// capture what it was asked for, which is an error, not a warning.
#[test]
fn no_program_at_all_is_an_error() {
    let bed = Bed::up2("none");
    set_optmem_max(&bed.ns("a"), 1);
    let out = run_agent(&bed, &["--json", "--filter", "icmp", "--count", "1"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("os error 12") && err.contains("optmem_max"),
        "{err}"
    );
}

/// `--netns` naming no namespace: an error naming it, not an empty capture.
#[test]
fn netns_that_does_not_exist_is_an_error() {
    let bed = Bed::up2("nons");
    let missing = bed.ns("nosuch");
    let out = run_agent(&bed, &["--json", "--netns", &missing, "--count", "1"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing), "{err}");
    // One that exists is logged with the path it was found at.
    let pod = bed.ns("pa");
    let done = Agent::start_on(&bed, "a", &["--json", "--netns", &pod], 2).stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    let want = format!("capturing netns \"{pod}\" (/run/netns/{pod})");
    assert!(
        done.stderr.iter().any(|l| l.contains(&want)),
        "{want}: {:#?}",
        done.stderr
    );
}

/// The agent on board a until it exits by itself (errors do so at once); killed by PID
/// after 10 s otherwise.
fn run_agent(bed: &Bed, args: &[&str]) -> std::process::Output {
    let child = Command::new("timeout")
        .args(["10", "ip", "netns", "exec", &bed.ns("a")])
        .args(common::agent::runner())
        .arg(common::agent::BIN)
        .args(args)
        .output()
        .expect("run the agent");
    child
}

/// The collector exclusion stays exact when the program falls back: a `--filter tcp` agent
/// exporting over a captured link, on a board with optmem_max 10240, never reports its own
/// connection, and reports the container's TCP on every hop.
#[test]
fn the_collector_exclusion_holds_under_a_small_optmem_max() {
    let bed = Bed::up("fltc");
    set_optmem_max(&bed.ns("pi"), SMALL_OPTMEM);
    let collector = common::collector::listen(&bed, "rtr", "192.168.43.1:7878");
    let agent = Agent::start(
        &bed,
        // The stand-in collector speaks plaintext.
        &[
            "--collector",
            "192.168.43.1:7878",
            "--insecure",
            "--filter",
            "tcp",
        ],
        1,
    );
    traffic::ping(&bed, "ctr", 2, "0.2");
    let port = traffic::tcp(
        &bed,
        ("rtr", "198.51.100.101:5201"),
        ("ctr", "198.51.100.101:5201"),
        2,
    );
    let done = agent.stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    assert!(
        done.stderr
            .iter()
            .any(|l| l.contains("kernel filter fallback")),
        "{:#?}",
        done.stderr
    );
    let got = collector.join().expect("collector");
    let mut own = 0;
    let mut flow = 0;
    for o in &got.observations {
        let hopcap_proto::summary::Transport::Tcp {
            src_port, dst_port, ..
        } = o.summary.transport
        else {
            panic!("not TCP: {o:?}");
        };
        own += usize::from(src_port == 7878 || dst_port == 7878);
        flow += usize::from(src_port == port || dst_port == port);
    }
    assert_eq!(own, 0, "the agent captured its own export");
    // SYN, SYN-ACK, 2 requests, 2 replies, FIN, FIN: at least 8 packets on each of 3 links.
    assert!(flow >= 8 * 3, "{flow} packets of the container's TCP");
    assert_eq!(flow, got.observations.len());
}
