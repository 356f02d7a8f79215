//! `paths` and `flows`: correlate the selection ([`crate::load`]) and print it
//! ([`crate::render`]). `paths --follow` then correlates again as rows arrive and prints the
//! journeys that settled ([`crate::settle`]).

use super::{CmdResult, PathsArgs, QueryArgs};
use crate::correlate::Report;
use crate::load::{built_selection, correlate_rows, correlate_selection, Correlated};
use crate::render;
use crate::settle::{Settled, Settler};
use crate::store::{StoreReader, TimelineQuery};
use crate::time::now_ns;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often `--follow` looks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub fn run_paths(reader: &dyn StoreReader, args: &QueryArgs) -> CmdResult {
    let report = correlate_selection(reader, &args.window.selection(now_ns())?)?;
    print_paths(reader, report, args, true)
}

/// `paths --built`: the journeys the correlators stored.
pub fn run_built(reader: &dyn StoreReader, args: &QueryArgs) -> CmdResult {
    let Some(report) = built_selection(reader, &args.window.selection(now_ns())?)? else {
        return Err(
            "--built: this store keeps no built journeys (only the scaled mode's \
                    correlators build them: give --clickhouse)"
                .into(),
        );
    };
    print_paths(reader, report, args, false)
}

/// `--limit`, then the journeys (and the clock estimate's lines, as text, with
/// `clock_lines`).
fn print_paths(
    reader: &dyn StoreReader,
    mut report: Report,
    args: &QueryArgs,
    clock_lines: bool,
) -> CmdResult {
    if let Some(n) = args.limit {
        report.journeys.truncate(usize::try_from(n).unwrap_or(0));
    }
    if report.journeys.is_empty() {
        super::say_nothing_matched(reader)?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        render::paths::write_json(&report, &mut out)?;
    } else {
        render::paths::write_text(&report, &mut out)?;
        if clock_lines {
            for line in render::paths::clock_lines(&report) {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `paths --follow`: what is stored, then each journey once as it settles, until Ctrl-C or
/// SIGTERM. `--limit` counts the first part only; the clock lines are left out (a later
/// `paths` prints them, with the estimates over the whole window).
pub fn follow(reader: &dyn StoreReader, args: &PathsArgs) -> CmdResult {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| format!("cannot catch Ctrl-C/SIGTERM: {e}"))?;
    let query = &args.query;
    let sel = query.window.selection(now_ns())?;
    let settle = Duration::from_millis(args.settle_ms);
    let mut settler = Settler::new(settle);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut print = |c: &Correlated, s: Settled| -> std::io::Result<()> {
        let j = &c.report.journeys[s.index];
        if query.json {
            render::paths::write_json_one(&c.report, j, s.number, s.flow, &mut out)?;
        } else {
            render::paths::write_text_one(j, &mut out)?;
        }
        out.flush()
    };

    let mut last = reader.last_cursor()?;
    let stored = correlate_rows(reader, &sel, &sel.window())?;
    let settle_ns = i64::try_from(settle.as_nanos()).unwrap_or(i64::MAX);
    let limit = query.limit.map(|n| usize::try_from(n).unwrap_or(0));
    for s in settler.start(&stored, now_ns().saturating_sub(settle_ns), limit) {
        print(&stored, s)?;
    }
    drop(stored);

    while !stop.load(Ordering::Relaxed) {
        // Every board and link: a journey's hops may lie outside --board/--link.
        let fresh = TimelineQuery {
            after: Some(last),
            ..TimelineQuery::default()
        };
        if let Some(max) = reader.arrived(&fresh, &mut |row| {
            settler.arrived(row.cursor, i64::try_from(row.obs.ts_ns).unwrap_or(i64::MAX));
            true
        })? {
            last = max;
        }
        if let Some(horizon) = settler.horizon() {
            let window = TimelineQuery {
                since_ns: Some(sel.since_ns.map_or(horizon, |s| s.max(horizon))),
                until_ns: sel.until_ns,
                ..TimelineQuery::default()
            };
            let c = correlate_rows(reader, &sel, &window)?;
            for s in settler.settled(&c, Instant::now()) {
                print(&c, s)?;
            }
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    Ok(())
}

pub fn run_flows(reader: &dyn StoreReader, args: &QueryArgs) -> CmdResult {
    let report = correlate_selection(reader, &args.window.selection(now_ns())?)?;
    if report.journeys.is_empty() {
        super::say_nothing_matched(reader)?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        render::flows::write_json(&report, &mut out)?;
    } else {
        render::flows::write_text(&report, &mut out)?;
    }
    out.flush()?;
    Ok(())
}
