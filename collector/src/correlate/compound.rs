//! One journey from the pieces of a whole (`pieces::Compound`): the hops of all the pieces,
//! one per link and direction, in path order; the pieces each hop saw; where the packet was
//! segmented, merged or fragmented; and which bytes never went on.
//!
//! A hop's coverage is the union of its pieces' ranges within the whole. Bytes covered at a
//! hop and at no hop after it were lost after that hop if the hop must go on (the rules of
//! `vanish`); the first such hop and its first missing range are the journey's fate. A hop
//! that missed a piece the next hops have (capture loss on that one link) loses nothing.

use super::order::{order, Ordered};
use super::pieces::{Compound, Family, Part, Span};
use super::vanish::{self, Fate};
use super::{nat, tunnel, Hop, Journey};
use hopcap_proto::summary::{Endpoints, Summary};
use hopcap_proto::types::PacketType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One piece of a whole as one hop saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Position of the observation in the correlator's input.
    pub input: usize,
    /// Capture time on the board's own clock, and on the reference clock.
    pub ts_ns: u64,
    pub t_ns: i64,
    /// Where the piece starts in the whole (TCP: bytes after the whole's first sequence
    /// number; a fragment: its offset in the datagram) and how many bytes it holds.
    pub offset: u64,
    pub len: u64,
    /// The TCP sequence number of its first byte.
    pub seq: Option<u32>,
    pub fingerprint: u64,
    pub wire_len: u32,
}

/// Where the count or the boundaries of the pieces changed between a hop and the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PieceEventKind {
    Segmented,
    Merged,
    Resegmented,
    Fragmented,
    Reassembled,
    Refragmented,
}

impl PieceEventKind {
    pub fn name(self) -> &'static str {
        match self {
            PieceEventKind::Segmented => "segmented",
            PieceEventKind::Merged => "merged",
            PieceEventKind::Resegmented => "resegmented",
            PieceEventKind::Fragmented => "fragmented",
            PieceEventKind::Reassembled => "reassembled",
            PieceEventKind::Refragmented => "refragmented",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceEvent {
    pub kind: PieceEventKind,
    /// The hop (position) that first saw the new pieces.
    pub at: usize,
    /// Pieces on the hop before, and on this one.
    pub from: usize,
    pub into: usize,
}

/// The bytes a journey carried: its whole packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whole {
    /// TCP: the first sequence number.
    pub seq: Option<u32>,
    /// TCP payload bytes, the UDP payload bytes of a datagram cut into UDP GSO segments, or
    /// the IP payload bytes of a datagram (0: none, or unknown).
    pub len: u64,
}

impl Whole {
    /// The whole of a packet seen in one piece.
    pub fn of(s: &Summary) -> Whole {
        use hopcap_proto::summary::{Net, Transport};
        match (s.net, s.transport) {
            (Net::Ip(ip), Transport::Tcp { seq, hdr_len, .. }) => Whole {
                seq: Some(seq),
                len: u64::from(ip.payload_len.saturating_sub(u16::from(hdr_len))),
            },
            (Net::Ip(ip), _) => Whole {
                seq: None,
                len: u64::from(ip.payload_len),
            },
            _ => Whole { seq: None, len: 0 },
        }
    }
}

/// The bytes never seen after the hop a journey vanished at: TCP sequence numbers (`seq`,
/// end exclusive, modulo 2^32) or offsets in the datagram (UDP GSO: in its UDP payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRange {
    pub start: u64,
    pub end: u64,
    pub seq: bool,
}

/// What `build` needs of the correlation.
pub(super) struct Input<'a> {
    pub groups: &'a [Vec<u32>],
    pub slots: &'a [Option<Hop>],
    pub unc: &'a [Option<u64>],
    pub cx: &'a vanish::Context<'a>,
}

/// One observation of the compound: its view index and range in the whole.
#[derive(Clone, Copy, Debug)]
struct Obs {
    idx: u32,
    /// In the primary family's space (None: a piece of another family, shown only).
    span: Option<Span>,
    /// Shown: offset in the whole (or in its own datagram) and length.
    offset: u64,
    len: u64,
    seq: Option<u32>,
    /// An IP fragment (not a TCP or UDP segment).
    datagram: bool,
}

pub(super) fn build(c: &Compound, inp: &Input, tol: impl Fn(u32, u32) -> i64) -> Journey {
    let views = inp.cx.views;
    let mut at_link: BTreeMap<(u32, u16, bool), Vec<Obs>> = BTreeMap::new();
    for part in &c.parts {
        let primary = part.family == c.family;
        for &i in &inp.groups[part.group] {
            let v = &views[i as usize];
            let key = (v.board, v.key, v.out);
            let list = at_link.entry(key).or_default();
            if list.iter().any(|o| o.idx == i) {
                continue;
            }
            list.push(obs_of(c, part, primary, i, inp.slots));
        }
    }
    // A group in both families (a TCP whole carried in a fragmented tunnel) is listed once,
    // by its primary part; the representative of a hop is its earliest primary piece.
    let mut reps: Vec<u32> = Vec::with_capacity(at_link.len());
    for list in at_link.values_mut() {
        list.sort_by_key(|o| (views[o.idx as usize].t, views[o.idx as usize].order, o.idx));
        let rep = list
            .iter()
            .find(|o| o.span.is_some())
            .or(list.first())
            .map(|o| o.idx);
        reps.extend(rep);
    }
    let o = order(&reps, views, tol);
    let lists: Vec<&Vec<Obs>> = o
        .hops
        .iter()
        .map(|&i| {
            let v = &views[i as usize];
            &at_link[&(v.board, v.key, v.out)]
        })
        .collect();

    let summary = |i: u32| inp.slots[i as usize].as_ref().map(|h| &h.obs.summary);
    let summaries: Vec<&Summary> = o.hops.iter().filter_map(|&i| summary(i)).collect();
    let eps: Vec<Option<Endpoints>> = o
        .hops
        .iter()
        .map(|&i| views[i as usize].endpoints)
        .collect();
    let nat = nat::rewrites(&eps, &o.prev);
    let tunnels = tunnel::spans(&summaries);
    let pkttypes: Vec<PacketType> = o
        .hops
        .iter()
        .filter_map(|&i| inp.slots[i as usize].as_ref().map(|h| h.obs.pkttype))
        .collect();
    let (fate, lost_range) = fate(c, &o, &lists, (&summaries, &pkttypes), inp.cx);
    let events = events(c, &o, &lists);

    let mut hops = Vec::with_capacity(o.hops.len());
    for ((&i, &prev), list) in o.hops.iter().zip(&o.prev).zip(&lists) {
        let Some(hop) = inp.slots[i as usize].clone() else {
            continue;
        };
        let prev_idx = prev.map(|p| o.hops[p]);
        let mut jh = super::journey_hop(i, hop, views, prev_idx, inp.unc[i as usize], prev);
        let whole_here = list.len() == 1 && list[0].span == Some(c.whole);
        if !whole_here {
            jh.pieces = list.iter().map(|ob| piece(ob, views, inp.slots)).collect();
        }
        hops.push(jh);
    }
    let fingerprint = hops.first().map_or(0, |h| h.hop.obs.fingerprint);
    let whole = Whole {
        seq: c.family.is_tcp().then_some(c.whole_seq),
        len: u64::try_from(c.whole.len()).unwrap_or(0),
    };
    Journey {
        fingerprint,
        hops,
        nat,
        tunnels,
        fate,
        flow: 0,
        whole,
        events,
        lost_range,
    }
}

fn obs_of(c: &Compound, part: &Part, primary: bool, i: u32, slots: &[Option<Hop>]) -> Obs {
    let tunneled = slots[i as usize]
        .as_ref()
        .is_some_and(|h| !h.obs.summary.tunnels.is_empty());
    // A tunnel's inner packet is the whole datagram where it is not encapsulated, and the
    // outer datagram's first fragment where it is.
    let span = match part.carrier && !tunneled {
        true => c.whole,
        false => part.span,
    };
    let in_whole = span.clip(c.whole);
    let offset = if primary {
        u64::try_from(in_whole.start - c.whole.start).unwrap_or(0)
    } else {
        u64::try_from(span.start).unwrap_or(0)
    };
    Obs {
        idx: i,
        span: primary.then_some(in_whole),
        offset,
        len: u64::try_from(if primary { in_whole.len() } else { span.len() }).unwrap_or(0),
        seq: part.family.is_tcp().then(|| {
            part.seq
                .wrapping_add((in_whole.start - part.span.start) as u32)
        }),
        datagram: part.family.is_fragments(),
    }
}

fn piece(ob: &Obs, views: &[super::view::View], slots: &[Option<Hop>]) -> Piece {
    let v = &views[ob.idx as usize];
    Piece {
        input: ob.idx as usize,
        ts_ns: v.ts,
        t_ns: v.t,
        offset: ob.offset,
        len: ob.len,
        seq: ob.seq,
        fingerprint: slots[ob.idx as usize]
            .as_ref()
            .map_or(0, |h| h.obs.fingerprint),
        wire_len: slots[ob.idx as usize]
            .as_ref()
            .map_or(0, |h| h.obs.wire_len),
    }
}

/// Sorted, merged ranges.
fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| !s.is_empty());
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(l) if s.start <= l.end => l.end = l.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// The first range of `a` that `b` (both merged and sorted) does not cover.
fn first_missing(a: &[Span], b: &[Span]) -> Option<Span> {
    for s in a {
        let mut at = s.start;
        for c in b.iter().filter(|c| c.start < s.end) {
            if c.end <= at {
                continue;
            }
            if c.start > at {
                return Some(Span {
                    start: at,
                    end: c.start,
                });
            }
            at = at.max(c.end);
        }
        if at < s.end {
            return Some(Span {
                start: at,
                end: s.end,
            });
        }
    }
    None
}

fn fate(
    c: &Compound,
    o: &Ordered,
    lists: &[&Vec<Obs>],
    (summaries, pkttypes): (&[&Summary], &[PacketType]),
    cx: &vanish::Context,
) -> (Fate, Option<LostRange>) {
    let covered: Vec<Vec<Span>> = lists
        .iter()
        .map(|l| union(l.iter().filter_map(|o| o.span).collect()))
        .collect();
    // Suffix unions: what any later hop saw.
    let mut after: Vec<Vec<Span>> = vec![Vec::new(); covered.len() + 1];
    for p in (0..covered.len()).rev() {
        let mut both = after[p + 1].clone();
        both.extend(covered[p].iter().copied());
        after[p] = union(both);
    }
    for p in 0..covered.len() {
        let Some(missing) = first_missing(&covered[p], &after[p + 1]) else {
            continue;
        };
        let Some(&rep) = o.hops.get(p) else { continue };
        let (Some(s), Some(&pkttype), Some(hop)) = (
            summaries.get(p),
            pkttypes.get(p),
            cx.views.get(rep as usize),
        ) else {
            continue;
        };
        // UDP GSO segments on a board that never saw their whole are sampled each on its
        // own: missing there, they may have been sampled away.
        if matches!(c.family, Family::UdpGso { .. })
            && vanish::due_on_sampling_board(hop, s, pkttype, cx)
        {
            continue;
        }
        if let Some(f) = vanish::must_go_on(hop, s, pkttype, cx, p) {
            return (f, Some(lost_range(c, missing)));
        }
    }
    (Fate::Complete, None)
}

fn lost_range(c: &Compound, s: Span) -> LostRange {
    match c.family {
        Family::Tcp { .. } => {
            let start = c.whole_seq.wrapping_add((s.start - c.whole.start) as u32);
            LostRange {
                start: u64::from(start),
                end: u64::from(start.wrapping_add(s.len() as u32)),
                seq: true,
            }
        }
        Family::Datagram { .. } | Family::UdpGso { .. } => LostRange {
            start: u64::try_from(s.start).unwrap_or(0),
            end: u64::try_from(s.end).unwrap_or(0),
            seq: false,
        },
    }
}

fn events(c: &Compound, o: &Ordered, lists: &[&Vec<Obs>]) -> Vec<PieceEvent> {
    let shape = |l: &Vec<Obs>| -> Vec<(u64, u64)> { l.iter().map(|o| (o.offset, o.len)).collect() };
    let mut out = Vec::new();
    for (p, prev) in o.prev.iter().enumerate() {
        let Some(q) = *prev else { continue };
        let (now, before) = (lists[p], lists[q]);
        if shape(now) == shape(before) {
            continue;
        }
        // Fragments are fragmented; TCP and UDP GSO segments are segmented.
        let datagram =
            c.family.is_fragments() || now.iter().chain(before.iter()).any(|o| o.datagram);
        let (from, into) = (before.len(), now.len());
        use PieceEventKind::*;
        let kind = match (from == 1, into == 1, into > from, datagram) {
            (true, false, _, false) => Segmented,
            (false, true, _, false) => Merged,
            (_, _, _, false) => Resegmented,
            (true, false, _, true) => Fragmented,
            (false, true, _, true) => Reassembled,
            (_, _, _, true) => Refragmented,
        };
        out.push(PieceEvent {
            kind,
            at: p,
            from,
            into,
        });
    }
    out
}

/// The bytes of a packet seen whole that vanished: all of them (nothing for a packet without
/// payload).
pub(super) fn lost_range_of(s: &Summary) -> Option<LostRange> {
    use hopcap_proto::summary::Net;
    let w = Whole::of(s);
    if w.len == 0 {
        return None;
    }
    Some(match (w.seq, s.net) {
        (Some(seq), _) => LostRange {
            start: u64::from(seq),
            end: u64::from(seq.wrapping_add(w.len as u32)),
            seq: true,
        },
        (None, Net::Ip(ip)) => {
            let start = u64::from(ip.frag_offset) * 8;
            LostRange {
                start,
                end: start + w.len,
                seq: false,
            }
        }
        (None, _) => return None,
    })
}
