//! The agent on real traffic (root): each test builds its own Pi+Docker bed with
//! scripts/testbed.sh (namespaces hcit<pid><tag>-{ctr,pi,rtr}), runs the hopcap-agent binary
//! on the board (the pi namespace) with `--json` or `--collector`, makes traffic between the
//! bed's namespaces only, and checks every packet on every link it crosses:
//!
//!   ctr:eth0 ── vethctr ─ docker0 ══(forward, MASQUERADE / DNAT 8080→172.17.0.2:80)══ wlan0 ── rtr
//!
//! Per packet (all observations with one fingerprint): each captured link exactly once, in
//! path order in the output, In/Out right, timestamps non-decreasing, capture order
//! increasing on each socket, container addresses inside and the board's on wlan0, TTL one
//! less across the board.

mod common;

use common::agent::Agent;
use common::bed::{Bed, CTR, FAR, RTR, WLAN};
use common::hops::{self, check_flow, Ends, Flow, Seen};
use common::traffic;

fn icmp_flow() -> Flow<'static> {
    Flow {
        l4: "icmp",
        inside: Ends {
            src: CTR,
            sport: 0,
            dst: FAR,
            dport: 0,
        },
        outside: Ends {
            src: WLAN,
            sport: 0,
            dst: FAR,
            dport: 0,
        },
        ports: false,
    }
}

/// A container's conversation with FAR:`port` (MASQUERADE keeps the client port).
fn snat_flow(l4: &'static str, client: u16, port: u16) -> Flow<'static> {
    Flow {
        l4,
        inside: Ends {
            src: CTR,
            sport: client,
            dst: FAR,
            dport: port,
        },
        outside: Ends {
            src: WLAN,
            sport: client,
            dst: FAR,
            dport: port,
        },
        ports: true,
    }
}

/// The router's client at 192.168.43.1:`client` reaching the container's port 80 through
/// the board's port forward 8080 (seen from the container's side: 80 → client).
fn dnat_flow(client: u16) -> Flow<'static> {
    Flow {
        l4: "tcp",
        inside: Ends {
            src: CTR,
            sport: 80,
            dst: RTR,
            dport: client,
        },
        outside: Ends {
            src: WLAN,
            sport: 8080,
            dst: RTR,
            dport: client,
        },
        ports: true,
    }
}

/// What one `--json` run printed: the IP observations, every stdout line, and stderr.
struct Run {
    seen: Vec<Seen>,
    lines: Vec<String>,
    log: Vec<String>,
}

/// Runs the agent with `--json --netns <ctr>` and `extra` while `traffic` runs.
fn run_json(bed: &Bed, extra: &[&str], traffic: impl FnOnce()) -> Run {
    let ctr = bed.ns("ctr");
    let mut args = vec!["--json", "--netns", &ctr];
    args.extend_from_slice(extra);
    let agent = Agent::start(bed, &args, 2);
    traffic();
    let done = agent.stop();
    assert!(
        done.status.success(),
        "agent: {}\n{:#?}",
        done.status,
        done.stderr
    );
    Run {
        seen: hops::parse_output(&bed.prefix, &done.stdout),
        lines: done.stdout,
        log: done.stderr,
    }
}

/// TCP segments with SYN (and not ACK) and with SYN+ACK among a flow's packets.
fn handshake(flow: &Flow<'_>, seen: &[Seen]) -> (usize, usize) {
    let packets = flow.packets(seen);
    let first = |f: u16| {
        packets
            .values()
            .filter(|hops| hops[0].flags & 0x12 == f)
            .count()
    };
    (first(0x02), first(0x12))
}

#[test]
fn ping_tcp_udp_cross_every_hop_with_nat() {
    let bed = Bed::up("a");
    let mut ports = (0, 0, 0);
    let Run { seen, .. } = run_json(&bed, &[], || {
        traffic::ping(&bed, "ctr", 3, "0.2");
        ports.0 = traffic::tcp(
            &bed,
            ("rtr", "198.51.100.101:5201"),
            ("ctr", "198.51.100.101:5201"),
            3,
        );
        ports.1 = traffic::tcp(
            &bed,
            ("ctr", "0.0.0.0:80"),
            ("rtr", "192.168.43.116:8080"),
            3,
        );
        ports.2 = traffic::udp(&bed, "rtr", "198.51.100.101:5300", "ctr", 3);
    });

    let ping = icmp_flow();
    assert_eq!(
        check_flow(&ping, &seen, &hops::all),
        (3, 3),
        "echo requests, replies"
    );

    let out = snat_flow("tcp", ports.0, 5201);
    let (o, i) = check_flow(&out, &seen, &hops::all);
    // SYN, ACK, 3 requests, FIN; SYN-ACK, 3 replies, FIN (ACKs may ride along).
    assert!(
        o >= 5 && i >= 4,
        "tcp out: {o} outbound, {i} inbound packets"
    );
    assert_eq!(
        handshake(&out, &seen),
        (1, 1),
        "SYN from the container, SYN-ACK back"
    );

    let fwd = dnat_flow(ports.1);
    let (o, i) = check_flow(&fwd, &seen, &hops::all);
    assert!(
        o >= 4 && i >= 5,
        "port forward: {o} outbound, {i} inbound packets"
    );
    assert_eq!(
        handshake(&fwd, &seen),
        (1, 1),
        "SYN from the router, SYN-ACK back"
    );

    let udp = snat_flow("udp", ports.2, 5300);
    assert_eq!(
        check_flow(&udp, &seen, &hops::all),
        (3, 3),
        "datagrams, echoes"
    );
}

/// Now, as the kernel stamps packets: ns since the Unix epoch.
fn now_ns() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    d.as_nanos() as u64
}

#[test]
fn a_container_started_mid_run_is_captured_within_2s() {
    let mut bed = Bed::up("b");
    let ctr = bed.ns("ctr");
    let agent = Agent::start(&bed, &["--json", "--netns", &ctr], 2);
    // `docker run` while the agent runs: a new veth joins docker0, the container pings out.
    let veth = bed.add_container("ct2", "172.17.0.3");
    let up_ns = now_ns();
    traffic::ping(&bed, "ct2", 25, "0.1");
    let done = agent.stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    let seen = hops::parse_output(&bed.prefix, &done.stdout);

    let first = seen
        .iter()
        .filter(|s| s.link == veth)
        .map(|s| s.ts_ns)
        .min()
        .unwrap_or_else(|| panic!("nothing on {veth}: {:#?}", done.stderr));
    let delay_ms = first.saturating_sub(up_ns) as f64 / 1e6;
    eprintln!("first packet on {veth} {delay_ms:.0} ms after it came up");
    assert!(
        delay_ms <= 2000.0,
        "{veth} captured {delay_ms:.0} ms after it came up"
    );

    // Once captured, every packet of the new container has its whole path on the board.
    let ct2 = Flow {
        inside: Ends {
            src: "172.17.0.3",
            ..icmp_flow().inside
        },
        ..icmp_flow()
    };
    let later: Vec<Seen> = ct2
        .packets(&seen)
        .into_values()
        .filter(|hops| hops.iter().all(|s| s.ts_ns > first))
        .flatten()
        .cloned()
        // The container's own eth0 is in a namespace the agent was not told to capture.
        .map(|mut s| {
            if s.link == veth {
                s.link = "vethctr".into();
            }
            s
        })
        .collect();
    let (o, i) = check_flow(&ct2, &later, &|l| l != "ctr:eth0");
    assert!(
        o >= 2 && i >= 2,
        "{o} requests, {i} replies after capture began"
    );
    assert!(seen
        .iter()
        .all(|s| s.link != "ctr:eth0" || s.src != "172.17.0.3"));
}

#[test]
fn filter_keeps_only_matching_packets_on_every_hop() {
    let bed = Bed::up("c");
    let mut port = 0;
    let Run { seen, lines, .. } = run_json(&bed, &["--filter", "udp and port 5301"], || {
        traffic::ping(&bed, "ctr", 2, "0.2");
        traffic::udp(&bed, "rtr", "198.51.100.101:5302", "ctr", 2);
        port = traffic::udp(&bed, "rtr", "198.51.100.101:5301", "ctr", 3);
        traffic::tcp(
            &bed,
            ("rtr", "198.51.100.101:5201"),
            ("ctr", "198.51.100.101:5201"),
            1,
        );
    });
    assert_eq!(seen.len(), lines.len(), "only IP packets pass: {lines:#?}");
    for s in &seen {
        assert!(
            s.l4 == "udp" && (s.sport == 5301 || s.dport == 5301),
            "{s:?}"
        );
    }
    let udp = snat_flow("udp", port, 5301);
    assert_eq!(check_flow(&udp, &seen, &hops::all), (3, 3));
}

#[test]
fn interface_globs_choose_the_links() {
    let bed = Bed::up("d");
    let only = format!("{}:eth0", bed.ns("ctr"));
    let Run { seen, .. } = run_json(&bed, &["-i", &only, "-i", "wlan*"], || {
        traffic::ping(&bed, "ctr", 3, "0.2");
    });
    let chosen = |l: &str| l == "ctr:eth0" || l == "wlan0";
    assert!(seen.iter().all(|s| chosen(&s.link)), "{seen:#?}");
    assert_eq!(check_flow(&icmp_flow(), &seen, &chosen), (3, 3));
}

#[test]
fn exclude_leaves_a_link_out() {
    let bed = Bed::up("e");
    let Run { seen, .. } = run_json(&bed, &["--exclude", "docker0"], || {
        traffic::ping(&bed, "ctr", 3, "0.2");
    });
    let chosen = |l: &str| l != "docker0";
    assert!(seen.iter().all(|s| chosen(&s.link)), "{seen:#?}");
    assert_eq!(check_flow(&icmp_flow(), &seen, &chosen), (3, 3));
}

#[test]
fn sampling_keeps_whole_paths_of_one_packet_in_4() {
    let bed = Bed::up("f");
    const PINGS: u32 = 400;
    let Run { seen, .. } = run_json(&bed, &["--sample", "4"], || {
        traffic::ping(&bed, "ctr", PINGS, "0.002");
    });
    // Kept by the sample key (observations do not carry it, and the fingerprint no longer
    // decides): every kept packet must still be there on every hop of its path.
    let (o, i) = check_flow(&icmp_flow(), &seen, &hops::all);
    // 800 packets, each kept with probability 1/4 by its hash: 200 ± 12 (one sigma).
    let kept = o + i;
    eprintln!("--sample 4 kept {o} requests and {i} replies of {PINGS} each");
    assert!((100..=300).contains(&kept), "kept {kept} of {}", 2 * PINGS);
}

#[test]
fn the_collector_gets_the_traffic_and_never_the_agents_own() {
    let bed = Bed::up("g");
    let ctr = bed.ns("ctr");
    let collector = common::collector::listen(&bed, "rtr", "192.168.43.1:7878");
    // A second agent that prints, to show the export connection crosses wlan0.
    let watcher = Agent::start(
        &bed,
        &["--json", "-i", "wlan0", "--filter", "tcp port 7878"],
        1,
    );
    let exporter = Agent::start(
        &bed,
        &[
            "--collector",
            "192.168.43.1:7878",
            "--insecure", // the stand-in collector speaks plaintext
            "--id",
            "board-g",
            "--netns",
            &ctr,
        ],
        2,
    );
    traffic::ping(&bed, "ctr", 3, "0.2");
    let port = traffic::tcp(
        &bed,
        ("rtr", "198.51.100.101:5201"),
        ("ctr", "198.51.100.101:5201"),
        2,
    );
    let done = exporter.stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    let got = collector.join().expect("collector");
    let watched = watcher.stop();

    let export_packets = hops::parse_output(&bed.prefix, &watched.stdout);
    assert!(
        export_packets.iter().any(|s| s.dport == 7878)
            && export_packets.iter().any(|s| s.sport == 7878),
        "the export connection is on wlan0: {:#?}",
        watched.stdout
    );

    assert_eq!(
        got.messages.first(),
        Some(&hopcap_proto::message::MessageType::Hello)
    );
    let hello = got.hello.as_ref().expect("hello");
    assert_eq!(hello.agent_id.as_str(), "board-g");
    assert_eq!(
        got.messages.last(),
        Some(&hopcap_proto::message::MessageType::Bye)
    );
    assert!(got.batches > 0);
    let mut seen: Vec<Seen> = got
        .observations
        .iter()
        .enumerate()
        .filter_map(|(n, o)| {
            let (netns, name) = got.links.get(&o.link).expect("a link announced before use");
            hops::from_observation(&bed.prefix, n, o, (netns, name))
        })
        .collect();
    // The agent's time order, as its printer sorts: by timestamp, then arrival.
    seen.sort_by_key(|s| (s.ts_ns, s.line));
    seen.iter_mut().enumerate().for_each(|(i, s)| s.line = i);

    let own: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.sport == 7878 || s.dport == 7878)
        .collect();
    assert!(
        own.is_empty(),
        "the agent captured its own export: {own:#?}"
    );
    assert_eq!(check_flow(&icmp_flow(), &seen, &hops::all), (3, 3));
    let (o, i) = check_flow(&snat_flow("tcp", port, 5201), &seen, &hops::all);
    assert!(o >= 4 && i >= 3, "tcp: {o} outbound, {i} inbound");
}

#[test]
fn recv_mode_sees_the_same_paths() {
    // The path boards under emulation (no TPACKET_V3) take: plain recvmsg() sockets.
    let bed = Bed::up("h");
    let mut port = 0;
    let Run { seen, log, .. } = run_json(&bed, &["--recv"], || {
        traffic::ping(&bed, "ctr", 3, "0.2");
        port = traffic::udp(&bed, "rtr", "198.51.100.101:5300", "ctr", 3);
    });
    assert_eq!(check_flow(&icmp_flow(), &seen, &hops::all), (3, 3));
    assert_eq!(
        check_flow(&snat_flow("udp", port, 5300), &seen, &hops::all),
        (3, 3)
    );
    let recv = log.iter().filter(|l| l.contains("in Recv mode")).count();
    assert_eq!(recv, 2, "{log:#?}");
}
