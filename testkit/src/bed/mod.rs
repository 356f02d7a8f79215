//! Synthetic test beds: link tables and observations built from real-looking summaries, with
//! the true packet behind every observation kept aside, so tests and the bench can score the
//! correlation (completeness, false merges) without a capture. Ready-made networks:
//! [`pi_docker`], [`flannel`], [`flood`]; scoring: [`score`].
//!
//! A bed hands out proto-level data only ([`Parts`]: link tables per board, observations per
//! board, the truth); the collector turns them into its own `Topology` and `Hop`s.

mod nets;

pub use nets::*;

use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind, Observation, Peer};
use hopcap_proto::summary::{Ip, Net, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, Mac, PacketType};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A link to add to a [`Bed`].
#[derive(Clone, Debug)]
pub struct LinkSpec {
    board: String,
    info: LinkInfo,
}

pub fn link(board: &str, netns: &str, name: &str, ifindex: u32, kind: LinkKind) -> LinkSpec {
    LinkSpec {
        board: board.into(),
        info: LinkInfo {
            key: 0,
            netns: netns.try_into().unwrap_or_default(),
            name: name.try_into().unwrap_or_default(),
            ifindex,
            kind,
            mac: Mac([2, 0, 0, 0, 0, ifindex as u8]),
            mtu: 1500,
            addrs: heapless::Vec::new(),
            master: None,
            peer: None,
            up: true,
        },
    }
}

impl LinkSpec {
    pub fn peer(mut self, ifindex: u32, netns: &str) -> LinkSpec {
        self.info.peer = Some(Peer {
            ifindex,
            netns: netns.try_into().unwrap_or_default(),
        });
        self
    }
    pub fn master(mut self, ifindex: u32) -> LinkSpec {
        self.info.master = Some(ifindex);
        self
    }
    pub fn addr(mut self, a: [u8; 4], prefix: u8) -> LinkSpec {
        let _ = self.info.addrs.push(hopcap_proto::record::LinkAddr {
            addr: Addr::V4(a),
            prefix,
        });
        self
    }
}

/// Links and observations under construction. Board clocks may be skewed: [`Bed::see`] takes
/// true time and stamps it with the board's clock.
#[derive(Debug, Default)]
pub struct Bed {
    links: Vec<(String, Vec<LinkInfo>)>,
    /// (board, observation, true packet).
    seen: Vec<(String, Observation, usize)>,
    skew: HashMap<String, i64>,
    /// Fingerprints ignore ICMP seq and IP id: every echo of one length collides.
    pub collide: bool,
}

/// What a finished bed hands over.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    /// Each board's link table, boards in the order their first link was added.
    pub links: Vec<(String, Vec<LinkInfo>)>,
    /// (board, observation), in the order they were seen.
    pub hops: Vec<(String, Observation)>,
    /// The true packet behind each hop.
    pub truth: Vec<usize>,
}

/// A link's address in a bed: (board, key).
pub type At = (&'static str, LinkKey);

impl Bed {
    pub fn new() -> Bed {
        Bed::default()
    }

    pub fn add(&mut self, spec: LinkSpec) -> LinkKey {
        let pos = match self.links.iter().position(|(b, _)| *b == spec.board) {
            Some(p) => p,
            None => {
                self.links.push((spec.board.clone(), Vec::new()));
                self.links.len() - 1
            }
        };
        let table = &mut self.links[pos].1;
        let mut info = spec.info;
        info.key = table.len() as LinkKey;
        let key = info.key;
        table.push(info);
        key
    }

    /// The board's clock reads true time + `skew_ns`.
    pub fn set_skew(&mut self, board: &str, skew_ns: i64) {
        self.skew.insert(board.into(), skew_ns);
    }

    /// Each board's link table so far.
    pub fn links(&self) -> &[(String, Vec<LinkInfo>)] {
        &self.links
    }

    /// The link `key` of `board`.
    pub fn link(&self, board: &str, key: LinkKey) -> Option<&LinkInfo> {
        let (_, table) = self.links.iter().find(|(b, _)| b == board)?;
        table.iter().find(|l| l.key == key)
    }

    /// Records true packet `packet` on `at` at true time `t_ns`.
    pub fn see(&mut self, packet: usize, at: At, out: bool, t_ns: u64, s: &Summary) {
        let skew = self.skew.get(at.0).copied().unwrap_or(0);
        let ts_ns = t_ns.saturating_add_signed(skew);
        let ip_len = match s.net {
            Net::Ip(ip) => u32::from(ip.payload_len) + 20,
            _ => 28,
        };
        let wire_len = 14 + ip_len + 50 * s.tunnels.len() as u32;
        let obs = Observation {
            ts_ns,
            link: at.1,
            order: 0,
            pkttype: if out {
                PacketType::OUTGOING
            } else {
                PacketType::HOST
            },
            wire_len,
            cap_len: wire_len.min(128),
            fingerprint: fingerprint(s, self.collide),
            summary: s.clone(),
        };
        self.seen.push((at.0.into(), obs, packet));
    }

    /// The hops, with capture order assigned per socket (board + namespace) the way the
    /// kernel delivers them (by time, then by the order they were seen), and the true packet
    /// behind each hop.
    pub fn into_parts(self) -> Parts {
        let mut idx: Vec<usize> = (0..self.seen.len()).collect();
        idx.sort_by_key(|&i| (self.seen[i].1.ts_ns, i));
        let mut next: HashMap<(String, String), u64> = HashMap::new();
        let mut orders = vec![0; self.seen.len()];
        for i in idx {
            let (board, obs, _) = &self.seen[i];
            let netns = self
                .link(board, obs.link)
                .map(|l| l.netns.as_str())
                .unwrap_or("");
            let n = next.entry((board.clone(), netns.into())).or_insert(0);
            orders[i] = *n;
            *n += 1;
        }
        let mut parts = Parts {
            links: self.links,
            ..Parts::default()
        };
        for ((board, mut obs, packet), order) in self.seen.into_iter().zip(orders) {
            obs.order = order;
            parts.hops.push((board, obs));
            parts.truth.push(packet);
        }
        parts
    }
}

/// A stand-in for the proto fingerprint: hashes what stays the same from hop to hop (IP id,
/// lengths, ICMP type/seq, TCP seq/ack/flags), never addresses, ports, ICMP id, TTL or tunnels.
pub fn fingerprint(s: &Summary, collide: bool) -> u64 {
    let mut h = DefaultHasher::new();
    s.ethertype.0.hash(&mut h);
    if let Net::Ip(ip) = s.net {
        (
            ip.proto.0,
            ip.payload_len,
            ip.frag_offset,
            ip.more_fragments,
        )
            .hash(&mut h);
        if !collide {
            ip.id.hash(&mut h);
        }
    }
    match s.transport {
        Transport::Icmp { ty, code, seq, .. } => {
            (ty, code, if collide { 0 } else { seq }).hash(&mut h)
        }
        Transport::Tcp {
            seq, ack, flags, ..
        } => (seq, ack, flags).hash(&mut h),
        Transport::Udp { length, .. } => length.hash(&mut h),
        Transport::None => {}
    }
    h.finish()
}

fn ip4(src: [u8; 4], dst: [u8; 4], proto: IpProto, id: u16, payload_len: u16) -> Net {
    Net::Ip(Ip {
        src: Addr::V4(src),
        dst: Addr::V4(dst),
        proto,
        ttl: 64,
        id: u32::from(id),
        frag_offset: 0,
        more_fragments: false,
        payload_len,
    })
}

fn summary(ethertype: EtherType, net: Net, transport: Transport) -> Summary {
    Summary {
        net,
        transport,
        ethertype,
        ..Summary::empty()
    }
}

/// An ICMP echo request (or reply) with 56 bytes of data, as `ping` sends.
pub fn icmp_echo(
    src: [u8; 4],
    dst: [u8; 4],
    request: bool,
    id: u16,
    seq: u16,
    ip_id: u16,
) -> Summary {
    let ty = if request { 8 } else { 0 };
    let net = ip4(src, dst, IpProto::ICMP, ip_id, 64);
    summary(
        EtherType::IPV4,
        net,
        Transport::Icmp {
            ty,
            code: 0,
            id,
            seq,
        },
    )
}

/// A TCP segment with `data` payload bytes.
pub fn tcp4(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    flags: u16,
    ip_id: u16,
    data: u16,
) -> Summary {
    let net = ip4(src.0, dst.0, IpProto::TCP, ip_id, 20 + data);
    let (src_port, dst_port) = (src.1, dst.1);
    let transport = Transport::Tcp {
        src_port,
        dst_port,
        seq,
        ack: 1,
        flags,
        window: 502,
        hdr_len: 20,
    };
    summary(EtherType::IPV4, net, transport)
}

/// A TCP segment over IPv6: no IP id, so a retransmission has the same fingerprint.
pub fn tcp6(src: (u8, u16), dst: (u8, u16), seq: u32, data: u16) -> Summary {
    let v6 = |last: u8| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = last;
        Addr::V6(a)
    };
    let net = Net::Ip(Ip {
        src: v6(src.0),
        dst: v6(dst.0),
        proto: IpProto::TCP,
        ttl: 64,
        id: 0,
        frag_offset: 0,
        more_fragments: false,
        payload_len: 20 + data,
    });
    let transport = Transport::Tcp {
        src_port: src.1,
        dst_port: dst.1,
        seq,
        ack: 1,
        flags: 0x018,
        window: 502,
        hdr_len: 20,
    };
    summary(EtherType::IPV6, net, transport)
}

/// `s` with its source address rewritten (and the ICMP id, if given).
pub fn with_src(s: &Summary, src: [u8; 4], icmp_id: Option<u16>) -> Summary {
    let mut s = s.clone();
    if let Net::Ip(ip) = &mut s.net {
        ip.src = Addr::V4(src);
    }
    if let (Transport::Icmp { id, .. }, Some(new)) = (&mut s.transport, icmp_id) {
        *id = new;
    }
    s
}

/// `s` with its destination address rewritten.
pub fn with_dst(s: &Summary, dst: [u8; 4]) -> Summary {
    let mut s = s.clone();
    if let Net::Ip(ip) = &mut s.net {
        ip.dst = Addr::V4(dst);
    }
    s
}

/// `s` inside VXLAN (UDP 8472, as flannel uses).
pub fn vxlan(s: &Summary, vni: u32, outer: ([u8; 4], [u8; 4]), outer_id: u16) -> Summary {
    let mut s = s.clone();
    let t = Tunnel {
        kind: TunnelKind::Vxlan { vni },
        src: Addr::V4(outer.0),
        dst: Addr::V4(outer.1),
        outer_id,
        src_port: 40000 + outer_id % 1000,
        dst_port: 8472,
    };
    let _ = s.tunnels.push(t);
    s
}
