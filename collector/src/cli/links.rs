//! `links`: each board's links, as its agents last reported them.

use super::{CmdResult, LinksArgs};
use crate::render;
use crate::store::StoreReader;

pub fn run(reader: &dyn StoreReader, args: &LinksArgs) -> CmdResult {
    let links: Vec<_> = reader
        .links()?
        .into_iter()
        .filter(|l| args.all || l.present)
        .filter(|l| args.board.as_ref().is_none_or(|b| *b == l.board))
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        render::links::write_json(&links, &mut out)?;
    } else {
        render::links::write_table(&links, &mut out)?;
    }
    Ok(())
}
