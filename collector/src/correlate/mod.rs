//! Path reconstruction: the observations of one packet, from every link, namespace and board,
//! grouped into a journey; its hops ordered, with latency per hop, NAT rewrites, tunnels,
//! board clock offsets and where it vanished. Pure logic: the store hands rows in, the
//! renderers format what comes out.
//!
//! The pipeline ([`correlate`]):
//! 1. resolve every hop's link against the [`Topology`] (`view`);
//! 2. bucket hops by fingerprint and inner packet shape (protocol, IP payload length,
//!    fragment): the wire length differs by tunnel overhead, the inner packet does not;
//! 3. per board, split buckets into segments on the board's own clock, pair segments that
//!    leave one board with segments that arrive on another, and estimate clock offsets from
//!    those crossings (`segments`, `clock`);
//! 4. split buckets into journeys on the corrected clock (`journey`);
//! 5. per journey: order the hops (`order`), find NAT rewrites (`nat`), tunnels (`tunnel`)
//!    and whether it vanished (`vanish`);
//! 6. tie the journeys that are pieces of one whole (GSO segments, GRO merges, IP
//!    fragments) into one journey each (`pieces`, `compound`);
//! 7. join request and reply journeys into flows (`flow`).

mod clock;
mod compound;
mod describe;
mod flow;
mod journey;
mod nat;
mod order;
mod pieces;
mod segments;
pub mod stored;
mod topology;
mod tunnel;
mod udp_gso;
mod vanish;
mod view;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod scenarios_clock;
#[cfg(test)]
mod scenarios_pieces;
#[cfg(test)]
pub(crate) mod testbed;

pub use clock::{BoardClock, ClockModel, ClockPoint, Crossings};
pub use compound::{LostRange, Piece, PieceEvent, PieceEventKind, Whole};
pub use describe::{describe, flow_label};
pub use nat::{Endpoints, NatKind, NatRewrite};
pub use pieces::piece_family_key;
pub use topology::Topology;
pub use tunnel::{label as tunnel_label, TunnelSpan};
pub use vanish::Fate;

use hopcap_proto::record::{LinkKind, Observation, MAX_NAME};
use hopcap_proto::summary::Summary;
use hopcap_proto::types::PacketType;
use journey::Item;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use view::View;

/// One observation and the board that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub board: String,
    pub obs: Observation,
}

/// Packets the capture itself lost on one board in an interval (the kernel's ring drops or
/// the agent's queue drops), on that board's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropInterval {
    pub board: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub dropped: u64,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Sightings of one packet lie within this span of its first one (after clock correction).
    pub window_ns: u64,
    /// Clock offsets are estimated per window of this length (minimum-delay filtering needs
    /// enough crossings per window; shorter follows drift more closely).
    pub clock_window_ns: u64,
    /// The board whose clock the others are corrected to; default the first by name.
    pub reference_board: Option<String>,
    /// Capture drops reported by the agents, to tell capture loss from network loss.
    pub drops: Vec<DropInterval>,
    /// Boards that keep one packet in N > 1 (`--sample`). A UDP GSO segment is sampled on
    /// its own where its whole was not seen (see `proto::sample`): such a board may lack
    /// segments of a whole kept elsewhere, so their absence there is no loss.
    pub sampling: Vec<String>,
    /// Crossings counted elsewhere (by the correlators of the other partitions of a scaled
    /// run), merged with this input's own before the clocks are estimated.
    pub shared_crossings: Option<Crossings>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window_ns: 1_000_000_000,
            clock_window_ns: 10_000_000_000,
            reference_board: None,
            drops: Vec::new(),
            sampling: Vec::new(),
            shared_crossings: None,
        }
    }
}

/// One hop of a journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyHop {
    /// Position of this hop in the vector handed to [`correlate`].
    pub input: usize,
    pub hop: Hop,
    /// Namespace and link name from the topology (`link<key>` when the link is unknown).
    pub netns: heapless::String<MAX_NAME>,
    pub link: heapless::String<MAX_NAME>,
    pub kind: Option<LinkKind>,
    /// The capture time on the reference board's clock.
    pub t_ns: i64,
    /// How far that correction may be off (None: this board's clock is not tied to the
    /// reference by two-way traffic).
    pub clock_uncertainty_ns: Option<u64>,
    /// Position of the hop this one came from.
    pub prev: Option<usize>,
    /// `t_ns` minus the predecessor's.
    pub latency_ns: Option<i64>,
    /// Every piece this hop saw, in time order, when it saw the packet as pieces (or as one
    /// piece of a larger whole); empty when it saw the whole packet as one. The hop's own
    /// observation is the first piece.
    pub pieces: Vec<Piece>,
}

impl JourneyHop {
    pub fn out(&self) -> bool {
        self.hop.obs.pkttype == PacketType::OUTGOING
    }
    pub fn summary(&self) -> &Summary {
        &self.hop.obs.summary
    }
}

/// One packet's way through the captured network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub fingerprint: u64,
    /// In path order.
    pub hops: Vec<JourneyHop>,
    pub nat: Vec<NatRewrite>,
    pub tunnels: Vec<TunnelSpan>,
    pub fate: Fate,
    /// Flow number: journeys of one conversation (request and reply, before and after NAT).
    pub flow: usize,
    /// The bytes the packet carried as one whole.
    pub whole: Whole,
    /// Where it was segmented, merged, fragmented or reassembled on the way.
    pub events: Vec<PieceEvent>,
    /// With a vanished fate: the bytes never seen after that hop.
    pub lost_range: Option<LostRange>,
}

impl Journey {
    /// The input positions of every observation of the journey: its hops and their pieces.
    pub fn inputs(&self) -> impl Iterator<Item = usize> + '_ {
        self.hops.iter().flat_map(|h| {
            let pieces = h
                .pieces
                .iter()
                .map(|p| p.input)
                .filter(move |&i| i != h.input);
            std::iter::once(h.input).chain(pieces)
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// In time order of their first hop.
    pub journeys: Vec<Journey>,
    pub clock: ClockModel,
    pub flows: usize,
    /// The input's own crossings (before any shared ones were merged).
    pub crossings: Crossings,
}

/// Groups observations into journeys. `topo` must hold the link tables the observations'
/// link keys refer to.
pub fn correlate(hops: Vec<Hop>, topo: &Topology, cfg: &Config) -> Report {
    let prepared = view::prepare(&hops, topo);
    let (mut views, names) = (prepared.views, prepared.boards);
    let window = i64::try_from(cfg.window_ns).unwrap_or(i64::MAX);

    let buckets = buckets(&hops);

    let own = if names.len() > 1 {
        Crossings::of(
            &segments::samples(&views, &buckets, window),
            &names,
            cfg.clock_window_ns,
        )
    } else {
        Crossings {
            window_ns: cfg.clock_window_ns,
            ..Crossings::default()
        }
    };
    let mut crossings = own.clone();
    let mut clock_names = names.clone();
    if let Some(shared) = &cfg.shared_crossings {
        if !crossings.merge(shared) {
            log::warn!(
                "clock: shared crossings of {} ns windows, not {}: not used",
                shared.window_ns,
                cfg.clock_window_ns
            );
        }
        // Boards seen only by other partitions may still chain two of ours together.
        let mut extra: Vec<String> = crossings
            .boards()
            .filter(|b| !names.contains(b))
            .cloned()
            .collect();
        extra.sort_unstable();
        extra.dedup();
        clock_names.extend(extra);
    }
    let reference = cfg
        .reference_board
        .as_ref()
        .and_then(|r| clock_names.iter().position(|n| n == r))
        .map_or_else(
            || clock::best_reference(&crossings, &clock_names),
            |i| i as u32,
        );
    let clock = clock::estimate_from(&crossings, &clock_names, reference);
    let mut uncertainty: Vec<Option<u64>> = Vec::with_capacity(views.len());
    for v in &mut views {
        let (off, unc) = clock
            .boards
            .get(v.board as usize)
            .map_or((0, None), |c| c.at(v.ts));
        v.t = (v.ts as i64).saturating_sub(off);
        uncertainty.push(if v.board == reference { Some(0) } else { unc });
    }

    let mut groups: Vec<Vec<u32>> = Vec::new();
    for b in &buckets {
        let mut items: Vec<Item> = b.iter().map(|&i| item(i, &views[i as usize])).collect();
        groups.extend(journey::split(&mut items, window));
    }
    groups.sort_by_cached_key(|g| g.iter().map(|&i| (views[i as usize].t, i)).min());

    let board_unc: Vec<i64> = clock
        .boards
        .iter()
        .map(|b| {
            b.points
                .iter()
                .map(|p| p.uncertainty_ns.map_or(window, |u| u as i64))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let tol = |a: u32, b: u32| {
        board_unc.get(a as usize).unwrap_or(&0) + board_unc.get(b as usize).unwrap_or(&0)
    };
    let cx = vanish::Context {
        views: &views,
        topo,
        names: &names,
        clock: &clock,
        drops: &cfg.drops,
        sampling: &cfg.sampling,
        window_ns: cfg.window_ns,
    };

    let ordered: Vec<order::Ordered> = groups
        .iter()
        .map(|g| order::order(g, &views, tol))
        .collect();
    let vanished = |g: usize| {
        let o = &ordered[g];
        let summaries: Vec<&Summary> = o
            .hops
            .iter()
            .map(|&i| &hops[i as usize].obs.summary)
            .collect();
        let pkttypes: Vec<PacketType> = o
            .hops
            .iter()
            .map(|&i| hops[i as usize].obs.pkttype)
            .collect();
        !vanish::fate(o, &summaries, &pkttypes, &cx).is_complete()
    };
    let plans = pieces::plan(&groups, &ordered, &views, &hops, window, vanished);

    let mut slots: Vec<Option<Hop>> = hops.into_iter().map(Some).collect();
    // Compounds first: they share observations (a piece that straddles two wholes), so they
    // copy theirs, and the journeys left alone then take their own.
    let mut built: Vec<Option<Journey>> = vec![None; plans.len()];
    for (k, plan) in plans.iter().enumerate() {
        if let pieces::Plan::Pieces(c) = plan {
            let input = compound::Input {
                groups: &groups,
                slots: &slots,
                unc: &uncertainty,
                cx: &cx,
            };
            built[k] = Some(compound::build(c, &input, tol));
        }
    }
    for (k, plan) in plans.iter().enumerate() {
        if let pieces::Plan::One(g) = *plan {
            built[k] = Some(build(&ordered[g], &mut slots, &uncertainty, &cx));
        }
    }
    let mut journeys: Vec<Journey> = built.into_iter().flatten().collect();
    let flows = number_flows(&mut journeys);
    Report {
        journeys,
        clock,
        flows,
        crossings: own,
    }
}

/// Numbers the flows of `journeys` (in place); returns how many there are.
pub fn number_flows(journeys: &mut [Journey]) -> usize {
    let ids = flow::assign(
        journeys
            .iter()
            .map(|j| j.hops.iter().map(JourneyHop::summary).collect()),
    );
    let flows = ids.iter().max().map_or(0, |m| m + 1);
    for (j, f) in journeys.iter_mut().zip(ids) {
        j.flow = f;
    }
    flows
}

/// The crossings `hops` hold on their own (what [`correlate`] would count of them): what a
/// partition's correlator shares once it has stored the journeys these hops make.
pub fn crossings_of(hops: &[Hop], topo: &Topology, cfg: &Config) -> Crossings {
    let prepared = view::prepare(hops, topo);
    let window = i64::try_from(cfg.window_ns).unwrap_or(i64::MAX);
    let buckets = buckets(hops);
    if prepared.boards.len() < 2 {
        return Crossings {
            window_ns: cfg.clock_window_ns,
            ..Crossings::default()
        };
    }
    Crossings::of(
        &segments::samples(&prepared.views, &buckets, window),
        &prepared.boards,
        cfg.clock_window_ns,
    )
}

/// Hops by fingerprint and inner packet shape, by sorting rather than hashing: no
/// allocation per bucket key.
fn buckets(hops: &[Hop]) -> Vec<Vec<u32>> {
    let mut keyed: Vec<((u64, u64), u32)> = hops
        .iter()
        .enumerate()
        .map(|(i, h)| (view::bucket_key(h), i as u32))
        .collect();
    keyed.sort_unstable();
    keyed
        .chunk_by(|a, b| a.0 == b.0)
        .map(|c| c.iter().map(|&(_, i)| i).collect())
        .collect()
}

/// One journey from its ordered hops: NAT, tunnels and fate, then the hops moved out of
/// `slots` into it.
fn build(
    o: &order::Ordered,
    slots: &mut [Option<Hop>],
    unc: &[Option<u64>],
    cx: &vanish::Context,
) -> Journey {
    let views = cx.views;
    let hops: Vec<&Hop> = o
        .hops
        .iter()
        .filter_map(|&i| slots[i as usize].as_ref())
        .collect();
    let summaries: Vec<&Summary> = hops.iter().map(|h| &h.obs.summary).collect();
    let pkttypes: Vec<PacketType> = hops.iter().map(|h| h.obs.pkttype).collect();
    let fate = vanish::fate(o, &summaries, &pkttypes, cx);
    let eps: Vec<Option<Endpoints>> = o
        .hops
        .iter()
        .map(|&i| views[i as usize].endpoints)
        .collect();
    let nat = nat::rewrites(&eps, &o.prev);
    let tunnels = tunnel::spans(&summaries);
    let whole = summaries
        .first()
        .map_or(Whole { seq: None, len: 0 }, |s| Whole::of(s));
    let lost_range = fate
        .vanished_after()
        .and(summaries.first())
        .and_then(|s| compound::lost_range_of(s));
    let mut out = Vec::with_capacity(o.hops.len());
    for (&i, &prev) in o.hops.iter().zip(&o.prev) {
        if let Some(hop) = slots[i as usize].take() {
            let prev_idx = prev.map(|p| o.hops[p]);
            out.push(journey_hop(i, hop, views, prev_idx, unc[i as usize], prev));
        }
    }
    let fingerprint = out.first().map_or(0, |h| h.hop.obs.fingerprint);
    Journey {
        fingerprint,
        hops: out,
        nat,
        tunnels,
        fate,
        flow: 0,
        whole,
        events: Vec::new(),
        lost_range,
    }
}

fn item(i: u32, v: &View) -> Item {
    Item {
        idx: i,
        t: v.t,
        socket: v.socket,
        order: v.order,
        link: (v.board, v.key, v.out),
        tuple: v.tuple,
        ends: v.ends,
    }
}

fn journey_hop(
    i: u32,
    hop: Hop,
    views: &[View],
    prev_idx: Option<u32>,
    unc: Option<u64>,
    prev: Option<usize>,
) -> JourneyHop {
    let v = &views[i as usize];
    let (netns, link) = match v.info {
        Some(l) => (l.netns.clone(), l.name.clone()),
        None => {
            let mut name = heapless::String::new();
            let _ = write!(name, "link{}", v.key);
            (heapless::String::new(), name)
        }
    };
    let latency_ns = prev_idx.map(|p| v.t - views[p as usize].t);
    JourneyHop {
        input: i as usize,
        hop,
        netns,
        link,
        kind: v.kind,
        t_ns: v.t,
        clock_uncertainty_ns: unc,
        prev,
        latency_ns,
        pieces: Vec::new(),
    }
}
