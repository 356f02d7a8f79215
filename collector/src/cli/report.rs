//! `report --html`: the correlated selection, the boards' delivery and the capture drops,
//! written as one page ([`crate::render::report`]).

use super::{CmdResult, ReportArgs};
use crate::correlate::DropInterval;
use crate::load::{correlate_selection, drop_intervals};
use crate::render::report::{page, PageInput};
use crate::store::StoreReader;
use crate::time::{format_rfc3339, now_ns};

pub fn run(reader: &dyn StoreReader, args: &ReportArgs) -> CmdResult {
    let now = now_ns();
    let sel = args.window.selection(now)?;
    let report = correlate_selection(reader, &sel)?;
    if report.journeys.is_empty() {
        super::say_nothing_matched(reader)?;
    }
    let mut boards = reader.boards()?;
    if let Some(b) = &sel.board {
        boards.retain(|r| &r.name == b);
    }
    let drops: Vec<DropInterval> = drop_intervals(&reader.drop_samples()?)
        .into_iter()
        .filter(|d| sel.board.as_ref().is_none_or(|b| &d.board == b))
        .filter(|d| in_window(d, sel.since_ns, sel.until_ns))
        .collect();
    let html = page(&PageInput {
        report: &report,
        boards: &boards,
        drops: &drops,
        selection: &args.window.describe(),
        generated: &format_rfc3339(now),
    });
    super::write_file(&args.html, html.as_bytes())?;
    Ok(())
}

/// Whether a drop interval overlaps the selected window (board clocks are close enough to
/// the collector's for this).
fn in_window(d: &DropInterval, since: Option<i64>, until: Option<i64>) -> bool {
    let (start, end) = (
        i64::try_from(d.start_ns).unwrap_or(i64::MAX),
        i64::try_from(d.end_ns).unwrap_or(i64::MAX),
    );
    since.is_none_or(|s| end >= s) && until.is_none_or(|u| start < u)
}
