//! Packets that split and merge on the way: which journeys are pieces of one whole.
//!
//! A journey is first built from one fingerprint (`journey`), so a packet seen whole on some
//! hops and as pieces on others arrives here as several journeys: a TCP super-packet (GSO)
//! that vanished at docker0 and its MTU-sized segments that appeared at wlan0; segments that
//! GRO merged on the receiving board; a datagram and its IP fragments. Pieces are tied to
//! their whole by what they keep of it:
//! - **TCP** (`Family::Tcp`): GSO copies the header to every segment and GRO merges only
//!   segments that agree on it, so pieces share ack, window, IP version and the flags other
//!   than CWR (first segment only), PSH and FIN (last only); their sequence ranges lie
//!   within the whole's. NAT rewrites neither.
//! - **IP datagrams** (`Family::Datagram`): fragments share the IPv4 id (IPv6: the fragment
//!   header's id) and protocol; their byte ranges are the fragment offsets. A tunnel's
//!   outer packet fragmented on the underlay shows its first fragment as the inner packet
//!   (decoded through the tunnel) and its other fragments as bare outer IPv4: the inner
//!   packet's tunnel hops carry the outer id, and the other fragments join them there.
//! - **UDP GSO** (`Family::UdpGso`): a `UDP_SEGMENT` send and its segments, each a datagram
//!   with its own header, are tied apart from these families, by the flow, the IPv4 ids and
//!   the segment boundaries (`udp_gso`); their compounds join the others here.
//!
//! Within a family, in time order:
//! - Y **continues** X when their ranges overlap, they share no link (a link sees each byte
//!   of one transmission once), and Y starts after X did, within the window of X's last hop.
//!   (X need not have vanished: segments that reach a board's own address before the
//!   reverse NAT and GRO merge them were "delivered" on their own; and X may have hops after
//!   Y, when GRO merged the pieces back into the whole's own fingerprint.)
//! - A member that continues nothing is an **anchor**: what a sender sent as one packet. A
//!   retransmission shares the sender's links with the original, so it is an anchor of its
//!   own and the original's fate stays its own.
//! - A continuation joins the anchors it continues: for each of its bytes the latest anchor
//!   that covers them (a piece of a retransmitted whole goes with the retransmission, not
//!   with the lost original). A piece that straddles two wholes (GRO merged segments of two
//!   sends) joins both.
//! - Fragments of one datagram that every hop saw as fragments are anchors on the same
//!   first link at nearly the same moment with the same addresses: siblings, one journey.

use super::order::Ordered;
use super::view::View;
use super::Hop;
use hopcap_proto::summary::{Net, Summary, Transport};
use hopcap_proto::types::{Addr, IpProto};

/// TCP flags a segment may differ in from the other pieces of its whole.
const EDGE_FLAGS: u16 = 0x080 | 0x008 | 0x001; // CWR, PSH, FIN
/// TCP flags that never ride on a piece: SYN, RST.
const NOT_PIECES: u16 = 0x002 | 0x004;
/// Fragments of one datagram pass a link back to back: siblings lie within this span.
const SIBLING_GAP_NS: i64 = 50_000_000;
/// An unfragmented datagram at most this long (the minimum IPv4 MTU, 576, less a header)
/// fits every link, so it is nobody's whole.
const MIN_FRAGMENTABLE: u16 = 556;

/// What the pieces of one whole share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Tcp {
        v6: bool,
        ack: u32,
        window: u16,
        flags: u16,
    },
    Datagram {
        v6: bool,
        id: u32,
        proto: u8,
    },
    /// A UDP datagram sent with `UDP_SEGMENT` (or merged by UDP GRO) and its segments: byte
    /// ranges are offsets in the UDP payload of the whole; `id` is the whole's IPv4 id (0 for
    /// IPv6).
    UdpGso {
        v6: bool,
        id: u32,
    },
}

impl Family {
    pub fn is_tcp(self) -> bool {
        matches!(self, Family::Tcp { .. })
    }
    /// IP fragments (offsets in the IP payload), as opposed to segments.
    pub fn is_fragments(self) -> bool {
        matches!(self, Family::Datagram { .. })
    }
}

/// A byte range of a whole: TCP sequence numbers unwrapped to 64 bits, or offsets in a
/// datagram. Empty for a tunnel's inner packet standing for its outer datagram's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn len(self) -> i64 {
        self.end - self.start
    }
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }
    fn overlaps(self, o: Span) -> bool {
        self.start < o.end && o.start < self.end
    }
    pub fn clip(self, to: Span) -> Span {
        Span {
            start: self.start.max(to.start),
            end: self.end.min(to.end),
        }
    }
}

/// One simple journey (index into the groups) as a member of one family.
#[derive(Clone, Debug)]
struct Member {
    group: usize,
    family: Family,
    /// TCP: the sequence number (unwrapped below); datagram: the byte offset.
    seq: u32,
    len: u32,
    span: Span,
    /// (board, link, out) of its hops, sorted.
    links: Vec<(u32, u16, bool)>,
    first: (u32, u16, bool),
    first_t: i64,
    last_t: i64,
    /// The addresses at the family's IP layer on the first hop.
    ends: (Addr, Addr),
    /// Datagrams: a fragment (or a tunnel's inner packet standing for its outer datagram's
    /// first fragment), and what the first fragment and its whole both carry: the UDP length
    /// or the ICMP type, code and sequence (None: no transport header, a later fragment).
    fragment: bool,
    sig: Option<u64>,
}

/// One group's part in a compound journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub group: usize,
    pub family: Family,
    /// The member's range (in its family's unwrapped space).
    pub span: Span,
    /// The raw first sequence number (TCP) or offset (datagram) of `span`.
    pub seq: u32,
    /// Sent as one packet (continues no other member).
    pub anchor: bool,
    /// The inner packet of a fragmented tunnel datagram: its tunnel hops hold the first
    /// outer fragment, whose end is not recorded.
    pub carrier: bool,
}

/// Several journeys that are pieces of one whole (or of adjacent wholes a piece straddles).
#[derive(Clone, Debug, PartialEq)]
pub struct Compound {
    /// The primary family (of the earliest anchor) and its whole: the anchors' range.
    pub family: Family,
    pub whole: Span,
    /// The raw sequence number or offset at `whole.start`.
    pub whole_seq: u32,
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// A journey left as it was built.
    One(usize),
    Pieces(Compound),
}

/// The families a journey's packet belongs to, with its range in each. `carrier`: the
/// tunnel identity of its encapsulated hops, as the outer datagram's family.
type Membership = (Family, u32, u32, bool);

fn families(s: &Summary, carrier: Option<(Addr, Addr, u16, u8)>) -> [Option<Membership>; 2] {
    let mut out = [None, None];
    if let Net::Ip(ip) = s.net {
        let v6 = matches!(ip.src, Addr::V6(_));
        let fragment = ip.frag_offset > 0 || ip.more_fragments;
        match s.transport {
            Transport::Tcp {
                seq,
                ack,
                flags,
                window,
                hdr_len,
                ..
            } if !fragment && hdr_len > 0 && flags & NOT_PIECES == 0 => {
                let data = ip.payload_len.saturating_sub(u16::from(hdr_len));
                if data > 0 {
                    let family = Family::Tcp {
                        v6,
                        ack,
                        window,
                        flags: flags & !EDGE_FLAGS,
                    };
                    out[0] = Some((family, seq, u32::from(data), false));
                }
            }
            _ if fragment
                || (!v6 && ip.proto != IpProto::TCP && ip.payload_len > MIN_FRAGMENTABLE) =>
            {
                let family = Family::Datagram {
                    v6,
                    id: ip.id,
                    proto: ip.proto.0,
                };
                let offset = u32::from(ip.frag_offset) * 8;
                out[0] = Some((family, offset, u32::from(ip.payload_len), false));
            }
            _ => {}
        }
    }
    if let Some((_, _, id, proto)) = carrier {
        let family = Family::Datagram {
            v6: false,
            id: u32::from(id),
            proto,
        };
        out[1] = Some((family, 0, 0, true));
    }
    out
}

/// A stable key of the family a packet's pieces share, for packets that may be split or
/// merged on the way (`None` for the others): what scaled mode partitions by, so a whole
/// and its pieces meet in one correlator. FNV-1a over the family's fields, fixed across
/// releases. Two kinds of pieces carry nothing of their whole's key, so they may land in
/// another partition than it (README limits): a tunnel's bare outer fragments (keyed by the
/// outer datagram), and UDP GSO segments (each keyed by its own IP id).
pub fn piece_family_key(s: &Summary) -> Option<u64> {
    let (family, ..) = families(s, None)[0]?;
    let mut bytes = [0u8; 12];
    match family {
        Family::Tcp {
            v6,
            ack,
            window,
            flags,
        } => {
            bytes[0] = 1 | (u8::from(v6) << 1);
            bytes[1..5].copy_from_slice(&ack.to_le_bytes());
            bytes[5..7].copy_from_slice(&window.to_le_bytes());
            bytes[7..9].copy_from_slice(&flags.to_le_bytes());
        }
        Family::Datagram { v6, id, proto } => {
            bytes[0] = 2 | (u8::from(v6) << 1);
            bytes[1..5].copy_from_slice(&id.to_le_bytes());
            bytes[5] = proto;
        }
        // Never made by `families` (UDP GSO sends are tied apart, in `udp_gso`).
        Family::UdpGso { .. } => return None,
    }
    Some(bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }))
}

/// The outer IPv4 identity of a summary's outermost tunnel: (src, dst, id, protocol).
fn outer_of(s: &Summary) -> Option<(Addr, Addr, u16, u8)> {
    use hopcap_proto::summary::TunnelKind;
    let t = s.tunnels.first()?;
    if !matches!(t.src, Addr::V4(_)) {
        return None;
    }
    let proto = match t.kind {
        TunnelKind::Vxlan { .. } | TunnelKind::Geneve { .. } | TunnelKind::Gtpu { .. } => 17,
        TunnelKind::Gre { .. } => 47,
        TunnelKind::IpInIp => match s.ethertype.0 {
            0x86dd => 41,
            _ => 4,
        },
    };
    Some((t.src, t.dst, t.outer_id, proto))
}

/// Which journeys are pieces of which wholes. `groups[g]` are view indices and `ordered[g]`
/// their path, `vanished(g)` whether it should have gone on after its last hop; groups come
/// in time order, and so do the plans.
pub(super) fn plan(
    groups: &[Vec<u32>],
    ordered: &[Ordered],
    views: &[View],
    hops: &[Hop],
    window_ns: i64,
    vanished: impl Fn(usize) -> bool,
) -> Vec<Plan> {
    let mut members: Vec<Member> = Vec::new();
    for (g, o) in ordered.iter().enumerate() {
        let Some(&first) = o.hops.first() else {
            continue;
        };
        let s = &hops[first as usize].obs.summary;
        // The tunnel hops of the journey stand for the outer datagram; its first one wins.
        let tunnel_hops: Vec<u32> = o
            .hops
            .iter()
            .copied()
            .filter(|&i| !hops[i as usize].obs.summary.tunnels.is_empty())
            .collect();
        let carrier = tunnel_hops
            .first()
            .and_then(|&i| outer_of(&hops[i as usize].obs.summary));
        for (k, fam) in families(s, carrier).into_iter().enumerate() {
            let Some((family, seq, len, is_carrier)) = fam else {
                continue;
            };
            let on: &[u32] = if k == 1 { &tunnel_hops } else { &o.hops };
            let Some(&lead) = on.first() else { continue };
            let mut links: Vec<(u32, u16, bool)> = on
                .iter()
                .map(|&i| {
                    let v = &views[i as usize];
                    (v.board, v.key, v.out)
                })
                .collect();
            links.sort_unstable();
            let t = |i: &u32| views[*i as usize].t;
            let lv = &views[lead as usize];
            let (fragment, sig) = match (family, s.net) {
                (Family::Datagram { .. }, Net::Ip(ip)) if !is_carrier => {
                    (ip.frag_offset > 0 || ip.more_fragments, signature(s))
                }
                (Family::Datagram { .. }, _) => (true, None),
                _ => (false, None),
            };
            let ends = match (is_carrier, carrier, views[lead as usize].endpoints) {
                (true, Some((src, dst, _, _)), _) => (src, dst),
                (false, _, Some(e)) => (e.src, e.dst),
                _ => continue,
            };
            members.push(Member {
                group: g,
                family,
                seq,
                len,
                span: Span { start: 0, end: 0 },
                links,
                first: (lv.board, lv.key, lv.out),
                first_t: on.iter().map(t).min().unwrap_or(0),
                last_t: on.iter().map(t).max().unwrap_or(0),
                ends,
                fragment,
                sig,
            });
        }
    }
    members.sort_by_key(|m| (m.family, m.first_t, m.group));

    let mut compounds: Vec<Compound> = Vec::new();
    for fam in members.chunk_by_mut(|a, b| a.family == b.family) {
        if fam.len() > 1 {
            unwrap_spans(fam);
            match fam[0].family {
                Family::Tcp { .. } => tie_tcp(fam, window_ns, &mut compounds),
                Family::Datagram { .. } => tie_datagram(fam, window_ns, &vanished, &mut compounds),
                // Never made by `families`: tied by `udp_gso` below.
                Family::UdpGso { .. } => {}
            }
        }
    }
    compounds.extend(super::udp_gso::tie(ordered, views, hops, window_ns));
    merge_and_order(compounds, groups.len())
}

fn unwrap_spans(fam: &mut [Member]) {
    // In time order, each sequence number unwrapped next to the one before (as RTP's
    // extended sequence numbers): pieces lie within a second of each other, far within 2^31.
    let mut base = (fam[0].seq, 0i64);
    for m in fam.iter_mut() {
        let start = match m.family {
            Family::Tcp { .. } => {
                let s = base.1 + i64::from(m.seq.wrapping_sub(base.0) as i32);
                base = (m.seq, s);
                s
            }
            Family::Datagram { .. } | Family::UdpGso { .. } => i64::from(m.seq),
        };
        m.span = Span {
            start,
            end: start + i64::from(m.len),
        };
    }
}

pub(super) fn disjoint(a: &[(u32, u16, bool)], b: &[(u32, u16, bool)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

/// Whether `y` continues `x` (see the module docs).
fn continues(x: &Member, y: &Member, window_ns: i64) -> bool {
    x.span.overlaps(y.span)
        && (x.first_t, x.group) < (y.first_t, y.group)
        && y.first_t.saturating_sub(x.last_t) <= window_ns
        && disjoint(&x.links, &y.links)
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn tie_tcp(fam: &[Member], window_ns: i64, out: &mut Vec<Compound>) {
    let n = fam.len();
    // Overlapping pairs, by start: j overlaps i (start_i <= start_j) iff start_j < end_i.
    let mut by_start: Vec<usize> = (0..n).filter(|&i| !fam[i].span.is_empty()).collect();
    by_start.sort_by_key(|&i| (fam[i].span.start, fam[i].first_t));
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (a, &i) in by_start.iter().enumerate() {
        for &j in &by_start[a + 1..] {
            if fam[j].span.start >= fam[i].span.end {
                break;
            }
            if continues(&fam[i], &fam[j], window_ns) {
                preds[j].push(i);
            } else if continues(&fam[j], &fam[i], window_ns) {
                preds[i].push(j);
            }
        }
    }
    let mut parent: Vec<usize> = (0..n).collect();
    let is_anchor: Vec<bool> = preds.iter().map(Vec::is_empty).collect();
    // Each continuation's anchor sets, in time order (predecessors come first): for each of
    // its bytes, the latest predecessor covering them.
    let mut roots_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    for y in 0..n {
        if is_anchor[y] {
            roots_of[y] = vec![find(&mut parent, y)];
            continue;
        }
        let mut ps = std::mem::take(&mut preds[y]);
        ps.sort_by_key(|&x| std::cmp::Reverse((fam[x].first_t, fam[x].group)));
        let mut covered: Vec<Span> = Vec::new();
        let mut roots: Vec<usize> = Vec::new();
        for x in ps {
            let part = fam[x].span.clip(fam[y].span);
            if covered
                .iter()
                .any(|c| c.start <= part.start && part.end <= c.end)
            {
                continue;
            }
            covered.push(part);
            roots.extend(roots_of[x].iter().copied());
        }
        roots.sort_unstable();
        roots.dedup();
        roots_of[y] = roots;
    }
    // GRO's mirror case: wholes a later packet covers entirely were its pieces (segments a
    // sender or a link without GSO sent, merged on receive): one journey. A merged packet
    // that only straddles the edge of a whole stays a shared piece of each.
    for y in (0..n).filter(|&y| !is_anchor[y]) {
        let inside: Vec<usize> = roots_of[y]
            .iter()
            .copied()
            .filter(|&r| {
                fam[y].span.start <= fam[r].span.start && fam[r].span.end <= fam[y].span.end
            })
            .collect();
        for w in inside.windows(2) {
            let (a, b) = (find(&mut parent, w[0]), find(&mut parent, w[1]));
            parent[b] = a;
        }
    }
    for roots in &mut roots_of {
        for r in roots.iter_mut() {
            *r = find(&mut parent, *r);
        }
        roots.sort_unstable();
        roots.dedup();
    }
    emit(fam, &roots_of, &is_anchor, out);
}

/// One compound per anchor set that holds more than one member. `roots_of[m]`: the anchor
/// sets member `m` belongs to.
fn emit(fam: &[Member], roots_of: &[Vec<usize>], is_anchor: &[bool], out: &mut Vec<Compound>) {
    let mut members_of: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (y, roots) in roots_of.iter().enumerate() {
        for &r in roots {
            members_of.entry(r).or_default().push(y);
        }
    }
    for (_, ms) in members_of {
        if ms.len() < 2 {
            continue;
        }
        let anchors: Vec<usize> = ms.iter().copied().filter(|&m| is_anchor[m]).collect();
        let lead = anchors
            .iter()
            .copied()
            .filter(|&a| !fam[a].span.is_empty())
            .min_by_key(|&a| fam[a].span.start)
            .unwrap_or(ms[0]);
        let whole = anchors
            .iter()
            .map(|&a| fam[a].span)
            .filter(|s| !s.is_empty())
            .reduce(|a, b| Span {
                start: a.start.min(b.start),
                end: a.end.max(b.end),
            })
            .unwrap_or(fam[lead].span);
        // A tunnel's inner packet holds the outer datagram's first fragment: up to where the
        // next fragment starts.
        let first_other = ms
            .iter()
            .map(|&m| fam[m].span)
            .filter(|s| !s.is_empty() && s.start > 0)
            .map(|s| s.start)
            .min()
            .unwrap_or(0);
        let span_of = |m: usize| match fam[m].span.is_empty() {
            true => Span {
                start: 0,
                end: first_other,
            },
            false => fam[m].span,
        };
        let whole = ms
            .iter()
            .filter(|&&m| is_anchor[m])
            .map(|&m| span_of(m))
            .reduce(|a, b| Span {
                start: a.start.min(b.start),
                end: a.end.max(b.end),
            })
            .unwrap_or(whole);
        out.push(Compound {
            family: fam[lead].family,
            whole,
            whole_seq: fam[lead].seq,
            parts: ms
                .iter()
                .map(|&m| Part {
                    group: fam[m].group,
                    family: fam[m].family,
                    span: span_of(m),
                    seq: fam[m].seq,
                    anchor: is_anchor[m],
                    carrier: fam[m].len == 0,
                })
                .collect(),
        });
    }
}

/// Datagrams: fragments seen together (same first link, moment and addresses) are
/// siblings, one set; a set whose first fragment carries the transport header of an
/// unfragmented datagram that vanished before it, with the same id, continues that whole.
/// (Only a first fragment can be compared with a whole: ids repeat across flows, and two
/// big datagrams of different flows with one id would otherwise be taken for one.)
fn tie_datagram(
    fam: &[Member],
    window_ns: i64,
    vanished: &impl Fn(usize) -> bool,
    out: &mut Vec<Compound>,
) {
    let n = fam.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let pieces: Vec<usize> = (0..n).filter(|&i| fam[i].fragment).collect();
    for (a, &i) in pieces.iter().enumerate() {
        for &j in &pieces[a + 1..] {
            // Members are in time order: later ones only get further away.
            if fam[j].first_t - fam[i].first_t > SIBLING_GAP_NS {
                break;
            }
            if fam[i].links.binary_search(&fam[j].first).is_ok() && fam[i].ends == fam[j].ends {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                parent[rj] = ri;
            }
        }
    }
    let roots: Vec<usize> = (0..n).map(|i| find(&mut parent, i)).collect();
    // A set continues a whole through its first fragment.
    let mut whole_of: Vec<Option<usize>> = vec![None; n];
    let wholes: Vec<usize> = (0..n).filter(|&i| !fam[i].fragment).collect();
    for &y in pieces
        .iter()
        .filter(|&&y| fam[y].span.start == 0 && fam[y].sig.is_some())
    {
        let best = wholes
            .iter()
            .copied()
            .filter(|&x| {
                fam[x].sig == fam[y].sig
                    && fam[x].span.start <= fam[y].span.start
                    && fam[y].span.end <= fam[x].span.end
                    && continues(&fam[x], &fam[y], window_ns)
                    && vanished(fam[x].group)
            })
            .max_by_key(|&x| (fam[x].first_t, fam[x].group));
        if let Some(x) = best {
            whole_of[roots[y]] = Some(x);
        }
    }
    let mut roots_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut is_anchor = vec![false; n];
    for m in 0..n {
        match (fam[m].fragment, whole_of[roots[m]]) {
            (true, Some(x)) => roots_of[m] = vec![x],
            (true, None) => {
                roots_of[m] = vec![roots[m]];
                is_anchor[m] = true;
            }
            (false, _) => {
                roots_of[m] = vec![m];
                is_anchor[m] = true;
            }
        }
    }
    emit(fam, &roots_of, &is_anchor, out);
}

/// What a first fragment and its whole datagram both carry (see [`Member::sig`]).
fn signature(s: &Summary) -> Option<u64> {
    match s.transport {
        Transport::Udp { length, .. } => Some(1 << 32 | u64::from(length)),
        Transport::Icmp { ty, code, seq, .. } => {
            Some(2 << 32 | u64::from(ty) << 24 | u64::from(code) << 16 | u64::from(seq))
        }
        _ => None,
    }
}

/// Compounds of different families that share a group are one journey; plans in time order
/// of their first group, each group planned alone only if no compound took it.
fn merge_and_order(compounds: Vec<Compound>, groups: usize) -> Vec<Plan> {
    if compounds.is_empty() {
        return (0..groups).map(Plan::One).collect();
    }
    let mut parent: Vec<usize> = (0..compounds.len()).collect();
    // A group that is an anchor of one compound ties every compound it is part of to that
    // one; a continuation shared by two compounds (a piece straddling two wholes) ties none.
    let mut owner: Vec<Option<usize>> = vec![None; groups];
    for (c, comp) in compounds.iter().enumerate() {
        for p in comp.parts.iter().filter(|p| p.anchor) {
            owner[p.group].get_or_insert(c);
        }
    }
    for (c, comp) in compounds.iter().enumerate() {
        for p in &comp.parts {
            if let Some(o) = owner[p.group] {
                let (ro, rc) = (find(&mut parent, o), find(&mut parent, c));
                parent[rc] = ro;
            }
        }
    }
    let mut merged: std::collections::BTreeMap<usize, Compound> = Default::default();
    for (c, comp) in compounds.into_iter().enumerate() {
        let r = find(&mut parent, c);
        match merged.get_mut(&r) {
            Some(m) => {
                // The TCP whole is the one to show; a datagram family adds its pieces.
                if comp.family.is_tcp() && !m.family.is_tcp() {
                    m.family = comp.family;
                    m.whole = comp.whole;
                    m.whole_seq = comp.whole_seq;
                }
                for p in comp.parts {
                    if !m.parts.contains(&p) {
                        m.parts.push(p);
                    }
                }
            }
            None => {
                merged.insert(r, comp);
            }
        }
    }
    let mut taken = vec![false; groups];
    let mut plans: Vec<(usize, Plan)> = Vec::new();
    for (_, mut comp) in merged {
        comp.parts.sort_by_key(|p| (p.group, p.span));
        for p in &comp.parts {
            taken[p.group] = true;
        }
        let first = comp.parts.iter().map(|p| p.group).min().unwrap_or(0);
        plans.push((first, Plan::Pieces(comp)));
    }
    plans.extend(
        (0..groups)
            .filter(|&g| !taken[g])
            .map(|g| (g, Plan::One(g))),
    );
    plans.sort_by_key(|(g, _)| *g);
    plans.into_iter().map(|(_, p)| p).collect()
}
