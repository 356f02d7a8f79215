//! Scaled mode: hopcap on existing distributed engines (README "Scaling out").
//!
//! ```text
//!  agents ──Noise──▶ ingest nodes ──JetStream──▶ correlators ──▶ store (ClickHouse)
//!            (serve --nats)   obs.<token> ─▶ part.<K>.<token>   (correlate --partition K/N)
//! ```
//!
//! - **Ingest** (`serve --nats`) terminates agent connections as in the embedded mode; its
//!   store is [`JetStreamWriter`]: each batch is split by [`partition`] and published, one
//!   message per partition, and the agent's batch is acknowledged once JetStream holds every
//!   part (replicated). Board metadata (hello, links, stats, tallies) goes to one `meta`
//!   stream. Ingest keeps no state: ids are hashes of names ([`crate::store::name_ids`]) and each run's last
//!   stored batch is in a key-value bucket, so an agent may reconnect to any ingest node.
//! - The servers' subject mapping `partition(N, 1)` (fnv1a32 % N, `scripts/nats.sh`) sends
//!   `obs.<token>` to `part.<K>.<token>`: every sighting of one packet, and every piece of
//!   one segmented packet, lands in one partition, whichever board or node saw it.
//! - **Correlators** ([`consume`]) each own a partition's durable pull consumer (and share
//!   the `meta` one), write what they take to the store and acknowledge after the store
//!   says it is durable: at-least-once delivery, made exactly-once by the store keeping each
//!   part of a batch once.
//! - Each partition's correlator also **builds its journeys** ([`build`], [`journeys`]): rows
//!   wait until their journey settles, the journey is stored with its rows, and only then is
//!   a message acknowledged; so every journey is built by one correlator, from all its rows,
//!   once. Board clocks are estimated from the crossings every partition shares through a
//!   key-value bucket ([`clock_share`]).
//!
//! [`JetStreamWriter`]: publish::JetStreamWriter

pub mod build;
pub mod clock_share;
pub mod consume;
pub mod envelope;
pub mod journeys;
pub mod partition;
pub mod publish;
pub mod streams;
