//! (stub: being written by the correlate helper) Path reconstruction and flows.

use crate::cli::{CmdResult, FlowsArgs, PathsArgs};
use rusqlite::Connection;

/// `paths`: each packet's path hop by hop.
pub fn run_paths(_conn: &Connection, _args: &PathsArgs) -> CmdResult {
    Err("`paths` is not yet implemented".into())
}

/// `flows`: flows across boards.
pub fn run_flows(_conn: &Connection, _args: &FlowsArgs) -> CmdResult {
    Err("`flows` is not yet implemented".into())
}
