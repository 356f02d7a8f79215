//! The test kit's synthetic beds as correlator input, for the unit tests of this module and
//! of the renderers. The kit speaks proto only (link tables, observations, the truth);
//! [`BedExt`] makes this crate's [`Topology`] and [`Hop`]s from them, and [`score`] reads a
//! [`Report`]. (The kit cannot name collector types: a dev-dependency on the collector would
//! give these unit tests a second, foreign copy of them.)

pub use hopcap_testkit::bed::*;
pub use hopcap_testkit::Rng;

use super::{Hop, Report, Topology};
use hopcap_proto::summary::Summary;

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
            .map(|j| (j.inputs(), j.fate.is_complete())),
        truth,
    )
}

/// The kit's [`hopcap_testkit::bed::flannel_pings`] bed, correlated.
pub fn flannel_pings(pings: u16) -> Report {
    let (topo, hops, _) = hopcap_testkit::bed::flannel_pings(pings).finish();
    super::correlate(hops, &topo, &super::Config::default())
}

/// The segment size of the GSO beds.
pub const MSS: u32 = 1448;

/// A TCP segment of the container's upload (ack 1, window 502), `data` bytes at `seq`.
pub fn up(seq: u32, flags: u16, ip_id: u16, data: u32) -> Summary {
    tcp4(
        (CTR, 40000),
        (INTERNET, 5201),
        seq,
        flags,
        ip_id,
        data as u16,
    )
}

/// The super-packet of `n` segments at `seq` on the container's hops, then its segments
/// after masquerade on wlan0, skipping those in `missing`. Returns the last time.
#[allow(clippy::too_many_arguments)]
pub fn upload(
    bed: &mut Bed,
    pi: &PiDocker,
    pkt: usize,
    t: u64,
    seq: u32,
    n: u32,
    ip_id: u16,
    missing: &[u32],
) -> u64 {
    let whole = up(seq, 0x018, ip_id, n * MSS);
    let mut t = walk(
        bed,
        pkt,
        t,
        &[
            (pi.eth0, true, 0, &whole),
            (pi.veth, false, 20_000, &whole),
            (pi.docker0, false, 0, &whole),
        ],
    );
    for k in (0..n).filter(|k| !missing.contains(k)) {
        let flags = if k + 1 == n { 0x018 } else { 0x010 };
        let seg = with_src(
            &up(seq.wrapping_add(k * MSS), flags, ip_id + k as u16, MSS),
            PI1_WLAN,
            None,
        );
        t += 3_000;
        bed.see(pkt, pi.wlan0, true, t, &seg);
    }
    t
}

/// The container's upload on the Pi + Docker bed: one GSO super-packet of five segments that
/// leaves wlan0 as segments (those in `missing` never do), correlated.
pub fn gso_upload(missing: &[u32]) -> Report {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    upload(
        &mut bed,
        &pi,
        0,
        1_700_000_000_000_000_000,
        1000,
        5,
        100,
        missing,
    );
    let (topo, hops, _) = bed.finish();
    super::correlate(hops, &topo, &super::Config::default())
}
