//! Text and JSON output of what the store holds.

pub mod boards;
pub mod flows;
pub mod paths;
pub mod term;
pub mod timeline;
