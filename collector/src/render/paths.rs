//! Journeys as text (one line each) and as JSON lines.
//!
//! # Text
//! `<packet>: <hop> → <hop> (+<latency>) → [<rewrite or tunnel>] <hop> (+<latency>)[; <fate>]`
//! where a hop is `<board>:<netns>:<link> In|Out` (`<board>:<link>` in a board's own
//! namespace: the label `timeline` prints and `--link` takes), a
//! latency across boards carries the clock uncertainty (`±…`, `±?` when the boards' clocks
//! are not tied together), and the fate is `lost after <hop>` or `maybe capture loss after
//! <hop>` (nothing when complete).
//!
//! A packet that was split or merged on the way says so: the packet reads `(whole: seq S, N
//! bytes)` or `(whole: N bytes)`, the hop where the pieces changed carries `[segmented into
//! 5]`, `[merged 3 into 1]`, `[resegmented 2 into 10]`, `[fragmented into 3]`,
//! `[reassembled 3 into 1]` or `[refragmented …]` (a first hop that saw pieces: `[3
//! pieces]`), and a loss names the bytes: `(seq A:B never seen again)` or `(bytes A:B …)`.
//!
//! # JSON lines: one object per journey
//! - `journey` (number, position in the report), `flow` (number), `fingerprint` (16 hex
//!   digits, as in `timeline --json`: 64 bits do not fit a JSON number), `packet` (text
//!   description of the first hop);
//! - `hops`: array in path order, each `board`, `netns`, `link`, `kind` (link kind or null),
//!   `dir` ("In"/"Out"), `ts` (capture time on the board's own clock), `t` (on the
//!   reference clock), both as `timeline --json` writes times: decimal seconds with nine
//!   digits, in a string, `src`, `dst` (innermost addresses as seen there, null if not IP),
//!   `sport`, `dport` (null if none), `icmp_id` (null if not echo), `latency_ns` (from `prev`,
//!   null on the first hop), `prev` (index of the hop it came from), `wire_len`,
//!   `clock_uncertainty_ns` (null: board not tied to the reference), `input` (index of the
//!   observation in the correlator's input);
//! - `nat`: array of `kind` ("SNAT", "DNAT", "ICMP id"), `before`, `after`, `at` (hop index
//!   where first seen rewritten), `link` (that hop's name);
//! - `tunnel`: array of `kind` ("VXLAN", "Geneve", "GRE", "GTP-U", "IPIP"), `id` (VNI, GRE
//!   key or TEID; null if none), `src`, `dst` (outer endpoints), `dst_port` (0 if not UDP),
//!   `first_hop`, `last_hop`, `label`;
//!   A hop that saw the packet as pieces (or as one piece of a larger whole) has `pieces`:
//!   array of `offset` (bytes into the whole; an outer fragment of a tunnel: into its outer
//!   datagram), `len`, `seq` (TCP sequence number or null), `ts`, `t`, `input`; absent on a
//!   hop that saw the whole packet as one;
//! - `whole`: `proto` (innermost protocol, lower case, or null), `seq` (TCP: first sequence
//!   number, else null), `len` (TCP payload bytes, UDP payload bytes of a datagram cut into
//!   UDP GSO segments, or IP payload bytes of the datagram);
//! - `events`: array of `kind` ("segmented", "merged", "resegmented", "fragmented",
//!   "reassembled", "refragmented"), `at` (hop index), `link` (its name), `from`, `into`
//!   (pieces on the hop before and on this one);
//! - `complete` (bool), `lost_after` (hop index or null), `lost_range` (null or `[start,
//!   end)`: the bytes never seen after that hop, TCP sequence numbers modulo 2^32 or
//!   offsets in the datagram, UDP GSO: in its UDP payload), `maybe_capture_loss` (bool: the capture dropped packets where
//!   the next hop was due);
//! - `clock`: per board of the journey other than the reference: `board`, `reference`,
//!   `offset_ns` (board clock − reference clock, applied at its first hop), `uncertainty_ns`.

// Nothing in the binary calls in yet; tests reach everything.

pub use crate::correlate::describe;
use crate::correlate::{
    tunnel_label, Endpoints, Fate, Journey, JourneyHop, PieceEvent, PieceEventKind, Report,
};
use crate::store::link_label;
use hopcap_proto::print::Epoch;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};

/// The one spelling of a hop's place, as `timeline` prints it and `--link` takes it:
/// `pi1:wlan0` in the board's own namespace, `pi1:ctr:eth0` in another.
pub fn hop_name(h: &JourneyHop) -> String {
    link_label(&h.hop.board, &h.netns, &h.link)
}

fn dir(h: &JourneyHop) -> &'static str {
    if h.out() {
        "Out"
    } else {
        "In"
    }
}

/// `+23µs`, `+1.25ms`, `-4µs`.
pub fn fmt_ns(ns: i64) -> String {
    let a = ns.unsigned_abs();
    let sign = if ns < 0 { "-" } else { "" };
    let body = if a < 10_000 && a % 1000 != 0 {
        format!("{:.1}µs", a as f64 / 1e3)
    } else if a < 1_000_000 {
        format!("{}µs", (a + 500) / 1000)
    } else if a < 1_000_000_000 {
        format!("{:.2}ms", a as f64 / 1e6)
    } else {
        format!("{:.3}s", a as f64 / 1e9)
    };
    format!("{sign}{body}")
}

/// `+23µs`, `-4µs`.
fn signed(ns: i64) -> String {
    if ns < 0 {
        fmt_ns(ns)
    } else {
        format!("+{}", fmt_ns(ns))
    }
}

/// The latency of hop `i`, with the clock uncertainty when it crosses boards.
fn latency(j: &Journey, i: usize) -> Option<String> {
    let h = j.hops.get(i)?;
    let lat = signed(h.latency_ns?);
    let p = j.hops.get(h.prev?)?;
    if p.hop.board == h.hop.board {
        return Some(lat);
    }
    Some(match p.clock_uncertainty_ns.zip(h.clock_uncertainty_ns) {
        Some((a, b)) => format!("{lat} ±{}", fmt_ns(a.saturating_add(b) as i64)),
        None => format!("{lat} ±?"),
    })
}

/// One journey as one line.
pub fn text_line(j: &Journey) -> String {
    let mut out = j
        .hops
        .first()
        .map_or_else(String::new, |h| describe(h.summary()));
    let split = !j.events.is_empty() || j.hops.iter().any(|h| !h.pieces.is_empty());
    if split {
        match j.whole.seq {
            Some(seq) => {
                let _ = write!(out, " (whole: seq {seq}, {} bytes)", j.whole.len);
            }
            None => {
                let _ = write!(out, " (whole: {} bytes)", j.whole.len);
            }
        }
    }
    out.push(':');
    for (i, h) in j.hops.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { " → " });
        match j.events.iter().find(|e| e.at == i) {
            Some(e) => {
                let _ = write!(out, "[{}] ", event_label(e));
            }
            None if h.pieces.len() > 1 => {
                let _ = write!(out, "[{} pieces] ", h.pieces.len());
            }
            None => {}
        }
        for n in j.nat.iter().filter(|n| n.at == i) {
            let _ = write!(out, "[{} {}→{}] ", n.kind.label(), n.before, n.after);
        }
        for t in j.tunnels.iter().filter(|t| t.first == i) {
            let _ = write!(out, "[{}] ", tunnel_label(&t.tunnel));
        }
        let _ = write!(out, "{} {}", hop_name(h), dir(h));
        if let Some(l) = latency(j, i) {
            let _ = write!(out, " ({l})");
        }
    }
    let at = |p: usize| {
        j.hops
            .get(p)
            .map_or_else(String::new, |h| format!("{} {}", hop_name(h), dir(h)))
    };
    let range = match (split, j.lost_range) {
        (true, Some(r)) if r.seq => format!(" (seq {}:{} never seen again)", r.start, r.end),
        (true, Some(r)) => format!(" (bytes {}:{} never seen again)", r.start, r.end),
        _ => String::new(),
    };
    match j.fate {
        Fate::Complete => {}
        Fate::LostAfter(p) => {
            let _ = write!(out, "; lost after {}{range}", at(p));
        }
        Fate::MaybeCaptureLoss(p) => {
            let _ = write!(out, "; maybe capture loss after {}{range}", at(p));
        }
    }
    out
}

/// `segmented into 5`, `merged 3 into 1`, `fragmented into 3`, `resegmented 2 into 10`.
pub fn event_label(e: &PieceEvent) -> String {
    match e.kind {
        PieceEventKind::Segmented | PieceEventKind::Fragmented => {
            format!("{} into {}", e.kind.name(), e.into)
        }
        _ => format!("{} {} into {}", e.kind.name(), e.from, e.into),
    }
}

pub fn write_text(report: &Report, w: &mut impl Write) -> io::Result<()> {
    for j in &report.journeys {
        writeln!(w, "{}", super::term::clean(&text_line(j)))?;
    }
    Ok(())
}

pub fn write_json(report: &Report, w: &mut impl Write) -> io::Result<()> {
    for (i, j) in report.journeys.iter().enumerate() {
        serde_json::to_writer(&mut *w, &journey_json(report, i, j))?;
        writeln!(w)?;
    }
    Ok(())
}

/// One journey of `report` as its text line (`paths --follow`).
pub fn write_text_one(j: &Journey, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "{}", super::term::clean(&text_line(j)))
}

/// One journey of `report` as a JSON line, numbered `number` in flow `flow` (`paths
/// --follow` numbers what it prints, not the positions in each correlation).
pub fn write_json_one(
    report: &Report,
    j: &Journey,
    number: usize,
    flow: usize,
    w: &mut impl Write,
) -> io::Result<()> {
    let mut json = journey_json(report, number, j);
    json.flow = flow;
    serde_json::to_writer(&mut *w, &json)?;
    writeln!(w)
}

#[derive(Serialize)]
struct JourneyJson {
    journey: usize,
    flow: usize,
    fingerprint: String,
    packet: String,
    hops: Vec<HopJson>,
    nat: Vec<NatJson>,
    tunnel: Vec<TunnelJson>,
    whole: WholeJson,
    events: Vec<EventJson>,
    complete: bool,
    lost_after: Option<usize>,
    lost_range: Option<[u64; 2]>,
    maybe_capture_loss: bool,
    clock: Vec<ClockJson>,
}

#[derive(Serialize)]
struct WholeJson {
    proto: Option<String>,
    seq: Option<u32>,
    len: u64,
}

#[derive(Serialize)]
struct EventJson {
    kind: &'static str,
    at: usize,
    link: String,
    from: usize,
    into: usize,
}

#[derive(Serialize)]
struct PieceJson {
    offset: u64,
    len: u64,
    seq: Option<u32>,
    ts: String,
    t: String,
    input: usize,
}

#[derive(Serialize)]
struct HopJson {
    board: String,
    netns: String,
    link: String,
    kind: Option<String>,
    dir: &'static str,
    ts: String,
    t: String,
    src: Option<String>,
    dst: Option<String>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_id: Option<u16>,
    latency_ns: Option<i64>,
    prev: Option<usize>,
    wire_len: u32,
    clock_uncertainty_ns: Option<u64>,
    input: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pieces: Vec<PieceJson>,
}

#[derive(Serialize)]
struct NatJson {
    kind: &'static str,
    before: String,
    after: String,
    at: usize,
    link: String,
}

#[derive(Serialize)]
struct TunnelJson {
    kind: &'static str,
    id: Option<u32>,
    src: String,
    dst: String,
    dst_port: u16,
    first_hop: usize,
    last_hop: usize,
    label: String,
}

#[derive(Serialize)]
struct ClockJson {
    board: String,
    reference: Option<String>,
    offset_ns: i64,
    uncertainty_ns: Option<u64>,
}

fn journey_json(report: &Report, index: usize, j: &Journey) -> JourneyJson {
    let hops = j
        .hops
        .iter()
        .map(|h| {
            let e = Endpoints::of(h.summary());
            HopJson {
                board: h.hop.board.clone(),
                netns: h.netns.as_str().into(),
                link: h.link.as_str().into(),
                kind: h.kind.map(|k| k.name().to_string()),
                dir: dir(h),
                ts: Epoch(h.hop.obs.ts_ns).to_string(),
                t: Epoch(u64::try_from(h.t_ns).unwrap_or(0)).to_string(),
                src: e.map(|e| e.src.to_string()),
                dst: e.map(|e| e.dst.to_string()),
                sport: e.and_then(|e| e.sport),
                dport: e.and_then(|e| e.dport),
                icmp_id: e.and_then(|e| e.icmp_id),
                latency_ns: h.latency_ns,
                prev: h.prev,
                wire_len: h.hop.obs.wire_len,
                clock_uncertainty_ns: h.clock_uncertainty_ns,
                input: h.input,
                pieces: h
                    .pieces
                    .iter()
                    .map(|p| PieceJson {
                        offset: p.offset,
                        len: p.len,
                        seq: p.seq,
                        ts: Epoch(p.ts_ns).to_string(),
                        t: Epoch(u64::try_from(p.t_ns).unwrap_or(0)).to_string(),
                        input: p.input,
                    })
                    .collect(),
            }
        })
        .collect();
    let link_at = |p: usize| j.hops.get(p).map(hop_name).unwrap_or_default();
    let nat = j
        .nat
        .iter()
        .map(|n| NatJson {
            kind: n.kind.label(),
            before: n.before.clone(),
            after: n.after.clone(),
            at: n.at,
            link: link_at(n.at),
        })
        .collect();
    let tunnel = j
        .tunnels
        .iter()
        .map(|t| TunnelJson {
            kind: t.tunnel.kind.name(),
            id: t.tunnel.kind.id(),
            src: t.tunnel.src.to_string(),
            dst: t.tunnel.dst.to_string(),
            dst_port: t.tunnel.dst_port,
            first_hop: t.first,
            last_hop: t.last,
            label: tunnel_label(&t.tunnel),
        })
        .collect();
    let mut clock: Vec<ClockJson> = Vec::new();
    for h in &j.hops {
        if clock.iter().any(|c| c.board == h.hop.board)
            || report.clock.reference.as_deref() == Some(h.hop.board.as_str())
        {
            continue;
        }
        clock.push(ClockJson {
            board: h.hop.board.clone(),
            reference: report.clock.reference.clone(),
            offset_ns: (h.hop.obs.ts_ns as i64).saturating_sub(h.t_ns),
            uncertainty_ns: h.clock_uncertainty_ns,
        });
    }
    JourneyJson {
        journey: index,
        flow: j.flow,
        fingerprint: format!("{:016x}", j.fingerprint),
        packet: j
            .hops
            .first()
            .map(|h| describe(h.summary()))
            .unwrap_or_default(),
        hops,
        nat,
        tunnel,
        whole: WholeJson {
            proto: j.hops.first().and_then(|h| proto_name(h.summary())),
            seq: j.whole.seq,
            len: j.whole.len,
        },
        events: j
            .events
            .iter()
            .map(|e| EventJson {
                kind: e.kind.name(),
                at: e.at,
                link: link_at(e.at),
                from: e.from,
                into: e.into,
            })
            .collect(),
        complete: j.fate.is_complete(),
        lost_after: j.fate.vanished_after(),
        lost_range: j.lost_range.map(|r| [r.start, r.end]),
        maybe_capture_loss: matches!(j.fate, Fate::MaybeCaptureLoss(_)),
        clock,
    }
}

/// The innermost protocol's name in lower case (`tcp`, `udp`, `icmp`, `icmpv6`, ...), or its
/// number.
fn proto_name(s: &hopcap_proto::summary::Summary) -> Option<String> {
    match s.net {
        hopcap_proto::summary::Net::Ip(ip) => Some(
            ip.proto
                .name()
                .map_or_else(|| ip.proto.0.to_string(), str::to_lowercase),
        ),
        _ => None,
    }
}

/// Board clocks: `pi2: +37.00ms ±150µs vs pi1 (via pi1 → pi2, 812 crossings)`, for the
/// boards the report's journeys cross (a filtered report says nothing of the others).
pub fn clock_lines(report: &Report) -> Vec<String> {
    let reference = report.clock.reference.clone().unwrap_or_default();
    let shown: std::collections::HashSet<&str> = report
        .journeys
        .iter()
        .flat_map(|j| j.hops.iter().map(|h| h.hop.board.as_str()))
        .collect();
    report
        .clock
        .boards
        .iter()
        .filter(|b| b.board != reference && shown.contains(b.board.as_str()))
        .map(|b| {
            let Some(last) = b.points.last() else {
                return format!(
                    "{}: clock not tied to {reference} (no two-board traffic matched)",
                    b.board
                );
            };
            let unc = last.uncertainty_ns.map_or("one-sided bound".into(), |u| {
                format!("±{}", fmt_ns(u as i64))
            });
            let n: u32 = b.points.iter().map(|p| p.samples).sum();
            let off = signed(last.offset_ns);
            format!(
                "{}: {off} {unc} vs {reference} (via {}, {n} crossings)",
                b.board,
                b.via.join(" → ")
            )
        })
        .map(|line| super::term::clean(&line).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{flannel_pings, pi_docker, Bed, BedExt, INTERNET};
    use crate::correlate::{correlate, Config};

    const T0: u64 = 1_700_000_000_000_000_000;

    fn pi_docker_report() -> Report {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        pi.request(&mut bed, 0, T0, INTERNET, 0, [23_000, 340_000, 0]);
        let (topo, hops, _) = bed.finish();
        correlate(hops, &topo, &Config::default())
    }

    #[test]
    fn pi_docker_line() {
        let r = pi_docker_report();
        assert_eq!(
            text_line(&r.journeys[0]),
            "ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0: pi1:ctr:eth0 Out → \
             pi1:vethc426d5b In (+23µs) → pi1:docker0 In (+0µs) → \
             [SNAT 172.17.0.2→192.168.43.116] pi1:wlan0 Out (+340µs)"
        );
    }

    #[test]
    fn pi_docker_json() {
        let r = pi_docker_report();
        let mut out = Vec::new();
        write_json(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let hops = v["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 4);
        assert_eq!(hops[0]["netns"], "ctr");
        assert_eq!(hops[1]["link"], "vethc426d5b");
        assert_eq!(hops[3]["dir"], "Out");
        assert_eq!(hops[3]["src"], "192.168.43.116");
        assert_eq!(hops[3]["latency_ns"], 340_000);
        assert_eq!(hops[0]["latency_ns"], serde_json::Value::Null);
        assert_eq!(v["nat"][0]["kind"], "SNAT");
        assert_eq!(v["nat"][0]["link"], "pi1:wlan0");
        assert_eq!(v["nat"][0]["at"], 3);
        assert_eq!(v["complete"], true);
        assert_eq!(v["lost_after"], serde_json::Value::Null);
        assert_eq!(
            v["fingerprint"].as_str().unwrap().len(),
            16,
            "hex as timeline's"
        );
    }

    #[test]
    fn flannel_line_shows_the_tunnel_and_the_clock() {
        let r = flannel_pings(50);
        let line = text_line(&r.journeys[0]);
        assert!(line.contains("→ [VXLAN vni 1 192.168.1.11→192.168.1.12] pi1:eth0 Out (+20µs) → pi2:eth0 In (+300µs ±"), "{line}");
        assert!(
            line.ends_with("pi2:veth9a1 Out (+5µs) → pi2:pod-b:eth0 In (+15µs)"),
            "{line}"
        );
        let clock = clock_lines(&r);
        assert_eq!(clock.len(), 1);
        assert!(clock[0].starts_with("pi2: +37.00ms ±"), "{}", clock[0]);
        // Filtered to journeys that stay on pi1, the report says nothing of pi2's clock.
        let mut only_pi1 = r.clone();
        only_pi1
            .journeys
            .retain(|j| j.hops.iter().all(|h| h.hop.board == "pi1"));
        assert!(clock_lines(&only_pi1).is_empty());
        let mut out = Vec::new();
        write_json(&r, &mut out).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(v["tunnel"][0]["kind"], "VXLAN");
        assert_eq!(v["tunnel"][0]["dst_port"], 8472);
        assert_eq!(
            (
                v["tunnel"][0]["first_hop"].as_u64(),
                v["tunnel"][0]["last_hop"].as_u64()
            ),
            (Some(4), Some(5))
        );
        assert_eq!(v["clock"][0]["board"], "pi2");
        assert!((v["clock"][0]["offset_ns"].as_i64().unwrap() - 37_000_000).abs() < 100_000);
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_ns(1_500), "1.5µs");
        assert_eq!(fmt_ns(-2_250_000), "-2.25ms");
        assert_eq!(fmt_ns(3_000_000_000), "3.000s");
    }

    #[test]
    fn segmentation_shows_as_an_event_with_its_pieces() {
        let r = crate::correlate::testbed::gso_upload(&[]);
        let line = text_line(&r.journeys[0]);
        assert!(line.contains("(whole: seq 1000, 7240 bytes):"), "{line}");
        assert!(
            line.contains("→ [segmented into 5] [SNAT 172.17.0.2→192.168.43.116] pi1:wlan0 Out"),
            "{line}"
        );
        let mut out = Vec::new();
        write_json(&r, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["whole"],
            serde_json::json!({"proto": "tcp", "seq": 1000, "len": 7240})
        );
        assert_eq!(
            v["events"],
            serde_json::json!([{"kind": "segmented", "at": 3, "link": "pi1:wlan0", "from": 1, "into": 5}])
        );
        assert!(v["hops"][2].get("pieces").is_none(), "docker0 saw it whole");
        let pieces = v["hops"][3]["pieces"].as_array().unwrap();
        assert_eq!(pieces.len(), 5);
        assert_eq!(pieces[1]["offset"], 1448);
        assert_eq!(pieces[1]["seq"], 2448);
        assert_eq!(v["lost_range"], serde_json::Value::Null);

        // A segment that never left: the bytes are named, in text and JSON.
        let r = crate::correlate::testbed::gso_upload(&[4]);
        let line = text_line(&r.journeys[0]);
        assert!(
            line.ends_with("; lost after pi1:docker0 In (seq 6792:8240 never seen again)"),
            "{line}"
        );
        let mut out = Vec::new();
        write_json(&r, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["lost_range"], serde_json::json!([6792, 8240]));
        assert_eq!(v["lost_after"], 2);
    }

    #[test]
    fn lost_fate_is_named() {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        pi.request(&mut bed, 0, T0, INTERNET, 0, [23_000, 340_000, 0]);
        let (topo, mut hops, _) = bed.finish();
        hops.retain(|h| h.obs.link != pi.wlan0.1);
        let r = correlate(hops, &topo, &Config::default());
        let mut out = Vec::new();
        write_text(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            text.ends_with("pi1:docker0 In (+0µs); lost after pi1:docker0 In\n"),
            "{text}"
        );
    }
}
