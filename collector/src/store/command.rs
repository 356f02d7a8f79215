//! What ingest threads ask of the writer, and how one transaction applies it.

use super::boards::{self, BoardHello, BoardStats};
use super::writer::{insert_observations, now_ns};
use hopcap_proto::record::{LinkInfo, LinkKey, Observation};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// Observations of one received batch, their links already resolved to `links.id`.
#[derive(Debug, Clone, Default)]
pub struct ObservationBatch {
    pub board: i64,
    /// The batch's sequence number (kept as the board's `last_seq`).
    pub seq: Option<u64>,
    /// Batches found missing (sequence gap) just before this one.
    pub lost_batches: u64,
    /// A batch already stored (sent again after a reconnect): nothing is written, but its
    /// acknowledgement still waits for the commit of everything before it.
    pub duplicate: bool,
    /// (links.id, observation)
    pub rows: Vec<(i64, Observation)>,
    /// Raised to `seq + 1` once the batch is committed: the connection acknowledges it then.
    pub committed: Option<Arc<AtomicU64>>,
}

/// The answer to a hello: the board's id and its link keys' row ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSession {
    pub board: i64,
    /// The last batch sequence number stored from this boot of the board.
    pub last_seq: Option<u64>,
    pub links: Vec<(LinkKey, i64)>,
}

pub type Reply<T> = SyncSender<Result<T, String>>;

/// What ingest threads ask of the writer.
#[derive(Debug)]
pub enum WriteCmd {
    Batch(ObservationBatch),
    Hello {
        hello: BoardHello,
        links: Vec<LinkInfo>,
        reply: Reply<BoardSession>,
    },
    /// Links added or changed (`full_report`: the whole table, others are gone).
    Links {
        board: i64,
        links: Vec<LinkInfo>,
        full_report: bool,
        reply: Reply<Vec<(LinkKey, i64)>>,
    },
    LinksRemoved {
        board: i64,
        link_ids: Vec<i64>,
    },
    Stats {
        board: i64,
        stats: BoardStats,
    },
    /// A connection ended; `remote` names it, so the end of an old connection does not mark
    /// a board disconnected that has already connected again.
    Disconnected {
        board: i64,
        remote: String,
    },
    /// Answered once everything sent before it is committed.
    Flush(SyncSender<()>),
}

/// Replies to send only once the transaction is committed.
pub(super) enum Pending {
    Session(Reply<BoardSession>, BoardSession),
    Links(Reply<Vec<(LinkKey, i64)>>, Vec<(LinkKey, i64)>),
    Flush(SyncSender<()>),
    Committed(Arc<AtomicU64>, u64),
}

/// Applies the commands in one transaction. Hello/links answers are returned, not sent, so a
/// rolled-back transaction never hands out a row id that does not exist.
pub(super) fn apply(conn: &mut Connection, cmds: &[WriteCmd]) -> rusqlite::Result<Vec<Pending>> {
    let now = now_ns();
    let tx = conn.transaction()?;
    let mut pending = Vec::new();
    for cmd in cmds {
        match cmd {
            WriteCmd::Batch(b) => {
                if !b.duplicate {
                    insert_observations(&tx, b.board, &b.rows)?;
                    boards::count_batch(&tx, b.board, b.seq, b.rows.len(), b.lost_batches, now)?;
                }
                if let (Some(flag), Some(seq)) = (&b.committed, b.seq) {
                    pending.push(Pending::Committed(Arc::clone(flag), seq + 1));
                }
            }
            WriteCmd::Hello {
                hello,
                links,
                reply,
            } => {
                let state = boards::upsert_board(&tx, hello, now)?;
                let links = boards::upsert_links(&tx, state.id, links, true, now)?;
                let session = BoardSession {
                    board: state.id,
                    last_seq: state.last_seq,
                    links,
                };
                pending.push(Pending::Session(reply.clone(), session));
            }
            WriteCmd::Links {
                board,
                links,
                full_report,
                reply,
            } => {
                let ids = boards::upsert_links(&tx, *board, links, *full_report, now)?;
                pending.push(Pending::Links(reply.clone(), ids));
            }
            WriteCmd::LinksRemoved { board: _, link_ids } => {
                boards::remove_links(&tx, link_ids, now)?
            }
            WriteCmd::Stats { board, stats } => boards::insert_stats(&tx, *board, stats, now)?,
            WriteCmd::Disconnected { board, remote } => {
                boards::set_disconnected(&tx, *board, remote, now)?
            }
            WriteCmd::Flush(reply) => pending.push(Pending::Flush(reply.clone())),
        }
    }
    tx.commit()?;
    Ok(pending)
}

pub(super) fn fail_replies(cmds: &[WriteCmd], err: &str) {
    for cmd in cmds {
        match cmd {
            WriteCmd::Hello { reply, .. } => drop(reply.try_send(Err(err.to_string()))),
            WriteCmd::Links { reply, .. } => drop(reply.try_send(Err(err.to_string()))),
            WriteCmd::Flush(reply) => drop(reply.try_send(())),
            _ => {}
        }
    }
}

impl Pending {
    /// Delivers the answer (the transaction is committed).
    pub(super) fn send(self) {
        match self {
            Pending::Session(tx, s) => drop(tx.try_send(Ok(s))),
            Pending::Links(tx, l) => drop(tx.try_send(Ok(l))),
            Pending::Flush(tx) => drop(tx.try_send(())),
            Pending::Committed(flag, v) => drop(flag.fetch_max(v, Ordering::Release)),
        }
    }
}
