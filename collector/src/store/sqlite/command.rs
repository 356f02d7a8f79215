//! What ingest threads ask of the writer, and how one transaction applies it.

use super::boards;
use super::clock;
use super::writer::insert_observations_with_frames;
use crate::store::{
    BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId, RunTally,
    COMMIT_FAILED,
};
use crate::time::now_ns;
use hopcap_proto::record::{LinkInfo, LinkKey};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

pub type Reply<T> = SyncSender<Result<T, String>>;

/// Link ids as the writer hands them out.
type LinkIds = Vec<(LinkKey, LinkId)>;

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
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
        reply: Reply<LinkIds>,
    },
    LinksRemoved {
        board: BoardId,
        link_ids: Vec<LinkId>,
    },
    Stats {
        board: BoardId,
        stats: BoardStats,
    },
    /// An agent run's delivery ledger.
    Tally {
        run: RunId,
        tally: RunTally,
    },
    /// A connection ended; `remote` names it, so the end of an old connection does not mark
    /// a board disconnected that has already connected again.
    Disconnected {
        board: BoardId,
        remote: String,
    },
    /// Answered once everything sent before it is committed.
    Flush(SyncSender<()>),
}

/// Replies to send only once the transaction is committed.
pub(super) enum Pending {
    Session(Reply<BoardSession>, BoardSession),
    Links(Reply<LinkIds>, LinkIds),
    /// A request refused (not an error of the database): answered with the reason.
    Refused(Reply<LinkIds>, String),
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
                // A batch of a known run and sequence number is written once, whoever sent it.
                // `stored`: it is in the store once this commits, written now or earlier by
                // the same run (its row in `run_batches`); only then is it acknowledged.
                let (new, stored) = match (b.run, b.seq) {
                    (Some(run), Some(seq)) if !b.duplicate => (
                        boards::claim_batch(&tx, run.raw(), seq, b.rows.len())?,
                        true,
                    ),
                    (Some(_), Some(_)) => (false, false),
                    _ => (!b.duplicate, !b.duplicate),
                };
                if new {
                    let board = b.board.raw();
                    insert_observations_with_frames(&tx, board, &b.rows, &b.frames)?;
                    if let (Some(run), Some(seq)) = (b.run, b.seq) {
                        clock::note_batch_rows(&tx, run.raw(), seq, b.rows.len())?;
                    }
                    boards::count_batch(&tx, board, b.seq, b.rows.len(), b.lost_batches, now)?;
                }
                if let (Some(flag), Some(seq), true) = (&b.committed, b.seq, stored) {
                    let mark = seq.saturating_add(1).min(COMMIT_FAILED - 1);
                    pending.push(Pending::Committed(Arc::clone(flag), mark));
                }
            }
            WriteCmd::Hello {
                hello,
                links,
                reply,
            } => {
                let state = boards::upsert_board(&tx, hello, now)?;
                let run = boards::upsert_run(&tx, state.id, &hello.boot_id, now)?;
                let links = link_ids(boards::upsert_links(&tx, state.id, links, true, now)?);
                let session = BoardSession {
                    board: BoardId::from_raw(state.id),
                    run: RunId::from_raw(run),
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
            } => match boards::links_room(&tx, board.raw(), links)? {
                Ok(()) => {
                    let ids = boards::upsert_links(&tx, board.raw(), links, *full_report, now)?;
                    pending.push(Pending::Links(reply.clone(), link_ids(ids)));
                }
                Err(why) => pending.push(Pending::Refused(reply.clone(), why)),
            },
            WriteCmd::LinksRemoved { board: _, link_ids } => {
                let ids: Vec<i64> = link_ids.iter().map(|l| l.raw()).collect();
                boards::remove_links(&tx, &ids, now)?
            }
            WriteCmd::Stats { board, stats } => {
                boards::insert_stats(&tx, board.raw(), stats, now)?;
                clock::set_sync(&tx, board.raw(), &stats.clock)?;
            }
            WriteCmd::Tally { run, tally } => {
                boards::record_tally(&tx, run.raw(), tally)?;
                let moved = clock::record_steps(&tx, run.raw(), &tally.clock_steps)?;
                if moved > 0 {
                    log::info!("clock step: {moved} observations moved onto the board's new clock");
                }
            }
            WriteCmd::Disconnected { board, remote } => {
                boards::set_disconnected(&tx, board.raw(), remote, now)?
            }
            WriteCmd::Flush(reply) => pending.push(Pending::Flush(reply.clone())),
        }
    }
    tx.commit()?;
    Ok(pending)
}

fn link_ids(rows: Vec<(LinkKey, i64)>) -> LinkIds {
    rows.into_iter()
        .map(|(key, id)| (key, LinkId::from_raw(id)))
        .collect()
}

pub(super) fn fail_replies(cmds: &[WriteCmd], err: &str) {
    for cmd in cmds {
        match cmd {
            WriteCmd::Hello { reply, .. } => drop(reply.try_send(Err(err.to_string()))),
            WriteCmd::Links { reply, .. } => drop(reply.try_send(Err(err.to_string()))),
            WriteCmd::Flush(reply) => drop(reply.try_send(())),
            WriteCmd::Batch(b) => {
                if let Some(flag) = &b.committed {
                    flag.fetch_or(COMMIT_FAILED, Ordering::Release);
                }
            }
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
            Pending::Refused(tx, why) => drop(tx.try_send(Err(why))),
            Pending::Flush(tx) => drop(tx.try_send(())),
            Pending::Committed(flag, v) => drop(flag.fetch_max(v, Ordering::Release)),
        }
    }
}
