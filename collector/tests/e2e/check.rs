//! Checks of what the collector reports against the flows a test made: each packet in the
//! merged timeline (every hop of its route once, in order), each journey of `paths --json`
//! (hops, NAT, tunnel, completeness), and the figures the tests print.

use super::flows::{Flow, Sighting, Way};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A packet: its flow (index) and fingerprint.
pub type PacketKey = (usize, u64);

/// The sightings of the flows' packets, grouped per packet, each group in the given order.
pub fn packets(flows: &[Flow], seen: &[Sighting]) -> BTreeMap<PacketKey, Vec<Sighting>> {
    let mut out: BTreeMap<PacketKey, Vec<Sighting>> = BTreeMap::new();
    for s in seen {
        if let Some(f) = flows.iter().position(|f| f.classify(s).is_some()) {
            out.entry((f, s.fingerprint)).or_default().push(s.clone());
        }
    }
    out
}

/// Checks one packet's sightings (in timeline order): the route's hops exactly once each, in
/// order and direction, with the addresses each shows, and time never going back.
pub fn check_packet(flow: &Flow, hops: &[Sighting]) -> Result<Way, String> {
    let show = || {
        hops.iter()
            .map(|s| format!("\n  {s:?}"))
            .collect::<String>()
    };
    let way = hops
        .first()
        .and_then(|s| flow.classify(s))
        .ok_or("no hop")?;
    let want = flow.expected(way);
    let got: Vec<_> = hops.iter().map(|s| &s.hop).collect();
    let want_hops: Vec<_> = want.iter().map(|(h, _)| h).collect();
    if got != want_hops {
        return Err(format!(
            "{} {way:?}: hops {:?}, expected {:?}:{}",
            flow.name,
            got.iter().map(|h| h.name()).collect::<Vec<_>>(),
            want_hops.iter().map(|h| h.name()).collect::<Vec<_>>(),
            show()
        ));
    }
    for (s, (hop, ends)) in hops.iter().zip(&want) {
        if !s.shows(*ends) {
            return Err(format!(
                "{}: {} shows {s:?}, expected {ends:?}",
                flow.name,
                hop.name()
            ));
        }
    }
    if hops.windows(2).any(|w| w[1].ts_ns < w[0].ts_ns) {
        return Err(format!("{}: time goes back:{}", flow.name, show()));
    }
    Ok(way)
}

/// A journey of `paths --json` judged against the flows.
#[derive(Debug)]
pub struct Judged {
    pub key: PacketKey,
    pub way: Way,
    pub verdict: Result<(), String>,
}

/// Judges journey `j`; None when it is not a packet of any flow.
pub fn check_journey(flows: &[Flow], j: &Value) -> Option<Judged> {
    let hops: Vec<Sighting> = j["hops"]
        .as_array()?
        .iter()
        .filter_map(|h| Sighting::from_path_hop(j, h))
        .collect();
    let first = hops.first()?;
    let (f, flow) = flows
        .iter()
        .enumerate()
        .find(|(_, f)| f.classify(first).is_some())?;
    let way = flow.classify(first)?;
    let verdict = journey_verdict(flow, way, j, &hops);
    Some(Judged {
        key: (f, first.fingerprint),
        way,
        verdict,
    })
}

fn journey_verdict(flow: &Flow, way: Way, j: &Value, hops: &[Sighting]) -> Result<(), String> {
    let line = || j.to_string();
    let want = flow.expected(way);
    let got: Vec<String> = hops.iter().map(|s| dir_name(&s.hop)).collect();
    let expected: Vec<String> = want.iter().map(|(h, _)| dir_name(h)).collect();
    if got != expected {
        return Err(format!(
            "{} {way:?}: path {got:?}, expected {expected:?}",
            flow.name
        ));
    }
    for (s, (hop, ends)) in hops.iter().zip(&want) {
        if !s.shows(*ends) {
            return Err(format!(
                "{}: {} shows {s:?}, expected {ends:?}",
                flow.name,
                hop.name()
            ));
        }
    }
    let linear = j["hops"].as_array().is_some_and(|h| {
        h.iter()
            .enumerate()
            .all(|(i, h)| h["prev"].as_u64() == i.checked_sub(1).map(|p| p as u64))
    });
    if !linear {
        return Err(format!(
            "{}: hops do not follow each other: {}",
            flow.name,
            line()
        ));
    }
    if j["complete"] != Value::Bool(true) || !j["lost_after"].is_null() {
        return Err(format!("{}: not complete: {}", flow.name, line()));
    }
    let nat = j["nat"].as_array().cloned().unwrap_or_default();
    if nat != flow.expected_nat(way) {
        return Err(format!(
            "{}: nat {nat:?}, expected {:?}",
            flow.name,
            flow.expected_nat(way)
        ));
    }
    let mut tunnels = j["tunnel"].as_array().cloned().unwrap_or_default();
    for t in &mut tunnels {
        t.as_object_mut().map(|o| o.remove("label"));
    }
    if tunnels != flow.expected_tunnels(way) {
        return Err(format!(
            "{}: tunnels {tunnels:?}, expected {:?}",
            flow.name,
            flow.expected_tunnels(way)
        ));
    }
    Ok(())
}

fn dir_name(h: &super::flows::Hop) -> String {
    format!("{} {}", h.name(), if h.out { "Out" } else { "In" })
}

/// How the journeys of `paths` cover the packets of the timeline.
#[derive(Debug, Default)]
pub struct Coverage {
    pub packets: usize,
    /// Packets with exactly one journey, and that journey complete and correct.
    pub correct: usize,
    /// Packets split over several journeys, or merged with another packet.
    pub split_or_merged: usize,
    /// What went wrong, one line per packet (at most a few kept).
    pub problems: Vec<String>,
    /// Journeys of the flows with no packet in the timeline.
    pub stray_journeys: usize,
}

impl Coverage {
    pub fn percent(&self) -> f64 {
        if self.packets == 0 {
            return 0.0;
        }
        100.0 * self.correct as f64 / self.packets as f64
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}/{} packets with one complete, correct journey ({:.2}%), {} split or merged, {} stray journeys",
            self.correct,
            self.packets,
            self.percent(),
            self.split_or_merged,
            self.stray_journeys
        );
        for p in self.problems.iter().take(5) {
            let _ = write!(s, "\n  {p}");
        }
        s
    }
}

/// Matches journeys to packets by (flow, fingerprint).
pub fn coverage(flows: &[Flow], packets: &[PacketKey], journeys: &[Value]) -> Coverage {
    let mut by_key: BTreeMap<PacketKey, Vec<Judged>> = BTreeMap::new();
    for j in journeys {
        if let Some(judged) = check_journey(flows, j) {
            by_key.entry(judged.key).or_default().push(judged);
        }
    }
    let mut c = Coverage {
        packets: packets.len(),
        ..Coverage::default()
    };
    for key in packets {
        match by_key.remove(key).as_deref() {
            Some([one]) => match &one.verdict {
                Ok(()) => c.correct += 1,
                Err(e) => c.problems.push(e.clone()),
            },
            Some(many) => {
                c.split_or_merged += 1;
                c.problems.push(format!(
                    "{} {key:?}: {} journeys",
                    flows[key.0].name,
                    many.len()
                ));
            }
            None => c
                .problems
                .push(format!("{} {key:?}: no journey", flows[key.0].name)),
        }
    }
    c.stray_journeys = by_key.values().map(Vec::len).sum();
    c
}
