//! `timeline`: the merged timeline of every board, one tcpdump-like line per observation
//! prefixed with where it was seen (`board:link` or `board:netns:link`) and In/Out, or JSON
//! lines. `--follow` then polls for rows stored after the last one printed, like tail -f.

use crate::cli::{CmdResult, TimelineArgs};
use crate::store::query::{self, TimelineQuery, TimelineRow};
use crate::store::writer::now_ns;
use hopcap_proto::filter::Filter;
use hopcap_proto::print;
use hopcap_proto::record::Observation;
use rusqlite::Connection;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` looks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// One text line: tcpdump's time of day (UTC), where, In/Out, the packet.
pub fn write_text(out: &mut dyn Write, row: &TimelineRow) -> std::io::Result<()> {
    let o = &row.obs;
    let mut line = String::with_capacity(160);
    let label = row.label();
    // Writing into a String cannot fail.
    let _ = print::write_line(
        &mut line,
        o.ts_ns,
        &label,
        Some(o.pkttype),
        &o.summary,
        o.wire_len,
    );
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// One JSON line (hopcap_proto's observation object).
pub fn write_json(out: &mut dyn Write, row: &TimelineRow) -> std::io::Result<()> {
    let mut line = String::with_capacity(512);
    let _ = print::write_json_observation(&mut line, &row.board, &row.netns, &row.link, &row.obs);
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// `--filter`, applied to each row after the SQL query.
#[derive(Debug)]
pub struct RowFilter(Option<Filter>);

impl RowFilter {
    pub fn new(expr: Option<&str>) -> Result<RowFilter, String> {
        match expr {
            None => Ok(RowFilter(None)),
            Some(e) => Filter::parse(e)
                .map(|f| RowFilter(Some(f)))
                .map_err(|err| format!("--filter {e:?}: {err}")),
        }
    }

    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    pub fn matches(&self, obs: &Observation) -> bool {
        self.0.as_ref().is_none_or(|f| f.matches(&obs.summary))
    }
}

pub fn run(conn: &Connection, args: &TimelineArgs) -> CmdResult {
    let (since_ns, until_ns) = args.window.bounds(now_ns())?;
    let filter = RowFilter::new(args.window.filter.as_deref())?;
    let mut q = TimelineQuery {
        since_ns,
        until_ns,
        board: args.window.board.clone(),
        link: args.window.link.clone(),
        after_id: None,
        // With a filter the limit counts printed lines, so it cannot go into the SQL.
        limit: if filter.is_active() { None } else { args.limit },
    };
    let mut printed: i64 = 0;
    let write: fn(&mut dyn Write, &TimelineRow) -> std::io::Result<()> =
        if args.json { write_json } else { write_text };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Rows stored after this point are the follow part's.
    let mut last_id = query::max_id(conn)?;
    let mut io_err: Option<std::io::Error> = None;
    let mut emit = |row: TimelineRow, out: &mut dyn Write| -> bool {
        if row.id > last_id && args.follow {
            return true; // printed by the follow loop, in its turn
        }
        if !filter.matches(&row.obs) {
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
    query::timeline(conn, &q, &mut |row| emit(row, &mut out))?;
    if let Some(e) = io_err.take() {
        return Err(e.into());
    }
    out.flush()?;
    if !args.follow {
        return Ok(());
    }
    q.limit = None;
    loop {
        q.after_id = Some(last_id);
        let mut fresh = Vec::new();
        if let Some(max) = query::arrived(conn, &q, &mut |row| {
            fresh.push(row);
            true
        })? {
            last_id = max;
        }
        // Agents deliver in batches: order what arrived together as the timeline does.
        fresh.sort_by(|a, b| {
            (a.obs.ts_ns, a.board_id, a.obs.order).cmp(&(b.obs.ts_ns, b.board_id, b.obs.order))
        });
        for row in fresh {
            if filter.matches(&row.obs) {
                write(&mut out, &row)?;
            }
        }
        out.flush()?;
        std::thread::sleep(FOLLOW_POLL);
    }
}
