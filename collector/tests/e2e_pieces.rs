//! End to end on REAL segmentation, merging and fragmentation: a packet split or merged on
//! its way is ONE journey in `paths --json` (its `whole`, the `pieces` each hop saw, the
//! `events` where it was split or merged), and it is not "lost after" the hop where it was
//! cut up.
//!
//! - `tcp_upload_segmented_at_wlan0` (and `_sampled`, `--sample 10`): Pi+Docker bed, wlan0
//!   cannot segment (`ethtool -K wlan0 tso off gso off`); a 2 MB TCP upload from the
//!   container: ctr eth0 / vethctr / docker0 carry GSO super-packets (up to 64 KiB), wlan0 Out
//!   MSS-sized segments.
//! - `tcp_uploads_segmented_across_vxlan`: two boards; a's eth0 cannot segment (the VXLAN
//!   super-packet leaves as MSS-sized encapsulated segments on a:eth0 Out) and b's flannel.1
//!   cannot (segments already on b:flannel.1 Out); 1 MB each way. The receiving board's
//!   VXLAN GRO (gro_cells) merges the segments again on flannel.1 In.
//! - `udp_fragmented_at_wlan0` (and `_sampled`): the container's side at MTU 9000, wlan0 at
//!   1500: 3000-byte UDP datagrams without DF leave wlan0 as three IPv4 fragments.
//! - `udp_fragmented_at_the_vxlan_hop`: flannel.1 at MTU 1450 over a:eth0 narrowed to 1450: a
//!   1450-byte inner packet fits flannel.1, its 1500-byte VXLAN packet does not fit a:eth0 and
//!   the outer UDP packet (the vxlan device sets no DF) leaves a:eth0 as two fragments.
//! - `tcp_download_merged_by_gro_on_wlan0`: Pi+Docker bed, the router's eth0 sends MSS-sized
//!   segments (tso/gso off), the board's wlan0 (a veth) has GRO on: wlan0 In shows them merged.
//! - `udp_gso_segmented_at_wlan0` (and `_sampled`): Pi+Docker bed, wlan0 cannot segment UDP
//!   (`ethtool -K wlan0 tx-udp-segmentation off`); the container sends 10 900-byte
//!   `UDP_SEGMENT` sends cut at 1400: one datagram on ctr eth0 / vethctr / docker0, eight
//!   (7 × 1400 + 1100, IPv4 ids consecutive) on wlan0 Out.
//! - `udp_gso_merged_by_gro_on_wlan0`: the mirror case: the router's sends leave its eth0
//!   as segments (`tx-udp-segmentation off`), wlan0 (`gro on`, `rx-udp-gro-forwarding on`)
//!   merges each send back into one 10 900-byte datagram, carried whole to the container.
//!
//! Each test prints (always, for --nocapture, and in its failure message) a per-hop summary
//! of what the store holds of its traffic: observation counts and size histograms.
//!
//! Root only (namespaces, AF_PACKET, ethtool). ethtool must be installed (scripts/test.sh
//! installs it); without it the tests fail and say so. Every process is ours, stopped by PID;
//! every namespace starts with `hcpc<pid>` and is deleted by exact name.

mod e2e;

use e2e::agent::Agent;
use e2e::bed::{Bed, CTR, FAR, POD_A, POD_B, WLAN};
use e2e::collector::{Collector, PATIENCE};
use e2e::flows::Hop;
use e2e::pi::{self, BOARD, COLLECTOR};
use e2e::proc::Proc;
use e2e::{scratch, traffic};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Name prefix of this file's beds: `hcpc<pid><tag>-<role>`.
const BASE: &str = "hcpc";
const MARKER_ID: u16 = 4309;
const TWO_COLLECTOR: &str = "192.168.50.2:7878";
/// The pods' MSS across flannel.1 (MTU 1450): 1450 - 20 - 20 - 12 (timestamps).
const MSS_VXLAN: i64 = 1398;
/// The MSS on a 1500-byte link with TCP timestamps.
const MSS: i64 = 1448;
/// Seconds between the senders' 64 KiB writes: bursts the agents' rings take (a debug-built
/// agent on 2 loaded cores dropped frames of unpaced 2 MB uploads), ≤ 0.3 s per transfer.
const PACE: &str = "0.005";
/// Every agent's ring: a segmented 64 KiB write is 45 frames on one link at once.
const RING: [&str; 2] = ["--ring-kb", "16384"];

/// Bulk TCP and UDP between a bed's namespaces. The sinks print `ready`, then what arrived.
const PY: &str = r#"
import socket, sys, time
mode = sys.argv[1]
if mode == "tcp-sink":
    host, port = sys.argv[2], int(sys.argv[3])
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); s.settimeout(30); print("ready", flush=True)
    c, _ = s.accept(); c.settimeout(30); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        n += len(d)
    c.close(); print("received %d" % n, flush=True)
elif mode == "tcp-send":
    host, port, sport, total = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    pace = float(sys.argv[6]) if len(sys.argv) > 6 else 0
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("0.0.0.0", sport)); c.settimeout(30); c.connect((host, port))
    chunk = bytes(range(256)) * 256; sent = 0
    while sent < total:
        k = min(len(chunk), total - sent); c.sendall(chunk[:k]); sent += k
        if pace: time.sleep(pace)
    c.shutdown(socket.SHUT_WR); c.recv(1); c.close(); print("sent %d" % sent, flush=True)
elif mode == "udp-sink":
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((host, port)); u.settimeout(10)
    print("ready", flush=True); seen = set()
    try:
        while len(seen) < n:
            d, _ = u.recvfrom(65535); seen.add(d)
    except socket.timeout:
        pass
    print("received %d" % len(seen), flush=True)
elif mode == "udp-send":
    host, port, sport, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF, so a router on the way fragments it.
    u.setsockopt(socket.IPPROTO_IP, 10, 0); u.bind(("0.0.0.0", sport))
    for i in range(n):
        head = b"datagram %06d " % i
        u.sendto((head * (size // len(head) + 1))[:size], (host, port)); time.sleep(0.005)
    print("sent %d" % n, flush=True)
elif mode == "udp-gso-send":
    # One UDP_SEGMENT send per datagram: `size` bytes cut at `seg` (SOL_UDP 17, UDP_SEGMENT
    # 103; this python's socket module may not name them). Every segment starts with its
    # send and position, so the sink counts segments.
    host, port, sport, n, size, seg = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(17, 103, seg); u.bind(("0.0.0.0", sport))
    for i in range(n):
        buf = b"".join((b"send %04d seg %02d " % (i, k)).ljust(seg, b".") for k in range(size // seg + 1))
        u.sendto(buf[:size], (host, port)); time.sleep(0.005)
    print("sent %d" % n, flush=True)
"#;

// ---------------------------------------------------------------------------------------
// The bed's tools.

/// ethtool is required: without it the offloads cannot be switched and the premise fails.
fn need_ethtool() {
    let ok = Command::new("ethtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ethtool is not installed: these tests switch segmentation offloads (tso/gso/gro) with \
         it. Install it (apt-get install ethtool; scripts/test.sh does)"
    );
}

/// `ethtool -K dev features...` in `role`, then checks each feature reads back as asked.
fn offloads(bed: &Bed, role: &str, dev: &str, features: &[(&str, bool)]) {
    let mut args = vec!["ethtool", "-K", dev];
    for (f, on) in features {
        args.extend([*f, if *on { "on" } else { "off" }]);
    }
    bed.exec(role, &args);
    let shown =
        String::from_utf8_lossy(&bed.exec(role, &["ethtool", "-k", dev]).stdout).into_owned();
    for (f, on) in features {
        let long = match *f {
            "tso" => "tcp-segmentation-offload",
            "gso" => "generic-segmentation-offload",
            "gro" => "generic-receive-offload",
            other => other,
        };
        let want = format!("{long}: {}", if *on { "on" } else { "off" });
        assert!(
            shown.lines().any(|l| l.trim_start().starts_with(&want)),
            "{role}:{dev}: `{want}` did not take:\n{shown}"
        );
    }
}

fn mtu(bed: &Bed, role: &str, dev: &str, mtu: u32) {
    bed.sh(role, &format!("ip link set {dev} mtu {mtu}"));
}

/// A sink of the traffic script in `role` (`tcp-sink host port` / `udp-sink host port n`).
fn sink(bed: &Bed, role: &str, args: &[&str], dir: &Path) -> Proc {
    let mut all = vec!["-c", PY];
    all.extend_from_slice(args);
    let mut p = Proc::spawn(
        &bed.ns(role),
        Path::new("python3"),
        &all,
        &format!("{}-{role}-{}", args[0], args[2]),
        dir,
    );
    p.wait_for("ready", PATIENCE, |p| p.stdout().contains("ready"));
    p
}

/// Waits for a sink to end; the number it printed after `received`.
fn received(mut p: Proc) -> u64 {
    let status = p.wait(PATIENCE);
    let out = p.stdout();
    assert!(
        status.success(),
        "{}: {status}\n{out}\n{}",
        p.name,
        p.stderr()
    );
    out.lines()
        .find_map(|l| l.strip_prefix("received "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no count in {out:?}", p.name))
}

/// Runs the traffic script's sender in `role`.
fn send(bed: &Bed, role: &str, args: &[&str]) {
    let mut all = vec!["python3", "-c", PY];
    all.extend_from_slice(args);
    let out = bed.exec(role, &all);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent "));
}

// ---------------------------------------------------------------------------------------
// What the store holds: a compact per-hop summary of the test's traffic.

/// One observation as the summary needs it.
#[derive(Debug, Clone)]
struct Obs {
    /// `board:netns:link Out`, as the summary prints it.
    hop: String,
    hop_key: Hop,
    /// `tcp`, `tcp ack`, `udp`, `frag` (an IPv4 fragment), `vxlan frag` (one of an outer
    /// UDP packet), by what the observation shows.
    class: &'static str,
    /// TCP data bytes, a UDP datagram's payload, a fragment's IP payload (+ `@offset`).
    size: i64,
    offset: i64,
}

/// The test's observations from the store: those whose ports include `port`, and IPv4
/// fragments (a non-first fragment has no ports) between the `frag_hosts`.
fn stored(c: &Collector, port: u16) -> Vec<Obs> {
    let q = format!(
        "SELECT b.name, l.netns, l.name, o.pkttype = 4, o.proto, \
                coalesce(o.ip_payload_len, 0), coalesce(o.tcp_hdr_len, 0), \
                coalesce(o.frag_offset, 0), coalesce(o.more_frags, 0), o.src_port, \
                coalesce(o.tun_kind, 0), coalesce(o.udp_len, 0) \
         FROM observations o JOIN links l ON l.id = o.link JOIN boards b ON b.id = o.board \
         WHERE o.src_port = {port} OR o.dst_port = {port} \
            OR coalesce(o.frag_offset, 0) > 0 OR coalesce(o.more_frags, 0) = 1 \
         ORDER BY o.ts_ns, o.agent_order"
    );
    let sql = c.sql();
    let mut st = sql.prepare(&q).expect("prepare");
    st.query_map([], |r| {
        let (board, netns, link, out): (String, String, String, bool) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let proto: Option<i64> = r.get(4)?;
        let (plen, thl, off, more): (i64, i64, i64, i64) =
            (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?);
        let sport: Option<i64> = r.get(9)?;
        let (tun, udp_len): (i64, i64) = (r.get(10)?, r.get(11)?);
        let hop_key = Hop::new(&board, &netns, &link, out);
        let hop = format!("{} {}", hop_key.name(), if out { "Out" } else { "In" });
        let frag = off > 0 || more != 0;
        let (class, size) = match (proto, frag) {
            (_, true) if sport.is_none() && tun == 0 => ("frag", plen),
            (_, true) => (if tun != 0 { "vxlan frag" } else { "frag" }, plen),
            (Some(6), _) if plen - thl > 0 => ("tcp", plen - thl),
            (Some(6), _) => ("tcp ack", 0),
            (Some(17), _) => ("udp", if udp_len > 8 { udp_len - 8 } else { plen - 8 }),
            _ => ("other", plen),
        };
        Ok(Obs {
            hop,
            hop_key,
            class,
            size,
            offset: off * 8,
        })
    })
    .expect("query")
    .map(Result::unwrap)
    .collect()
}

/// Per hop and class: how many, and the sizes (most frequent first; fragments with their
/// offsets), e.g. `a:eth0 Out  tcp ×703: 1398×690 1228×13 | max 1398`.
fn summary(obs: &[Obs]) -> String {
    let mut per: BTreeMap<(String, &str), Vec<&Obs>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for o in obs {
        if !order.contains(&o.hop) {
            order.push(o.hop.clone());
        }
        per.entry((o.hop.clone(), o.class)).or_default().push(o);
    }
    let mut s = String::new();
    for hop in &order {
        for ((h, class), list) in per.range((hop.clone(), "")..) {
            if h != hop {
                break;
            }
            let mut hist: BTreeMap<String, usize> = BTreeMap::new();
            for o in list {
                let key = if class.contains("frag") {
                    format!("{}@{}", o.size, o.offset)
                } else {
                    o.size.to_string()
                };
                *hist.entry(key).or_default() += 1;
            }
            let mut hist: Vec<_> = hist.into_iter().collect();
            hist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let shown: Vec<String> = hist
                .iter()
                .take(6)
                .map(|(k, n)| format!("{k}×{n}"))
                .collect();
            let max = list.iter().map(|o| o.size).max().unwrap_or(0);
            let _ = writeln!(
                s,
                "  {hop:<28} {class:<10} ×{:<5} {}{} | max {max}",
                list.len(),
                shown.join(" "),
                if hist.len() > 6 { " …" } else { "" }
            );
        }
    }
    s
}

/// The sizes of `class` observations on `hop`.
fn sizes(obs: &[Obs], hop: &Hop, class: &str) -> Vec<i64> {
    obs.iter()
        .filter(|o| o.hop_key == *hop && o.class == class)
        .map(|o| o.size)
        .collect()
}

// ---------------------------------------------------------------------------------------
// The journeys: `paths --json`, judged by the pieces rules.

fn hop_of(h: &Value) -> Hop {
    Hop::new(
        h["board"].as_str().unwrap_or(""),
        h["netns"].as_str().unwrap_or(""),
        h["link"].as_str().unwrap_or(""),
        h["dir"] == "Out",
    )
}

fn hops(j: &Value) -> Vec<Hop> {
    j["hops"]
        .as_array()
        .map(|a| a.iter().map(hop_of).collect())
        .unwrap_or_default()
}

/// A journey of the conversation `sport → dport` (as the sender's side shows the ports; a
/// hop without ports, a fragment, does not decide).
fn goes(j: &Value, sport: u16, dport: u16) -> bool {
    j["hops"].as_array().is_some_and(|hs| {
        hs.iter().any(|h| {
            h["sport"].as_u64() == Some(sport.into()) && h["dport"].as_u64() == Some(dport.into())
        })
    })
}

/// The whole packet's protocol and payload length (None: no `whole`, the correlator of
/// before pieces).
fn whole(j: &Value) -> Option<(&str, u64)> {
    let w = j.get("whole")?;
    Some((w["proto"].as_str()?, w["len"].as_u64()?))
}

/// How the journeys of one direction of a transfer fare.
#[derive(Debug, Default)]
struct Judgement {
    /// Journeys carrying data (whole.len > 0; without `whole`: any hop over 200 bytes).
    data: usize,
    /// Of them: first hop `first`, last hop `last`, complete, no lost_after, with `whole`.
    whole_end_to_end: usize,
    /// Of them: a lost_after (false: every byte arrived).
    false_loss: usize,
    /// Of them: starting elsewhere than `first` (counted against the whole).
    mid_board: usize,
    /// Of them: no `whole` field.
    no_whole: usize,
    /// `events` of the journeys: (kind, hop it happened at) → count.
    events: BTreeMap<(String, String), usize>,
    /// TCP: bytes covered by the data journeys' [seq, seq + len), counted once.
    covered: u64,
    problems: Vec<String>,
}

impl Judgement {
    fn of(journeys: &[Value], pick: impl Fn(&Value) -> bool, first: &Hop, last: &Hop) -> Judgement {
        let mut g = Judgement::default();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for j in journeys.iter().filter(|j| pick(j)) {
            let hs = hops(j);
            for e in j["events"].as_array().into_iter().flatten() {
                let at = e["at"]
                    .as_u64()
                    .and_then(|i| hs.get(i as usize))
                    .map(|h| format!("{} {}", h.name(), if h.out { "Out" } else { "In" }))
                    .unwrap_or_else(|| format!("? {}", e["link"]));
                *g.events
                    .entry((e["kind"].as_str().unwrap_or("?").to_string(), at))
                    .or_default() += 1;
            }
            let data = match whole(j) {
                Some((_, len)) => len > 0,
                None => j["hops"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|h| h["wire_len"].as_u64() > Some(200)),
            };
            if !data {
                continue;
            }
            g.data += 1;
            if whole(j).is_none() {
                g.no_whole += 1;
            }
            if let (Some(seq), Some(len)) = (j["whole"]["seq"].as_u64(), j["whole"]["len"].as_u64())
            {
                ranges.push((seq as u32, len as u32));
            }
            let lost = !j["lost_after"].is_null();
            if lost {
                g.false_loss += 1;
            }
            if hs.first() != Some(first) {
                g.mid_board += 1;
            }
            let ok = whole(j).is_some()
                && hs.first() == Some(first)
                && hs.last() == Some(last)
                && j["complete"] == Value::Bool(true)
                && !lost;
            if ok {
                g.whole_end_to_end += 1;
            } else if g.problems.len() < 4 {
                let names: Vec<String> = hs
                    .iter()
                    .map(|h| format!("{} {}", h.name(), if h.out { "Out" } else { "In" }))
                    .collect();
                g.problems.push(format!(
                    "{} whole {} complete {} lost_after {} lost_range {} hops {names:?}",
                    j["journey"], j["whole"], j["complete"], j["lost_after"], j["lost_range"]
                ));
            }
        }
        // Bytes of the stream covered, counted once: offsets from the first range's seq.
        if let Some(&(base, _)) = ranges.first() {
            let mut spans: Vec<(u64, u64)> = ranges
                .iter()
                .map(|&(s, l)| {
                    let o = u64::from(s.wrapping_sub(base));
                    (o, o + u64::from(l))
                })
                .collect();
            spans.sort_unstable();
            let (mut end, mut covered) = (0u64, 0u64);
            for (a, b) in spans {
                let a = a.max(end);
                if b > a {
                    covered += b - a;
                    end = b;
                }
            }
            g.covered = covered;
        }
        g
    }

    fn percent(&self) -> f64 {
        if self.data == 0 {
            0.0
        } else {
            100.0 * self.whole_end_to_end as f64 / self.data as f64
        }
    }

    fn line(&self) -> String {
        let mut s = format!(
            "{} data journeys, {} whole end to end ({:.1}%), {} false lost_after, {} starting \
             mid-board, {} without `whole`; bytes covered {}; events {:?}",
            self.data,
            self.whole_end_to_end,
            self.percent(),
            self.false_loss,
            self.mid_board,
            self.no_whole,
            self.covered,
            self.events
        );
        for p in &self.problems {
            let _ = write!(s, "\n    e.g. {p}");
        }
        s
    }

    /// Events of `kind` at `hop`.
    fn events_at(&self, kind: &str, hop: &Hop) -> usize {
        let at = format!("{} {}", hop.name(), if hop.out { "Out" } else { "In" });
        self.events
            .iter()
            .filter(|((k, h), _)| k == kind && *h == at)
            .map(|(_, n)| n)
            .sum()
    }

    /// The rule of the issue: ≥ 99% of the data journeys whole end to end, none with a
    /// false lost_after.
    fn check(&self, what: &str, report: &str) {
        assert!(self.data > 0, "{what}: no data journey\n{report}");
        assert_eq!(
            self.no_whole, 0,
            "{what}: journeys without `whole` (the correlator does not know pieces yet)\n{report}"
        );
        assert!(
            self.whole_end_to_end * 100 >= self.data * 99,
            "{what}: {:.1}% whole end to end, want ≥ 99%\n{report}",
            self.percent()
        );
        assert_eq!(self.false_loss, 0, "{what}: false lost_after\n{report}");
    }
}

// ---------------------------------------------------------------------------------------
// Beds with their collector and agents.

struct Run {
    agents: Vec<Agent>,
    collector: Collector,
    bed: Bed,
    dir: hopcap_testkit::ScratchDir,
}

impl Run {
    /// The Pi bed, its collector on the router, the board's agent (its namespace plus the
    /// container's, and `more_netns` roles too), after `setup` and a warm-up.
    fn pi(tag: &str, extra: &[&str], more_netns: &[&str], setup: impl FnOnce(&Bed)) -> Run {
        need_ethtool();
        let dir = scratch(&format!("pieces-{tag}"));
        let bed = Bed::pi_docker_as(BASE, tag);
        setup(&bed);
        let collector = Collector::start(&bed.ns("rtr"), COLLECTOR, dir.path());
        let extra: Vec<&str> = RING.iter().chain(extra).copied().collect();
        let extra = &extra[..];
        let agent = if more_netns.is_empty() {
            pi::streaming_agent(&bed, extra, dir.path())
        } else {
            let mut netns = vec![bed.ns("ctr")];
            netns.extend(more_netns.iter().map(|r| bed.ns(r)));
            let netns = netns.join(",");
            let mut args = vec!["--id", BOARD, "--netns", &netns, "--collector", COLLECTOR];
            args.extend_from_slice(extra);
            Agent::start(
                &bed.ns("pi"),
                &args,
                2 + more_netns.len(),
                "agent",
                dir.path(),
            )
        };
        pi::warm_up(&bed, &collector, &[]);
        Run {
            agents: vec![agent],
            collector,
            bed,
            dir,
        }
    }

    /// Two boards, the collector on srv, an agent per board, after `setup` and a warm-up.
    fn two(tag: &str, extra: &[&str], setup: impl FnOnce(&Bed)) -> Run {
        need_ethtool();
        let dir = scratch(&format!("pieces-{tag}"));
        let bed = Bed::two_boards_as(BASE, tag);
        setup(&bed);
        let collector = Collector::start(&bed.ns("srv"), TWO_COLLECTOR, dir.path());
        let extra: Vec<&str> = RING.iter().chain(extra).copied().collect();
        let mut agents = Vec::new();
        for board in ["a", "b"] {
            let pod = bed.ns(&format!("p{board}"));
            let mut args = vec!["--id", board, "--netns", &pod, "--collector", TWO_COLLECTOR];
            args.extend_from_slice(&extra);
            agents.push(Agent::start(
                &bed.ns(board),
                &args,
                2,
                &format!("agent-{board}"),
                dir.path(),
            ));
        }
        traffic::ping_until_seen(&bed, "pa", POD_B, pi::WARM_UP_ID, 10, &collector, &[]);
        Run {
            agents,
            collector,
            bed,
            dir,
        }
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    /// A marker ping stored on `links` links (everything before it is stored), the agents
    /// stopped (nothing dropped, no kernel drop: the capture is whole), the collector stopped.
    fn finish(&mut self, from: &str, to: &str, links: usize) {
        traffic::ping_until_seen(&self.bed, from, to, MARKER_ID, links, &self.collector, &[]);
        for a in self.agents.drain(..) {
            let s = a.stop();
            eprintln!("  agent: {s:?}");
            assert_eq!(s.records_dropped, 0, "{s:?}");
            assert_eq!(s.kept, s.records_acked, "{s:?}");
            assert_eq!(
                s.kernel_drops, 0,
                "the capture itself lost frames: this test's premise fails: {s:?}"
            );
        }
        self.collector.stop();
    }

    fn journeys(&self) -> Vec<Value> {
        self.collector.json("paths", &[])
    }
}

fn kernel() -> String {
    let out = Command::new("uname").arg("-r").output().expect("uname");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------
// 1 (and 6): TCP upload, segmented at wlan0.

const UP_PORT: u16 = 5001;
const UP_SPORT: u16 = 43001;

fn pi_route(bed: &Bed) -> (Hop, Hop, Hop, Hop) {
    (
        Hop::new(BOARD, &bed.ns("ctr"), "eth0", true),
        Hop::new(BOARD, "", "vethctr", false),
        Hop::new(BOARD, "", "docker0", false),
        Hop::new(BOARD, "", "wlan0", true),
    )
}

fn tcp_upload_segmented(tag: &str, sample: bool) {
    let extra: &[&str] = if sample { &["--sample", "10"] } else { &[] };
    let mut run = Run::pi(tag, extra, &[], |bed| {
        offloads(bed, "pi", "wlan0", &[("tso", false), ("gso", false)]);
    });
    // With 1 in 10 kept, more super-packets so that some are.
    let total: u64 = if sample { 4_000_000 } else { 2_000_000 };
    let far = sink(
        &run.bed,
        "rtr",
        &["tcp-sink", FAR, &UP_PORT.to_string()],
        run.d(),
    );
    send(
        &run.bed,
        "ctr",
        &[
            "tcp-send",
            FAR,
            &UP_PORT.to_string(),
            &UP_SPORT.to_string(),
            &total.to_string(),
            PACE,
        ],
    );
    let got = received(far);
    run.finish("ctr", FAR, 4);
    assert_eq!(got, total, "bytes the far host received");

    let (eth0, veth, docker0, wlan0) = pi_route(&run.bed);
    let obs = stored(&run.collector, UP_PORT);
    let journeys = run.journeys();
    let up = Judgement::of(&journeys, |j| goes(j, UP_SPORT, UP_PORT), &eth0, &wlan0);
    let report = format!(
        "tcp upload {total} bytes, wlan0 tso/gso off{} (kernel {}):\n{}  upload: {}",
        if sample { ", --sample 10" } else { "" },
        kernel(),
        summary(&obs),
        up.line()
    );
    eprintln!("{report}");

    // The bed: super-packets up to wlan0, MSS-sized segments on wlan0 Out.
    for hop in [&eth0, &veth, &docker0] {
        let max = sizes(&obs, hop, "tcp").into_iter().max().unwrap_or(0);
        assert!(
            max > MSS,
            "{}: no super-packet (max {max})\n{report}",
            hop.name()
        );
    }
    let segs = sizes(&obs, &wlan0, "tcp");
    assert!(
        !segs.is_empty() && segs.iter().all(|&n| n <= MSS),
        "wlan0 Out: not MSS-sized segments\n{report}"
    );

    // The collector: one whole journey per super-packet, segmented at wlan0.
    up.check("upload", &report);
    assert!(
        up.events_at("segmented", &wlan0) > 0,
        "no `segmented` event at wlan0 Out\n{report}"
    );
    if sample {
        // Some kept, not all: fewer bytes than were sent.
        assert!(
            up.covered > 0 && up.covered < total,
            "--sample 10 kept {} of {total} bytes\n{report}",
            up.covered
        );
    } else {
        assert_eq!(
            up.covered, total,
            "bytes covered by the upload's journeys\n{report}"
        );
    }
}

#[test]
fn tcp_upload_segmented_at_wlan0() {
    tcp_upload_segmented("t", false);
}

#[test]
fn tcp_upload_segmented_at_wlan0_sampled() {
    tcp_upload_segmented("ts", true);
}

// ---------------------------------------------------------------------------------------
// 2: TCP both ways across the VXLAN overlay, segmented at a:eth0 and b:flannel.1.

const VX_PORT: u16 = 5002;
const VX_SPORT: u16 = 43002;

/// A pod a → pod b packet's links, in order.
fn two_route(bed: &Bed) -> Vec<Hop> {
    let (pa, pb) = (bed.ns("pa"), bed.ns("pb"));
    vec![
        Hop::new("a", &pa, "eth0", true),
        Hop::new("a", "", "vethpa", false),
        Hop::new("a", "", "cni0", false),
        Hop::new("a", "", "flannel.1", true),
        Hop::new("a", "", "eth0", true),
        Hop::new("b", "", "eth0", false),
        Hop::new("b", "", "flannel.1", false),
        Hop::new("b", "", "cni0", true),
        Hop::new("b", "", "vethpb", true),
        Hop::new("b", &pb, "eth0", false),
    ]
}

/// The same route from b to a.
fn two_route_back(bed: &Bed) -> Vec<Hop> {
    two_route(bed)
        .into_iter()
        .rev()
        .map(|h| Hop { out: !h.out, ..h })
        .collect()
}

#[test]
fn tcp_uploads_segmented_across_vxlan() {
    // a:eth0 cannot segment: the VXLAN super-packet (UDP tunnel GSO) is cut up as it leaves
    // a:eth0 (flannel.1 Out still carries it whole). b:flannel.1 cannot segment: b→a
    // packets are cut up as they leave b:flannel.1, and b:eth0 Out carries the segments.
    let mut run = Run::two("v", &[], |bed| {
        // The pods at flannel's MTU (as its CNI config sets it): no PMTU discovery (and its
        // true drops of the first too-large super-packets) in the transfer.
        for (board, pod, veth) in [("a", "pa", "vethpa"), ("b", "pb", "vethpb")] {
            mtu(bed, pod, "eth0", 1450);
            mtu(bed, board, veth, 1450);
            mtu(bed, board, "cni0", 1450);
        }
        offloads(bed, "a", "eth0", &[("tso", false), ("gso", false)]);
        offloads(bed, "b", "flannel.1", &[("tso", false), ("gso", false)]);
    });
    let total: u64 = 1_000_000;
    let port = VX_PORT.to_string();
    let (sport_ab, sport_ba) = (VX_SPORT.to_string(), (VX_SPORT + 1).to_string());
    let to_b = sink(&run.bed, "pb", &["tcp-sink", POD_B, &port], run.d());
    send(
        &run.bed,
        "pa",
        &[
            "tcp-send",
            POD_B,
            &port,
            &sport_ab,
            &total.to_string(),
            PACE,
        ],
    );
    let got_b = received(to_b);
    let to_a = sink(&run.bed, "pa", &["tcp-sink", POD_A, &port], run.d());
    send(
        &run.bed,
        "pb",
        &[
            "tcp-send",
            POD_A,
            &port,
            &sport_ba,
            &total.to_string(),
            PACE,
        ],
    );
    let got_a = received(to_a);
    run.finish("pa", POD_B, 10);
    assert_eq!((got_b, got_a), (total, total), "bytes received by pb, pa");

    let (ab, ba) = (two_route(&run.bed), two_route_back(&run.bed));
    let obs = stored(&run.collector, VX_PORT);
    let journeys = run.journeys();
    let up_ab = Judgement::of(&journeys, |j| goes(j, VX_SPORT, VX_PORT), &ab[0], &ab[9]);
    let up_ba = Judgement::of(
        &journeys,
        |j| goes(j, VX_SPORT + 1, VX_PORT),
        &ba[0],
        &ba[9],
    );
    let report = format!(
        "tcp {total} bytes each way; a:eth0 and b:flannel.1 tso/gso off (kernel {}):\n{}  \
         pa→pb: {}\n  pb→pa: {}",
        kernel(),
        summary(&obs),
        up_ab.line(),
        up_ba.line()
    );
    eprintln!("{report}");

    // The bed. Both directions mix in one summary; the checks per hop and direction.
    let max = |h: &Hop| sizes(&obs, h, "tcp").into_iter().max().unwrap_or(0);
    // pa→pb: super-packets on pa eth0, vethpa, cni0, flannel.1; segments on a:eth0 Out.
    for h in &ab[..4] {
        assert!(
            max(h) > MSS_VXLAN,
            "{}: no super-packet\n{report}",
            h.name()
        );
    }
    assert!(
        max(&ab[4]) > 0 && max(&ab[4]) <= MSS_VXLAN,
        "a:eth0 Out: not segments\n{report}"
    );
    // pb→pa: super-packets on pb eth0, vethpb, cni0; segments from b:flannel.1 Out on.
    for h in &ba[..3] {
        assert!(
            max(h) > MSS_VXLAN,
            "{}: no super-packet\n{report}",
            h.name()
        );
    }
    for h in &ba[3..5] {
        assert!(
            max(h) > 0 && max(h) <= MSS_VXLAN,
            "{}: not segments\n{report}",
            h.name()
        );
    }

    up_ab.check("pa→pb", &report);
    up_ba.check("pb→pa", &report);
    assert!(
        up_ab.events_at("segmented", &ab[4]) > 0,
        "pa→pb: no `segmented` event at a:eth0 Out\n{report}"
    );
    assert!(
        up_ba.events_at("segmented", &ba[3]) > 0,
        "pb→pa: no `segmented` event at b:flannel.1 Out\n{report}"
    );
    // The receiving board's VXLAN GRO merges the segments again (seen on 6.18: b:flannel.1
    // In up to 40542-byte packets from 1398-byte segments on b:eth0 In).
    if max(&ab[6]) > MSS_VXLAN {
        assert!(
            up_ab.events_at("merged", &ab[6]) > 0,
            "pa→pb: b:flannel.1 In merged segments, no `merged` event there\n{report}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3 (and 6): UDP datagrams fragmented at wlan0.

const FRAG_PORT: u16 = 5004;
const FRAG_SPORT: u16 = 43004;

/// Journeys whose whole is a UDP datagram of `sport → dport` (without `whole`: any journey
/// of those ports, as today's correlator gives them).
fn udp_journeys(journeys: &[Value], sport: u16, dport: u16) -> Vec<&Value> {
    journeys
        .iter()
        .filter(|j| goes(j, sport, dport) && whole(j).is_none_or(|(p, _)| p == "udp"))
        .collect()
}

fn udp_fragmented_at_wlan0_case(tag: &str, sample: bool) {
    let extra: &[&str] = if sample { &["--sample", "10"] } else { &[] };
    let mut run = Run::pi(tag, extra, &[], |bed| {
        // The container's side jumbo, wlan0 stays at 1500: the board fragments.
        mtu(bed, "ctr", "eth0", 9000);
        mtu(bed, "pi", "vethctr", 9000);
        mtu(bed, "pi", "docker0", 9000);
    });
    let n: usize = if sample { 100 } else { 20 };
    let size = 3000;
    let far = sink(
        &run.bed,
        "rtr",
        &["udp-sink", FAR, &FRAG_PORT.to_string(), &n.to_string()],
        run.d(),
    );
    send(
        &run.bed,
        "ctr",
        &[
            "udp-send",
            FAR,
            &FRAG_PORT.to_string(),
            &FRAG_SPORT.to_string(),
            &n.to_string(),
            &size.to_string(),
        ],
    );
    let got = received(far);
    run.finish("ctr", FAR, 4);
    assert_eq!(got, n as u64, "datagrams the far host received");

    let (eth0, veth, docker0, wlan0) = pi_route(&run.bed);
    let obs = stored(&run.collector, FRAG_PORT);
    let journeys = run.journeys();
    let udp = udp_journeys(&journeys, FRAG_SPORT, FRAG_PORT);
    let owned: Vec<Value> = udp.iter().map(|j| (*j).clone()).collect();
    let judged = Judgement::of(&owned, |_| true, &eth0, &wlan0);
    let report = format!(
        "udp {n} × {size} bytes, DF off, MTU 9000 up to docker0, wlan0 1500{} (kernel {}):\n{}  \
         {} journeys of the datagrams: {}",
        if sample { ", --sample 10" } else { "" },
        kernel(),
        summary(&obs),
        udp.len(),
        judged.line()
    );
    eprintln!("{report}");

    // The bed: whole datagrams to docker0, fragments on wlan0 Out.
    for hop in [&eth0, &veth, &docker0] {
        let whole_ones = sizes(&obs, hop, "udp");
        assert!(
            !whole_ones.is_empty() && whole_ones.iter().all(|&s| s == size),
            "{}: not whole datagrams\n{report}",
            hop.name()
        );
    }
    assert!(
        !sizes(&obs, &wlan0, "frag").is_empty(),
        "wlan0 Out: no fragments\n{report}"
    );

    // The collector: each datagram one journey, fragmented at wlan0, whole end to end.
    if sample {
        assert!(
            !udp.is_empty() && udp.len() < n,
            "--sample 10 kept {} of {n} datagrams\n{report}",
            udp.len()
        );
    } else {
        assert_eq!(udp.len(), n, "one journey per datagram\n{report}");
    }
    judged.check("datagrams", &report);
    assert_eq!(
        judged.events_at("fragmented", &wlan0),
        udp.len(),
        "a `fragmented` event at wlan0 Out in every datagram's journey\n{report}"
    );
}

#[test]
fn udp_fragmented_at_wlan0() {
    udp_fragmented_at_wlan0_case("u", false);
}

#[test]
fn udp_fragmented_at_wlan0_sampled() {
    udp_fragmented_at_wlan0_case("us", true);
}

// ---------------------------------------------------------------------------------------
// 4: UDP whose VXLAN packet is fragmented at a:eth0.

const VXF_PORT: u16 = 5005;
const VXF_SPORT: u16 = 43005;

#[test]
fn udp_fragmented_at_the_vxlan_hop() {
    let mut run = Run::two("f", &[], |bed| {
        // a:eth0 narrowed to flannel.1's 1450 (the vxlan device keeps its MTU; it refuses
        // one above its lower device's minus 50): a 1450-byte inner packet fits flannel.1,
        // its 1500-byte VXLAN packet does not fit a:eth0.
        mtu(bed, "a", "eth0", 1450);
        for board in ["a", "b"] {
            let shown = String::from_utf8_lossy(
                &bed.exec(board, &["ip", "-d", "link", "show", "flannel.1"])
                    .stdout,
            )
            .into_owned();
            assert!(
                !shown.contains("df set"),
                "{board}:flannel.1 sets DF on the outer header:\n{shown}"
            );
        }
    });
    let n = 20;
    let size = 1422; // inner IP packet 1450 bytes, outer 1500
    let pb = sink(
        &run.bed,
        "pb",
        &["udp-sink", POD_B, &VXF_PORT.to_string(), &n.to_string()],
        run.d(),
    );
    send(
        &run.bed,
        "pa",
        &[
            "udp-send",
            POD_B,
            &VXF_PORT.to_string(),
            &VXF_SPORT.to_string(),
            &n.to_string(),
            &size.to_string(),
        ],
    );
    let got = received(pb);
    run.finish("pa", POD_B, 10);
    assert_eq!(got, n as u64, "datagrams pb received");

    let route = two_route(&run.bed);
    let obs = stored(&run.collector, VXF_PORT);
    let journeys = run.journeys();
    let udp = udp_journeys(&journeys, VXF_SPORT, VXF_PORT);
    let owned: Vec<Value> = udp.iter().map(|j| (*j).clone()).collect();
    let judged = Judgement::of(&owned, |_| true, &route[0], &route[9]);
    let report = format!(
        "udp {n} × {size} bytes pa→pb, DF off, flannel.1 MTU 1450 over a:eth0 1450 (kernel {}):\n{}  \
         {} journeys of the datagrams: {}",
        kernel(),
        summary(&obs),
        udp.len(),
        judged.line()
    );
    eprintln!("{report}");

    // The bed: whole inner datagrams up to flannel.1 Out, outer fragments on a:eth0 Out and
    // b:eth0 In, whole again from b:flannel.1 In. As stored (6.18.44): the FIRST outer
    // fragment (wire 1458 of 1514 bytes, 1424 bytes of outer payload) decodes through VXLAN to
    // the inner packet, so it reads as the whole inner datagram (inner frag fields 0/0, ports,
    // tun_outer_id = the outer IP id; the outer MF bit is not stored); the second (wire 90,
    // 56 bytes at offset 1424, boards' addresses, no ports, no tun_*) shares only that outer
    // IP id.
    for h in route[..4].iter().chain(&route[6..]) {
        assert!(
            sizes(&obs, h, "udp").len() == n,
            "{}: not {n} whole datagrams\n{report}",
            h.name()
        );
    }
    for h in &route[4..6] {
        let frags = obs
            .iter()
            .filter(|o| o.hop_key == *h && o.class.contains("frag"))
            .count();
        assert!(frags >= n, "{}: no outer fragments\n{report}", h.name());
    }

    assert_eq!(udp.len(), n, "one journey per datagram\n{report}");
    judged.check("datagrams", &report);
    assert_eq!(
        judged.events_at("fragmented", &route[4]),
        n,
        "a `fragmented` event at a:eth0 Out in every datagram's journey\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// 5: GRO on the receiving veth.

const GRO_PORT: u16 = 5006;
const GRO_SPORT: u16 = 43006;

/// The router sends MSS-sized segments (its eth0 cannot segment: the segments leave it so);
/// the board's wlan0, a veth with GRO on (NAPI on the veth's receive path), merges them:
/// on 6.18.44, 1448-byte segments on rtr:eth0 Out, wlan0 In up to 65160 bytes (45 segments,
/// GRO's 64 KiB). With GRO off on wlan0 every hop shows the 1448-byte segments.
#[test]
fn tcp_download_merged_by_gro_on_wlan0() {
    // The agent captures the router's namespace too: the segments before the merge.
    let mut run = Run::pi("g", &[], &["rtr"], |bed| {
        bed.sh("rtr", &format!("ip route add 172.17.0.0/16 via {WLAN}"));
        offloads(bed, "rtr", "eth0", &[("tso", false), ("gso", false)]);
        offloads(bed, "pi", "wlan0", &[("gro", true)]);
    });
    let total: u64 = 1_000_000;
    let ctr = sink(
        &run.bed,
        "ctr",
        &["tcp-sink", CTR, &GRO_PORT.to_string()],
        run.d(),
    );
    send(
        &run.bed,
        "rtr",
        &[
            "tcp-send",
            CTR,
            &GRO_PORT.to_string(),
            &GRO_SPORT.to_string(),
            &total.to_string(),
            PACE,
        ],
    );
    let got = received(ctr);
    run.finish("ctr", FAR, 4);
    assert_eq!(got, total, "bytes the container received");

    let rtr_eth0 = Hop::new(BOARD, &run.bed.ns("rtr"), "eth0", true);
    let wlan0 = Hop::new(BOARD, "", "wlan0", false);
    let ctr_eth0 = Hop::new(BOARD, &run.bed.ns("ctr"), "eth0", false);
    let obs = stored(&run.collector, GRO_PORT);
    let journeys = run.journeys();
    let down = Judgement::of(
        &journeys,
        |j| goes(j, GRO_SPORT, GRO_PORT),
        &rtr_eth0,
        &ctr_eth0,
    );
    let report = format!(
        "tcp download {total} bytes, rtr:eth0 tso/gso off, wlan0 gro on (kernel {}):\n{}  \
         download: {}",
        kernel(),
        summary(&obs),
        down.line()
    );
    eprintln!("{report}");

    let segs = sizes(&obs, &rtr_eth0, "tcp");
    assert!(
        !segs.is_empty() && segs.iter().all(|&s| s <= MSS),
        "rtr:eth0 Out: not MSS-sized segments\n{report}"
    );
    let merged = sizes(&obs, &wlan0, "tcp").into_iter().max().unwrap_or(0);
    assert!(
        merged > MSS,
        "wlan0 In: no merged packet (max {merged})\n{report}"
    );

    down.check("download", &report);
    assert!(
        down.events_at("merged", &wlan0) > 0,
        "no `merged` event at wlan0 In\n{report}"
    );
    assert_eq!(
        down.covered, total,
        "bytes covered by the download's journeys\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// 7: UDP GSO (`UDP_SEGMENT`) sends, segmented at wlan0; and merged by UDP GRO on wlan0.

const GSO_PORT: u16 = 5007;
const GSO_SPORT: u16 = 43007;
/// One send: 7 segments of 1400 bytes and one of 1100.
const GSO_LEN: i64 = 10_900;
const GSO_SEG: i64 = 1400;
const GSO_SEGMENTS: usize = 8;

/// The send's pieces on `hop` of a journey: (offset, len).
fn pieces_at(j: &Value, hop: &Hop) -> Vec<(u64, u64)> {
    let hs = hops(j);
    let Some(p) = hs.iter().position(|h| h == hop) else {
        return Vec::new();
    };
    j["hops"][p]["pieces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            (
                x["offset"].as_u64().unwrap_or(0),
                x["len"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn cut_pieces() -> Vec<(u64, u64)> {
    (0..GSO_SEGMENTS as u64)
        .map(|k| {
            let start = k * GSO_SEG as u64;
            (start, (GSO_SEG as u64).min(GSO_LEN as u64 - start))
        })
        .collect()
}

/// The container's UDP GSO sends leave wlan0 (`tx-udp-segmentation off`) as segments:
/// 10 900-byte datagrams on ctr eth0 / vethctr / docker0, 7 × 1400 + 1100 on wlan0 Out.
fn udp_gso_segmented_case(tag: &str, sample: bool) {
    let extra: &[&str] = if sample { &["--sample", "10"] } else { &[] };
    let mut run = Run::pi(tag, extra, &[], |bed| {
        offloads(bed, "pi", "wlan0", &[("tx-udp-segmentation", false)]);
    });
    let n: usize = if sample { 100 } else { 20 };
    let far = sink(
        &run.bed,
        "rtr",
        &[
            "udp-sink",
            FAR,
            &GSO_PORT.to_string(),
            &(n * GSO_SEGMENTS).to_string(),
        ],
        run.d(),
    );
    send(
        &run.bed,
        "ctr",
        &[
            "udp-gso-send",
            FAR,
            &GSO_PORT.to_string(),
            &GSO_SPORT.to_string(),
            &n.to_string(),
            &GSO_LEN.to_string(),
            &GSO_SEG.to_string(),
        ],
    );
    let got = received(far);
    run.finish("ctr", FAR, 4);
    assert_eq!(
        got,
        (n * GSO_SEGMENTS) as u64,
        "segments the far host received"
    );

    let (eth0, veth, docker0, wlan0) = pi_route(&run.bed);
    let obs = stored(&run.collector, GSO_PORT);
    let journeys = run.journeys();
    let udp = udp_journeys(&journeys, GSO_SPORT, GSO_PORT);
    let owned: Vec<Value> = udp.iter().map(|j| (*j).clone()).collect();
    let judged = Judgement::of(&owned, |_| true, &eth0, &wlan0);
    let report = format!(
        "udp gso {n} sends × {GSO_LEN} bytes cut at {GSO_SEG}, wlan0 tx-udp-segmentation \
         off{} (kernel {}):\n{}  {} journeys of the sends: {}",
        if sample { ", --sample 10" } else { "" },
        kernel(),
        summary(&obs),
        udp.len(),
        judged.line()
    );
    eprintln!("{report}");

    // The bed: whole sends up to docker0, segments on wlan0 Out.
    for hop in [&eth0, &veth, &docker0] {
        let whole_ones = sizes(&obs, hop, "udp");
        assert!(
            !whole_ones.is_empty() && whole_ones.iter().all(|&s| s == GSO_LEN),
            "{}: not whole sends\n{report}",
            hop.name()
        );
    }
    let segs = sizes(&obs, &wlan0, "udp");
    assert!(
        !segs.is_empty() && segs.iter().all(|&s| s == GSO_SEG || s == GSO_LEN % GSO_SEG),
        "wlan0 Out: not segments\n{report}"
    );

    // The collector: one journey per send, whole from ctr eth0 to wlan0, segmented at wlan0
    // into all its segments; no segment journey of its own.
    if sample {
        assert!(
            !udp.is_empty() && udp.len() < n,
            "--sample 10 kept {} of {n} sends\n{report}",
            udp.len()
        );
        // What was kept on wlan0 is exactly the kept sends' segments.
        assert_eq!(
            segs.len(),
            udp.len() * GSO_SEGMENTS,
            "segments kept on wlan0 vs sends kept\n{report}"
        );
    } else {
        assert_eq!(udp.len(), n, "one journey per send\n{report}");
    }
    judged.check("sends", &report);
    assert_eq!(
        judged.mid_board, 0,
        "segment journeys of their own\n{report}"
    );
    assert_eq!(
        judged.events_at("segmented", &wlan0),
        udp.len(),
        "a `segmented` event at wlan0 Out in every send's journey\n{report}"
    );
    for j in &udp {
        assert_eq!(
            whole(j),
            Some(("udp", GSO_LEN as u64)),
            "{}\n{report}",
            j["journey"]
        );
        assert_eq!(
            pieces_at(j, &wlan0),
            cut_pieces(),
            "{}: wlan0's pieces\n{report}",
            j["journey"]
        );
    }
}

#[test]
fn udp_gso_segmented_at_wlan0() {
    udp_gso_segmented_case("ug", false);
}

#[test]
fn udp_gso_segmented_at_wlan0_sampled() {
    udp_gso_segmented_case("ugs", true);
}

const GSO_GRO_PORT: u16 = 5008;
const GSO_GRO_SPORT: u16 = 43008;

/// The mirror case: the router's UDP GSO sends leave its eth0 (`tx-udp-segmentation off`)
/// as segments, the board's wlan0 (a veth, `gro on`, `rx-udp-gro-forwarding on`) merges
/// them back into one datagram (the first segment's id) that docker0, vethctr and the
/// container's eth0 carry whole.
#[test]
fn udp_gso_merged_by_gro_on_wlan0() {
    let mut run = Run::pi("ugr", &[], &["rtr"], |bed| {
        bed.sh("rtr", &format!("ip route add 172.17.0.0/16 via {WLAN}"));
        offloads(bed, "rtr", "eth0", &[("tx-udp-segmentation", false)]);
        offloads(
            bed,
            "pi",
            "wlan0",
            &[("gro", true), ("rx-udp-gro-forwarding", true)],
        );
    });
    let n: usize = 20;
    let ctr = sink(
        &run.bed,
        "ctr",
        &[
            "udp-sink",
            CTR,
            &GSO_GRO_PORT.to_string(),
            &(n * GSO_SEGMENTS).to_string(),
        ],
        run.d(),
    );
    send(
        &run.bed,
        "rtr",
        &[
            "udp-gso-send",
            CTR,
            &GSO_GRO_PORT.to_string(),
            &GSO_GRO_SPORT.to_string(),
            &n.to_string(),
            &GSO_LEN.to_string(),
            &GSO_SEG.to_string(),
        ],
    );
    let got = received(ctr);
    run.finish("ctr", FAR, 4);
    assert_eq!(
        got,
        (n * GSO_SEGMENTS) as u64,
        "segments the container received"
    );

    let rtr_eth0 = Hop::new(BOARD, &run.bed.ns("rtr"), "eth0", true);
    let wlan0 = Hop::new(BOARD, "", "wlan0", false);
    let ctr_eth0 = Hop::new(BOARD, &run.bed.ns("ctr"), "eth0", false);
    let obs = stored(&run.collector, GSO_GRO_PORT);
    let journeys = run.journeys();
    let udp = udp_journeys(&journeys, GSO_GRO_SPORT, GSO_GRO_PORT);
    let owned: Vec<Value> = udp.iter().map(|j| (*j).clone()).collect();
    let judged = Judgement::of(&owned, |_| true, &rtr_eth0, &ctr_eth0);
    let report = format!(
        "udp gso {n} sends × {GSO_LEN} bytes cut at {GSO_SEG} from the router, rtr:eth0 \
         tx-udp-segmentation off, wlan0 gro + rx-udp-gro-forwarding on (kernel {}):\n{}  {} \
         journeys of the sends: {}",
        kernel(),
        summary(&obs),
        udp.len(),
        judged.line()
    );
    eprintln!("{report}");

    let segs = sizes(&obs, &rtr_eth0, "udp");
    assert!(
        !segs.is_empty() && segs.iter().all(|&s| s <= GSO_SEG),
        "rtr:eth0 Out: not segments\n{report}"
    );
    let merged = sizes(&obs, &wlan0, "udp");
    assert!(
        !merged.is_empty() && merged.iter().all(|&s| s == GSO_LEN),
        "wlan0 In: not merged sends\n{report}"
    );

    assert_eq!(udp.len(), n, "one journey per send\n{report}");
    judged.check("sends", &report);
    assert_eq!(
        judged.events_at("merged", &wlan0),
        n,
        "a `merged` event at wlan0 In in every send's journey\n{report}"
    );
    for j in &udp {
        assert_eq!(
            pieces_at(j, &rtr_eth0),
            cut_pieces(),
            "{}: rtr:eth0's pieces\n{report}",
            j["journey"]
        );
    }
}
