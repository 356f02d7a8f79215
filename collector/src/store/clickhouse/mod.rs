//! ClickHouse storage, for fleets past one collector: observations in a Distributed table
//! over N shards, sharded by fingerprint; the small tables (boards, links, runs, stats) on the
//! first shard; the journeys scaled correlators store ([`ClickhouseJourneys`]) beside their
//! observations. The layout is documented in [`schema`]. [`ClickhouseWriter`] and
//! [`ClickhouseReader`] have the SQLite backend's semantics; ids are hashes of names
//! ([`crate::store::name_ids`]), so several writers agree without coordination. Every statement of this backend
//! lives in this folder.

mod command;
pub mod cursor;
mod handle;
mod journeys;
pub mod ledger;
mod reader;
pub mod retention;
pub mod row;
pub mod schema;
mod shards;
pub mod tables;
pub mod writer;

pub use handle::{ClickhouseHandle, ClickhouseWriter};
pub use journeys::ClickhouseJourneys;
pub use reader::{stored_copies, ClickhouseReader};
pub use writer::WriterConfig;
