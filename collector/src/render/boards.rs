//! Boards as a table or JSON lines: each board, its state, and its delivery reconciled (the
//! store's): observations the agents kept (`seen`) = stored + dropped in the agent's queue +
//! lost in transit; frames dropped in the kernel come before `seen`.

use crate::correlate::Report;
use crate::store::BoardRow;
use crate::time::format_rfc3339;
use std::collections::HashMap;
use std::io::{self, Write};

/// A board's clock against the reference board, as `paths` estimates it from the traffic
/// that crossed between boards (not the hello-time sample, which carries the transit delay
/// and changes with every reconnect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockEstimate {
    /// The board the others are measured against.
    Reference,
    /// This board's clock minus the reference's; the uncertainty is a half width (`None`:
    /// traffic went one way only, so only a bound is known).
    Tied {
        vs: String,
        offset_ns: i64,
        uncertainty_ns: Option<u64>,
    },
    /// No matched traffic ties this board to the reference.
    NotTied { vs: String },
}

/// Every board's estimate in `report` (none with fewer than two boards: nothing to compare).
pub fn clock_estimates(report: &Report) -> HashMap<String, ClockEstimate> {
    let Some(reference) = report.clock.reference.clone() else {
        return HashMap::new();
    };
    if report.clock.boards.len() < 2 {
        return HashMap::new();
    }
    report
        .clock
        .boards
        .iter()
        .map(|b| {
            let estimate = if b.board == reference {
                ClockEstimate::Reference
            } else {
                match b.points.last() {
                    Some(p) => ClockEstimate::Tied {
                        vs: reference.clone(),
                        offset_ns: p.offset_ns,
                        uncertainty_ns: p.uncertainty_ns,
                    },
                    None => ClockEstimate::NotTied {
                        vs: reference.clone(),
                    },
                }
            };
            (b.board.clone(), estimate)
        })
        .collect()
}

fn estimate_json(e: Option<&ClockEstimate>) -> serde_json::Value {
    match e {
        None => serde_json::Value::Null,
        Some(ClockEstimate::Reference) => serde_json::json!({ "reference": true }),
        Some(ClockEstimate::Tied {
            vs,
            offset_ns,
            uncertainty_ns,
        }) => serde_json::json!({
            "vs": vs, "offset_ns": offset_ns, "uncertainty_ns": uncertainty_ns,
        }),
        Some(ClockEstimate::NotTied { vs }) => serde_json::json!({ "vs": vs, "tied": false }),
    }
}

/// The CLOCK OFFSET cell: `+0.3µs ±2.7µs`, `reference`, `not tied`, or `-`.
fn estimate_cell(e: Option<&ClockEstimate>) -> String {
    let signed = |ns: i64| {
        let s = super::paths::fmt_ns(ns);
        if ns < 0 {
            s
        } else {
            format!("+{s}")
        }
    };
    match e {
        None => "-".into(),
        Some(ClockEstimate::Reference) => "reference".into(),
        Some(ClockEstimate::Tied {
            offset_ns,
            uncertainty_ns: Some(u),
            ..
        }) => format!(
            "{} ±{}",
            signed(*offset_ns),
            super::paths::fmt_ns(*u as i64)
        ),
        Some(ClockEstimate::Tied { offset_ns, .. }) => format!("{} (bound)", signed(*offset_ns)),
        Some(ClockEstimate::NotTied { .. }) => "not tied".into(),
    }
}

fn json(b: &BoardRow, estimate: Option<&ClockEstimate>) -> serde_json::Value {
    serde_json::json!({
        "id": b.id.raw(),
        "name": b.name,
        "state": b.state,
        "boot_id": b.boot_id,
        "agent_version": b.agent_version,
        "capture": b.capture,
        "remote": b.remote,
        "first_seen": format_rfc3339(b.first_seen_ns),
        "last_seen": format_rfc3339(b.last_seen_ns),
        "clock_offset": estimate_json(estimate),
        "hello_clock_offset_ns": b.clock_offset_ns,
        "links": b.links_present,
        "batches": b.batches,
        "observations": b.observations,
        "lost_batches": b.lost_batches,
        "kernel_drops": b.kernel_drops,
        "queue_drops": b.queue_drops,
        "seen": b.seen,
        "stored": b.stored,
        "lost_in_transit": b.lost_in_transit,
        "agent_queue_drops": b.reported_queue_drops,
        "clock": {
            "synced": b.clock_synced,
            "max_error_us": b.clock_max_error_us,
            "steps": b.clock_steps,
            "last_step_ns": b.last_clock_step_ns,
        },
    })
}

/// One JSON object a line.
pub fn write_json(
    boards: &[BoardRow],
    estimates: &HashMap<String, ClockEstimate>,
    out: &mut impl Write,
) -> io::Result<()> {
    for b in boards {
        writeln!(out, "{}", json(b, estimates.get(&b.name)))?;
    }
    Ok(())
}

/// A table, or `no boards yet`. CLOCK OFFSET is `estimates`' (see [`ClockEstimate`]).
pub fn write_table(
    boards: &[BoardRow],
    estimates: &HashMap<String, ClockEstimate>,
    out: &mut impl Write,
) -> io::Result<()> {
    if boards.is_empty() {
        writeln!(out, "no boards yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<12} {:<20} {:>5} {:>12} {:>12} {:>12} {:>9} {:>6} {:>11} {:>11} {:>9} {:>16}  CLOCK",
        "BOARD",
        "STATE",
        "LAST SEEN (UTC)",
        "LINKS",
        "SEEN",
        "STORED",
        "OBSERVATIONS",
        "BATCHES",
        "LOST",
        "KERN DROPS",
        "QUEUE DROPS",
        "TRANSIT",
        "CLOCK OFFSET",
    )?;
    for b in boards {
        let last = format_rfc3339(b.last_seen_ns);
        let offset = estimate_cell(estimates.get(&b.name));
        writeln!(
            out,
            "{:<16} {:<12} {:<20} {:>5} {:>12} {:>12} {:>12} {:>9} {:>6} {:>11} {:>11} {:>9} {:>16}  {}",
            super::term::clean(&b.name),
            super::term::clean(&b.state),
            last.get(..19).unwrap_or(&last),
            b.links_present,
            b.seen,
            b.stored,
            b.observations,
            b.batches,
            b.lost_batches,
            b.kernel_drops,
            b.queue_drops,
            b.lost_in_transit,
            offset,
            clock(b)
        )?;
    }
    Ok(())
}

/// `synced`, `unsynced` or `-`, and the steps: `unsynced, stepped 1x (last +259200.000s)`.
fn clock(b: &BoardRow) -> String {
    let mut out = match b.clock_synced {
        Some(true) => "synced".to_owned(),
        Some(false) => "unsynced".to_owned(),
        None => "-".to_owned(),
    };
    if let (n @ 1.., Some(last)) = (b.clock_steps, b.last_clock_step_ns) {
        out.push_str(&format!(", stepped {n}x (last {:+.3}s)", last as f64 / 1e9));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BoardId;

    fn row() -> BoardRow {
        BoardRow {
            id: BoardId::from_raw(1),
            name: "pi1".into(),
            boot_id: None,
            agent_version: None,
            capture: None,
            remote: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
            state: "disconnected".into(),
            clock_offset_ns: None,
            batches: 9,
            observations: 1800,
            lost_batches: 3,
            kernel_drops: 7,
            queue_drops: 600,
            links_present: 3,
            seen: 2700,
            stored: 1800,
            lost_in_transit: 300,
            reported_queue_drops: 600,
            clock_synced: Some(false),
            clock_max_error_us: Some(16_000_000),
            clock_steps: 1,
            last_clock_step_ns: Some(259_200_000_000_000),
        }
    }

    #[test]
    fn the_reconciled_figures_in_both_forms() {
        let mut text = Vec::new();
        write_table(&[row()], &HashMap::new(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let head: Vec<&str> = lines[0].split_whitespace().collect();
        assert!(
            lines[0].contains("SEEN")
                && lines[0].contains("STORED")
                && lines[0].contains("QUEUE DROPS")
                && lines[0].contains("TRANSIT")
                && lines[0].contains("KERN DROPS"),
            "{head:?}"
        );
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        // name, state, last seen, links, seen, stored, observations, batches, lost, kernel,
        // queue, transit, clock offset
        assert_eq!(
            cells[3..12],
            ["3", "2700", "1800", "1800", "9", "3", "7", "600", "300"]
        );
        assert!(
            lines[1].ends_with("unsynced, stepped 1x (last +259200.000s)"),
            "{}",
            lines[1]
        );
        let mut json = Vec::new();
        write_json(&[row()], &HashMap::new(), &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        for (k, n) in [
            ("seen", 2700),
            ("stored", 1800),
            ("kernel_drops", 7),
            ("queue_drops", 600),
            ("lost_in_transit", 300),
            ("lost_batches", 3),
            ("observations", 1800),
        ] {
            assert_eq!(v[k], n, "{k}");
        }
    }

    #[test]
    fn the_clock_offset_is_the_estimate_from_traffic_not_the_hello_sample() {
        use crate::correlate::testbed::flannel_pings;
        // Two boards whose pods ping each other, board2's clock skewed; the hello sample
        // (+21 ms, the transit to a collector on the same host) must not be what is shown.
        let report = flannel_pings(20);
        let estimates = clock_estimates(&report);
        assert_eq!(estimates.len(), 2, "{estimates:?}");
        let (tied, reference): (Vec<_>, Vec<_>) = estimates
            .iter()
            .partition(|(_, e)| matches!(e, ClockEstimate::Tied { .. }));
        assert_eq!((tied.len(), reference.len()), (1, 1), "{estimates:?}");
        let mut rows = [row(), row()];
        rows[0].name = reference[0].0.clone();
        rows[1].name = tied[0].0.clone();
        for r in &mut rows {
            r.clock_offset_ns = Some(21_000_000);
        }
        let mut text = Vec::new();
        write_table(&rows, &estimates, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(" reference "), "{text}");
        let ClockEstimate::Tied { offset_ns, .. } = tied[0].1 else {
            unreachable!()
        };
        assert!(text.contains(&estimate_cell(Some(tied[0].1))), "{text}");
        assert!(
            !text.contains("21.000ms") && !text.contains("+21ms"),
            "{text}"
        );
        let mut json = Vec::new();
        write_json(&rows, &estimates, &mut json).unwrap();
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["clock_offset"]["reference"], true);
        assert_eq!(lines[1]["clock_offset"]["offset_ns"], *offset_ns);
        assert_eq!(lines[1]["hello_clock_offset_ns"], 21_000_000);
        // One board alone: nothing to compare, so no estimate.
        assert!(clock_estimates(&crate::correlate::Report::default()).is_empty());
    }
}
