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

/// How long an observation waits, at least, for earlier ones from other sockets: a ring hands
/// out a block up to its retire timeout (50 ms) after the block's first frame.
const HOLD_MIN_NS: u64 = 150_000_000;
/// Added to the largest recent capture-to-read delay: a socket that reads late (the recv path
/// of a slow board under a flood, with a deep kernel queue) makes every line wait that long,
/// so that its frames still come out in order.
const HOLD_MARGIN_NS: u64 = 50_000_000;
/// The longest wait: past it a line is printed whatever its time (a frame whose time fitted
/// no clock epoch, or a backlog deeper than this).
const HOLD_MAX: Duration = Duration::from_secs(3);
/// The largest delay is taken over the last two periods of this length.
const LAG_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct PrintSink {
    mode: OutputMode,
    board: String,
    out: BufWriter<Stdout>,
    /// Reused for every line: no allocation per packet once it has grown.
    line: String,
    /// Observations held back so that lines from all namespaces come out in time order.
    pending: Vec<(Instant, Observation)>,
    /// The largest capture-to-push delay in this period and the one before (ns).
    lag: [u64; 2],
    lag_since: Instant,
}

impl PrintSink {
    pub fn new(mode: OutputMode, board: &str) -> PrintSink {
        PrintSink {
            mode,
            board: board.to_string(),
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: String::with_capacity(256),
            pending: Vec::with_capacity(4096),
            lag: [0; 2],
            lag_since: Instant::now(),
        }
    }

    /// Notes that an observation of time `ts_ns` arrived at `now_ns` (real-time clock).
    fn note_lag(&mut self, ts_ns: u64, now_ns: u64, now: Instant) {
        if now.duration_since(self.lag_since) >= LAG_PERIOD {
            self.lag = [0, self.lag[0]];
            self.lag_since = now;
        }
        self.lag[0] = self.lag[0].max(now_ns.saturating_sub(ts_ns));
    }

    /// How long lines wait now: the largest recent delay plus a margin, within bounds.
    fn hold_ns(&self) -> u64 {
        let lag = self.lag[0].max(self.lag[1]);
        (lag + HOLD_MARGIN_NS).clamp(HOLD_MIN_NS, HOLD_MAX.as_nanos() as u64)
    }

    /// Prints what has waited long enough (everything when `all`), in time order; equal
    /// timestamps keep arrival order, which within one socket is capture order.
    fn release(&mut self, links: &LinkTable, all: bool) -> io::Result<()> {
        self.release_at(links, all, crate::clock::realtime_ns(), Instant::now())
    }

    /// [`release`](Self::release) as of `now_ns` (real-time clock) and `now`. A line is due
    /// once its time is [`hold_ns`](Self::hold_ns) in the past (every earlier frame has been
    /// read by then), or once it has waited [`HOLD_MAX`].
    fn release_at(
        &mut self,
        links: &LinkTable,
        all: bool,
        now_ns: u64,
        now: Instant,
    ) -> io::Result<()> {
        let n = self.due(all, now_ns, now);
        if n == 0 {
            return Ok(());
        }
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

    /// Sorts what is held by time and says how many of the first are due.
    fn due(&mut self, all: bool, now_ns: u64, now: Instant) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        self.pending.sort_by_key(|(_, o)| o.ts_ns);
        let waited_enough = now.checked_sub(HOLD_MAX);
        let upto = if all {
            u64::MAX
        } else {
            let overdue = self
                .pending
                .iter()
                .filter(|(t, _)| waited_enough.is_some_and(|c| *t <= c))
                .map(|(_, o)| o.ts_ns)
                .max()
                .unwrap_or(0);
            overdue.max(now_ns.saturating_sub(self.hold_ns()))
        };
        self.pending.partition_point(|(_, o)| o.ts_ns <= upto)
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
        let now = Instant::now();
        self.note_lag(packet.obs.ts_ns, crate::clock::realtime_ns(), now);
        self.pending.push((now, packet.obs.clone()));
    }

    fn tick(&mut self, links: &LinkTable) -> io::Result<()> {
        self.release(links, false)
    }

    fn finish(&mut self, links: &LinkTable, _counts: Counts<'_>) -> io::Result<Vec<String>> {
        self.release(links, true)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_testkit::SampleGen;

    const MS: u64 = 1_000_000;

    /// A socket that reads 400 ms behind the others (the recv path of a slow board under a
    /// flood): its frames still come out in time order, because every line waits as long as
    /// the largest recent delay. A fixed 150 ms hold printed the others' lines first.
    #[test]
    fn a_socket_reading_late_still_comes_out_in_order() {
        let t0: u64 = 1_764_720_000_000 * MS;
        let start = Instant::now();
        let at = |ms: u64| (t0 + ms * MS, start + Duration::from_millis(ms));
        let mut g = SampleGen::new(1, t0);
        let mut obs = |ts: u64| {
            let mut o = g.packet(&[0], 1).remove(0);
            o.ts_ns = ts;
            o
        };
        let mut sink = PrintSink::new(OutputMode::Print, "pi");
        let mut printed: Vec<u64> = Vec::new();
        let mut push = |sink: &mut PrintSink, ts: u64, (now_ns, now): (u64, Instant)| {
            sink.note_lag(ts, now_ns, now);
            sink.pending.push((now, obs(ts)));
        };
        let mut release = |sink: &mut PrintSink, (now_ns, now): (u64, Instant)| {
            let n = sink.due(false, now_ns, now);
            printed.extend(sink.pending.drain(..n).map(|(_, o)| o.ts_ns));
        };
        // Every 20 ms: a frame of the prompt socket, and one of the late socket's, captured
        // 400 ms before it is read.
        for ms in (400..2000).step_by(20) {
            push(&mut sink, t0 + ms * MS, at(ms));
            push(&mut sink, t0 + (ms - 400) * MS, at(ms));
            release(&mut sink, at(ms + 5));
        }
        release(&mut sink, at(2000 + 3000));
        assert!(printed.len() > 100);
        assert!(
            printed.windows(2).all(|w| w[0] <= w[1]),
            "out of order: {printed:?}"
        );
        // The wait followed the delay (400 ms + margin), not the 3 s ceiling.
        assert_eq!(sink.hold_ns(), 450 * MS);
    }

    #[test]
    fn a_line_waits_at_most_the_ceiling() {
        let t0: u64 = 1_764_720_000_000 * MS;
        let start = Instant::now();
        let mut sink = PrintSink::new(OutputMode::Print, "pi");
        let mut o = SampleGen::new(2, t0).packet(&[0], 1).remove(0);
        // Stamped an hour ahead of the clock (a time that fitted no clock epoch).
        o.ts_ns = t0 + 3_600_000 * MS;
        sink.pending.push((start, o));
        assert_eq!(sink.due(false, t0, start + Duration::from_secs(1)), 0);
        assert_eq!(sink.due(false, t0, start + HOLD_MAX), 1);
    }
}
