//! (being written) The ingest server: agents' connections into the store's writer.

use crate::cli::{CmdResult, ServeArgs};

pub fn serve(_args: &ServeArgs) -> CmdResult {
    Err("`serve` is not yet implemented".into())
}
