//! What ingest threads ask of the ClickHouse writer thread.

use crate::store::{
    BatchPart, BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId,
    RunTally,
};
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::sync::mpsc::SyncSender;

pub type Reply<T> = SyncSender<Result<T, String>>;

#[derive(Debug)]
pub enum WriteCmd {
    Batch(ObservationBatch),
    /// One part of a batch: kept once per (run, seq, part); the batch counts as stored once
    /// all its parts are.
    Part(ObservationBatch, BatchPart),
    Hello {
        hello: BoardHello,
        reply: Reply<BoardSession>,
    },
    Links {
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
        reply: Reply<Vec<(LinkKey, LinkId)>>,
    },
    LinksRemoved {
        board: BoardId,
        link_ids: Vec<LinkId>,
    },
    Stats {
        board: BoardId,
        stats: BoardStats,
    },
    Tally {
        run: RunId,
        tally: RunTally,
    },
    Disconnected {
        board: BoardId,
        remote: String,
    },
    /// Answered once everything sent before it is stored.
    Flush(SyncSender<()>),
}

impl WriteCmd {
    /// Observations it carries (1 for anything else): what a commit is sized by.
    pub fn weight(&self) -> usize {
        match self {
            WriteCmd::Batch(b) | WriteCmd::Part(b, _) => b.rows.len().max(1),
            _ => 1,
        }
    }

    /// The batch it carries, and which part of it, if it carries one.
    pub fn batch(&self) -> Option<(&ObservationBatch, Option<&BatchPart>)> {
        match self {
            WriteCmd::Batch(b) => Some((b, None)),
            WriteCmd::Part(b, p) => Some((b, Some(p))),
            _ => None,
        }
    }
}
