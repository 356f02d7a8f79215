//! The running writer thread, and [`SqliteWriter`]: the [`StoreWriter`] that ingest
//! connections hold, a sender into the writer's bounded channel.

use super::command::{Reply, WriteCmd};
use super::writer::{self, WriterConfig};
use crate::store::{
    BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId, RunTally,
    StoreError, StoreWriter, WriterStatus,
};
use hopcap_proto::record::{LinkInfo, LinkKey};
use rusqlite::Connection;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The running writer thread and the sending end of its channel.
#[derive(Debug)]
pub struct WriterHandle {
    tx: SyncSender<WriteCmd>,
    join: JoinHandle<()>,
    status: Arc<WriterStatus>,
}

impl WriterHandle {
    /// Starts the writer on `conn`. `capacity` commands may wait in the channel before
    /// senders block.
    pub fn spawn(conn: Connection, config: WriterConfig, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(capacity);
        let status = Arc::clone(&config.status);
        status.set_capacity(capacity);
        let join = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, config))?;
        Ok(WriterHandle { tx, join, status })
    }

    /// The [`StoreWriter`] for ingest, feeding this writer.
    pub fn writer(&self) -> SqliteWriter {
        SqliteWriter {
            tx: self.tx.clone(),
            status: Arc::clone(&self.status),
        }
    }

    /// The writer's queue and health, as it publishes them.
    pub fn status(&self) -> Arc<WriterStatus> {
        Arc::clone(&self.status)
    }

    /// A raw sender of writer commands (tests and benchmarks drive the writer directly).
    pub fn sender(&self) -> SyncSender<WriteCmd> {
        self.tx.clone()
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        if self.sender().send(WriteCmd::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Drops this handle's sender and waits for the writer to commit and exit (it exits
    /// once every other sender is dropped too).
    pub fn finish(self) {
        let WriterHandle { tx, join, .. } = self;
        drop(tx);
        if join.join().is_err() {
            log::error!("store: the writer thread panicked");
        }
    }
}

/// A [`StoreWriter`] that sends each request to the writer thread; requests that need an
/// answer (ids) wait for the commit that makes it true.
#[derive(Debug)]
pub struct SqliteWriter {
    tx: SyncSender<WriteCmd>,
    status: Arc<WriterStatus>,
}

impl SqliteWriter {
    fn send(&self, cmd: WriteCmd) -> Result<(), StoreError> {
        // Counted before the send: a sender blocked on a full queue is waiting too.
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

impl StoreWriter for SqliteWriter {
    fn hello(&self, hello: BoardHello) -> Result<BoardSession, StoreError> {
        self.request(|reply| WriteCmd::Hello {
            hello,
            links: Vec::new(),
            reply,
        })
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
