//! `export --pcapng FILE`: the selection's journeys correlated ([`crate::load`]), their
//! stored frame bytes read, and the file written ([`crate::render::pcapng`]).

use super::{CmdResult, ExportArgs};
use crate::load::correlate_selection_rows;
use crate::render::pcapng::pick::HopChoice;
use crate::render::pcapng::{write, ExportInput, Exported};
use crate::store::{Cursor, StoreReader};
use crate::time::now_ns;
use std::collections::HashMap;
use std::io::Write;

pub fn run(reader: &dyn StoreReader, args: &ExportArgs) -> CmdResult {
    let sel = args.window.selection(now_ns())?;
    let (report, cursors) = correlate_selection_rows(reader, &sel)?;
    if report.journeys.is_empty() {
        super::say_nothing_matched(reader)?;
    }
    let mut by_cursor: HashMap<Cursor, Vec<u8>> = HashMap::new();
    reader.frames(&sel.window(), &mut |cursor, bytes| {
        by_cursor.insert(cursor, bytes.to_vec());
        true
    })?;
    let frames: Vec<Option<Vec<u8>>> = cursors.iter().map(|c| by_cursor.remove(c)).collect();
    drop(by_cursor);
    let mut file = Vec::new();
    let got = write(
        &ExportInput {
            report: &report,
            frames: &frames,
            hop: HopChoice::from_arg(&args.hop),
            application: concat!("hopcap-collector ", env!("CARGO_PKG_VERSION")),
            selection: &args.window.describe(),
        },
        &mut file,
    );
    tell(&got, &args.hop);
    if got.packets == 0 {
        return Err(format!("{}: not written: no packet to write", args.pcapng.display()).into());
    }
    if args.pcapng.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&file)?;
        out.flush()?;
    } else {
        super::write_file(&args.pcapng, &file)?;
    }
    Ok(())
}

/// On stderr: what was written and what was left out, and why.
fn tell(got: &Exported, hop: &str) {
    if got.without_bytes > 0 {
        let what = if hop == "all" { "sightings" } else { "packets" };
        eprintln!(
            "hopcap-collector: {} {what} left out: stored without frame bytes (their agents ran \
             without --snap-bytes)",
            got.without_bytes
        );
    }
    if got.not_on_link > 0 {
        eprintln!(
            "hopcap-collector: {} packets left out: they did not pass --hop {hop}",
            got.not_on_link
        );
    }
    eprintln!(
        "hopcap-collector: wrote {} packets ({} marked hopcap.dup) on {} interfaces",
        got.packets, got.duplicates, got.interfaces
    );
}
