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

fn run_json(bed: &Bed, extra: &[&str], namespaces: usize, traffic: impl FnOnce()) -> Vec<Seen> {
    let ctr = bed.ns("ctr");
    let mut args = vec!["--json", "--netns", &ctr];
    args.extend_from_slice(extra);
    let agent = Agent::start(bed, &args, namespaces);
    traffic();
    let done = agent.stop();
    assert!(
        done.status.success(),
        "agent: {}\n{:#?}",
        done.status,
        done.stderr
    );
    hops::parse_output(&bed.prefix, &done.stdout)
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
    let seen = run_json(&bed, &[], 2, || {
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
