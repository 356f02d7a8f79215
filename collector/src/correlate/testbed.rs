//! The test kit's synthetic beds as correlator input, for the unit tests of this module and
//! of the renderers. The kit speaks proto only (link tables, observations, the truth);
//! [`BedExt`] makes this crate's [`Topology`] and [`Hop`]s from them, and [`score`] reads a
//! [`Report`]. (The kit cannot name collector types: a dev-dependency on the collector would
//! give these unit tests a second, foreign copy of them.)

pub use hopcap_testkit::bed::*;
pub use hopcap_testkit::Rng;

use super::{Hop, Report, Topology};

/// [`Bed`] → this crate's types.
pub trait BedExt {
    /// The link tables so far, as a topology.
    fn topology(&self) -> Topology;
    /// The topology, the hops in the order they were seen (capture order assigned) and the
    /// true packet behind each hop.
    fn finish(self) -> (Topology, Vec<Hop>, Vec<usize>);
}

fn topology_of(links: &[(String, Vec<hopcap_proto::record::LinkInfo>)]) -> Topology {
    let mut t = Topology::new();
    for (board, table) in links {
        t.add_board(board, table.iter().cloned());
    }
    t
}

impl BedExt for Bed {
    fn topology(&self) -> Topology {
        topology_of(self.links())
    }

    fn finish(self) -> (Topology, Vec<Hop>, Vec<usize>) {
        let parts = self.into_parts();
        let hops = parts
            .hops
            .into_iter()
            .map(|(board, obs)| Hop { board, obs })
            .collect();
        (topology_of(&parts.links), hops, parts.truth)
    }
}

/// How well `report` matches the packets behind a bed.
pub fn score(report: &Report, truth: &[usize]) -> Score {
    hopcap_testkit::bed::score(
        report
            .journeys
            .iter()
            .map(|j| (j.hops.iter().map(|h| h.input), j.fate.is_complete())),
        truth,
    )
}

/// The kit's [`hopcap_testkit::bed::flannel_pings`] bed, correlated.
pub fn flannel_pings(pings: u16) -> Report {
    let (topo, hops, _) = hopcap_testkit::bed::flannel_pings(pings).finish();
    super::correlate(hops, &topo, &super::Config::default())
}
