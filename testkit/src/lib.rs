//! hopcap-testkit: the fixtures of hopcap's tests and benchmarks, in one place and never
//! shipped (`publish = false`; a dev-dependency only, of proto, agent and collector).
//!
//! - [`Rng`]: the one seeded generator; every synthetic generator below draws from it.
//! - [`sim`]: one board's traffic (ping, TCP bulk, DNS, overlay, mixed) seen on every hop,
//!   through real frames and the proto decoder (the batch codec's tests, the wire bench).
//! - [`random`]: observations of every shape the record format allows (codec bounds).
//! - [`SampleGen`]: a realistic observation mix for the store (tests and the ingest bench).
//! - [`bed`]: synthetic networks (a Pi running Docker, two Pis over flannel VXLAN, floods)
//!   with the true packet behind each observation kept aside, and the scoring against it.
//! - [`veth`]: a link of a board's table, for tests that need links but no kernel.
//! - [`ScratchDir`]: a temporary folder removed on drop.
//! - [`docker`]: a real Docker engine in a board namespace made for one test (root only).
//! - [`layering`]: which source lines name what their layer should not.
//! - [`corpus_dir`]: where the shared pcap corpus is.
//! - [`systemd`]: the shipped units, checked by `systemd-analyze`.
//! - [`tshark`]: a capture file read back by tshark, field by field.
//!
//! Why it depends on hopcap-proto only: a dev-dependency that depended on the collector would
//! give the collector's own unit tests a second copy of the collector's types (the library
//! under test and the one the kit links), and they would not type-check. So the kit speaks
//! proto: link tables ([`LinkInfo`](hopcap_proto::record::LinkInfo)) per board,
//! observations, the truth ([`bed::Parts`]). The collector keeps a small `#[cfg(test)]`
//! adapter (`correlate::testbed`) that builds its `Topology` and `Hop`s from them; its
//! benchmarks do the same through the public API. proto's unit tests may use the
//! proto-free parts (the RNG, the corpus folder); the tests that feed [`sim`] output into
//! the codec are integration tests (proto/tests/), where only one proto exists.

pub mod bed;
mod corpus;
pub mod docker;
pub mod layering;
mod links;
pub mod random;
mod rng;
mod sample;
mod scratch;
pub mod sim;
pub mod systemd;
pub mod tshark;

pub use corpus::{corpus_dir, find_corpus_dir};
pub use links::veth;
pub use rng::Rng;
pub use sample::SampleGen;
pub use scratch::ScratchDir;
