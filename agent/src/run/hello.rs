//! What opens every connection to the collector (hello, then the full link table), kept
//! current by the capture loop, and the parser of the collector's acks.

use crate::capture::CaptureMode;
use crate::clock::{monotonic_ns, realtime_ns};
use crate::export::{lock, AckParser, Greeting as GreetingFn, Ledger, Wire};
use crate::links::LinkTable;
use crate::run::RunConfig;
use hopcap_proto::frame::{encode, parse_ack};
use hopcap_proto::message::{
    self, ClockInfo, Hello, Links, Message, Tally, GAVE_UP_PER_TALLY, LINKS_PER_CHUNK,
    PROTOCOL_VERSION,
};
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The link table as the collector should know it, shared with the exporter thread.
pub type Topology = Arc<Mutex<BTreeMap<LinkKey, LinkInfo>>>;

/// Room for one encoded control frame (a Links chunk of 16 links is ~4 KB).
pub const CONTROL_FRAME_BYTES: usize = 16 * 1024;

pub struct Greeting {
    hello: Hello,
    topology: Topology,
}

impl Greeting {
    pub fn new(board: &str, links: &LinkTable, cfg: &RunConfig, mode: CaptureMode) -> Greeting {
        let mut agent_id = heapless::String::new();
        for c in board.chars() {
            if agent_id.push(c).is_err() {
                break;
            }
        }
        let hello = Hello {
            version: PROTOCOL_VERSION,
            agent_id,
            boot_id: boot_id(),
            run_id: realtime_ns(),
            clock: ClockInfo {
                realtime_ns: 0,
                monotonic_ns: 0,
                debug_offset_ns: cfg.clock_offset_ns,
            },
            capture: match mode {
                CaptureMode::Ring => message::CaptureMode::Ring,
                CaptureMode::Recv => message::CaptureMode::Recv,
            },
            snaplen: cfg.capture.snaplen,
            sample: cfg.sample,
            // Cannot fail: a crate version is far shorter than MAX_AGENT_VERSION.
            agent_version: heapless::String::try_from(env!("CARGO_PKG_VERSION"))
                .unwrap_or_default(),
        };
        let table = links.links().map(|l| (l.key, l.clone())).collect();
        Greeting {
            hello,
            topology: Arc::new(Mutex::new(table)),
        }
    }

    pub fn topology(&self) -> Topology {
        Arc::clone(&self.topology)
    }

    /// The exporter calls this at every (re)connect.
    pub fn into_fn(self) -> GreetingFn {
        Box::new(move || {
            let mut hello = self.hello.clone();
            hello.clock = ClockInfo {
                realtime_ns: realtime_ns().saturating_add_signed(hello.clock.debug_offset_ns),
                monotonic_ns: monotonic_ns(),
                debug_offset_ns: hello.clock.debug_offset_ns,
            };
            let mut frames = vec![control_frame(&Message::Hello(hello))];
            let links: Vec<LinkInfo> = lock(&self.topology).values().cloned().collect();
            frames.extend(links_frames(&links, true));
            frames.into_iter().flatten().collect()
        })
    }
}

/// `Links` frames for `links`, in chunks; `replace` for a full dump.
pub fn links_frames(links: &[LinkInfo], replace: bool) -> Vec<Option<Vec<u8>>> {
    let chunks: Vec<&[LinkInfo]> = if links.is_empty() {
        vec![&[]]
    } else {
        links.chunks(LINKS_PER_CHUNK).collect()
    };
    let count = chunks.len() as u16;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut m = Links {
                chunk: i as u16,
                count,
                replace,
                links: heapless::Vec::new(),
            };
            for l in chunk.iter() {
                let _ = m.links.push(l.clone());
            }
            control_frame(&Message::Links(m))
        })
        .collect()
}

/// One encoded frame; `None` (logged) if it does not fit, which bounded types rule out.
pub fn control_frame(msg: &Message<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; CONTROL_FRAME_BYTES];
    match encode(msg, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(e) => {
            log::error!("cannot encode a {} message: {e}", msg.message_type());
            None
        }
    }
}

/// Parses the collector's acks. Only the header and an `Ack` body are ever parsed: the
/// exporter's thread has a 64 KiB stack, and a general frame decode (which can hold a 5 KB
/// `Links` several times over in a debug build) overflowed it on the first ack.
pub fn ack_parser() -> AckParser {
    parse_ack
}

/// The collector's acks and the agent's tallies.
pub fn wire() -> Wire {
    Wire::new(ack_parser(), tally_frames)
}

/// `Tally` frames of `ledger`: its totals, with the given-up ranges from `from` on, in chunks
/// (one frame with no ranges when there are none to send).
pub fn tally_frames(ledger: &Ledger, from: usize) -> Vec<u8> {
    let ranges = ledger.gave_up.get(from..).unwrap_or(&[]);
    let mut chunks: Vec<&[_]> = ranges.chunks(GAVE_UP_PER_TALLY).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let mut out = Vec::new();
    for chunk in chunks {
        let tally = Tally {
            batches: ledger.batches,
            records: ledger.records,
            // Cannot fail: a chunk holds at most GAVE_UP_PER_TALLY.
            gave_up: heapless::Vec::from_slice(chunk).unwrap_or_default(),
            // The exporter keeps at most MAX_CLOCK_STEPS.
            clock_steps: ledger.clock_steps.iter().copied().collect(),
        };
        if let Some(f) = control_frame(&Message::Tally(tally)) {
            out.extend_from_slice(&f);
        }
    }
    out
}

/// /proc/sys/kernel/random/boot_id as 16 bytes (zeros if unreadable).
fn boot_id() -> [u8; 16] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let hex: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).take(16).enumerate() {
        let s = std::str::from_utf8(pair).unwrap_or("0");
        out[i] = u8::from_str_radix(s, 16).unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_proto::message::{Ack, Bye};

    fn frame(msg: &Message<'_>) -> Vec<u8> {
        control_frame(msg).expect("encodes")
    }

    #[test]
    fn acks_in_pieces_and_back_to_back() {
        let mut bytes = frame(&Message::Ack(Ack { seq: 7 }));
        let first = bytes.len();
        bytes.extend(frame(&Message::Ack(Ack { seq: 300 })));
        let parse = ack_parser();
        for cut in 0..first {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(&bytes), Ok(Some((first, 7))));
        assert_eq!(parse(&bytes[first..]), Ok(Some((bytes.len() - first, 300))));
    }

    #[test]
    fn anything_but_an_ack_is_refused() {
        let parse = ack_parser();
        let bye = frame(&Message::Bye(Bye { batches_sent: 1 }));
        assert!(parse(&bye).is_err());
        assert!(parse(b"GET / HTTP/1.1").is_err());
    }

    #[test]
    fn a_ledger_goes_out_in_tallies_of_at_most_32_ranges() {
        use crate::export::GaveUp;
        use hopcap_proto::frame::FrameDecoder;
        let mut ledger = Ledger::default();
        (ledger.batches, ledger.records) = (200, 5_000);
        for i in 0..40u64 {
            ledger.gave_up.push(GaveUp {
                first: i * 3,
                last: i * 3 + 1,
                records: 7,
            });
        }
        let read = |bytes: &[u8]| {
            let mut dec = FrameDecoder::new(1 << 16);
            let (mut at, mut got) = (0, Vec::new());
            while let Some((f, used)) = dec.decode(&bytes[at..]).unwrap() {
                match f.message {
                    Message::Tally(t) => got.push(t),
                    other => panic!("{other:?}"),
                }
                at += used;
            }
            assert_eq!(at, bytes.len());
            got
        };
        let all = read(&tally_frames(&ledger, 0));
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|t| (t.batches, t.records) == (200, 5_000)));
        assert_eq!(all[0].gave_up.len() + all[1].gave_up.len(), 40);
        assert_eq!(all[1].gave_up[7].first, 39 * 3);
        let tail = read(&tally_frames(&ledger, 39));
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].gave_up.as_slice(), &ledger.gave_up[39..]);
        let none = read(&tally_frames(&ledger, 40));
        assert_eq!((none.len(), none[0].gave_up.len()), (1, 0));
    }

    #[test]
    fn parses_on_the_exporters_64_kib_stack() {
        // The exporter's thread has this stack; a debug build must fit too.
        let bytes = frame(&Message::Ack(Ack { seq: 1 }));
        let got = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || ack_parser()(&bytes))
            .expect("spawn")
            .join()
            .expect("no overflow");
        assert_eq!(got.map(|r| r.map(|(_, seq)| seq)), Ok(Some(1)));
    }
}
