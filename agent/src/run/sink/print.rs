//! `--print` / `--json`: one line per packet on stdout, all namespaces merged in time order.

use super::{Captured, Counts, Sink};
use crate::links::LinkTable;
use crate::offline::OutputMode;
use crate::run::LinkLabel;
use hopcap_proto::print::{write_json_observation, write_line};
use hopcap_proto::record::Observation;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Stdout, Write};
use std::time::{Duration, Instant};

/// How long an observation waits for earlier ones from other sockets: a ring hands out a
/// block up to its retire timeout (50 ms) after the block's first frame.
const HOLD: Duration = Duration::from_millis(150);

#[derive(Debug)]
pub struct PrintSink {
    mode: OutputMode,
    board: String,
    out: BufWriter<Stdout>,
    /// Reused for every line: no allocation per packet once it has grown.
    line: String,
    /// Observations held back so that lines from all namespaces come out in time order.
    pending: Vec<(Instant, Observation)>,
}

impl PrintSink {
    pub fn new(mode: OutputMode, board: &str) -> PrintSink {
        PrintSink {
            mode,
            board: board.to_string(),
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: String::with_capacity(256),
            pending: Vec::with_capacity(4096),
        }
    }

    /// Prints what has waited long enough (everything when `all`), in time order; equal
    /// timestamps keep arrival order, which within one socket is capture order.
    fn release(&mut self, links: &LinkTable, all: bool) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.sort_by_key(|(_, o)| o.ts_ns);
        let cutoff = Instant::now().checked_sub(HOLD);
        let upto = if all {
            u64::MAX
        } else {
            self.pending
                .iter()
                .filter(|(t, _)| cutoff.is_some_and(|c| *t <= c))
                .map(|(_, o)| o.ts_ns)
                .max()
                .unwrap_or(0)
        };
        let n = self.pending.partition_point(|(_, o)| o.ts_ns <= upto);
        let mut result = Ok(());
        // Taken out and put back, so the buffer keeps its capacity across calls.
        let mut pending = std::mem::take(&mut self.pending);
        for (_, obs) in pending.drain(..n) {
            if result.is_ok() {
                result = self.write(&obs, links);
            }
        }
        self.pending = pending;
        result?;
        self.out.flush()
    }

    fn write(&mut self, obs: &Observation, links: &LinkTable) -> io::Result<()> {
        let (netns, name) = links
            .link(obs.link)
            .map_or(("", "?"), |l| (l.netns.as_str(), l.name.as_str()));
        self.line.clear();
        let written = match self.mode {
            OutputMode::Print => {
                // On the stack: the label is written once per line.
                let mut label = heapless::String::<80>::new();
                let _ = write!(label, "{}", LinkLabel { netns, name });
                write_line(
                    &mut self.line,
                    obs.ts_ns,
                    &label,
                    Some(obs.pkttype),
                    &obs.summary,
                    obs.wire_len,
                )
            }
            OutputMode::Json => {
                write_json_observation(&mut self.line, &self.board, netns, name, obs)
            }
        };
        written.map_err(|_| io::Error::other("formatting failed"))?;
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }
}

impl Sink for PrintSink {
    fn push(&mut self, packet: &Captured<'_>) {
        self.pending.push((Instant::now(), packet.obs.clone()));
    }

    fn tick(&mut self, links: &LinkTable) -> io::Result<()> {
        self.release(links, false)
    }

    fn finish(&mut self, links: &LinkTable, _counts: Counts<'_>) -> io::Result<Vec<String>> {
        self.release(links, true)?;
        Ok(Vec::new())
    }
}
