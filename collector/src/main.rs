//! hopcap-collector: ingest from many boards, embedded store, merged timeline and paths.

mod correlate;
mod ingest;
mod render;
mod store;

fn main() {}
