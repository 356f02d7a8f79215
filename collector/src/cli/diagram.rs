//! `diagram`: correlate the selection ([`crate::load`]), aggregate its journeys into the hop
//! graph and draw it ([`crate::render::diagram`]) to a file or standard output.

use super::{CmdResult, DiagramArgs};
use crate::load::correlate_selection;
use crate::render::diagram::{self, Format};
use crate::render::graph::graph;
use crate::store::StoreReader;
use crate::time::now_ns;
use std::io::Write;

pub fn run(reader: &dyn StoreReader, args: &DiagramArgs) -> CmdResult {
    let format = Format::parse(&args.format)
        .ok_or_else(|| format!("--format {:?}: svg, dot or mermaid", args.format))?;
    let report = correlate_selection(reader, &args.window.selection(now_ns())?)?;
    if report.journeys.is_empty() {
        super::say_nothing_matched(reader)?;
    }
    let g = graph(&report);
    match &args.output {
        Some(path) => {
            let mut out = Vec::new();
            diagram::write(&g, format, &mut out)?;
            super::write_file(path, &out)?;
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            diagram::write(&g, format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
