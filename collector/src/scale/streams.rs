//! The JetStream layout of scaled mode: one work-queue stream per partition
//! (`HOPCAP_PART_<K>`, subjects `part.<K>.*`), one for board metadata (`HOPCAP_META`,
//! `meta.*`), each with one durable pull consumer, and the `HOPCAP_RUNS` bucket of each
//! agent run's last published batch. Work-queue streams drop a message once its consumer
//! acknowledged it, so JetStream holds only what no correlator has stored yet.
//!
//! Every process that starts creates what is missing (creating an existing stream with the
//! same configuration is a no-op), so ingest nodes and correlators start in any order.

use super::partition::stream_subjects;
use async_nats::jetstream::{self, consumer, kv, stream, Context};
use std::time::Duration;

pub const META_STREAM: &str = "HOPCAP_META";
pub const META_CONSUMER: &str = "meta";
pub const RUNS_BUCKET: &str = "HOPCAP_RUNS";
/// Within this window JetStream drops a part published again under the same message id
/// (an agent's batch resent after a reconnect); later copies the store keeps once anyway.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// A message not acknowledged within this goes to the consumer again (a correlator died
/// between taking and storing it).
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// How long a publish waits for JetStream's acknowledgement before it is sent again (under
/// the same id, so a late first copy is not stored twice): short, so that a node's death
/// costs seconds, not minutes, of the batches it held unacknowledged.
pub const PUBLISH_ACK_WAIT: Duration = Duration::from_secs(3);

pub fn part_stream(k: u32) -> String {
    format!("HOPCAP_PART_{k}")
}

pub fn part_consumer(k: u32) -> String {
    format!("correlator-{k}")
}

/// Any failure talking to NATS, as a message that names what was being done.
pub type NatsError = String;

/// Connects to the cluster: `urls` is a comma-separated list of `nats://host:port`.
pub async fn connect(urls: &str, timeout: Duration) -> Result<Context, NatsError> {
    let servers = urls
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--nats {urls}: {e}"))?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(servers)
        .await
        .map_err(|e| format!("cannot connect to NATS at {urls}: {e}"))?;
    // A first round trip within the timeout: an unreachable cluster is said at start.
    tokio::time::timeout(timeout, client.flush())
        .await
        .map_err(|_| format!("NATS at {urls} did not answer within {timeout:?}"))?
        .map_err(|e| format!("NATS at {urls}: {e}"))?;
    let mut js = jetstream::new(client);
    js.set_timeout(PUBLISH_ACK_WAIT);
    Ok(js)
}

fn work_queue(name: String, subjects: String, replicas: usize) -> stream::Config {
    stream::Config {
        name,
        subjects: vec![subjects],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// How long setting up streams, consumers and the bucket is tried: a cluster that has just
/// started (or lost a node) needs a few seconds to elect the leaders that create them.
pub const SETUP_FOR: Duration = Duration::from_secs(30);

/// Tries `what` until it works or [`SETUP_FOR`] has passed; the last error if it never did.
pub async fn patiently<T, F, Fut>(mut what: F) -> Result<T, NatsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, NatsError>>,
{
    let deadline = tokio::time::Instant::now() + SETUP_FOR;
    loop {
        match what().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                log::debug!("NATS: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// Creates the streams of `partitions` partitions and the metadata stream, if missing.
pub async fn ensure(js: &Context, partitions: u32, replicas: usize) -> Result<(), NatsError> {
    let mut wanted: Vec<stream::Config> = (0..partitions)
        .map(|k| work_queue(part_stream(k), stream_subjects(k), replicas))
        .collect();
    wanted.push(work_queue(META_STREAM.into(), "meta.*".into(), replicas));
    for cfg in wanted {
        patiently(|| async {
            js.get_or_create_stream(cfg.clone())
                .await
                .map(|_| ())
                .map_err(|e| format!("stream {}: {e}", cfg.name))
        })
        .await?;
    }
    Ok(())
}

/// The bucket of each run's last published batch, created if missing.
pub async fn runs(js: &Context, replicas: usize) -> Result<kv::Store, NatsError> {
    bucket(js, RUNS_BUCKET, replicas).await
}

/// Key-value bucket `name` (the latest value of each key only), created if missing.
pub async fn bucket(js: &Context, name: &str, replicas: usize) -> Result<kv::Store, NatsError> {
    patiently(|| async {
        if let Ok(store) = js.get_key_value(name).await {
            return Ok(store);
        }
        js.create_key_value(kv::Config {
            bucket: name.into(),
            history: 1,
            num_replicas: replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("bucket {name}: {e}"))
    })
    .await
}

/// The durable pull consumer `name` of `stream`, created if missing.
pub async fn durable(
    js: &Context,
    stream: &str,
    name: &str,
) -> Result<consumer::PullConsumer, NatsError> {
    patiently(|| async {
        let s = js.get_stream(stream).await.map_err(|e| {
            format!("stream {stream}: {e} (is an ingest node running with the same --partitions?)")
        })?;
        s.get_or_create_consumer(
            name,
            consumer::pull::Config {
                durable_name: Some(name.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 8192,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name} of {stream}: {e}"))
    })
    .await
}
