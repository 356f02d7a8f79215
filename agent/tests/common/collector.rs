//! A stand-in collector: accepts one agent connection, decodes its frames and batches with
//! hopcap-proto, acknowledges every batch, and hands back what it received when the agent
//! hangs up.

use super::bed::Bed;
use hopcap_proto::batch::BatchDecoder;
use hopcap_proto::frame::{encode, FrameDecoder, DEFAULT_MAX_FRAME};
use hopcap_proto::message::{Ack, Hello, Message, MessageType};
use hopcap_proto::record::{LinkKey, Observation};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Received {
    /// Message types in arrival order.
    pub messages: Vec<MessageType>,
    pub hello: Option<Hello>,
    /// Link key → (netns label, name), from the Links messages.
    pub links: HashMap<LinkKey, (String, String)>,
    pub observations: Vec<Observation>,
    pub batches: u64,
}

/// Listens on `addr` inside the role's namespace; the thread ends when the agent closes.
pub fn listen(bed: &Bed, role: &str, addr: &str) -> JoinHandle<Received> {
    let addr = addr.to_string();
    let listener = bed.in_ns(role, move || TcpListener::bind(&addr).expect("listen"));
    std::thread::spawn(move || serve(listener))
}

fn serve(listener: TcpListener) -> Received {
    listener.set_nonblocking(true).expect("nonblocking");
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < give_up, "no agent connected");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut got = Received::default();
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut batches = Box::new(BatchDecoder::new());
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut ack = [0u8; 64];
    loop {
        let n = conn.read(&mut chunk).expect("read from the agent");
        if n == 0 {
            frames.finish(&buf).expect("the stream ends between frames");
            return got;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some((frame, used)) = frames.decode(&buf).expect("a valid frame") {
            got.messages.push(frame.message.message_type());
            match frame.message {
                Message::Hello(h) => got.hello = Some(h),
                Message::Links(l) => {
                    for link in &l.links {
                        let names = (link.netns.to_string(), link.name.to_string());
                        got.links.insert(link.key, names);
                    }
                }
                Message::Batch(body) => {
                    let info = batches
                        .decode(body, |o| got.observations.push(o))
                        .expect("a valid batch");
                    got.batches += 1;
                    let seq = info.header.seq;
                    let len = encode(&Message::Ack(Ack { seq }), &mut ack).expect("ack");
                    conn.write_all(&ack[..len]).expect("ack to the agent");
                }
                _ => {}
            }
            buf.drain(..used);
        }
    }
}
