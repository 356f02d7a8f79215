//! What ingest threads ask of the ClickHouse writer thread.

use crate::store::{
    BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId, RunTally,
};
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::sync::mpsc::SyncSender;

pub type Reply<T> = SyncSender<Result<T, String>>;

#[derive(Debug)]
pub enum WriteCmd {
    Batch(ObservationBatch),
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
            WriteCmd::Batch(b) => b.rows.len().max(1),
            _ => 1,
        }
    }
}
