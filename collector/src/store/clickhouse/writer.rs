//! The writer thread: fed by a bounded channel from the ingest threads, it groups commands
//! into one commit per [`WriterConfig::max_rows`] observations or [`WriterConfig::max_delay`]
//! and stores a commit as one insert per shard (observations) and one per small table. Only
//! once every insert of a commit has returned are its replies sent and its batches' `committed`
//! watermarks raised: an agent's batch is acknowledged once ClickHouse holds it.
//!
//! A commit that fails because a server cannot be reached is held and tried again every
//! [`WriterConfig::retry_every`] (the channel fills, ingest blocks: back-pressure, as with
//! SQLite); one that a server refuses is dropped, and its batches' connections told.
//! Retrying is safe: every insert is idempotent as read (see [`super::schema`]).

use super::command::WriteCmd;
use super::cursor::{default_writer_no, CursorClock};
use super::row::{encode_batch, ObsRow, RowPlace};
use super::shards::{insert_rows, Shards};
use super::tables::{
    BatchRow, ClockStepRow, DisconnectRow, GaveUpRow, HelloRow, LinkRow, StatsRow, TallyRow,
};
use crate::store::name_ids::{board_id, link_id, run_id};
use crate::store::{BoardSession, LinkId, WriterStatus, COMMIT_FAILED};
use crate::time::now_ns;
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts an agent reports are kept at most this large (sums over runs stay far inside an
/// i64), as the SQLite backend keeps them.
const MAX_COUNT: u64 = 1 << 48;

/// A board's stats reports closer together than this refresh one row, as in SQLite.
const STATS_MIN_GAP_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub max_rows: usize,
    pub max_delay: Duration,
    pub retry_every: Duration,
    /// Drop the days of observations older than this (see [`super::retention`]).
    pub max_age_ns: Option<i64>,
    /// How often retention looks.
    pub retention_every: Duration,
    /// This writer's number (0..4096) in the cursors it hands out: writers given different
    /// numbers never hand out the same cursor.
    pub writer_no: u16,
    pub status: Arc<WriterStatus>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_rows: 100_000,
            max_delay: Duration::from_millis(50),
            retry_every: Duration::from_secs(1),
            max_age_ns: None,
            retention_every: Duration::from_secs(60),
            writer_no: default_writer_no(),
            status: Arc::default(),
        }
    }
}

/// Runs the writer until every sender is gone, storing the rest first.
pub fn run(shards: Shards, rx: Receiver<WriteCmd>, config: WriterConfig) {
    let mut w = Writer {
        cursor: CursorClock::new(config.writer_no),
        shards,
        board_run: HashMap::new(),
        stats_rows: HashMap::new(),
        links: HashMap::new(),
    };
    let status = Arc::clone(&config.status);
    struct Stopped(Arc<WriterStatus>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.set_stopped();
        }
    }
    let _stopped = Stopped(Arc::clone(&status));
    let mut cmds = Vec::new();
    let mut next_retention = Instant::now();
    loop {
        if let Some(max_age) = config
            .max_age_ns
            .filter(|_| Instant::now() >= next_retention)
        {
            next_retention = Instant::now() + config.retention_every;
            match super::retention::drop_expired(&w.shards, now_ns(), max_age) {
                Ok(0) => {}
                Ok(days) => log::info!("store: retention dropped {days} day partitions"),
                Err(e) => log::error!("store: retention failed: {e}"),
            }
        }
        let wait = config.retention_every.min(Duration::from_secs(1));
        let first = match rx.recv_timeout(wait) {
            Ok(cmd) => cmd,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        status.dequeued();
        let deadline = Instant::now() + config.max_delay;
        let mut rows = first.weight();
        cmds.push(first);
        while rows < config.max_rows {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(cmd) => {
                    status.dequeued();
                    rows += cmd.weight();
                    cmds.push(cmd);
                }
                Err(_) => break,
            }
        }
        w.commit(&mut cmds, &config);
    }
    w.commit(&mut cmds, &config);
}

/// What a commit sends back once it is stored.
enum Pending {
    Session(super::command::Reply<BoardSession>, BoardSession),
    Links(
        super::command::Reply<Vec<(LinkKey, LinkId)>>,
        Vec<(LinkKey, LinkId)>,
    ),
    Flush(SyncSender<()>),
    Committed(Arc<AtomicU64>, u64),
}

/// Everything one commit inserts.
#[derive(Default)]
struct Inserts {
    obs: Vec<Vec<ObsRow>>,
    batches: Vec<BatchRow>,
    hellos: Vec<HelloRow>,
    disconnects: Vec<DisconnectRow>,
    links: Vec<LinkRow>,
    tallies: Vec<TallyRow>,
    gave_up: Vec<GaveUpRow>,
    steps: Vec<ClockStepRow>,
    stats: Vec<StatsRow>,
}

struct Writer {
    shards: Shards,
    cursor: CursorClock,
    /// Each board's current agent run (its latest hello here): what its stats belong to.
    board_run: HashMap<i64, i64>,
    /// Each board's latest stats row: (row key, its time).
    stats_rows: HashMap<i64, (i64, i64)>,
    /// Each board's links as last written (their latest rows), loaded at hello.
    links: HashMap<i64, HashMap<i64, LinkRow>>,
}

/// Why a commit failed: a server out of reach (held and retried) or a refusal (dropped).
enum Failure {
    Unreachable(String),
    Refused(String),
}

fn classify(e: String) -> Failure {
    // The client's errors for a refused connection, a reset or a timeout say so; a server's
    // own refusal comes back as "bad response" with its exception text.
    if e.contains("bad response") {
        Failure::Refused(e)
    } else {
        Failure::Unreachable(e)
    }
}

impl Writer {
    fn commit(&mut self, cmds: &mut Vec<WriteCmd>, config: &WriterConfig) {
        if cmds.is_empty() {
            return;
        }
        let mut since: Option<Instant> = None;
        let mut last_loud: Option<Instant> = None;
        loop {
            let links_before = self.links.clone();
            let result = self
                .prepare(cmds)
                .and_then(|(inserts, pending)| self.insert(inserts).map(|()| pending));
            match result {
                Ok(pending) => {
                    config.status.set_problem(None);
                    if let Some(t) = since {
                        log::warn!(
                            "store: writes resumed after {:.1}s",
                            t.elapsed().as_secs_f64()
                        );
                    }
                    for p in pending {
                        match p {
                            Pending::Session(tx, s) => drop(tx.try_send(Ok(s))),
                            Pending::Links(tx, l) => drop(tx.try_send(Ok(l))),
                            Pending::Flush(tx) => drop(tx.try_send(())),
                            Pending::Committed(flag, v) => {
                                flag.fetch_max(v, Ordering::Release);
                            }
                        }
                    }
                    cmds.clear();
                    return;
                }
                Err(Failure::Refused(why)) => {
                    self.links = links_before;
                    crate::error_limited!(
                        "clickhouse-refused",
                        "store: ClickHouse refused a commit of {} commands: {why}; not \
                         acknowledged",
                        cmds.len()
                    );
                    fail(cmds, &why);
                    cmds.clear();
                    return;
                }
                Err(Failure::Unreachable(why)) => {
                    self.links = links_before;
                    config.status.set_problem(Some(why.clone()));
                    if last_loud.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        let held: usize = cmds.iter().map(WriteCmd::weight).sum();
                        log::error!(
                            "store: cannot write: {why}; holding {held} records, acknowledging \
                             nothing and retrying every {:?}",
                            config.retry_every
                        );
                        last_loud = Some(Instant::now());
                    }
                    since.get_or_insert_with(Instant::now);
                    std::thread::sleep(config.retry_every);
                }
            }
        }
    }

    /// The batches (parts) of `cmds` (run, seq, part) that are stored already.
    fn stored_batches(&self, cmds: &[WriteCmd]) -> Result<HashSet<(i64, u64, u16)>, Failure> {
        let mut list = String::new();
        for (b, part) in cmds.iter().filter_map(WriteCmd::batch) {
            if let (Some(run), Some(seq), false) = (b.run, b.seq, b.duplicate) {
                let sep = if list.is_empty() { "" } else { "," };
                let index = part.map_or(0, |p| p.index);
                let _ = write!(list, "{sep}({}, {seq}, {index})", run.raw());
            }
        }
        if list.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = format!(
            "SELECT run, seq, part FROM hopcap.batches WHERE (run, seq, part) IN ({list}) \
             GROUP BY run, seq, part"
        );
        let rows: Vec<(i64, u64, u16)> = self
            .shards
            .run(0, |c| async move { c.query(&sql).fetch_all().await })
            .map_err(classify)?;
        Ok(rows.into_iter().collect())
    }

    /// The last batch stored of `run` (by any writer), if any.
    fn last_seq(&self, run: i64) -> Result<Option<u64>, Failure> {
        let (n, max): (u64, u64) = self
            .shards
            .run(0, |c| async move {
                c.query("SELECT count(), max(seq) FROM hopcap.batches WHERE run = ?")
                    .bind(run)
                    .fetch_one()
                    .await
            })
            .map_err(classify)?;
        Ok((n > 0).then_some(max))
    }

    /// A board's links as last written (by any writer): the latest row of each.
    fn load_links(&self, board: i64) -> Result<HashMap<i64, LinkRow>, Failure> {
        let rows: Vec<LinkRow> = self
            .shards
            .run(0, |c| async move {
                c.query("SELECT ?fields FROM hopcap.links WHERE board = ? ORDER BY at_ns")
                    .bind(board)
                    .fetch_all()
                    .await
            })
            .map_err(classify)?;
        Ok(rows.into_iter().map(|r| (r.link, r)).collect())
    }

    fn prepare(&mut self, cmds: &[WriteCmd]) -> Result<(Inserts, Vec<Pending>), Failure> {
        let now = now_ns();
        let stored = self.stored_batches(cmds)?;
        let mut claimed: HashSet<(i64, u64, u16)> = HashSet::new();
        let mut ins = Inserts {
            obs: vec![Vec::new(); self.shards.len()],
            ..Inserts::default()
        };
        let mut pending = Vec::new();
        let shards = self.shards.len() as u64;
        for (i, cmd) in cmds.iter().enumerate() {
            // Each command its own instant: a clock step moves the rows stored before it,
            // those of the same commit included (as SQLite's transaction does).
            let now = now + i as i64;
            match cmd {
                WriteCmd::Batch(b) | WriteCmd::Part(b, _) => {
                    let part = cmd.batch().and_then(|(_, p)| p);
                    let index = part.map_or(0, |p| p.index);
                    let key = b.run.zip(b.seq).map(|(r, s)| (r.raw(), s, index));
                    let (new, acked) = match key {
                        Some(k) if !b.duplicate => {
                            (!stored.contains(&k) && claimed.insert(k), true)
                        }
                        Some(_) => (false, false),
                        None => (!b.duplicate, !b.duplicate),
                    };
                    if new {
                        let (first, step) = self.cursor.take(now, b.rows.len());
                        let (run, seq, _) = key.unwrap_or((0, (first >> 12) as u64, 0));
                        let place = RowPlace {
                            board: b.board.raw(),
                            run,
                            seq,
                            stored_ns: now,
                        };
                        let rows = encode_batch(place, &b.rows, &b.frames, 0);
                        for (i, mut row) in rows.into_iter().enumerate() {
                            row.cursor = first + i as i64 * step;
                            // A part's rows keep their place in the agent's batch.
                            if let Some(at) = part.and_then(|p| p.rows.get(i)) {
                                row.row = *at;
                            }
                            ins.obs[(row.fingerprint % shards) as usize].push(row);
                        }
                        ins.batches.push(BatchRow {
                            board: b.board.raw(),
                            run,
                            seq,
                            part: index,
                            parts: part.map_or(1, |p| p.of.max(1)),
                            records: b.rows.len() as u64,
                            lost_batches: b.lost_batches,
                            at_ns: now,
                        });
                    }
                    if let (Some(flag), Some(seq), true) = (&b.committed, b.seq, acked) {
                        let mark = seq.saturating_add(1).min(COMMIT_FAILED - 1);
                        pending.push(Pending::Committed(Arc::clone(flag), mark));
                    }
                }
                WriteCmd::Hello { hello, reply } => {
                    let board = board_id(&hello.name);
                    let run = run_id(&hello.name, &hello.boot_id);
                    let mut last_seq = self.last_seq(run.raw())?;
                    // Batches of this run earlier in this very commit.
                    for (r, s, _) in &claimed {
                        if *r == run.raw() && last_seq.is_none_or(|l| *s > l) {
                            last_seq = Some(*s);
                        }
                    }
                    let offset = hello.board_clock_ns.map(|b| now.saturating_sub(b));
                    ins.hellos.push(HelloRow {
                        board: board.raw(),
                        name: hello.name.clone(),
                        run: run.raw(),
                        boot_id: hello.boot_id.clone(),
                        agent_version: hello.agent_version.clone(),
                        capture: hello.capture.clone(),
                        remote: hello.remote.clone(),
                        at_ns: now,
                        clock_offset_ns: offset.unwrap_or(0),
                        has_offset: u8::from(offset.is_some()),
                    });
                    self.board_run.insert(board.raw(), run.raw());
                    let links = self.load_links(board.raw())?;
                    self.links.insert(board.raw(), links);
                    // A hello carries no links (they come in a full report after it).
                    let session = BoardSession {
                        board,
                        run,
                        last_seq,
                        links: Vec::new(),
                    };
                    pending.push(Pending::Session(reply.clone(), session));
                }
                WriteCmd::Links {
                    board,
                    links,
                    full_report,
                    reply,
                } => {
                    let known = self.links.entry(board.raw()).or_default();
                    let mut ids = Vec::with_capacity(links.len());
                    let mut listed = HashSet::new();
                    for (pos, l) in links.iter().enumerate() {
                        let id = link_id(*board, l);
                        listed.insert(id.raw());
                        ids.push((l.key, id));
                        let row = link_row(board.raw(), id.raw(), pos as u32, l, now);
                        known.insert(id.raw(), row.clone());
                        ins.links.push(row);
                    }
                    if *full_report {
                        for row in known.values_mut() {
                            if row.present == 1 && !listed.contains(&row.link) {
                                row.present = 0;
                                // Keeps its first report's time as its order: a link absent
                                // is written after, never before, its present rows.
                                ins.links.push(LinkRow {
                                    at_ns: now,
                                    ..row.clone()
                                });
                            }
                        }
                    }
                    pending.push(Pending::Links(reply.clone(), ids));
                }
                WriteCmd::LinksRemoved { board, link_ids } => {
                    let known = self.links.entry(board.raw()).or_default();
                    for id in link_ids {
                        if let Some(row) = known.get_mut(&id.raw()) {
                            row.present = 0;
                            row.at_ns = now;
                            ins.links.push(row.clone());
                        }
                    }
                }
                WriteCmd::Stats { board, stats } => {
                    let b = board.raw();
                    // Reports less than a second apart refresh the latest row (as SQLite).
                    let key = match self.stats_rows.get(&b) {
                        Some(&(key, ts)) if ts > now.saturating_sub(STATS_MIN_GAP_NS) => key,
                        _ => now,
                    };
                    let ts = self.stats_rows.get(&b).map_or(now, |&(_, ts)| ts.max(now));
                    self.stats_rows.insert(b, (key, ts));
                    let cap = MAX_COUNT;
                    ins.stats.push(StatsRow {
                        board: b,
                        run: self.board_run.get(&b).copied().unwrap_or(0),
                        row_key: key,
                        ts_ns: ts,
                        kernel_packets: stats.kernel_packets,
                        kernel_drops: stats.kernel_drops.min(cap),
                        queue_drops: stats.queue_drops.min(cap),
                        synced: stats.clock.synced.map_or(-1, i8::from),
                        max_error_us: stats.clock.max_error_us,
                    });
                }
                WriteCmd::Tally { run, tally } => {
                    let cap = MAX_COUNT;
                    let board = self
                        .board_run
                        .iter()
                        .find(|(_, r)| **r == run.raw())
                        .map_or(0, |(b, _)| *b);
                    ins.tallies.push(TallyRow {
                        run: run.raw(),
                        board,
                        batches: tally.batches.min(cap),
                        records: tally.records.min(cap),
                        at_ns: now,
                    });
                    for g in &tally.gave_up {
                        ins.gave_up.push(GaveUpRow {
                            run: run.raw(),
                            board,
                            first: g.first,
                            last: g.last,
                            records: g.records.min(cap),
                        });
                    }
                    for s in &tally.clock_steps {
                        ins.steps.push(ClockStepRow {
                            run: run.raw(),
                            board,
                            first_batch: s.first_batch,
                            delta_ns: s.delta_ns,
                            at_ns: s.at_ns,
                            stored_ns: now,
                        });
                    }
                }
                WriteCmd::Disconnected { board, remote } => {
                    ins.disconnects.push(DisconnectRow {
                        board: board.raw(),
                        remote: remote.clone(),
                        at_ns: now,
                    });
                }
                WriteCmd::Flush(tx) => pending.push(Pending::Flush(tx.clone())),
            }
        }
        Ok((ins, pending))
    }

    /// Inserts a commit: observations on their shards (at once), then the small tables; the
    /// batches' claims after their rows, so a claim never stands for rows not stored.
    fn insert(&self, ins: Inserts) -> Result<(), Failure> {
        let obs: Vec<std::sync::Mutex<Vec<ObsRow>>> =
            ins.obs.into_iter().map(std::sync::Mutex::new).collect();
        let results = self.shards.on_each(|i, c| {
            let rows = std::mem::take(&mut *obs[i].lock().unwrap_or_else(|e| e.into_inner()));
            async move { insert_rows(&c, "hopcap.observations_local", rows).await }
        });
        for r in results {
            r.map_err(classify)?;
        }
        self.small("hopcap.batches", ins.batches)?;
        self.small("hopcap.hellos", ins.hellos)?;
        self.small("hopcap.links", ins.links)?;
        self.small("hopcap.tallies", ins.tallies)?;
        self.small("hopcap.gave_up", ins.gave_up)?;
        self.small("hopcap.clock_steps", ins.steps)?;
        self.small("hopcap.stats", ins.stats)?;
        self.small("hopcap.disconnects", ins.disconnects)?;
        Ok(())
    }

    fn small<T>(&self, table: &'static str, rows: Vec<T>) -> Result<(), Failure>
    where
        T: clickhouse::Row + serde::Serialize + Send + Sync + 'static,
    {
        if rows.is_empty() {
            return Ok(());
        }
        self.shards
            .run(0, |c| async move { insert_rows(&c, table, rows).await })
            .map_err(classify)
    }
}

fn link_row(board: i64, link: i64, pos: u32, l: &LinkInfo, now: i64) -> LinkRow {
    let mut addrs = String::new();
    for a in &l.addrs {
        if !addrs.is_empty() {
            addrs.push(' ');
        }
        let _ = write!(addrs, "{}/{}", a.addr, a.prefix);
    }
    LinkRow {
        board,
        link,
        pos,
        netns: l.netns.to_string(),
        name: l.name.to_string(),
        ifindex: l.ifindex,
        kind: l.kind.name().to_string(),
        mac: l.mac.0.to_vec(),
        mtu: l.mtu,
        addrs,
        master: l.master.map_or(-1, i64::from),
        peer_ifindex: l.peer.as_ref().map_or(-1, |p| i64::from(p.ifindex)),
        peer_netns: l
            .peer
            .as_ref()
            .map(|p| p.netns.to_string())
            .unwrap_or_default(),
        up: u8::from(l.up),
        present: 1,
        at_ns: now,
    }
}

fn fail(cmds: &[WriteCmd], why: &str) {
    for cmd in cmds {
        match cmd {
            WriteCmd::Hello { reply, .. } => drop(reply.try_send(Err(why.to_string()))),
            WriteCmd::Links { reply, .. } => drop(reply.try_send(Err(why.to_string()))),
            WriteCmd::Flush(reply) => drop(reply.try_send(())),
            WriteCmd::Batch(b) | WriteCmd::Part(b, _) => {
                if let Some(flag) = &b.committed {
                    flag.fetch_or(COMMIT_FAILED, Ordering::Release);
                }
            }
            _ => {}
        }
    }
}
