//! The store of an ingest node in scaled mode: JetStream. A batch is split by partition and
//! published, one message per partition with the message id `<run>.<seq>.<part>`, and is
//! acknowledged to its agent once JetStream has stored every part (on a quorum of its
//! replicas). Board metadata is published to the `meta` stream and answered once stored.
//!
//! Publishes are pipelined: one task sends batches in the order their connections queued
//! them, another waits for their acknowledgements in the same order and raises each batch's
//! watermark, so a watermark never passes a batch not yet stored. A part JetStream did not
//! take (a node died, a leader is being elected) is published again under the same id until
//! [`RETRY_FOR`] has passed; then the batch is marked failed and its agent, which keeps
//! every unacknowledged batch, sends it again later.

use super::envelope::{encode, MetaMsg, PartMsg};
use super::partition::{partition, publish_subject, token};
use super::streams::RUNS_BUCKET;
use super::streams::{self, NatsError};
use crate::store::name_ids::{board_id, link_id, run_id};
use crate::store::{
    BatchPart, BoardHello, BoardId, BoardSession, BoardStats, FrameBytes, LinkId, ObservationBatch,
    RunId, RunTally, StoreError, StoreWriter, COMMIT_FAILED,
};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{kv, Context};
use bytes::Bytes;
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a part is published again before its batch is given up on (the agent resends).
pub const RETRY_FOR: Duration = Duration::from_secs(30);
/// Batches sent and not yet acknowledged, at most: more blocks the connections (back-pressure).
const PIPELINE: usize = 512;
/// How often each run's last acknowledged batch is written to the runs bucket.
const RUNS_EVERY: Duration = Duration::from_millis(200);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Comma-separated `nats://host:port` of the cluster's nodes.
    pub urls: String,
    /// The servers' `partition(N, 1)`: must be the N of their subject mapping.
    pub partitions: u32,
    /// Replicas of each stream (3 on a 3-node cluster).
    pub replicas: usize,
    pub connect_timeout: Duration,
}

/// Batches sent whose acknowledgements are awaited, for `flush`.
#[derive(Default)]
struct Pending {
    count: Mutex<u64>,
    done: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn finish(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.done.notify_all();
        }
    }
}

/// Holds a runtime and a connection: one per ingest node, never cloned.
pub struct JetStreamWriter {
    rt: tokio::runtime::Runtime,
    js: Context,
    runs: kv::Store,
    partitions: u32,
    sender: mpsc::Sender<ObservationBatch>,
    pending: Arc<Pending>,
}

impl std::fmt::Debug for JetStreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamWriter")
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl JetStreamWriter {
    /// Connects, creates the streams and the runs bucket if missing, and starts publishing.
    pub fn connect(cfg: &JetStreamConfig) -> Result<JetStreamWriter, NatsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nats-publish")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
        let (js, runs) = rt.block_on(async {
            let js = streams::connect(&cfg.urls, cfg.connect_timeout).await?;
            streams::ensure(&js, cfg.partitions, cfg.replicas).await?;
            let runs = streams::runs(&js, cfg.replicas).await?;
            Ok::<_, NatsError>((js, runs))
        })?;
        let (sender, batches) = mpsc::channel(PIPELINE);
        let (to_acks, acks) = mpsc::channel(PIPELINE);
        let pending = Arc::new(Pending::default());
        let last_seqs = Arc::new(Mutex::new(HashMap::new()));
        rt.spawn(send_batches(
            js.clone(),
            cfg.partitions.max(1),
            batches,
            to_acks,
        ));
        rt.spawn(await_acks(
            acks,
            Arc::clone(&pending),
            Arc::clone(&last_seqs),
        ));
        rt.spawn(write_runs(runs.clone(), last_seqs));
        Ok(JetStreamWriter {
            rt,
            js,
            runs,
            partitions: cfg.partitions.max(1),
            sender,
            pending,
        })
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Publishes a metadata message and waits until JetStream stored it.
    /// `key`: the board's id (a run's, for tallies), one subject token per board.
    fn meta(&self, key: i64, msg: &MetaMsg) -> Result<(), StoreError> {
        let subject = format!("meta.{key:016x}");
        let payload = Bytes::from(encode(msg));
        self.rt.block_on(async {
            let deadline = Instant::now() + RETRY_FOR;
            loop {
                let result = match self.js.publish(subject.clone(), payload.clone()).await {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(()) => return Ok(()),
                    Err(e) if Instant::now() >= deadline => {
                        return Err(StoreError::Refused(format!("NATS: {subject}: {e}")))
                    }
                    Err(e) => {
                        log::debug!("NATS: {subject}: {e}; again");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    }
}

/// A part's acknowledgement, awaited on its own task from the moment it is sent: the ack
/// wait then runs for all parts at once, not one after the other as they are checked.
type Ack = tokio::task::JoinHandle<Result<(), String>>;

/// A batch in flight, and the task that tells whether JetStream stored all its parts (it
/// publishes a part again as long as needed, beside the other batches' tasks, so an
/// outage costs its length once, not once per batch).
struct InFlight {
    batch: ObservationBatch,
    stored: tokio::task::JoinHandle<bool>,
}

/// Splits each batch by partition and sends its parts, in queue order.
async fn send_batches(
    js: Context,
    partitions: u32,
    mut batches: mpsc::Receiver<ObservationBatch>,
    to_acks: mpsc::Sender<InFlight>,
) {
    while let Some(mut batch) = batches.recv().await {
        let mut parts = Vec::new();
        if let (false, Some(run), Some(seq)) = (batch.duplicate, batch.run, batch.seq) {
            for (index, msg) in split(&mut batch, run, seq, partitions)
                .into_iter()
                .enumerate()
            {
                let id = format!("{:x}.{seq}.{index}", run.raw());
                let subject = publish_subject(&msg.0);
                let payload = Bytes::from(encode(&msg.1));
                let ack = publish(&js, &subject, &id, payload.clone()).await.ok();
                parts.push((subject, id, payload, ack));
            }
        }
        let js = js.clone();
        let stored = tokio::spawn(async move {
            let all = parts.into_iter().map(|(subject, id, payload, ack)| {
                let js = js.clone();
                async move { stored_part(&js, &subject, &id, payload, ack).await }
            });
            futures_util::future::join_all(all)
                .await
                .into_iter()
                .all(|ok| ok)
        });
        if to_acks.send(InFlight { batch, stored }).await.is_err() {
            return;
        }
    }
}

/// A batch's rows by partition: (a token of the partition, its message). Part 0 carries the
/// batch's lost count; a batch with no rows is one empty part, so its sequence number is
/// still stored.
fn split(
    batch: &mut ObservationBatch,
    run: RunId,
    seq: u64,
    partitions: u32,
) -> Vec<(String, PartMsg)> {
    let mut by_partition: Vec<Option<(String, Vec<usize>)>> = vec![None; partitions as usize];
    for (i, (_, obs)) in batch.rows.iter().enumerate() {
        let t = token(obs);
        let k = partition(t.as_str(), partitions) as usize;
        by_partition[k]
            .get_or_insert_with(|| (t.as_str().to_string(), Vec::new()))
            .1
            .push(i);
    }
    let mut rows: Vec<_> = std::mem::take(&mut batch.rows)
        .into_iter()
        .map(Some)
        .collect();
    let frames = std::mem::take(&mut batch.frames);
    let mut groups: Vec<(u32, String, Vec<usize>)> = by_partition
        .into_iter()
        .enumerate()
        .filter_map(|(k, g)| g.map(|(t, rows)| (k as u32, t, rows)))
        .collect();
    if groups.is_empty() {
        // Any token maps somewhere; the fingerprint 0's partition is as good as any.
        let t = format!("{:016x}", 0);
        groups.push((partition(&t, partitions), t, Vec::new()));
    }
    let of = groups.len() as u16;
    groups
        .into_iter()
        .enumerate()
        .map(|(index, (k, t, members))| {
            let mut part_frames = FrameBytes::default();
            if !frames.is_empty() {
                for &i in &members {
                    part_frames.push(frames.get(i).unwrap_or(&[]));
                }
            }
            let msg = PartMsg {
                board: batch.board,
                run,
                seq,
                lost_batches: if index == 0 { batch.lost_batches } else { 0 },
                part: BatchPart {
                    index: index as u16,
                    of,
                    rows: members.iter().map(|&i| i as u32).collect(),
                },
                partition: k,
                partitions,
                rows: members.iter().filter_map(|&i| rows[i].take()).collect(),
                frames: part_frames,
            };
            (t, msg)
        })
        .collect()
}

async fn publish(js: &Context, subject: &str, id: &str, payload: Bytes) -> Result<Ack, String> {
    let ack: PublishAckFuture = js
        .send_publish(
            subject.to_string(),
            PublishMessage::build().payload(payload).message_id(id),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(tokio::spawn(async move {
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }))
}

/// Raises each batch's watermark once all its parts are stored, in queue order.
async fn await_acks(
    mut acks: mpsc::Receiver<InFlight>,
    pending: Arc<Pending>,
    last_seqs: Arc<Mutex<HashMap<RunId, u64>>>,
) {
    while let Some(InFlight { batch, stored }) = acks.recv().await {
        let stored = stored.await.unwrap_or(false);
        if let (Some(seq), Some(w)) = (batch.seq, &batch.committed) {
            if stored {
                w.fetch_max(seq + 1, Ordering::AcqRel);
                if let Some(run) = batch.run {
                    let mut last = last_seqs.lock().unwrap_or_else(|p| p.into_inner());
                    let e = last.entry(run).or_insert(seq);
                    *e = (*e).max(seq);
                }
            } else {
                w.fetch_or(COMMIT_FAILED, Ordering::AcqRel);
            }
        }
        drop(batch);
        pending.finish();
    }
}

async fn stored_part(
    js: &Context,
    subject: &str,
    id: &str,
    payload: Bytes,
    mut ack: Option<Ack>,
) -> bool {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        let error = match ack.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => return true,
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
            },
            None => "not sent".to_string(),
        };
        if Instant::now() >= deadline {
            log::warn!("NATS: {subject} ({id}) not stored after {RETRY_FOR:?}: {error}; the agent will send it again");
            return false;
        }
        log::debug!("NATS: {subject} ({id}): {error}; publishing again");
        tokio::time::sleep(Duration::from_millis(100)).await;
        ack = publish(js, subject, id, payload.clone()).await.ok();
    }
}

/// Writes each run's last stored batch to the bucket, every [`RUNS_EVERY`]: a hello on any
/// ingest node reads it back. Behind by at most that long, which costs a resend that
/// JetStream and the store each keep once.
async fn write_runs(runs: kv::Store, last_seqs: Arc<Mutex<HashMap<RunId, u64>>>) {
    let mut written: HashMap<RunId, u64> = HashMap::new();
    loop {
        tokio::time::sleep(RUNS_EVERY).await;
        let now: Vec<(RunId, u64)> = last_seqs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(r, s)| (*r, *s))
            .collect();
        for (run, seq) in now {
            if written.get(&run) == Some(&seq) {
                continue;
            }
            match runs.put(run_key(run), Bytes::from(seq.to_string())).await {
                Ok(_) => {
                    written.insert(run, seq);
                }
                Err(e) => log::debug!("NATS: bucket {RUNS_BUCKET}: {e}"),
            }
        }
    }
}

fn run_key(run: RunId) -> String {
    format!("{:016x}", run.raw())
}

impl StoreWriter for JetStreamWriter {
    fn hello(&self, hello: BoardHello) -> Result<BoardSession, StoreError> {
        let board = board_id(&hello.name);
        let run = run_id(&hello.name, &hello.boot_id);
        let last_seq = self
            .rt
            .block_on(self.runs.get(run_key(run)))
            .map_err(|e| StoreError::Refused(format!("NATS: bucket {RUNS_BUCKET}: {e}")))?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
        self.meta(board.raw(), &MetaMsg::Hello(hello))?;
        Ok(BoardSession {
            board,
            run,
            last_seq,
            links: Vec::new(),
        })
    }

    fn links(
        &self,
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
    ) -> Result<Vec<(LinkKey, LinkId)>, StoreError> {
        let ids = links.iter().map(|l| (l.key, link_id(board, l))).collect();
        self.meta(
            board.raw(),
            &MetaMsg::Links {
                board,
                links,
                full_report,
            },
        )?;
        Ok(ids)
    }

    fn links_removed(&self, board: BoardId, links: Vec<LinkId>) -> Result<(), StoreError> {
        self.meta(board.raw(), &MetaMsg::LinksRemoved { board, links })
    }

    fn batch(&self, batch: ObservationBatch) -> Result<(), StoreError> {
        self.pending.add();
        self.sender.blocking_send(batch).map_err(|_| {
            self.pending.finish();
            StoreError::Gone
        })
    }

    fn stats(&self, board: BoardId, stats: BoardStats) -> Result<(), StoreError> {
        self.meta(board.raw(), &MetaMsg::Stats { board, stats })
    }

    fn tally(&self, run: RunId, tally: RunTally) -> Result<(), StoreError> {
        // On the meta stream behind nothing: the batches before it are awaited first, so
        // that a correlator never reads a tally naming batches still in flight here.
        self.flush(RETRY_FOR);
        self.meta(run.raw(), &MetaMsg::Tally { run, tally })
    }

    fn disconnected(&self, board: BoardId, remote: String) -> Result<(), StoreError> {
        self.meta(board.raw(), &MetaMsg::Disconnected { board, remote })
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = self
                .pending
                .done
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}
