//! A fake agent's side of the wire, for the tests that talk to the collector frame by frame
//! (ingest, hostile, noise): frames of each message, and reading the collector's replies.

#![allow(dead_code)] // not every test binary uses every helper

use hopcap_proto::frame::{encode, parse_ack, HEADER_LEN};
use hopcap_proto::message::{
    CaptureMode, ClockInfo, Hello, LinkStats, Links, Message, Stats, LINKS_PER_CHUNK,
    PROTOCOL_VERSION,
};
use hopcap_proto::record::LinkInfo;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// 2026-11-26T12:00:00Z, the agents' clock at hello.
pub const T0: u64 = 1_795_694_400_000_000_000;

pub fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + 80_000];
    let n = encode(msg, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The hello of run `run_id` of agent `name`, speaking protocol `version`.
pub fn hello_v(name: &str, run_id: u64, version: u16) -> Vec<u8> {
    frame(&Message::Hello(Hello {
        version,
        agent_id: heapless::String::try_from(name).unwrap(),
        boot_id: [7; 16],
        run_id,
        clock: ClockInfo {
            realtime_ns: T0,
            monotonic_ns: 1,
            debug_offset_ns: 0,
        },
        capture: CaptureMode::Ring,
        snaplen: 128,
        sample: 1,
        agent_version: heapless::String::try_from("0.1.0").unwrap(),
    }))
}

/// Run 1 of agent `name`.
pub fn hello(name: &str) -> Vec<u8> {
    hello_v(name, 1, PROTOCOL_VERSION)
}

/// `all` as link messages: a full dump in chunks (`replace`), or additions.
pub fn links_of(all: &[LinkInfo], replace: bool) -> Vec<u8> {
    let chunks: Vec<&[LinkInfo]> = all.chunks(LINKS_PER_CHUNK).collect();
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        out.extend(frame(&Message::Links(Links {
            chunk: if replace { i as u16 } else { 0 },
            count: if replace { chunks.len() as u16 } else { 1 },
            replace,
            links: heapless::Vec::from_slice(c).unwrap(),
        })));
    }
    out
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// True when the collector closed the connection (EOF or reset) within the read timeout;
/// the acks read meanwhile go to `acks`.
pub fn closed_with_acks(s: &mut TcpStream, acks: &mut Vec<u64>) -> bool {
    let mut buf = Vec::new();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(n) => {
                buf.extend_from_slice(&b[..n]);
                while let Ok(Some((used, seq))) = parse_ack(&buf) {
                    buf.drain(..used);
                    acks.push(seq);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return true
            }
            Err(_) => return false,
        }
    }
}

/// A stats report: one link with 100 packets and `drops` kernel drops, 2 queue drops.
pub fn stats(drops: u64) -> Vec<u8> {
    let mut links = heapless::Vec::new();
    let _ = links.push(LinkStats {
        key: 0,
        packets: 100,
        kernel_drops: drops,
        freeze_count: 0,
        losing_blocks: 0,
    });
    frame(&Message::Stats(Stats {
        monotonic_ns: 5,
        interval_ns: 5,
        queue_drops: 2,
        records_sent: 0,
        batches_sent: 0,
        kernel_drops: 0,
        freeze_count: 0,
        losing_frames: 0,
        links,
        clock: Default::default(),
    }))
}

/// True when the collector closed the connection within the read timeout.
pub fn closed_by_collector(s: &mut TcpStream) -> bool {
    closed_with_acks(s, &mut Vec::new())
}
