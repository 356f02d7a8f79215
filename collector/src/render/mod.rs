//! Text and JSON output of what the store holds.

pub mod timeline;
