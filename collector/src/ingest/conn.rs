//! One agent connection, on its own thread: a receive buffer parsed check-then-consume
//! (mini-redis style: whole frames only, the header judged before the body is awaited),
//! handed to the connection's [`Agent`] state; acknowledgements once batches are committed.
//! A bad frame, a protocol error, a stalled or idle peer closes this connection only, with
//! the reason logged.

use super::agent::Agent;
pub use super::close::{Close, ProtocolError};
use super::transport::Duplex;
use crate::store::StoreWriter;
use hopcap_proto::frame::{FrameDecoder, HEADER_LEN};
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
}

/// Serves one agent until it goes away; returns why it ended.
pub fn serve_agent(
    mut stream: Box<dyn Duplex>,
    peer: String,
    store: Arc<dyn StoreWriter>,
    cfg: &ConnConfig,
    stop: &AtomicBool,
) -> Close {
    let mut agent = Agent::new(store, peer);
    let why = read_loop(&mut agent, stream.as_mut(), cfg, stop);
    if matches!(why, Close::Bye | Close::Eof | Close::Shutdown) {
        agent.final_ack(stream.as_mut());
    }
    match &why {
        Close::Bye | Close::Eof | Close::Shutdown => log::info!("{}: {why}", agent.peer),
        _ => log::warn!("{}: closing: {why}", agent.peer),
    }
    if let Some(s) = &agent.session {
        let _ = agent.store.disconnected(s.board, agent.peer.clone());
    }
    stream.shutdown();
    why
}

fn read_loop(
    agent: &mut Agent,
    stream: &mut dyn Duplex,
    cfg: &ConnConfig,
    stop: &AtomicBool,
) -> Close {
    if let Err(e) = stream.set_timeouts(cfg.poll, cfg.write_timeout) {
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
