//! What the tests expect: each flow they make, the links its packets must cross in order (its
//! route), the addresses each link shows (NAT), and tunnels; and observations as the
//! collector's `timeline --json`, `paths --json` and the agent's `--json` show them.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4 {
    Icmp,
    Tcp,
    Udp,
}

/// Addresses and ports of a packet as one link shows it (ICMP echo: both ports are the id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends {
    pub src: &'static str,
    pub sport: u16,
    pub dst: &'static str,
    pub dport: u16,
}

impl Ends {
    pub fn icmp(src: &'static str, dst: &'static str, id: u16) -> Ends {
        Ends {
            src,
            sport: id,
            dst,
            dport: id,
        }
    }

    pub fn reversed(self) -> Ends {
        Ends {
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// One link crossing: board, namespace label ("" = the board's own), link, direction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    pub board: String,
    pub netns: String,
    pub link: String,
    pub out: bool,
}

impl Hop {
    pub fn new(board: &str, netns: &str, link: &str, out: bool) -> Hop {
        Hop {
            board: board.into(),
            netns: netns.into(),
            link: link.into(),
            out,
        }
    }

    /// The same link crossed the other way.
    fn flipped(&self) -> Hop {
        Hop {
            out: !self.out,
            ..self.clone()
        }
    }

    /// `netns:link`, or `board:link` in the board's own namespace (as `paths` names hops).
    pub fn name(&self) -> String {
        let ns = if self.netns.is_empty() {
            &self.board
        } else {
            &self.netns
        };
        format!("{ns}:{}", self.link)
    }
}

/// Which way a packet of a flow goes: as the flow was defined, or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Way {
    Forward,
    Back,
}

/// An overlay tunnel on hops `first..=last` of the forward route.
#[derive(Clone, Debug)]
pub struct TunnelSpec {
    pub kind: &'static str,
    pub id: u32,
    pub src: &'static str,
    pub dst: &'static str,
    pub dst_port: u16,
    pub first: usize,
    pub last: usize,
}

/// A conversation the test makes: its forward route, and the addresses each hop shows.
#[derive(Clone, Debug)]
pub struct Flow {
    pub name: &'static str,
    pub l4: L4,
    pub route: Vec<Hop>,
    /// Per hop of `route`, the forward packet's addresses there.
    pub views: Vec<Ends>,
    pub tunnel: Option<TunnelSpec>,
}

impl Flow {
    /// The way a sighting goes in this flow, if it is one of its packets.
    pub fn classify(&self, s: &Sighting) -> Option<Way> {
        if s.l4.is_some_and(|l| l != self.l4) {
            return None;
        }
        if self.views.iter().any(|e| s.shows(*e)) {
            Some(Way::Forward)
        } else if self.views.iter().any(|e| s.shows(e.reversed())) {
            Some(Way::Back)
        } else {
            None
        }
    }

    /// The hops a packet going `way` crosses, in order, with the addresses each shows.
    pub fn expected(&self, way: Way) -> Vec<(Hop, Ends)> {
        let pairs = self.route.iter().cloned().zip(self.views.iter().copied());
        match way {
            Way::Forward => pairs.collect(),
            Way::Back => pairs
                .rev()
                .map(|(h, e)| (h.flipped(), e.reversed()))
                .collect(),
        }
    }

    /// The rewrites `paths --json` must list for a packet going `way` (its `nat` array).
    pub fn expected_nat(&self, way: Way) -> Vec<Value> {
        let hops = self.expected(way);
        let mut out = Vec::new();
        for (at, pair) in hops.windows(2).enumerate() {
            let ((_, b), (hop, a)) = (&pair[0], &pair[1]);
            let icmp = self.l4 == L4::Icmp;
            let sides = [
                ("SNAT", (b.src, b.sport), (a.src, a.sport)),
                ("DNAT", (b.dst, b.dport), (a.dst, a.dport)),
            ];
            for (kind, before, after) in sides {
                if before != after {
                    let port = !icmp && before.1 != after.1;
                    let show = |(addr, p): (&str, u16)| {
                        if port {
                            format!("{addr}:{p}")
                        } else {
                            addr.to_string()
                        }
                    };
                    out.push(
                        json!({"kind": kind, "before": show(before), "after": show(after),
                                    "at": at + 1, "link": hop.name()}),
                    );
                }
            }
        }
        out
    }

    /// The tunnels `paths --json` must list for a packet going `way` (without `label`).
    pub fn expected_tunnels(&self, way: Way) -> Vec<Value> {
        let Some(t) = &self.tunnel else {
            return Vec::new();
        };
        let n = self.route.len() - 1;
        let (src, dst, first, last) = match way {
            Way::Forward => (t.src, t.dst, t.first, t.last),
            Way::Back => (t.dst, t.src, n - t.last, n - t.first),
        };
        vec![
            json!({"kind": t.kind, "id": t.id, "src": src, "dst": dst, "dst_port": t.dst_port,
                    "first_hop": first, "last_hop": last}),
        ]
    }
}

/// One observation of an IP packet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sighting {
    pub hop: Hop,
    pub ts_ns: u64,
    pub fingerprint: u64,
    pub wire_len: u64,
    /// None when the source does not say (a `paths` hop of TCP or UDP).
    pub l4: Option<L4>,
    pub src: String,
    pub dst: String,
    pub sport: u16,
    pub dport: u16,
}

impl Sighting {
    pub fn shows(&self, e: Ends) -> bool {
        self.src == e.src && self.dst == e.dst && self.sport == e.sport && self.dport == e.dport
    }

    /// A line of `timeline --json` or of the agent's `--json` (None: not an IP packet).
    pub fn from_observation(v: &Value) -> Option<Sighting> {
        let (sec, ns) = v["ts"].as_str()?.split_once('.')?;
        let sum = &v["summary"];
        let net = &sum["net"];
        if !matches!(net["kind"].as_str()?, "ipv4" | "ipv6") {
            return None;
        }
        let t = &sum["transport"];
        let port = |k: &str| t[k].as_u64().unwrap_or(0) as u16;
        let (l4, sport, dport) = match t["kind"].as_str() {
            Some("tcp") => (Some(L4::Tcp), port("src_port"), port("dst_port")),
            Some("udp") => (Some(L4::Udp), port("src_port"), port("dst_port")),
            Some("icmp") => (Some(L4::Icmp), port("id"), port("id")),
            _ => (None, 0, 0),
        };
        Some(Sighting {
            hop: Hop::new(
                v["board"].as_str()?,
                v["netns"].as_str()?,
                v["link"].as_str()?,
                v["dir"].as_str()? == "Out",
            ),
            ts_ns: sec.parse::<u64>().ok()? * 1_000_000_000 + ns.parse::<u64>().ok()?,
            fingerprint: u64::from_str_radix(v["fingerprint"].as_str()?, 16).ok()?,
            wire_len: v["wire_len"].as_u64()?,
            l4,
            src: net["src"].as_str()?.into(),
            dst: net["dst"].as_str()?.into(),
            sport,
            dport,
        })
    }

    /// Hop `h` of a `paths --json` journey `j`.
    pub fn from_path_hop(j: &Value, h: &Value) -> Option<Sighting> {
        let packet = j["packet"].as_str().unwrap_or("");
        let l4 = if packet.starts_with("ICMP") {
            Some(L4::Icmp)
        } else if packet.starts_with("TCP") {
            Some(L4::Tcp)
        } else if packet.starts_with("UDP") {
            Some(L4::Udp)
        } else {
            None
        };
        let port = |k: &str| h[k].as_u64().or(h["icmp_id"].as_u64()).unwrap_or(0) as u16;
        Some(Sighting {
            hop: Hop::new(
                h["board"].as_str()?,
                h["netns"].as_str()?,
                h["link"].as_str()?,
                h["dir"].as_str()? == "Out",
            ),
            ts_ns: epoch_ns(h["ts"].as_str()?)?,
            fingerprint: u64::from_str_radix(
                j["fingerprint"].as_str()?.trim_start_matches("0x"),
                16,
            )
            .ok()?,
            wire_len: h["wire_len"].as_u64()?,
            l4,
            src: h["src"].as_str()?.into(),
            dst: h["dst"].as_str()?.into(),
            sport: port("sport"),
            dport: port("dport"),
        })
    }
}

/// `"1795694400.123456789"` (how every JSON output writes a time) as ns.
fn epoch_ns(text: &str) -> Option<u64> {
    let (secs, nanos) = text.split_once('.')?;
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + nanos.parse::<u64>().ok()?)
}
