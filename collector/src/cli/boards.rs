//! `boards`: every board, its state and its loss counters.

use super::{BoardsArgs, CmdResult};
use crate::render;
use crate::store::StoreReader;

pub fn run(reader: &dyn StoreReader, args: &BoardsArgs) -> CmdResult {
    let boards = reader.boards()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        render::boards::write_json(&boards, &mut out)?;
    } else {
        render::boards::write_table(&boards, &mut out)?;
    }
    Ok(())
}
