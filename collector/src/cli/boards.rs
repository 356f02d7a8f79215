//! `boards`: every board, its state, its loss counters and its clock.

use super::{BoardsArgs, CmdResult};
use crate::load::correlate_selection;
use crate::render;
use crate::select::Selection;
use crate::store::StoreReader;

/// How much of the latest traffic the clock estimates come from: enough crossings between
/// boards for a tight bound, little enough to correlate in a moment.
const CLOCK_WINDOW_NS: i64 = 10 * 60 * 1_000_000_000;

pub fn run(reader: &dyn StoreReader, args: &BoardsArgs) -> CmdResult {
    let boards = reader.boards()?;
    let estimates = match boards.iter().map(|b| b.last_seen_ns).max() {
        Some(newest) if boards.len() > 1 => {
            let sel = Selection {
                since_ns: Some(newest.saturating_sub(CLOCK_WINDOW_NS)),
                ..Selection::default()
            };
            render::boards::clock_estimates(&correlate_selection(reader, &sel)?)
        }
        _ => Default::default(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        render::boards::write_json(&boards, &estimates, &mut out)?;
    } else {
        render::boards::write_table(&boards, &estimates, &mut out)?;
    }
    Ok(())
}
