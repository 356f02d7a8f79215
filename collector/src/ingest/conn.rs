//! One agent connection, on its own thread: a receive buffer parsed check-then-consume
//! (mini-redis style: whole frames only, the header judged before the body is awaited),
//! per-connection batch decoder and link table, acknowledgements once batches are committed.
//! A bad frame, a protocol error, a stalled or idle peer closes this connection only, with
//! the reason logged.

use super::ack::encode_ack;
use super::seq::{judge, Verdict};
use crate::store::boards::{BoardHello, BoardStats};
use crate::store::command::{BoardSession, ObservationBatch, Reply, WriteCmd};
use hopcap_proto::batch::BatchDecoder;
use hopcap_proto::frame::{FrameDecoder, FrameError, HEADER_LEN};
use hopcap_proto::message::{Hello, LinkStats, Links, Message, Stats};
use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind, Observation};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Duration,
    /// How often a blocked read wakes up to send acknowledgements and check for shutdown.
    pub poll: Duration,
    /// A write (acknowledgement) that makes no progress this long closes the connection.
    pub write_timeout: Duration,
    /// The largest frame body accepted.
    pub max_body: u32,
}

/// Why a connection ended.
#[derive(Debug)]
pub enum Close {
    /// The agent closed the stream after its last frame.
    Eof,
    /// The agent said goodbye.
    Bye,
    Frame(FrameError),
    Protocol(String),
    Io(std::io::Error),
    Idle(Duration),
    /// The collector is shutting down.
    Shutdown,
    /// The store's writer is gone.
    Writer,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Eof => write!(f, "closed by the agent"),
            Close::Bye => write!(f, "agent said bye"),
            Close::Frame(e) => write!(f, "bad frame: {e:?}"),
            Close::Protocol(what) => write!(f, "protocol error: {what}"),
            Close::Io(e) => write!(f, "I/O error: {e}"),
            Close::Idle(d) => write!(f, "nothing received for {}s", d.as_secs()),
            Close::Shutdown => write!(f, "collector shutting down"),
            Close::Writer => write!(f, "the store is gone"),
        }
    }
}

/// The connection's state between frames.
struct Agent {
    tx: SyncSender<WriteCmd>,
    peer: String,
    /// Set by hello.
    session: Option<Session>,
    /// Made at the first batch.
    batches: Option<Box<BatchDecoder>>,
    /// A link dump being received in chunks.
    dump: Vec<LinkInfo>,
    link_stats: HashMap<LinkKey, LinkStats>,
    /// Raised by the writer after each committed batch (seq + 1); 0 = none yet.
    committed: Arc<AtomicU64>,
    acked: u64,
    received_batches: u64,
}

struct Session {
    name: String,
    board: i64,
    last_seq: Option<u64>,
    links: HashMap<LinkKey, i64>,
}

fn request<T>(
    tx: &SyncSender<WriteCmd>,
    make: impl FnOnce(Reply<T>) -> WriteCmd,
) -> Result<T, Close> {
    let (reply, answer) = sync_channel(1);
    tx.send(make(reply)).map_err(|_| Close::Writer)?;
    answer
        .recv()
        .map_err(|_| Close::Writer)?
        .map_err(|e| Close::Protocol(format!("store refused: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hello's session (borrowing only that field, so the rest of the agent stays usable).
fn sess(session: &mut Option<Session>) -> Result<&mut Session, Close> {
    session
        .as_mut()
        .ok_or_else(|| Close::Protocol("a message before hello".into()))
}

impl Agent {
    fn session(&mut self) -> Result<&mut Session, Close> {
        sess(&mut self.session)
    }

    fn on_hello(&mut self, h: &Hello) -> Result<(), Close> {
        if self.session.is_some() {
            return Err(Close::Protocol("a second hello".into()));
        }
        if h.agent_id.is_empty() {
            return Err(Close::Protocol("hello with an empty agent id".into()));
        }
        let hello = BoardHello {
            name: h.agent_id.to_string(),
            // Batch sequence numbers restart with every agent run, so the run is part of the
            // identity that keeps `last_seq` (duplicate detection) valid.
            boot_id: format!("{}:{:x}", hex(&h.boot_id), h.run_id),
            agent_version: format!(
                "protocol {} capture {:?} snaplen {} sample 1/{}",
                h.version, h.capture, h.snaplen, h.sample
            ),
            remote: self.peer.clone(),
            board_clock_ns: i64::try_from(h.clock.realtime_ns).ok(),
        };
        let s: BoardSession = request(&self.tx, |reply| WriteCmd::Hello {
            hello,
            links: Vec::new(),
            reply,
        })?;
        log::info!(
            "{}: board {:?} connected (id {})",
            self.peer,
            h.agent_id.as_str(),
            s.board
        );
        self.session = Some(Session {
            name: h.agent_id.to_string(),
            board: s.board,
            last_seq: s.last_seq,
            links: HashMap::new(),
        });
        Ok(())
    }

    fn on_links(&mut self, l: &Links) -> Result<(), Close> {
        let board = self.session()?.board;
        if l.chunk >= l.count {
            return Err(Close::Protocol(format!(
                "links chunk {} of {}",
                l.chunk, l.count
            )));
        }
        if !l.replace {
            let links = l.links.to_vec();
            let ids = request(&self.tx, |reply| WriteCmd::Links {
                board,
                links,
                full_report: false,
                reply,
            })?;
            self.session()?.links.extend(ids);
            return Ok(());
        }
        if l.chunk == 0 {
            self.dump.clear();
        }
        self.dump.extend(l.links.iter().cloned());
        if l.chunk + 1 == l.count {
            let links = std::mem::take(&mut self.dump);
            let ids = request(&self.tx, |reply| WriteCmd::Links {
                board,
                links,
                full_report: true,
                reply,
            })?;
            self.session()?.links = ids.into_iter().collect();
        }
        Ok(())
    }

    /// The row id of link `key`, creating a placeholder for a key no link report named (the
    /// observation is kept; the link shows as `key<N>`).
    fn link_id(&mut self, key: LinkKey) -> Result<i64, Close> {
        let s = self.session()?;
        if let Some(id) = s.links.get(&key) {
            return Ok(*id);
        }
        let (board, name) = (s.board, s.name.clone());
        log::warn!(
            "{}: board {name:?} sent link key {key} before describing it",
            self.peer
        );
        let mut info = LinkInfo {
            key,
            netns: Default::default(),
            name: Default::default(),
            ifindex: 0,
            kind: LinkKind::Other,
            mac: Default::default(),
            mtu: 0,
            addrs: Default::default(),
            master: None,
            peer: None,
            up: true,
        };
        let _ = info.name.push_str(&format!("key{key}"));
        let ids = request(&self.tx, |reply| WriteCmd::Links {
            board,
            links: vec![info],
            full_report: false,
            reply,
        })?;
        let id = ids.first().map(|(_, id)| *id).ok_or(Close::Writer)?;
        self.session()?.links.insert(key, id);
        Ok(id)
    }

    fn on_batch(&mut self, bytes: &[u8]) -> Result<(), Close> {
        let board = self.session()?.board;
        self.received_batches += 1;
        let mut decoded: Vec<Observation> = Vec::new();
        let decoder = self
            .batches
            .get_or_insert_with(|| Box::new(BatchDecoder::new()));
        let result = decoder.decode(bytes, |obs| decoded.push(obs));
        let mut rows = Vec::with_capacity(decoded.len());
        for obs in decoded {
            rows.push((self.link_id(obs.link)?, obs));
        }
        let batch = match result {
            Ok(info) => {
                let seq = info.header.seq;
                let s = sess(&mut self.session)?;
                let verdict = judge(s.last_seq, seq);
                if let Verdict::New { .. } = verdict {
                    s.last_seq = Some(seq);
                }
                let (lost, duplicate) = match verdict {
                    Verdict::New { lost } => (lost, false),
                    Verdict::Duplicate => (0, true),
                };
                if lost > 0 {
                    log::warn!(
                        "{}: board {:?} lost {lost} batches before #{seq}",
                        self.peer,
                        s.name
                    );
                }
                ObservationBatch {
                    board,
                    seq: Some(seq),
                    lost_batches: lost,
                    duplicate,
                    rows,
                    committed: Some(Arc::clone(&self.committed)),
                }
            }
            Err(e) => {
                // Keep what decoded; the rest of this batch is lost. The decoder waits for the
                // agent's next self-contained batch.
                log::warn!(
                    "{}: undecodable batch ({} records kept): {e:?}",
                    self.peer,
                    rows.len()
                );
                ObservationBatch {
                    board,
                    seq: None,
                    lost_batches: 1,
                    duplicate: false,
                    rows,
                    committed: None,
                }
            }
        };
        self.tx
            .send(WriteCmd::Batch(batch))
            .map_err(|_| Close::Writer)
    }

    fn on_stats(&mut self, st: &Stats) -> Result<(), Close> {
        let board = self.session()?.board;
        for l in &st.links {
            self.link_stats.insert(l.key, *l);
        }
        let stats = BoardStats {
            kernel_packets: self.link_stats.values().map(|l| l.packets).sum(),
            kernel_drops: st.kernel_drops
                + self
                    .link_stats
                    .values()
                    .map(|l| l.kernel_drops)
                    .sum::<u64>(),
            queue_drops: st.queue_drops,
        };
        self.tx
            .send(WriteCmd::Stats { board, stats })
            .map_err(|_| Close::Writer)
    }

    fn on_message(&mut self, msg: &Message<'_>) -> Result<(), Close> {
        if self.session.is_none() && !matches!(msg, Message::Hello(_)) {
            return Err(Close::Protocol(format!(
                "{:?} before hello",
                msg.message_type()
            )));
        }
        match msg {
            Message::Hello(h) => self.on_hello(h),
            Message::Links(l) => self.on_links(l),
            Message::LinkRemoved(r) => {
                let board = self.session()?.board;
                if let Some(id) = self.session()?.links.remove(&r.key) {
                    let cmd = WriteCmd::LinksRemoved {
                        board,
                        link_ids: vec![id],
                    };
                    self.tx.send(cmd).map_err(|_| Close::Writer)?;
                }
                Ok(())
            }
            Message::Batch(bytes) => self.on_batch(bytes),
            Message::Stats(st) => self.on_stats(st),
            Message::Ack(_) => Err(Close::Protocol("an ack from an agent".into())),
            Message::Bye(b) => {
                let s = sess(&mut self.session)?;
                log::info!(
                    "{}: board {:?} says bye after {} batches (received {})",
                    self.peer,
                    s.name,
                    b.batches_sent,
                    self.received_batches
                );
                Err(Close::Bye)
            }
        }
    }

    /// Sends an acknowledgement if the writer committed more since the last one.
    fn acknowledge(&mut self, stream: &mut TcpStream) -> Result<(), Close> {
        let committed = self.committed.load(Ordering::Acquire);
        if committed > self.acked {
            stream
                .write_all(&encode_ack(committed - 1))
                .map_err(Close::Io)?;
            self.acked = committed;
        }
        Ok(())
    }

    /// Waits (briefly) for everything sent to be committed, then acknowledges it.
    fn final_ack(&mut self, stream: &mut TcpStream) {
        let (done, wait) = sync_channel(1);
        if self.tx.send(WriteCmd::Flush(done)).is_ok()
            && wait.recv_timeout(Duration::from_secs(5)).is_ok()
        {
            let _ = self.acknowledge(stream);
        }
    }
}

/// Serves one agent until it goes away; returns why it ended.
pub fn serve_agent(
    mut stream: TcpStream,
    tx: SyncSender<WriteCmd>,
    cfg: &ConnConfig,
    stop: &AtomicBool,
) -> Close {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut agent = Agent {
        tx,
        peer,
        session: None,
        batches: None,
        dump: Vec::new(),
        link_stats: HashMap::new(),
        committed: Arc::new(AtomicU64::new(0)),
        acked: 0,
        received_batches: 0,
    };
    let why = read_loop(&mut agent, &mut stream, cfg, stop);
    if matches!(why, Close::Bye | Close::Eof | Close::Shutdown) {
        agent.final_ack(&mut stream);
    }
    match &why {
        Close::Bye | Close::Eof | Close::Shutdown => log::info!("{}: {why}", agent.peer),
        _ => log::warn!("{}: closing: {why}", agent.peer),
    }
    if let Some(s) = &agent.session {
        let _ = agent.tx.send(WriteCmd::Disconnected { board: s.board });
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    why
}

fn read_loop(
    agent: &mut Agent,
    stream: &mut TcpStream,
    cfg: &ConnConfig,
    stop: &AtomicBool,
) -> Close {
    if let Err(e) = stream
        .set_read_timeout(Some(cfg.poll))
        .and_then(|()| stream.set_write_timeout(Some(cfg.write_timeout)))
        .and_then(|()| stream.set_nodelay(true))
    {
        return Close::Io(e);
    }
    let mut frames = FrameDecoder::new(cfg.max_body);
    let max_buf = HEADER_LEN + cfg.max_body as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_data = Instant::now();
    loop {
        // Every complete frame in the buffer, then drop the consumed bytes at once.
        let mut start = 0;
        loop {
            match frames.decode(&buf[start..]) {
                Ok(Some((frame, used))) => {
                    if let Err(why) = agent.on_message(&frame.message) {
                        return why;
                    }
                    start += used;
                }
                Ok(None) => break,
                Err(e) => return Close::Frame(e),
            }
        }
        buf.drain(..start);
        if let Err(why) = agent.acknowledge(stream) {
            return why;
        }
        if stop.load(Ordering::Relaxed) {
            return Close::Shutdown;
        }
        // Read more; the frame decoder bounds a frame, so the buffer stays under max_buf.
        let old = buf.len();
        let room = (max_buf - old.min(max_buf)).clamp(1, 64 * 1024);
        buf.resize(old + room, 0);
        match stream.read(&mut buf[old..]) {
            Ok(0) => {
                buf.truncate(old);
                return match frames.finish(&buf) {
                    Ok(()) => Close::Eof,
                    Err(e) => Close::Frame(e),
                };
            }
            Ok(n) => {
                buf.truncate(old + n);
                last_data = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                buf.truncate(old);
                if last_data.elapsed() >= cfg.idle_timeout {
                    return Close::Idle(cfg.idle_timeout);
                }
            }
            Err(e) => return Close::Io(e),
        }
    }
}
