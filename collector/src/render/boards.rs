//! Boards as a table or JSON lines: each board, its state, and its delivery reconciled (the
//! store's): observations the agents kept (`seen`) = stored + dropped in the agent's queue +
//! lost in transit; frames dropped in the kernel come before `seen`.

use crate::store::BoardRow;
use crate::time::format_rfc3339;
use std::io::{self, Write};

fn json(b: &BoardRow) -> serde_json::Value {
    serde_json::json!({
        "id": b.id.raw(),
        "name": b.name,
        "state": b.state,
        "boot_id": b.boot_id,
        "agent_version": b.agent_version,
        "remote": b.remote,
        "first_seen": format_rfc3339(b.first_seen_ns),
        "last_seen": format_rfc3339(b.last_seen_ns),
        "clock_offset_ns": b.clock_offset_ns,
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
pub fn write_json(boards: &[BoardRow], out: &mut impl Write) -> io::Result<()> {
    for b in boards {
        writeln!(out, "{}", json(b))?;
    }
    Ok(())
}

/// A table, or `no boards yet`.
pub fn write_table(boards: &[BoardRow], out: &mut impl Write) -> io::Result<()> {
    if boards.is_empty() {
        writeln!(out, "no boards yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<12} {:<20} {:>5} {:>12} {:>12} {:>12} {:>9} {:>6} {:>11} {:>11} {:>9} {:>12}  CLOCK",
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
        let offset = b
            .clock_offset_ns
            .map(|o| format!("{:+.3}ms", o as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<16} {:<12} {:<20} {:>5} {:>12} {:>12} {:>12} {:>9} {:>6} {:>11} {:>11} {:>9} {:>12}  {}",
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
        write_table(&[row()], &mut text).unwrap();
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
        write_json(&[row()], &mut json).unwrap();
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
}
