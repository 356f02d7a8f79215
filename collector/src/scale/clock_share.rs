//! The clock crossings each partition's correlator has counted, shared through the
//! `HOPCAP_CLOCK` key-value bucket (key `partition-<K>`, the crossings of the journeys it
//! stored). Board clock offsets need crossings from every partition; minima merge exactly
//! ([`Crossings`]), so every correlator that merges the others' estimates the clock all the
//! traffic gives, give or take the last moments another partition has not shared yet.

use super::envelope::{decode, encode};
use super::streams::{self, NatsError};
use crate::correlate::Crossings;
use async_nats::jetstream::{kv, Context};

pub const CLOCK_BUCKET: &str = "HOPCAP_CLOCK";

/// Crossings older than this (before the newest window a partition has) are not shared:
/// what waits in a partition is seconds old, so the estimate needs the last few windows,
/// and the record must stay well under NATS's message limit (1 MiB by default). 12 windows
/// of 10 s take about 200 bytes per board pair (a unit test of `correlate::clock`): room
/// for thousands of pairs.
pub const SHARED_SPAN_NS: u64 = 120_000_000_000;

fn key(k: u32) -> String {
    format!("partition-{k}")
}

/// The bucket, created if missing.
pub async fn bucket(js: &Context, replicas: usize) -> Result<kv::Store, NatsError> {
    streams::bucket(js, CLOCK_BUCKET, replicas).await
}

/// Shares partition `k`'s crossings (replacing what it shared before).
pub async fn publish(store: &kv::Store, k: u32, c: &Crossings) -> Result<(), NatsError> {
    store
        .put(key(k), encode(c).into())
        .await
        .map(|_| ())
        .map_err(|e| format!("bucket {CLOCK_BUCKET}: put {}: {e}", key(k)))
}

/// The crossings every partition of `of` but `k` shared, merged. A value that does not
/// decode (another version) is left out, with a warning.
pub async fn gather(store: &kv::Store, k: u32, of: u32) -> Result<Crossings, NatsError> {
    let mut out = Crossings::default();
    for other in (0..of).filter(|&o| o != k) {
        let got = store
            .get(key(other))
            .await
            .map_err(|e| format!("bucket {CLOCK_BUCKET}: get {}: {e}", key(other)))?;
        let Some(bytes) = got else { continue };
        match decode::<Crossings>(&bytes) {
            Ok(c) => {
                if !out.merge(&c) {
                    log::warn!(
                        "clock: partition {other} counts crossings in {} ns windows, this one \
                         in {}: left out",
                        c.window_ns,
                        out.window_ns
                    );
                }
            }
            Err(e) => log::warn!("clock: partition {other}'s crossings: {e}: left out"),
        }
    }
    Ok(out)
}
