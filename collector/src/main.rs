//! hopcap-collector: ingest from many boards, embedded store, merged timeline and paths.

mod store;
mod ingest;
mod correlate;
mod render;

fn main() {}
