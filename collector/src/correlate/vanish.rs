//! Where a packet vanished: a journey whose last hop is one the topology says it must go on
//! from. Rules for a last hop (a leaf of the journey):
//! - In on a bridge port: the bridge takes it next (its own In, or another port's Out).
//! - In, broadcast/multicast/not for this host's MAC: may end.
//! - In carrying a tunnel to one of this namespace's addresses: decapsulation follows.
//! - In to an address of this namespace: delivered, ends. Otherwise it must be forwarded.
//! - Out on a veth whose peer namespace is captured: the peer's In follows.
//! - Out on a bridge with captured ports, on a tunnel device, on loopback: more follows here.
//! - Out on any other link to an address another captured board owns (the tunnel's outer
//!   destination when encapsulated): that board's In follows. Otherwise it left the capture.
//!
//! A loss is only reported as `MaybeCaptureLoss` when the capture itself dropped packets
//! where the next sighting was due, within the match window after the last one.

use super::clock::ClockModel;
use super::order::Ordered;
use super::topology::{is_tunnel_device, Topology};
use super::view::View;
use super::DropInterval;
use hopcap_proto::record::LinkKind;
use hopcap_proto::summary::{Net, Summary};
use hopcap_proto::types::PacketType;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    /// Ended where a packet may end: delivered locally, or left the captured network.
    Complete,
    /// Should have gone on after the hop at this position, and was never seen again.
    LostAfter(usize),
    /// Like `LostAfter`, but the capture reported drops where the next hop was due.
    MaybeCaptureLoss(usize),
}

impl Fate {
    pub fn is_complete(self) -> bool {
        self == Fate::Complete
    }
    pub fn vanished_after(self) -> Option<usize> {
        match self {
            Fate::Complete => None,
            Fate::LostAfter(p) | Fate::MaybeCaptureLoss(p) => Some(p),
        }
    }
}

/// Where the next sighting was due.
enum Next {
    Ends,
    SameBoard,
    Boards(Vec<u32>),
}

pub(super) struct Context<'a> {
    pub views: &'a [View<'a>],
    pub topo: &'a Topology,
    pub names: &'a [String],
    pub clock: &'a ClockModel,
    pub drops: &'a [DropInterval],
    pub sampling: &'a [String],
    pub window_ns: u64,
}

/// `summaries[p]` is the summary of the hop at position `p` of `o`.
pub(super) fn fate(
    o: &Ordered,
    summaries: &[&Summary],
    pkttypes: &[PacketType],
    cx: &Context,
) -> Fate {
    let leaves = (0..o.hops.len()).filter(|&p| !o.prev.contains(&Some(p)));
    for p in leaves {
        let v = &cx.views[o.hops[p] as usize];
        if let Some(f) = must_go_on(v, summaries[p], pkttypes[p], cx, p) {
            return f;
        }
    }
    Fate::Complete
}

/// Whether the hop at position `p` (view `v`) must be followed by another: then the fate of
/// a packet last seen there.
pub(super) fn must_go_on(
    v: &View,
    s: &Summary,
    pkttype: PacketType,
    cx: &Context,
    p: usize,
) -> Option<Fate> {
    let boards = match next(v, s, pkttype, cx) {
        Next::Ends => return None,
        Next::SameBoard => vec![v.board],
        Next::Boards(b) => b,
    };
    Some(if boards.iter().any(|&b| capture_dropped(cx, b, v.t)) {
        Fate::MaybeCaptureLoss(p)
    } else {
        Fate::LostAfter(p)
    })
}

/// Whether what goes on from this hop (view `v`) is due on another board that samples.
pub(super) fn due_on_sampling_board(
    v: &View,
    s: &Summary,
    pkttype: PacketType,
    cx: &Context,
) -> bool {
    match next(v, s, pkttype, cx) {
        Next::Boards(b) => b.iter().any(|&b| {
            cx.names
                .get(b as usize)
                .is_some_and(|n| cx.sampling.contains(n))
        }),
        _ => false,
    }
}

fn next(v: &View, s: &Summary, pkttype: PacketType, cx: &Context) -> Next {
    let Some(link) = v.info else {
        return Next::Ends;
    };
    let board = cx.names.get(v.board as usize).map_or("", String::as_str);
    let inner_dst = match s.net {
        Net::Ip(ip) => Some(ip.dst),
        _ => None,
    };
    let outer_dst = s.tunnels.first().map(|t| t.dst).or(inner_dst);
    if !v.out {
        // A bridge port sees frames for the bridge's MAC as "other host": test it first.
        if link.master.is_some() {
            return Next::SameBoard;
        }
        if pkttype != PacketType::HOST {
            return Next::Ends;
        }
        let local = |a| cx.topo.delivers_locally(board, &link.netns, a);
        if !s.tunnels.is_empty() && outer_dst.is_some_and(local) {
            return Next::SameBoard;
        }
        return match inner_dst {
            Some(dst) if !local(dst) => Next::SameBoard,
            _ => Next::Ends,
        };
    }
    match link.kind {
        LinkKind::Veth if v.peer.is_some() => Next::SameBoard,
        LinkKind::Bridge if cx.topo.has_ports(board, link) => Next::SameBoard,
        LinkKind::Loopback => Next::SameBoard,
        k if is_tunnel_device(k) => Next::SameBoard,
        LinkKind::Veth | LinkKind::Bridge => Next::Ends,
        _ => {
            let Some(dst) = outer_dst else {
                return Next::Ends;
            };
            let ids: Vec<u32> = cx
                .topo
                .other_owners(board, dst)
                .into_iter()
                .filter_map(|b| cx.names.iter().position(|n| n == b))
                .map(|i| i as u32)
                .collect();
            if ids.is_empty() {
                Next::Ends
            } else {
                Next::Boards(ids)
            }
        }
    }
}

/// Whether `board` reported capture drops overlapping [t, t + window] (t on the reference
/// clock, drops on the board's own).
fn capture_dropped(cx: &Context, board: u32, t_ref: i64) -> bool {
    let Some(name) = cx.names.get(board as usize) else {
        return false;
    };
    let offset = cx
        .clock
        .board(name)
        .map_or(0, |c| c.at(t_ref.max(0) as u64).0);
    let from = t_ref.saturating_add(offset).max(0) as u64;
    let to = from.saturating_add(cx.window_ns);
    cx.drops
        .iter()
        .any(|d| d.board == *name && d.dropped > 0 && d.start_ns <= to && d.end_ns >= from)
}
