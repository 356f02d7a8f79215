//! hopcap-collector: ingest from many boards, embedded store, merged timeline and paths.
//! A library so integration tests and benchmarks reach the store directly; the binary is
//! src/main.rs.

pub mod cli;
pub mod correlate;
pub mod ingest;
pub mod keys;
pub mod load;
pub mod metrics;
pub mod ratelog;
pub mod render;
pub mod scale;
pub mod select;
pub mod settle;
pub mod store;
pub mod time;
