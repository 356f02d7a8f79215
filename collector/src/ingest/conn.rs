//! One agent connection, on its own thread: a receive buffer parsed check-then-consume
//! (mini-redis style: whole frames only, the header judged before the body is awaited),
//! handed to the connection's [`Agent`] state; acknowledgements once batches are committed.
//! A bad frame, a protocol error, a stalled or idle peer closes this connection only, with
//! the reason logged. The receive buffer's memory is had from the collector-wide
//! [`Budget`] before it grows: when the budget is spent, the socket is not read.

use super::agent::Agent;
use super::budget::{Budget, Permit};
pub use super::close::{Close, ProtocolError};
use super::stats::IngestStats;
use super::transport::Duplex;
use crate::store::StoreWriter;
use hopcap_proto::frame::{parse_header, FrameDecoder, HEADER_LEN};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// A frame must arrive whole within this long of its first byte (time spent waiting for
    /// the memory budget not counted): a peer trickling a frame byte by byte is closed.
    pub frame_deadline: Duration,
    /// The hello must arrive whole within this long of the connection.
    pub hello_deadline: Duration,
}

/// Bytes read at once, at most, and the buffer an idle connection keeps.
const READ_CHUNK: usize = 64 * 1024;
const IDLE_BUFFER: usize = 16 * 1024;

/// Serves one agent until it goes away; returns why it ended.
pub fn serve_agent(
    mut stream: Box<dyn Duplex>,
    peer: String,
    store: Arc<dyn StoreWriter>,
    cfg: &ConnConfig,
    budget: &Budget,
    stats: &Arc<IngestStats>,
    stop: &AtomicBool,
) -> Close {
    let mut agent = Agent::new(store, peer, budget.clone(), Arc::clone(stats));
    let why = read_loop(&mut agent, stream.as_mut(), cfg, budget, stop);
    if matches!(why, Close::Bye | Close::Eof | Close::Shutdown) {
        agent.final_ack(stream.as_mut());
    }
    match &why {
        Close::Bye | Close::Eof | Close::Shutdown => log::info!("{}: {why}", agent.peer),
        Close::Frame(_) => crate::warn_limited!("close-frame", "{}: closing: {why}", agent.peer),
        Close::Protocol(_) => {
            crate::warn_limited!("close-protocol", "{}: closing: {why}", agent.peer)
        }
        Close::Deadline { .. } | Close::Idle(_) => {
            crate::warn_limited!("close-slow", "{}: closing: {why}", agent.peer)
        }
        Close::Io(e) => {
            crate::warn_limited!(super::noise::log_cause(e), "{}: closing: {why}", agent.peer)
        }
        _ => log::warn!("{}: closing: {why}", agent.peer),
    }
    if let Some(s) = &agent.session {
        let _ = agent.store.disconnected(s.board, agent.peer.clone());
    }
    stream.shutdown();
    why
}

/// The largest body of a message other than a batch: a hello, a links chunk
/// (`LINKS_PER_CHUNK` links), stats, a tally or a bye are all far smaller.
pub const MAX_SMALL_BODY: u32 = 32 * 1024;

/// Judges the header at the start of `buf` as soon as it is here, before its body is waited
/// for: before the hello only a hello may come, and only a batch may be large.
fn check_header(buf: &[u8], has_session: bool) -> Result<(), Close> {
    use hopcap_proto::frame::FrameError;
    use hopcap_proto::message::MessageType;
    let Ok(Some(h)) = parse_header(buf) else {
        return Ok(()); // incomplete, or an error the decoder reports
    };
    if !has_session && h.message_type != MessageType::Hello {
        return Err(Close::Protocol(ProtocolError::BeforeHello(h.message_type)));
    }
    if h.message_type != MessageType::Batch && h.body_len > MAX_SMALL_BODY {
        return Err(Close::Frame(FrameError::TooLarge {
            body_len: h.body_len,
            max: MAX_SMALL_BODY,
        }));
    }
    Ok(())
}

/// Bytes still missing of the frame that starts `buf` (0 if unknown: header incomplete).
fn missing(buf: &[u8]) -> usize {
    match parse_header(buf) {
        Ok(Some(h)) => (HEADER_LEN + h.body_len as usize).saturating_sub(buf.len()),
        _ => HEADER_LEN.saturating_sub(buf.len()),
    }
}

fn read_loop(
    agent: &mut Agent,
    stream: &mut dyn Duplex,
    cfg: &ConnConfig,
    budget: &Budget,
    stop: &AtomicBool,
) -> Close {
    if let Err(e) = stream.set_timeouts(cfg.poll, cfg.write_timeout) {
        return Close::Io(e);
    }
    let mut frames = FrameDecoder::new(cfg.max_body);
    let max_buf = HEADER_LEN + cfg.max_body as usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut hold = Permit::empty(&budget.frames);
    let connected = Instant::now();
    let mut last_data = Instant::now();
    // When the first byte of the frame now in the buffer arrived (shifted by budget waits).
    let mut frame_started: Option<Instant> = None;
    loop {
        // Every complete frame in the buffer, then drop the consumed bytes at once.
        let mut start = 0;
        loop {
            match frames.decode(&buf[start..]) {
                Ok(Some((frame, used))) => {
                    if let Err(why) = agent.on_message(&frame.message, stop) {
                        return why;
                    }
                    start += used;
                }
                Ok(None) => break,
                Err(e) => return Close::Frame(e),
            }
        }
        if start > 0 {
            buf.drain(..start);
            frame_started = (!buf.is_empty()).then(Instant::now);
            if buf.capacity() > IDLE_BUFFER.max(buf.len() * 2) {
                buf.shrink_to(IDLE_BUFFER.max(buf.len()));
                hold.resize(buf.capacity(), stop, cfg.poll);
            }
        }
        if let Err(why) = check_header(&buf, agent.session.is_some()) {
            return why;
        }
        if let Err(why) = agent.acknowledge(stream) {
            return why;
        }
        if stop.load(Ordering::Relaxed) {
            return Close::Shutdown;
        }
        if agent.session.is_none() && connected.elapsed() >= cfg.hello_deadline {
            return Close::Deadline {
                what: "hello",
                limit: cfg.hello_deadline,
            };
        }
        if frame_started.is_some_and(|t| t.elapsed() >= cfg.frame_deadline) {
            return Close::Deadline {
                what: "frame",
                limit: cfg.frame_deadline,
            };
        }
        // Read more: what the frame in the buffer still misses, at least IDLE_BUFFER, at most
        // READ_CHUNK; the frame decoder bounds a frame, so the buffer stays under max_buf.
        let old = buf.len();
        let room = missing(&buf)
            .clamp(IDLE_BUFFER.saturating_sub(old).max(1), READ_CHUNK)
            .min(max_buf.saturating_sub(old))
            .max(1);
        if old + room > buf.capacity() {
            let waited = Instant::now();
            if !hold.resize(old + room, stop, cfg.poll) {
                return Close::Shutdown;
            }
            if let Some(t) = frame_started.as_mut() {
                *t += waited.elapsed();
            }
            buf.reserve_exact(room);
            hold.resize(buf.capacity(), stop, cfg.poll);
        }
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
                frame_started.get_or_insert(last_data);
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
