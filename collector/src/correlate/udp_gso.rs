//! UDP datagrams sent with `UDP_SEGMENT` (UDP GSO) and their segments; and the mirror case,
//! segments merged by UDP GRO.
//!
//! A sender hands the kernel one buffer of `L` bytes and a segment size `g`. Veths and
//! bridges carry it whole, as one datagram of `L` payload bytes (the *whole*); a link that
//! cannot segment UDP sends `K = ceil(L / g)` datagrams, each with its own IP and UDP
//! header: `g` payload bytes each, the last the remainder. What segmentation keeps, and what
//! ties the segments to their whole here:
//! - **the flow**: every segment has the same addresses and ports, and the same first link;
//!   after NAT the whole and its segments still share the source (DNAT) or the destination
//!   (SNAT, masquerade) address and port;
//! - **the IPv4 id**: segment `k` carries the whole's id + `k` (modulo 2^16);
//! - **the boundaries**: payload lengths `g` except the last, summing to `L`;
//! - **the links and the order**: segments are seen only on links the whole is not seen
//!   on, after it and within the window of its last hop (GRO: the merged whole after its
//!   segments).
//!
//! IPv6 has no id: there the segments of a whole are the first datagrams of one flow and
//! first link after it that fit the boundaries, all of them; wholes claim them in time
//! order. A segment lost there (captured nowhere) leaves the whole untied: its remaining
//! segments stay journeys of their own.
//!
//! A tied whole and its segments become one `Compound` of family `UdpGso`: the whole is its
//! anchor, ranges are offsets in the whole's UDP payload.

use super::order::Ordered;
use super::pieces::{disjoint, Compound, Family, Part, Span};
use super::view::View;
use super::Hop;
use hopcap_proto::summary::{Endpoints, Net, Transport};
use hopcap_proto::types::IpProto;
use std::collections::HashMap;

/// Segments per whole the kernel allows (`UDP_MAX_SEGMENTS`: 64 before Linux 6.11, 128
/// since).
const MAX_SEGMENTS: u32 = 128;

/// Segments found for a whole: (position k, datagram).
type Pieces = Vec<(u32, usize)>;
/// Where a segment was first seen: its address tuple and first link.
type SegmentKey = (u64, (u32, u16, bool));

/// Positions looked up first, for the flows and the segment size.
const PROBE: u32 = 4;

/// One unfragmented UDP datagram's journey.
#[derive(Clone, Debug)]
struct Datagram {
    group: usize,
    v6: bool,
    /// The IPv4 id on its first hop (0 for IPv6).
    id: u16,
    /// UDP payload bytes.
    payload: u32,
    /// (board, link, out) of its hops, sorted.
    links: Vec<(u32, u16, bool)>,
    first: (u32, u16, bool),
    first_t: i64,
    last_t: i64,
    /// The capture order of its first hop (one socket's order: segments on one link).
    order: u64,
    /// Its first hop's address tuple, exactly (segments of one whole share it).
    tuple: u64,
    /// Its (address, port) hashes on every hop: sources and destinations.
    srcs: Vec<u64>,
    dsts: Vec<u64>,
    /// Its endpoints on the first and on the last hop.
    ends_first: Option<Endpoints>,
    ends_last: Option<Endpoints>,
}

fn datagrams(ordered: &[Ordered], views: &[View], hops: &[Hop]) -> Vec<Datagram> {
    let mut out = Vec::new();
    for (g, o) in ordered.iter().enumerate() {
        let (Some(&first), Some(&last)) = (o.hops.first(), o.hops.last()) else {
            continue;
        };
        let s = &hops[first as usize].obs.summary;
        let (Net::Ip(ip), Transport::Udp { length, .. }) = (s.net, s.transport) else {
            continue;
        };
        // Tunnelled datagrams and fragments are left to the other families.
        if ip.proto != IpProto::UDP
            || ip.frag_offset > 0
            || ip.more_fragments
            || length <= 8
            || o.hops
                .iter()
                .any(|&i| !hops[i as usize].obs.summary.tunnels.is_empty())
        {
            continue;
        }
        let v6 = matches!(ip.src, hopcap_proto::types::Addr::V6(_));
        let mut links: Vec<(u32, u16, bool)> = o
            .hops
            .iter()
            .map(|&i| {
                let v = &views[i as usize];
                (v.board, v.key, v.out)
            })
            .collect();
        links.sort_unstable();
        let mut srcs: Vec<u64> = o.hops.iter().map(|&i| views[i as usize].ends.0).collect();
        let mut dsts: Vec<u64> = o.hops.iter().map(|&i| views[i as usize].ends.1).collect();
        srcs.sort_unstable();
        srcs.dedup();
        dsts.sort_unstable();
        dsts.dedup();
        let t = |i: &u32| views[*i as usize].t;
        let (fv, lv) = (&views[first as usize], &views[last as usize]);
        out.push(Datagram {
            group: g,
            v6,
            id: if v6 { 0 } else { ip.id as u16 },
            payload: u32::from(length) - 8,
            links,
            first: (fv.board, fv.key, fv.out),
            first_t: o.hops.iter().map(t).min().unwrap_or(0),
            last_t: o.hops.iter().map(t).max().unwrap_or(0),
            order: fv.order,
            tuple: fv.tuple,
            srcs,
            dsts,
            ends_first: fv.endpoints,
            ends_last: lv.endpoints,
        });
    }
    out.sort_by_key(|d| (d.first_t, d.group));
    out
}

/// Whether `s` can be a segment of the whole `w` (GSO: after it; GRO: before it).
fn may_be_piece(w: &Datagram, s: &Datagram, window_ns: i64) -> bool {
    let shares_an_end = s.srcs.iter().any(|x| w.srcs.binary_search(x).is_ok())
        || s.dsts.iter().any(|x| w.dsts.binary_search(x).is_ok());
    let in_time = if after(w, s) {
        s.first_t.saturating_sub(w.last_t) <= window_ns
    } else {
        w.first_t.saturating_sub(s.last_t) <= window_ns
    };
    s.group != w.group
        && s.v6 == w.v6
        && s.payload < w.payload
        && in_time
        && shares_an_end
        && disjoint(&w.links, &s.links)
}

/// How closely a piece's addresses agree with the whole's where they meet (the whole's last
/// hop and the segment's first, or for GRO the other way round): equal addresses and
/// ports, 0 to 4. Masquerade keeps the source port when it can, so the right flow scores
/// higher than another one to the same destination.
fn closeness(w: &Datagram, s: &Datagram) -> u8 {
    let (a, b) = if w.first_t <= s.first_t {
        (w.ends_last, s.ends_first)
    } else {
        (w.ends_first, s.ends_last)
    };
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    u8::from(a.src == b.src)
        + u8::from(a.sport == b.sport)
        + u8::from(a.dst == b.dst)
        + u8::from(a.dport == b.dport)
}

/// The segment size of a whole of `len` bytes from segments `(k, payload)` found at their
/// positions: every segment but the last holds the segment size. A lone segment is taken
/// for the last where it can be (the `k` before it share the rest evenly, and no more fit),
/// else for a full one.
fn segment_size(len: u32, found: &[(u32, u32)]) -> Option<u32> {
    let (&(k0, p0), rest) = found.split_first()?;
    if rest.iter().any(|&(k, _)| k != k0) {
        return found.iter().map(|&(_, p)| p).max();
    }
    let last = len
        .checked_sub(p0)
        .filter(|&before| k0 > 0 && before % k0 == 0)
        .map(|before| before / k0)
        .filter(|&g| g >= p0 && len.div_ceil(g) == k0 + 1);
    last.or_else(|| (p0.checked_mul(k0 + 1)? <= len).then_some(p0))
}

/// The payload segment `k` of a whole of `len` bytes cut at `g` holds, if it exists.
fn expected(len: u32, g: u32, k: u32) -> Option<u32> {
    let start = k.checked_mul(g)?;
    (start < len).then(|| g.min(len - start))
}

/// The wholes and their segments, as compounds.
pub(super) fn tie(
    ordered: &[Ordered],
    views: &[View],
    hops: &[Hop],
    window_ns: i64,
) -> Vec<Compound> {
    let all = datagrams(ordered, views, hops);
    if all.len() < 2 {
        return Vec::new();
    }
    let mut by_id: HashMap<u16, Vec<usize>> = HashMap::new();
    for (i, d) in all.iter().enumerate().filter(|(_, d)| !d.v6) {
        by_id.entry(d.id).or_default().push(i);
    }
    let v6: Vec<usize> = (0..all.len()).filter(|&i| all[i].v6).collect();
    let mut claimed = vec![false; all.len()];
    let mut out = Vec::new();
    // IPv4: every whole's candidates first, then each segment goes to the whole that agrees
    // best and is nearest in time. The ids of a flow's consecutive sends lie a few apart, so
    // a send lost before segmentation has the next send's segments in its id range: they
    // are nearer their own send.
    let proposals: Vec<(usize, u32, Pieces)> = (0..all.len())
        .filter(|&w| !all[w].v6)
        .filter_map(|w| {
            let (g, pieces) = pieces_v4(&all, w, &by_id, &claimed, window_ns)?;
            Some((w, g, pieces))
        })
        .collect();
    let mut owner: HashMap<usize, (u8, i64, usize)> = HashMap::new();
    for (w, _, pieces) in &proposals {
        for &(_, s) in pieces {
            let rank = (closeness(&all[*w], &all[s]), -gap(&all[*w], &all[s]), *w);
            let best = owner.entry(s).or_insert(rank);
            if (rank.0, rank.1) > (best.0, best.1) {
                *best = rank;
            }
        }
    }
    for (w, g, pieces) in proposals {
        // A datagram that is another whole's segment is no whole itself.
        if owner.contains_key(&w) {
            continue;
        }
        let mine: Vec<(u32, usize)> = pieces
            .into_iter()
            .filter(|(_, s)| owner.get(s).is_some_and(|o| o.2 == w))
            .collect();
        if !mine.is_empty() {
            claimed[w] = true;
            mine.iter().for_each(|&(_, s)| claimed[s] = true);
            out.push(compound(&all, w, g, mine));
        }
    }
    // IPv6: wholes in time order, each claims its run of segments before a later whole can.
    for &w in &v6 {
        if claimed[w] {
            continue;
        }
        let Some((g, pieces)) = pieces_v6(&all, w, &v6, &claimed, window_ns) else {
            continue;
        };
        claimed[w] = true;
        pieces.iter().for_each(|&(_, s)| claimed[s] = true);
        out.push(compound(&all, w, g, pieces));
    }
    out
}

/// Whether segment `s` was first seen after whole `w` (GSO; before: GRO).
fn after(w: &Datagram, s: &Datagram) -> bool {
    (w.first_t, w.group) < (s.first_t, s.group)
}

/// How far apart in time a whole and a segment are: from the whole's last hop to the
/// segment's first (GSO), or the other way round (GRO).
fn gap(w: &Datagram, s: &Datagram) -> i64 {
    if after(w, s) {
        (s.first_t - w.last_t).abs()
    } else {
        (w.first_t - s.last_t).abs()
    }
}

/// Whole `w` cut at `g` and its `(k, datagram)` segments as one compound.
fn compound(all: &[Datagram], w: usize, g: u32, pieces: Vec<(u32, usize)>) -> Compound {
    let whole = &all[w];
    let family = Family::UdpGso {
        v6: whole.v6,
        id: u32::from(whole.id),
    };
    let len = i64::from(whole.payload);
    let mut parts = vec![Part {
        group: whole.group,
        family,
        span: Span { start: 0, end: len },
        seq: 0,
        anchor: true,
        carrier: false,
    }];
    for (k, s) in pieces {
        let start = i64::from(k) * i64::from(g);
        parts.push(Part {
            group: all[s].group,
            family,
            span: Span {
                start,
                end: start + i64::from(all[s].payload),
            },
            seq: k * g,
            anchor: false,
            carrier: false,
        });
    }
    Compound {
        family,
        whole: Span { start: 0, end: len },
        whole_seq: 0,
        parts,
    }
}

/// IPv4: the segments of `w` by id (`w`'s id + k), grouped by flow and first link; the group
/// that agrees best with `w`. Returns the segment size and the (k, datagram) pieces.
fn pieces_v4(
    all: &[Datagram],
    w: usize,
    by_id: &HashMap<u16, Vec<usize>>,
    claimed: &[bool],
    window_ns: i64,
) -> Option<(u32, Pieces)> {
    let whole = &all[w];
    let at = |k: u32| -> Vec<usize> {
        by_id
            .get(&whole.id.wrapping_add(k as u16))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&s| !claimed[s] && may_be_piece(whole, &all[s], window_ns))
            .collect()
    };
    // The first positions name the candidate flows and the segment size (a segment set
    // whose first `PROBE` are all lost is not found).
    let mut groups: Vec<(SegmentKey, Pieces)> = Vec::new();
    for k in 0..PROBE {
        for s in at(k) {
            let key = (all[s].tuple, all[s].first);
            match groups.iter_mut().find(|(g, _)| *g == key) {
                Some((_, list)) => list.push((k, s)),
                None => groups.push((key, vec![(k, s)])),
            }
        }
    }
    let mut best: Option<(u32, Pieces, (usize, u8, i64))> = None;
    // GSO's segments follow their whole, GRO's precede it; each side is weighed alone. The
    // other side may hold a neighbouring send's segments (the ids of a flow's sends lie a
    // few apart, so their ranges overlap), but never all positions: an earlier send cannot
    // supply this one's last segment, a later one not its first.
    for (key, both) in groups {
        for gso in [true, false] {
            let mut list: Vec<(u32, usize)> = both
                .iter()
                .copied()
                .filter(|&(_, s)| after(whole, &all[s]) == gso)
                .collect();
            let sizes: Vec<(u32, u32)> = list.iter().map(|&(k, s)| (k, all[s].payload)).collect();
            let Some(mut g) = segment_size(whole.payload, &sizes) else {
                continue;
            };
            // Fix the segment size from what the first positions say, then look for the rest.
            let count = whole.payload.div_ceil(g.max(1));
            if g == 0 || !(2..=MAX_SEGMENTS).contains(&count) {
                continue;
            }
            for k in PROBE..count {
                list.extend(
                    at(k)
                        .into_iter()
                        .filter(|&s| {
                            (all[s].tuple, all[s].first) == key && after(whole, &all[s]) == gso
                        })
                        .map(|s| (k, s)),
                );
            }
            let sizes: Vec<(u32, u32)> = list.iter().map(|&(k, s)| (k, all[s].payload)).collect();
            g = segment_size(whole.payload, &sizes).unwrap_or(g);
            let mut fits: Vec<(u32, usize)> = list
                .into_iter()
                .filter(|&(k, s)| expected(whole.payload, g, k) == Some(all[s].payload))
                .collect();
            // One datagram per position: the one closest in time.
            fits.sort_by_key(|&(k, s)| (k, gap(whole, &all[s])));
            fits.dedup_by_key(|(k, _)| *k);
            if fits.is_empty() || g >= whole.payload {
                continue;
            }
            let near = fits
                .iter()
                .map(|&(_, s)| closeness(whole, &all[s]))
                .min()
                .unwrap_or(0);
            let nearest = fits
                .iter()
                .map(|&(_, s)| gap(whole, &all[s]))
                .min()
                .unwrap_or(i64::MAX);
            // More segments, then closer addresses, then nearer in time.
            let score = (fits.len(), near, -nearest);
            if best.as_ref().is_none_or(|(_, _, b)| score > *b) {
                best = Some((g, fits, score));
            }
        }
    }
    best.map(|(g, fits, _)| (g, fits))
}

/// IPv6: the first datagrams of one flow and first link after `w` (GRO: before it) that are
/// exactly its segments, every one of them.
fn pieces_v6(
    all: &[Datagram],
    w: usize,
    v6: &[usize],
    claimed: &[bool],
    window_ns: i64,
) -> Option<(u32, Pieces)> {
    let whole = &all[w];
    let mut groups: Vec<(SegmentKey, Vec<usize>)> = Vec::new();
    for &s in v6 {
        if claimed[s] || !may_be_piece(whole, &all[s], window_ns) {
            continue;
        }
        let key = (all[s].tuple, all[s].first);
        match groups.iter_mut().find(|(g, _)| *g == key) {
            Some((_, list)) => list.push(s),
            None => groups.push((key, vec![s])),
        }
    }
    let mut best: Option<(u32, Pieces, (u8, i64))> = None;
    for (_, mut list) in groups {
        let after = (whole.first_t, whole.group) < (all[list[0]].first_t, all[list[0]].group);
        list.sort_by_key(|&s| (all[s].first_t, all[s].order));
        if !after {
            // GRO: the segments merged are the last ones before the whole.
            list.reverse();
        }
        let Some(&lead) = list.first() else { continue };
        let g = if after {
            all[lead].payload
        } else {
            // Reversed: the lead is the last segment; the one before it holds the size.
            list.get(1).map_or(all[lead].payload, |&s| all[s].payload)
        };
        let count = whole.payload.div_ceil(g.max(1));
        if g == 0 || !(2..=MAX_SEGMENTS).contains(&count) || list.len() < count as usize {
            continue;
        }
        let mut run: Vec<usize> = list[..count as usize].to_vec();
        if !after {
            run.reverse();
        }
        let exact = run
            .iter()
            .enumerate()
            .all(|(k, &s)| expected(whole.payload, g, k as u32) == Some(all[s].payload));
        if !exact {
            continue;
        }
        let near = run
            .iter()
            .map(|&s| closeness(whole, &all[s]))
            .min()
            .unwrap_or(0);
        let nearest = run
            .iter()
            .map(|&s| gap(whole, &all[s]))
            .min()
            .unwrap_or(i64::MAX);
        let score = (near, -nearest);
        if best.as_ref().is_none_or(|(_, _, b)| score > *b) {
            let pieces = run.into_iter().enumerate().map(|(k, s)| (k as u32, s));
            best = Some((g, pieces.collect(), score));
        }
    }
    best.map(|(g, pieces, _)| (g, pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_size_from_what_was_found() {
        // 7 × 1400 + 1100.
        assert_eq!(segment_size(10_900, &[(0, 1400), (7, 1100)]), Some(1400));
        assert_eq!(segment_size(10_900, &[(3, 1400)]), Some(1400));
        // The last one alone: the seven before it hold 9800 bytes.
        assert_eq!(segment_size(10_900, &[(7, 1100)]), Some(1400));
        // Neither a full segment nor a last one.
        assert_eq!(segment_size(10_900, &[(7, 1500)]), None);
        assert_eq!(segment_size(10_900, &[]), None);
        assert_eq!(expected(10_900, 1400, 7), Some(1100));
        assert_eq!(expected(10_900, 1400, 8), None);
        assert_eq!(expected(2800, 1400, 1), Some(1400));
    }
}
