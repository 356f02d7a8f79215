//! Which sightings of each journey go into an export, and which of them are duplicates.
//!
//! Wireshark's TCP analysis takes the same segment seen on several hops for a retransmission.
//! Every written sighting of a journey after its first is therefore marked a duplicate (the
//! comment token [`DUP_TOKEN`]), so that `!(frame.comment contains "hopcap.dup")` leaves one
//! packet per journey; or `--hop` writes one chosen sighting per journey in the first place.

use crate::correlate::{JourneyHop, Report};
use crate::store::link_label;

/// The comment token of a duplicate sighting.
pub const DUP_TOKEN: &str = "hopcap.dup";

/// Which sightings of a journey to write (`--hop`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HopChoice {
    /// Every sighting, the later ones marked duplicates.
    All,
    /// The first sighting in path order that has frame bytes.
    First,
    /// The last one that has.
    Last,
    /// The sighting on this link, named as `--link` takes it: `eth0`, `pi1:eth0`,
    /// `pi1:ctr:eth0` (the first on it, if the journey passes it twice).
    Link(String),
}

impl HopChoice {
    /// `all`, `first`, `last`, or a link.
    pub fn from_arg(arg: &str) -> HopChoice {
        match arg {
            "all" => HopChoice::All,
            "first" => HopChoice::First,
            "last" => HopChoice::Last,
            link => HopChoice::Link(link.to_string()),
        }
    }
}

/// One sighting to write: hop `hop` of journey `journey` of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub journey: usize,
    pub hop: usize,
    /// Which of the hop's pieces (None: the hop saw the packet whole).
    pub piece: Option<usize>,
    /// Not the journey's first written sighting.
    pub dup: bool,
}

/// What [`pick`] chose, and what it had to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picked {
    pub sightings: Vec<Sighting>,
    /// Sightings (with `All`) or journeys (otherwise) left out because the chosen sighting
    /// was stored without frame bytes.
    pub without_bytes: usize,
    /// Journeys that do not pass the `--hop LINK` link.
    pub not_on_link: usize,
}

/// A hop's observations: its pieces (by index) or, seen whole, itself; with their inputs.
fn observations(h: &JourneyHop) -> impl Iterator<Item = (Option<usize>, usize)> + '_ {
    let whole = h.pieces.is_empty().then_some((None, h.input));
    let pieces = h.pieces.iter().enumerate().map(|(k, p)| (Some(k), p.input));
    whole.into_iter().chain(pieces)
}

fn on_link(h: &JourneyHop, link: &str) -> bool {
    h.link.as_str() == link || link_label(&h.hop.board, &h.netns, &h.link) == link
}

/// The sightings of `report` that `choice` writes; `has_bytes(input)` says whether the
/// observation with that `input` index has stored frame bytes.
pub fn pick(report: &Report, choice: &HopChoice, has_bytes: impl Fn(usize) -> bool) -> Picked {
    let mut out = Picked::default();
    let mut written = std::collections::HashSet::new();
    for (j, journey) in report.journeys.iter().enumerate() {
        let hops = &journey.hops;
        let with = |i: &usize| has_bytes(hops[*i].input);
        let chosen = match choice {
            HopChoice::All => {
                let mut first = true;
                for (i, hop) in hops.iter().enumerate() {
                    let mut wrote = false;
                    for (piece, input) in observations(hop) {
                        // A piece two journeys share (it straddles two wholes) is written once.
                        if !written.insert(input) {
                            continue;
                        }
                        if !has_bytes(input) {
                            out.without_bytes += 1;
                            continue;
                        }
                        out.sightings.push(Sighting {
                            journey: j,
                            hop: i,
                            piece,
                            dup: !first,
                        });
                        wrote = true;
                    }
                    first &= !wrote;
                }
                continue;
            }
            HopChoice::First => (0..hops.len()).find(with).ok_or(false),
            HopChoice::Last => (0..hops.len()).rev().find(with).ok_or(false),
            HopChoice::Link(link) => match (0..hops.len()).find(|&i| on_link(&hops[i], link)) {
                Some(i) if with(&i) => Ok(i),
                Some(_) => Err(false),
                None => Err(true),
            },
        };
        match chosen {
            Ok(hop) => out.sightings.extend(
                observations(&hops[hop])
                    .filter(|&(_, input)| written.insert(input))
                    .map(|(piece, _)| Sighting {
                        journey: j,
                        hop,
                        piece,
                        dup: false,
                    }),
            ),
            Err(true) => out.not_on_link += 1,
            Err(false) => out.without_bytes += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::flannel_pings;

    /// Two boards over VXLAN: pings and their replies, five or more hops each.
    fn report() -> Report {
        flannel_pings(3)
    }

    #[test]
    fn every_sighting_after_a_journeys_first_is_a_duplicate() {
        let r = report();
        let p = pick(&r, &HopChoice::All, |_| true);
        let total: usize = r.journeys.iter().map(|j| j.hops.len()).sum();
        assert_eq!(p.sightings.len(), total);
        let firsts = p.sightings.iter().filter(|s| !s.dup).count();
        assert_eq!(firsts, r.journeys.len());
        assert!(p.sightings.iter().all(|s| s.dup == (s.hop > 0)));
    }

    #[test]
    fn without_bytes_the_next_sighting_is_the_first() {
        let r = report();
        let firsts: Vec<usize> = r.journeys.iter().map(|j| j.hops[0].input).collect();
        let p = pick(&r, &HopChoice::All, |i| !firsts.contains(&i));
        assert_eq!(p.without_bytes, r.journeys.len());
        assert!(p.sightings.iter().all(|s| s.dup == (s.hop > 1)));
        let p = pick(&r, &HopChoice::First, |i| !firsts.contains(&i));
        assert!(p.sightings.iter().all(|s| s.hop == 1 && !s.dup));
    }

    #[test]
    fn one_chosen_hop_per_journey() {
        let r = report();
        let n = r.journeys.len();
        let last = pick(&r, &HopChoice::Last, |_| true);
        assert_eq!(last.sightings.len(), n);
        for s in &last.sightings {
            assert_eq!(s.hop + 1, r.journeys[s.journey].hops.len());
        }
        // A link by its label as printed, and by its bare name.
        let h = &r.journeys[0].hops[1];
        let label = link_label(&h.hop.board, &h.netns, &h.link);
        let on = pick(&r, &HopChoice::from_arg(&label), |_| true);
        assert!(!on.sightings.is_empty());
        for s in &on.sightings {
            let got = &r.journeys[s.journey].hops[s.hop];
            assert_eq!(link_label(&got.hop.board, &got.netns, &got.link), label);
        }
        assert_eq!(on.sightings.len() + on.not_on_link, n);
        assert_eq!(HopChoice::from_arg("all"), HopChoice::All);
        assert_eq!(HopChoice::from_arg("first"), HopChoice::First);
        let none = pick(&r, &HopChoice::from_arg("nosuchlink0"), |_| true);
        assert_eq!((none.sightings.len(), none.not_on_link), (0, n));
    }
}
