//! A correlator's intake: partition K's durable consumer, and the shared `meta` one. Each
//! takes messages in batches, hands them to the store and acknowledges only what the store
//! says is durable; anything else comes back after the ack wait (at-least-once), and the
//! store keeps each batch part once (so, stored exactly once).
//!
//! A message that does not decode is not stored: one of an unknown version is left for a
//! correlator that reads it (redelivered later), a corrupt one is terminated and counted.

use super::clock_share;
use super::envelope::{decode, EnvelopeError, MetaMsg, PartMsg};
use super::journeys::{Journeys, PartRows};
use super::streams::{self, NatsError};
use crate::store::{JourneyStore, ObservationBatch, StoreReader, StoreWriter, COMMIT_FAILED};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Messages taken per fetch, and how long a fetch waits for them.
const FETCH: usize = 512;
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// How long the store may take to make a fetch's writes durable.
const STORE_WAIT: Duration = Duration::from_secs(20);
/// Boards whose metadata is stored at once.
const META_PARALLEL: usize = 32;

/// What a consumer did, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct IntakeCounts {
    /// Set once the consumer exists and messages are being taken.
    pub ready: AtomicBool,
    pub messages: AtomicU64,
    pub rows: AtomicU64,
    /// Rows ingest sent to another partition than this one (a `--partitions` that differs
    /// from the servers' mapping): stored all the same.
    pub misrouted_rows: AtomicU64,
    /// Messages that never decode (terminated), and of an unknown version (left).
    pub corrupt: AtomicU64,
    pub unknown_version: AtomicU64,
    /// Messages the store did not make durable in time (left for redelivery).
    pub not_stored: AtomicU64,
    /// Journeys built and stored; rows waiting for theirs to settle; rows given up because
    /// the store never learnt their link; redelivered rows already in a stored journey.
    pub journeys: AtomicU64,
    pub waiting_rows: AtomicU64,
    pub unlinked_rows: AtomicU64,
    pub rows_in_journeys_already: AtomicU64,
}

/// Which stream a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    Partition { k: u32, of: u32 },
    Meta,
}

/// What a partition's correlator needs to build journeys: where to keep them, what the
/// store knows of the boards (links, capture drops, sampling), and the settle time.
#[allow(missing_debug_implementations)] // trait objects of the store
pub struct JourneyBuilding {
    pub journeys: Box<dyn JourneyStore>,
    pub reader: Box<dyn StoreReader + Send>,
    pub settle: Duration,
    /// Replicas of the clock bucket.
    pub replicas: usize,
}

/// Runs one consumer until `stop`: connects, makes the streams if missing, takes messages.
/// A partition's consumer with `building` also builds the partition's journeys.
/// Returns the first error that is not a passing NATS failure (those are retried).
///
/// The store and its readers block on their own runtime, so they are called between the
/// NATS calls (each a `block_on` of this thread's runtime), never inside one.
pub fn run(
    urls: &str,
    intake: Intake,
    replicas: usize,
    store: Arc<dyn StoreWriter>,
    building: Option<JourneyBuilding>,
    stop: Arc<AtomicBool>,
    counts: Arc<IntakeCounts>,
) -> Result<(), NatsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
    let (consumer, mut journeys) = rt.block_on(async {
        let js = streams::connect(urls, Duration::from_secs(10)).await?;
        let consumer = match intake {
            Intake::Partition { k, of } => {
                streams::ensure(&js, of, replicas).await?;
                streams::durable(&js, &streams::part_stream(k), &streams::part_consumer(k)).await?
            }
            Intake::Meta => {
                streams::ensure(&js, 0, replicas).await?;
                streams::durable(&js, streams::META_STREAM, streams::META_CONSUMER).await?
            }
        };
        let journeys = match (intake, building) {
            (Intake::Partition { k, of }, Some(b)) => {
                let bucket = clock_share::bucket(&js, b.replicas).await?;
                Some(Journeys::new(k, of, b, bucket))
            }
            _ => None,
        };
        Ok::<_, NatsError>((consumer, journeys))
    })?;
    counts.ready.store(true, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = take(
            &rt,
            &consumer,
            intake,
            store.as_ref(),
            journeys.as_mut(),
            &counts,
        ) {
            log::warn!("NATS ({intake:?}): {e}; trying again");
            std::thread::sleep(Duration::from_millis(500));
        }
        if let Some(j) = journeys.as_mut() {
            j.tick(&rt, &counts);
        }
    }
    if let Some(j) = journeys {
        j.give_back(&rt);
    }
    Ok(())
}

/// One fetch: store every message, then acknowledge what is durable (a partition's
/// messages that build journeys: once their rows are in stored journeys).
fn take(
    rt: &tokio::runtime::Runtime,
    consumer: &PullConsumer,
    intake: Intake,
    store: &dyn StoreWriter,
    journeys: Option<&mut Journeys>,
    counts: &IntakeCounts,
) -> Result<(), NatsError> {
    let taken = rt.block_on(async {
        let mut batch = consumer
            .fetch()
            .max_messages(FETCH)
            .expires(FETCH_WAIT)
            .messages()
            .await
            .map_err(|e| format!("fetch: {e}"))?;
        let mut taken = Vec::new();
        while let Some(m) = batch.next().await {
            taken.push(m.map_err(|e| format!("fetch: {e}"))?);
        }
        Ok::<_, NatsError>(taken)
    })?;
    if taken.is_empty() {
        return Ok(());
    }
    counts
        .messages
        .fetch_add(taken.len() as u64, Ordering::Relaxed);
    // Each message's verdict: stored (ack when durable), to leave, or to terminate.
    let verdicts: Vec<Verdict> = match intake {
        Intake::Partition { k, .. } => taken
            .iter()
            .map(|m| part(&m.payload, k, store, journeys.is_some(), counts))
            .collect(),
        Intake::Meta => metas(&taken, store),
    };
    let durable = store.flush(STORE_WAIT);
    let mut acks = Vec::new();
    let mut stored = Vec::new();
    for (m, v) in taken.into_iter().zip(verdicts) {
        let kind = match v {
            Verdict::Stored(w, msg) => {
                let is_stored = durable
                    && w.as_ref().is_none_or(|(w, seq)| {
                        let at = w.load(Ordering::Acquire);
                        at & COMMIT_FAILED == 0 && at > *seq
                    });
                if !is_stored {
                    counts.not_stored.fetch_add(1, Ordering::Relaxed);
                    AckKind::Nak(Some(Duration::from_secs(1)))
                } else if let Some(msg) = msg {
                    stored.push((m, msg));
                    continue;
                } else {
                    AckKind::Ack
                }
            }
            Verdict::Leave => AckKind::Nak(Some(Duration::from_secs(5))),
            Verdict::Terminate => AckKind::Term,
        };
        acks.push((m, kind));
    }
    if let Some(j) = journeys {
        acks.extend(j.take(stored, counts));
    }
    ack_all(rt, acks, intake);
    Ok(())
}

fn ack_all(
    rt: &tokio::runtime::Runtime,
    acks: Vec<(async_nats::jetstream::Message, AckKind)>,
    intake: Intake,
) {
    if acks.is_empty() {
        return;
    }
    rt.block_on(async {
        for (m, kind) in acks {
            if let Err(e) = m.ack_with(kind).await {
                // Not acknowledged: it comes back after the ack wait, and the store keeps it
                // once.
                log::debug!("NATS ({intake:?}): ack: {e}");
            }
        }
    });
}

enum Verdict {
    /// Handed to the store; with the watermark that says when it is durable, and the batch
    /// part's rows when the partition builds journeys.
    Stored(Option<(Arc<AtomicU64>, u64)>, Option<Box<PartRows>>),
    Leave,
    Terminate,
}

fn undecodable(e: EnvelopeError, what: &str, counts: Option<&IntakeCounts>) -> Verdict {
    match e {
        EnvelopeError::Version { .. } => {
            log::warn!("NATS: {what}: {e}: left for a collector that reads it");
            if let Some(c) = counts {
                c.unknown_version.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Leave
        }
        EnvelopeError::Empty | EnvelopeError::Body(_) => {
            log::warn!("NATS: {what}: {e}: dropped");
            if let Some(c) = counts {
                c.corrupt.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Terminate
        }
    }
}

/// Decodes and stores one batch part; with `keep_rows`, its rows come back in the verdict.
fn part(
    payload: &[u8],
    k: u32,
    store: &dyn StoreWriter,
    keep_rows: bool,
    counts: &IntakeCounts,
) -> Verdict {
    let msg: PartMsg = match decode(payload) {
        Ok(m) => m,
        Err(e) => return undecodable(e, "batch part", Some(counts)),
    };
    counts
        .rows
        .fetch_add(msg.rows.len() as u64, Ordering::Relaxed);
    if msg.partition != k {
        counts
            .misrouted_rows
            .fetch_add(msg.rows.len() as u64, Ordering::Relaxed);
        log::warn!(
            "NATS: partition {k} got rows ingest meant for partition {} of {}: are --partitions \
             and the servers' mapping the same?",
            msg.partition,
            msg.partitions
        );
    }
    let watermark = Arc::new(AtomicU64::new(0));
    // The rows go to the store and, when it builds journeys, to the partition's builder.
    let taken = keep_rows.then(|| {
        Box::new(PartRows {
            key: (msg.run, msg.seq, msg.part.index),
            positions: msg.part.rows.clone(),
            rows: msg.rows.clone(),
        })
    });
    let mut batch = ObservationBatch::new(msg.board, msg.rows);
    batch.run = Some(msg.run);
    batch.seq = Some(msg.seq);
    batch.lost_batches = msg.lost_batches;
    batch.frames = msg.frames;
    batch.committed = Some(Arc::clone(&watermark));
    let index = msg.part.index;
    if msg.part.rows.len() != batch.rows.len() {
        log::warn!(
            "NATS: batch {} part {index}: {} rows but {} row positions: dropped",
            msg.seq,
            batch.rows.len(),
            msg.part.rows.len()
        );
        counts.corrupt.fetch_add(1, Ordering::Relaxed);
        return Verdict::Terminate;
    }
    match store.batch_part(batch, msg.part) {
        Ok(()) => Verdict::Stored(Some((watermark, msg.seq)), taken),
        Err(e) => {
            log::warn!("store: batch {} part {}: {e}", msg.seq, index);
            Verdict::Leave
        }
    }
}

/// Boards' metadata, each board's in order (its subject), the boards side by side: each
/// call waits for the store to make it durable, so one at a time, 100 boards connecting at
/// once would take 100 commits in a row.
fn metas(taken: &[async_nats::jetstream::Message], store: &dyn StoreWriter) -> Vec<Verdict> {
    let mut by_subject: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, m) in taken.iter().enumerate() {
        by_subject.entry(m.subject.as_str()).or_default().push(i);
    }
    let mut verdicts: Vec<Option<Verdict>> = taken.iter().map(|_| None).collect();
    let groups: Vec<Vec<usize>> = by_subject.into_values().collect();
    for wave in groups.chunks(META_PARALLEL) {
        let done: Vec<Vec<(usize, Verdict)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .iter()
                .map(|group| {
                    scope.spawn(move || {
                        group
                            .iter()
                            .map(|&i| (i, meta(&taken[i].payload, store)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (i, v) in done.into_iter().flatten() {
            verdicts[i] = Some(v);
        }
    }
    // A thread that panicked leaves its messages to come back.
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or(Verdict::Leave))
        .collect()
}

fn meta(payload: &[u8], store: &dyn StoreWriter) -> Verdict {
    let msg: MetaMsg = match decode(payload) {
        Ok(m) => m,
        Err(e) => return undecodable(e, "board metadata", None),
    };
    let done = match msg {
        MetaMsg::Hello(h) => store.hello(h).map(|_| ()),
        MetaMsg::Links {
            board,
            links,
            full_report,
        } => store.links(board, links, full_report).map(|_| ()),
        MetaMsg::LinksRemoved { board, links } => store.links_removed(board, links),
        MetaMsg::Stats { board, stats } => store.stats(board, stats),
        MetaMsg::Tally { run, tally } => store.tally(run, tally),
        MetaMsg::Disconnected { board, remote } => store.disconnected(board, remote),
    };
    match done {
        Ok(()) => Verdict::Stored(None, None),
        Err(e) => {
            log::warn!("store: board metadata: {e}");
            Verdict::Leave
        }
    }
}
