//! `export --pcapng`: the correlated journeys as a pcapng file for Wireshark, written with
//! proto's pcapng writer.
//!
//! - One interface per hop, named as every command names hops (`board:link`, or
//!   `board:netns:link` outside the board's own namespace), with its link type and, as its
//!   snaplen, the most frame bytes stored for it.
//! - Packets in time order on the reference board's clock (the correlator's estimated
//!   offsets applied); the section header's comment says which offset was used per board,
//!   with its uncertainty.
//! - Each packet's comment: `hopcap journey=<fingerprint> hop=<i> hops=<n> <hop> In|Out`,
//!   for a piece of a segmented, merged or fragmented packet `piece=<k>/<n> offset=<o>
//!   len=<l>` (its place in the whole), the NAT rewrites first seen at that hop (`nat="SNAT a→b"`), and [`pick::DUP_TOKEN`] on every
//!   sighting after the journey's first written one.

pub mod pick;

use crate::correlate::{ClockModel, Journey, JourneyHop, Report};
use crate::render::paths::fmt_ns;
use crate::store::link_label;
use hopcap_proto::pcapng;
use hopcap_proto::record::LinkKind;
use hopcap_proto::types::LinkType;
use pick::{HopChoice, Picked, Sighting, DUP_TOKEN};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What to export.
#[derive(Debug)]
pub struct ExportInput<'a> {
    pub report: &'a Report,
    /// Each correlated observation's stored frame bytes, by its `input` index (`None`:
    /// stored without).
    pub frames: &'a [Option<Vec<u8>>],
    pub hop: HopChoice,
    /// The writer, for the section header (`hopcap-collector 0.1.0`).
    pub application: &'a str,
    /// The selection as given, for the section header's comment.
    pub selection: &'a str,
}

/// What was written, and what was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub packets: usize,
    pub interfaces: usize,
    pub duplicates: usize,
    pub without_bytes: usize,
    pub not_on_link: usize,
}

/// How a hop's frames start: links without a link-layer header hand out bare IP packets
/// (as the agent's capture sees them).
fn link_type(kind: Option<LinkKind>) -> LinkType {
    match kind {
        Some(LinkKind::Tun | LinkKind::Wireguard | LinkKind::IpIp | LinkKind::Gre) => LinkType::RAW,
        _ => LinkType::ETHERNET,
    }
}

fn hop_name(h: &JourneyHop) -> String {
    link_label(&h.hop.board, &h.netns, &h.link)
}

/// The file: section header, interfaces, packets. `out` receives the bytes.
pub fn write(input: &ExportInput<'_>, out: &mut Vec<u8>) -> Exported {
    let report = input.report;
    let frame = |i: usize| input.frames.get(i).and_then(|f| f.as_deref());
    let Picked {
        mut sightings,
        without_bytes,
        not_on_link,
    } = pick::pick(report, &input.hop, |i| frame(i).is_some());
    let hop_of = |s: &Sighting| &report.journeys[s.journey].hops[s.hop];
    let piece_of = |s: &Sighting| s.piece.and_then(|k| hop_of(s).pieces.get(k));
    // (input, time on the reference clock, length on the wire) of a sighting.
    let seen = |s: &Sighting| match piece_of(s) {
        Some(p) => (p.input, p.t_ns, p.wire_len),
        None => {
            let h = hop_of(s);
            (h.input, h.t_ns, h.hop.obs.wire_len)
        }
    };
    sightings.sort_by_key(|s| (seen(s).1, s.journey, s.hop, s.piece));

    // Interfaces in name order; each with the most bytes stored for it.
    let mut interfaces: BTreeMap<String, (Option<LinkKind>, String, usize)> = BTreeMap::new();
    for s in &sightings {
        let h = hop_of(s);
        let len = frame(seen(s).0).map_or(0, <[u8]>::len);
        let e = interfaces
            .entry(hop_name(h))
            .or_insert_with(|| (h.kind, h.hop.board.clone(), 0));
        e.2 = e.2.max(len);
    }
    let boards: Vec<&str> = {
        let mut b: Vec<&str> = interfaces.values().map(|(_, b, _)| b.as_str()).collect();
        b.sort_unstable();
        b.dedup();
        b
    };
    pcapng::section_header_commented(
        out,
        input.application,
        &section_comment(&report.clock, &boards, input.selection),
    );
    let mut index = BTreeMap::new();
    for (i, (name, (kind, board, snap))) in interfaces.iter().enumerate() {
        let description = match kind {
            Some(k) => format!("{k} link on board {board}"),
            None => format!("link on board {board}"),
        };
        pcapng::interface(
            out,
            link_type(*kind),
            u32::try_from(*snap).unwrap_or(u32::MAX),
            name,
            &description,
        );
        index.insert(name.as_str(), i as u32);
    }
    let mut comment = String::new();
    for s in &sightings {
        let j = &report.journeys[s.journey];
        let h = hop_of(s);
        let name = hop_name(h);
        packet_comment(&mut comment, j, s, &name);
        let (input, t_ns, wire_len) = seen(s);
        pcapng::packet(
            out,
            &pcapng::Packet {
                interface: index.get(name.as_str()).copied().unwrap_or(0),
                ts_ns: u64::try_from(t_ns).unwrap_or(0),
                wire_len,
                pkttype: h.hop.obs.pkttype,
                data: frame(input).unwrap_or(&[]),
                comment: &comment,
            },
        );
    }
    Exported {
        packets: sightings.len(),
        interfaces: interfaces.len(),
        duplicates: sightings.iter().filter(|s| s.dup).count(),
        without_bytes,
        not_on_link,
    }
}

/// `hopcap journey=… hop=… hops=… <hop> In|Out [piece=…] [nat="…"]… [hopcap.dup]`.
fn packet_comment(out: &mut String, j: &Journey, s: &Sighting, name: &str) {
    out.clear();
    let h = &j.hops[s.hop];
    let dir = if h.out() { "Out" } else { "In" };
    let _ = write!(
        out,
        "hopcap journey={:016x} hop={} hops={} {name} {dir}",
        j.fingerprint,
        s.hop,
        j.hops.len()
    );
    if let Some(p) = s.piece.and_then(|k| h.pieces.get(k).map(|p| (k, p))) {
        let _ = write!(
            out,
            " piece={}/{} offset={} len={}",
            p.0 + 1,
            h.pieces.len(),
            p.1.offset,
            p.1.len
        );
    }
    for n in j.nat.iter().filter(|n| n.at == s.hop) {
        let _ = write!(out, " nat=\"{} {}→{}\"", n.kind.label(), n.before, n.after);
    }
    if s.dup {
        let _ = write!(out, " {DUP_TOKEN}");
    }
}

/// The section header's comment: the clock each board's times were put on, and the selection.
fn section_comment(clock: &ClockModel, boards: &[&str], selection: &str) -> String {
    let reference = clock.reference.as_deref().unwrap_or_default();
    let mut out = String::from("hopcap-collector export");
    if !reference.is_empty() {
        let _ = write!(out, "\ntimes on board {reference}'s clock (the reference)");
    }
    for board in boards.iter().filter(|b| **b != reference) {
        let line = match clock.board(board).filter(|c| c.corrected()) {
            Some(c) => {
                let offsets = c.points.iter().map(|p| p.offset_ns);
                let (lo, hi) = (offsets.clone().min(), offsets.max());
                let unc = c
                    .points
                    .iter()
                    .map(|p| p.uncertainty_ns)
                    .try_fold(0u64, |a, u| u.map(|u| a.max(u)));
                let unc = unc.map_or("a one-sided bound".to_string(), |u| {
                    format!("±{}", fmt_ns(u as i64))
                });
                let off = match (lo, hi) {
                    (Some(lo), Some(hi)) if lo != hi => {
                        format!("{} to {}", signed(lo), signed(hi))
                    }
                    (Some(o), _) => signed(o),
                    _ => "0".into(),
                };
                format!(
                    "{board}: clock offset {off} {unc} vs {reference} (subtracted; {} windows)",
                    c.points.len()
                )
            }
            None if reference.is_empty() => format!("{board}: its own clock"),
            None => format!(
                "{board}: clock not tied to {reference} (no two-board traffic matched): uncorrected"
            ),
        };
        out.push('\n');
        out.push_str(&line);
    }
    let _ = write!(out, "\nselection: {selection}");
    out
}

fn signed(ns: i64) -> String {
    if ns < 0 {
        fmt_ns(ns)
    } else {
        format!("+{}", fmt_ns(ns))
    }
}

#[cfg(test)]
mod tests;
