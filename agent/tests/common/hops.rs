//! What the agent saw, as one flat record per observation (from its `--json` lines or from
//! the batches it sent a collector), and the checks of a packet's path through the bed.

use hopcap_agent::sys::socket::PacketSocket;
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Net, Transport};
use hopcap_proto::types::PacketType;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The agent's timestamp step where the tests run, in ns: 1 natively (the ring, or
/// SO_TIMESTAMPNS on the recv path), 1000 under qemu-user, which emulates only SO_TIMESTAMP.
pub fn timestamp_step_ns() -> u32 {
    static STEP: OnceLock<u32> = OnceLock::new();
    *STEP.get_or_init(|| {
        PacketSocket::open()
            .and_then(|socket| socket.enable_timestamps())
            .expect("packet socket with kernel timestamps")
    })
}

/// One packet on one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Position in the agent's output.
    pub line: usize,
    /// `role:name` for a link in another namespace (`ctr:eth0`), else the name (`wlan0`).
    pub link: String,
    /// The namespace label as the agent gave it ("" for its own): one socket each.
    pub netns: String,
    pub dir: &'static str,
    pub ts_ns: u64,
    pub order: u64,
    pub fingerprint: u64,
    pub l4: &'static str,
    pub src: String,
    pub dst: String,
    pub ttl: u8,
    /// Ports; for ICMP echo the id twice.
    pub sport: u16,
    pub dport: u16,
    /// TCP flags; ICMP type.
    pub flags: u16,
}

fn dir_of(name: &str) -> &'static str {
    if name == "Out" {
        "Out"
    } else {
        "In"
    }
}

/// A `ctr:eth0`-style label, the bed's prefix taken off the namespace.
fn label(prefix: &str, netns: &str, name: &str) -> String {
    if netns.is_empty() {
        return name.to_string();
    }
    let role = netns
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .unwrap_or(netns);
    format!("{role}:{name}")
}

/// Parses one line of `--json` output; `None` for a line that is not an IP observation.
pub fn from_json(prefix: &str, line_no: usize, line: &str) -> Option<Seen> {
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("line {line_no} is not JSON ({e}): {line}"));
    let s = |v: &Value| v.as_str().map(str::to_string);
    let n = |v: &Value| v.as_u64();
    let net = &v["summary"]["net"];
    if !matches!(net["kind"].as_str(), Some("ipv4" | "ipv6")) {
        return None;
    }
    let t = &v["summary"]["transport"];
    let kind = match t["kind"].as_str() {
        Some("tcp") => "tcp",
        Some("udp") => "udp",
        Some("icmp") => "icmp",
        _ => "other",
    };
    let (sport, dport, flags) = match kind {
        "tcp" | "udp" => (
            n(&t["src_port"])?,
            n(&t["dst_port"])?,
            n(&t["flags"]).unwrap_or(0),
        ),
        "icmp" => (n(&t["id"])?, n(&t["id"])?, n(&t["type"])?),
        _ => (0, 0, 0),
    };
    let ts = v["ts"].as_str()?;
    let (sec, ns) = ts.split_once('.')?;
    let netns = s(&v["netns"])?;
    let link = label(prefix, &netns, v["link"].as_str()?);
    Some(Seen {
        line: line_no,
        link,
        netns,
        dir: dir_of(v["dir"].as_str()?),
        ts_ns: sec.parse::<u64>().ok()? * 1_000_000_000 + ns.parse::<u64>().ok()?,
        order: n(&v["order"])?,
        fingerprint: u64::from_str_radix(v["fingerprint"].as_str()?, 16).ok()?,
        l4: kind,
        src: s(&net["src"])?,
        dst: s(&net["dst"])?,
        ttl: n(&net["ttl"])? as u8,
        sport: sport as u16,
        dport: dport as u16,
        flags: flags as u16,
    })
}

/// Every IP observation of an agent's `--json` output.
pub fn parse_output(prefix: &str, lines: &[String]) -> Vec<Seen> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| from_json(prefix, i, l))
        .collect()
}

/// The same record from an observation a collector received; `link` is (netns, name) of its key.
pub fn from_observation(
    prefix: &str,
    n: usize,
    o: &Observation,
    link: (&str, &str),
) -> Option<Seen> {
    let Net::Ip(ip) = o.summary.net else {
        return None;
    };
    let (l4, sport, dport, flags) = match o.summary.transport {
        Transport::Tcp {
            src_port,
            dst_port,
            flags,
            ..
        } => ("tcp", src_port, dst_port, flags),
        Transport::Udp {
            src_port, dst_port, ..
        } => ("udp", src_port, dst_port, 0),
        Transport::Icmp { ty, id, .. } => ("icmp", id, id, u16::from(ty)),
        Transport::None => ("other", 0, 0, 0),
    };
    Some(Seen {
        line: n,
        link: label(prefix, link.0, link.1),
        netns: link.0.to_string(),
        dir: if o.pkttype == PacketType::OUTGOING {
            "Out"
        } else {
            "In"
        },
        ts_ns: o.ts_ns,
        order: o.order,
        fingerprint: o.fingerprint,
        l4,
        src: ip.src.to_string(),
        dst: ip.dst.to_string(),
        ttl: ip.ttl,
        sport,
        dport,
        flags,
    })
}

/// A packet leaving the container for the world: the container's eth0, its veth and the
/// bridge on the board, then the uplink (where MASQUERADE has rewritten it).
pub const OUTBOUND: [(&str, &str); 4] = [
    ("ctr:eth0", "Out"),
    ("vethctr", "In"),
    ("docker0", "In"),
    ("wlan0", "Out"),
];
/// A packet from the world to the container, the same links backwards.
pub const INBOUND: [(&str, &str); 4] = [
    ("wlan0", "In"),
    ("docker0", "Out"),
    ("vethctr", "Out"),
    ("ctr:eth0", "In"),
];

/// Addresses and ports of a packet as one link shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends<'a> {
    pub src: &'a str,
    pub sport: u16,
    pub dst: &'a str,
    pub dport: u16,
}

impl Ends<'_> {
    fn reversed(self) -> Self {
        Ends {
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
    fn matches(&self, s: &Seen, ports: bool) -> bool {
        s.src == self.src
            && s.dst == self.dst
            && (!ports || (s.sport == self.sport && s.dport == self.dport))
    }
}

/// One conversation through the bed, by its container → world direction as seen inside
/// (container side of docker0) and outside (on wlan0, after NAT).
#[derive(Clone, Copy, Debug)]
pub struct Flow<'a> {
    pub l4: &'static str,
    pub inside: Ends<'a>,
    pub outside: Ends<'a>,
    /// Match ports too (ICMP: the echo id, which may be rewritten by NAT: not matched).
    pub ports: bool,
}

/// Which way a packet of a flow goes, and which side of the NAT a link shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Outbound,
    Inbound,
}

impl Flow<'_> {
    /// The way of `s` and whether it shows the outside (post-NAT) addresses.
    pub fn classify(&self, s: &Seen) -> Option<(Way, bool)> {
        if s.l4 != self.l4 {
            return None;
        }
        let p = self.ports;
        [
            (self.inside, Way::Outbound, false),
            (self.outside, Way::Outbound, true),
            (self.inside.reversed(), Way::Inbound, false),
            (self.outside.reversed(), Way::Inbound, true),
        ]
        .into_iter()
        .find(|(e, _, _)| e.matches(s, p))
        .map(|(_, w, outside)| (w, outside))
    }

    /// The observations of this flow, by fingerprint.
    pub fn packets<'s>(&self, seen: &'s [Seen]) -> BTreeMap<u64, Vec<&'s Seen>> {
        let mut by_fp: BTreeMap<u64, Vec<&Seen>> = BTreeMap::new();
        for s in seen.iter().filter(|s| self.classify(s).is_some()) {
            by_fp.entry(s.fingerprint).or_default().push(s);
        }
        by_fp
    }
}

/// Checks one packet (all observations with one fingerprint) against the links it must
/// cross, `path` cut down to the links the agent was asked to capture (`captured`):
/// every link exactly once, in output order, with the right direction, non-decreasing
/// timestamps, increasing capture order on each socket, the NAT side each link shows
/// (wlan0 outside, the rest inside), and TTL one less after the board forwarded it.
/// Returns the way the packet went.
pub fn check_packet(
    flow: &Flow<'_>,
    hops: &[&Seen],
    captured: &dyn Fn(&str) -> bool,
) -> Result<Way, String> {
    let show = || {
        hops.iter()
            .map(|s| format!("\n  {s:?}"))
            .collect::<String>()
    };
    let ways: Vec<(Way, bool)> = hops.iter().filter_map(|s| flow.classify(s)).collect();
    let way = ways.first().ok_or("no hop")?.0;
    if ways.iter().any(|w| w.0 != way) {
        return Err(format!("one fingerprint in both directions:{}", show()));
    }
    let path: Vec<(&str, &str)> = match way {
        Way::Outbound => OUTBOUND,
        Way::Inbound => INBOUND,
    }
    .into_iter()
    .filter(|(l, _)| captured(l))
    .collect();
    let mut in_order: Vec<&Seen> = hops.to_vec();
    in_order.sort_by_key(|s| s.line);
    if timestamp_step_ns() > 1 {
        // Whole-µs timestamps (qemu-user): hops on different sockets within one µs carry no
        // order, so the agent may print them either way. Within such a tie take the path's
        // order; time order and each socket's capture order are still checked below.
        let pos = |s: &Seen| path.iter().position(|p| *p == (s.link.as_str(), s.dir));
        for tie in in_order.chunk_by_mut(|a, b| a.ts_ns == b.ts_ns) {
            tie.sort_by_key(|s| pos(s));
        }
    }
    let got: Vec<(&str, &str)> = in_order.iter().map(|s| (s.link.as_str(), s.dir)).collect();
    if got != path {
        return Err(format!(
            "{way:?} packet: hops {got:?}, expected {path:?}:{}",
            show()
        ));
    }
    for pair in in_order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.ts_ns < a.ts_ns {
            return Err(format!(
                "time goes back from {} to {}:{}",
                a.link,
                b.link,
                show()
            ));
        }
        if a.netns == b.netns && b.order <= a.order {
            return Err(format!(
                "capture order {} then {}:{}",
                a.order,
                b.order,
                show()
            ));
        }
    }
    for (s, (_, outside)) in hops.iter().zip(&ways) {
        if *outside != (s.link == "wlan0") {
            return Err(format!(
                "{} shows the wrong side of the NAT:{}",
                s.link,
                show()
            ));
        }
    }
    // The board forwards between docker0 and wlan0: one less on the far side.
    let ttls = |inside: bool| {
        let mut t: Vec<u8> = hops
            .iter()
            .filter(|s| (s.link != "wlan0") == inside)
            .map(|s| s.ttl)
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let (inside, outside) = (ttls(true), ttls(false));
    if inside.len() > 1 || outside.len() > 1 {
        return Err(format!("TTL changes without a router:{}", show()));
    }
    if let (Some(&i), Some(&o)) = (inside.first(), outside.first()) {
        let forwarded = match way {
            Way::Outbound => i.checked_sub(1) == Some(o),
            Way::Inbound => o.checked_sub(1) == Some(i),
        };
        if !forwarded {
            return Err(format!("TTL not one less after forwarding:{}", show()));
        }
    }
    Ok(way)
}

/// Checks every packet of `flow` and counts them per way: (outbound, inbound).
pub fn check_flow(
    flow: &Flow<'_>,
    seen: &[Seen],
    captured: &dyn Fn(&str) -> bool,
) -> (usize, usize) {
    let mut counts = (0, 0);
    for (fp, hops) in flow.packets(seen) {
        match check_packet(flow, &hops, captured) {
            Ok(Way::Outbound) => counts.0 += 1,
            Ok(Way::Inbound) => counts.1 += 1,
            Err(e) => panic!("{flow:?}\npacket {fp:016x}: {e}"),
        }
    }
    counts
}

/// Every link is captured.
pub fn all(_: &str) -> bool {
    true
}
