//! The running ClickHouse writer thread, and [`ClickhouseWriter`]: the [`StoreWriter`] that
//! ingest connections hold, a sender into the writer's bounded channel.

use super::command::{Reply, WriteCmd};
use super::shards::Shards;
use super::writer::{self, WriterConfig};
use crate::store::{
    BatchPart, BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId,
    RunTally, StoreError, StoreWriter, WriterStatus,
};
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug)]
pub struct ClickhouseHandle {
    tx: SyncSender<WriteCmd>,
    join: JoinHandle<()>,
    status: Arc<WriterStatus>,
}

impl ClickhouseHandle {
    /// Connects to the shards `spec` names (comma-separated HTTP URLs), creates the tables
    /// that are missing and starts the writer. `capacity` commands may wait before senders
    /// block.
    pub fn start(spec: &str, config: WriterConfig, capacity: usize) -> Result<Self, String> {
        let shards = Shards::connect(spec)?;
        shards.create_schema()?;
        let (tx, rx) = sync_channel(capacity);
        let status = Arc::clone(&config.status);
        status.set_capacity(capacity);
        let join = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(shards, rx, config))
            .map_err(|e| format!("cannot start the store's writer: {e}"))?;
        Ok(ClickhouseHandle { tx, join, status })
    }

    pub fn writer(&self) -> ClickhouseWriter {
        ClickhouseWriter {
            tx: self.tx.clone(),
            status: Arc::clone(&self.status),
        }
    }

    pub fn status(&self) -> Arc<WriterStatus> {
        Arc::clone(&self.status)
    }

    /// Drops this handle's sender and waits for the writer to store the rest and exit (once
    /// every other sender is dropped too).
    pub fn finish(self) {
        let ClickhouseHandle { tx, join, .. } = self;
        drop(tx);
        if join.join().is_err() {
            log::error!("store: the writer thread panicked");
        }
    }
}

/// A [`StoreWriter`] into ClickHouse; requests that need an answer wait for the commit that
/// makes it true.
#[derive(Debug, Clone)]
pub struct ClickhouseWriter {
    tx: SyncSender<WriteCmd>,
    status: Arc<WriterStatus>,
}

impl ClickhouseWriter {
    fn send(&self, cmd: WriteCmd) -> Result<(), StoreError> {
        self.status.enqueued();
        self.tx.send(cmd).map_err(|_| {
            self.status.dequeued();
            StoreError::Gone
        })
    }

    fn request<T>(&self, make: impl FnOnce(Reply<T>) -> WriteCmd) -> Result<T, StoreError> {
        let (reply, answer) = sync_channel(1);
        self.send(make(reply))?;
        answer
            .recv()
            .map_err(|_| StoreError::Gone)?
            .map_err(StoreError::Refused)
    }
}

impl StoreWriter for ClickhouseWriter {
    fn batch_part(&self, batch: ObservationBatch, part: BatchPart) -> Result<(), StoreError> {
        if part.of == 0 || part.index >= part.of || part.rows.len() != batch.rows.len() {
            return Err(StoreError::Refused(format!(
                "batch part {} of {} with {} row places for {} rows",
                part.index,
                part.of,
                part.rows.len(),
                batch.rows.len()
            )));
        }
        self.send(WriteCmd::Part(batch, part))
    }

    fn hello(&self, hello: BoardHello) -> Result<BoardSession, StoreError> {
        self.request(|reply| WriteCmd::Hello { hello, reply })
    }

    fn links(
        &self,
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
    ) -> Result<Vec<(LinkKey, LinkId)>, StoreError> {
        self.request(|reply| WriteCmd::Links {
            board,
            links,
            full_report,
            reply,
        })
    }

    fn links_removed(&self, board: BoardId, link_ids: Vec<LinkId>) -> Result<(), StoreError> {
        self.send(WriteCmd::LinksRemoved { board, link_ids })
    }

    fn batch(&self, batch: ObservationBatch) -> Result<(), StoreError> {
        self.send(WriteCmd::Batch(batch))
    }

    fn stats(&self, board: BoardId, stats: BoardStats) -> Result<(), StoreError> {
        self.send(WriteCmd::Stats { board, stats })
    }

    fn tally(&self, run: RunId, tally: RunTally) -> Result<(), StoreError> {
        self.send(WriteCmd::Tally { run, tally })
    }

    fn disconnected(&self, board: BoardId, remote: String) -> Result<(), StoreError> {
        self.send(WriteCmd::Disconnected { board, remote })
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        self.send(WriteCmd::Flush(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
    }
}
