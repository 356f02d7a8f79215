//! `timeline`: the merged timeline of every board. `--follow` then polls for rows stored
//! after the last one printed, like tail -f.

use super::{CmdResult, TimelineArgs};
use crate::render::timeline::{write_json, write_text};
use crate::store::{StoreReader, TimelineRow};
use crate::time::{local_offset_ns, now_ns};
use std::io::Write;
use std::time::Duration;

/// How often `--follow` looks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub fn run(reader: &dyn StoreReader, timeline: &TimelineArgs) -> CmdResult {
    let (args, follow) = (&timeline.query, timeline.follow);
    let sel = args.window.selection(now_ns())?;
    let mut q = sel.query();
    // With a filter the limit counts printed lines, so it cannot go into the store's query.
    q.limit = if sel.has_filter() { None } else { args.limit };
    let mut printed: i64 = 0;
    let local = timeline.local_time;
    let write = |out: &mut dyn Write, row: &TimelineRow| -> std::io::Result<()> {
        if args.json {
            write_json(out, row)
        } else {
            let shift = if local {
                local_offset_ns(row.obs.ts_ns)
            } else {
                0
            };
            write_text(out, row, shift)
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Rows stored after this point are the follow part's.
    let mut last = reader.last_cursor()?;
    let mut io_err: Option<std::io::Error> = None;
    let mut emit = |row: TimelineRow, out: &mut dyn Write| -> bool {
        if row.cursor > last && follow {
            return true; // printed by the follow loop, in its turn
        }
        if !sel.keeps(&row.obs) {
            return true;
        }
        match write(out, &row) {
            Ok(()) => {
                printed += 1;
                args.limit.is_none_or(|l| printed < l)
            }
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    };
    reader.timeline(&q, &mut |row| emit(row, &mut out))?;
    if let Some(e) = io_err.take() {
        return Err(e.into());
    }
    out.flush()?;
    if printed == 0 && !follow {
        super::say_nothing_matched(reader)?;
    }
    if !follow {
        return Ok(());
    }
    q.limit = None;
    loop {
        q.after = Some(last);
        let mut fresh = Vec::new();
        if let Some(max) = reader.arrived(&q, &mut |row| {
            fresh.push(row);
            true
        })? {
            last = max;
        }
        // Agents deliver in batches: order what arrived together as the timeline does.
        fresh.sort_by(|a, b| {
            (a.obs.ts_ns, a.board_id, a.obs.order).cmp(&(b.obs.ts_ns, b.board_id, b.obs.order))
        });
        for row in fresh {
            if sel.keeps(&row.obs) {
                write(&mut out, &row)?;
            }
        }
        out.flush()?;
        std::thread::sleep(FOLLOW_POLL);
    }
}
