//! hopcap-proto: everything the agent and the collector share, with no I/O and no clock.
//!
//! Data flow: a captured frame is walked by [`decode`] into a bounded [`layer`] stack
//! (zero-copy views in [`wire`] read the bytes in place), condensed into a
//! [`summary::Summary`], sampled by its [`sample`] key (which survives GSO, GRO and
//! fragmentation), hashed into a hop-invariant [`fingerprint`], wrapped in an
//! [`record::Observation`] and shipped in versioned [`frame`]s.
//! Time and bytes always come in as arguments (sans-IO, like quinn-proto).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

pub mod batch;
#[cfg(test)]
mod corpus;
pub mod decode;
pub mod filter;
pub mod fingerprint;
pub mod frame;
pub mod layer;
pub mod message;
pub mod pcapng;
pub mod print;
pub mod record;
pub mod sample;
pub mod summarize;
pub mod summary;
pub mod types;
pub mod wire;
