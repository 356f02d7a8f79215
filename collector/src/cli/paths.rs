//! `paths` and `flows`: correlate the selection ([`crate::load`]) and print it
//! ([`crate::render`]).

use super::{CmdResult, QueryArgs};
use crate::load::correlate_selection;
use crate::render;
use crate::store::StoreReader;
use crate::time::now_ns;
use std::io::Write;

pub fn run_paths(reader: &dyn StoreReader, args: &QueryArgs) -> CmdResult {
    let mut report = correlate_selection(reader, &args.window.selection(now_ns())?)?;
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
        for line in render::paths::clock_lines(&report) {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
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
