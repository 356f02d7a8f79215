//! One live capture from start to summary: [`LiveCapture::start`] sets everything up,
//! [`LiveCapture::step`] runs one turn of the loop, [`LiveCapture::finish`] drains the sink
//! and sums up.

use super::filter::{self, KernelFilter};
use super::hello::{self, Greeting};
use super::sink::{Captured, Counts, ExportSink, PcapngSink, PrintSink, Sink};
use super::slots::NamespaceSlots;
use super::{
    CollectorConfig, LinkLabel, Output, PcapngConfig, RunConfig, RunError, RunSummary, Security,
};
use crate::capture::{Capture, CaptureMode};
use crate::clock_watch::Step;
use crate::export::{
    noise, BoardKey, Connector, ExportConfig, Exporter, NoiseConnector, TcpConnector, TcpOptions,
};
use crate::links::{Change, LinkTable, NetnsSpec};
use crate::offline::OutputMode;
use crate::pipeline::FramePipeline;
use crate::privileges;
use hopcap_proto::filter::Filter;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one poll of the sockets waits for frames.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Flush a partial batch this often, so the collector sees packets within a fraction of a second.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const RESCAN_EVERY: Duration = Duration::from_secs(1);
const STATS_EVERY: Duration = Duration::from_secs(5);
/// Housekeeping at most this often: under a flood the loop turns thousands of times a
/// second, and sorting the print buffer or asking netlink each time costs more than the
/// packets (measured: ~40% of the agent's CPU in --json mode).
const HOUSEKEEPING: Duration = Duration::from_millis(20);

/// Whether the loop goes on after a [`LiveCapture::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The count or duration is reached, or stdout's reader went away.
    Done,
}

pub struct LiveCapture {
    links: LinkTable,
    capture: Capture,
    slots: NamespaceSlots,
    kernel_filter: KernelFilter,
    sinks: Vec<Box<dyn Sink>>,
    pipeline: FramePipeline,
    per_link: super::LinkCounts,
    observations: u64,
    limit: u64,
    started: Instant,
    deadline: Option<Instant>,
    last: Timers,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("capture", &self.capture)
            .field("observations", &self.observations)
            .finish_non_exhaustive()
    }
}

/// [`Output`] with the collector's address resolved.
enum Destination<'a> {
    Stdout(OutputMode),
    Collector(
        &'a CollectorConfig,
        Vec<SocketAddr>,
        Option<(BoardKey, [u8; 32])>,
    ),
    Pcapng(&'a PcapngConfig),
}

/// When each periodic job last ran.
#[derive(Clone, Copy, Debug)]
struct Timers {
    housekeeping: Instant,
    flush: Instant,
    rescan: Instant,
    stats: Instant,
}

impl LiveCapture {
    /// Parses the filter, resolves the collector, lists the links, opens a socket per
    /// namespace with its kernel filter, and makes a sink per output.
    pub fn start(cfg: &RunConfig) -> Result<LiveCapture, RunError> {
        let user = match &cfg.filter {
            Some(expr) => Some(Filter::parse(expr).map_err(|error| RunError::Filter {
                expr: expr.clone(),
                error,
            })?),
            None => None,
        };
        let dests = cfg
            .outputs
            .iter()
            .map(|o| match o {
                Output::Stdout(mode) => Ok(Destination::Stdout(*mode)),
                Output::Collector(c) => Ok(Destination::Collector(
                    c,
                    resolve_all(&c.addr)?,
                    keys(&c.security)?,
                )),
                Output::Pcapng(p) => Ok(Destination::Pcapng(p)),
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        let links = LinkTable::discover(cfg.links.clone()).map_err(RunError::Links)?;
        missing_netns(&cfg.links.netns, &links)?;
        let mut capture = Capture::new(cfg.capture.clone());
        // A new socket drops everything until its namespace's own program is attached: frames
        // caught in between would bypass --filter, -i/--exclude and the collector exclusion.
        capture
            .set_filter(&filter::DROP_ALL)
            .map_err(|source| RunError::Capture {
                netns: String::new(),
                source,
            })?;
        let kernel_filter = KernelFilter {
            user,
            exclude: dests
                .iter()
                .flat_map(|d| match d {
                    Destination::Collector(_, addrs, _) => {
                        addrs.iter().map(filter::endpoint).collect()
                    }
                    Destination::Stdout(_) | Destination::Pcapng(_) => Vec::new(),
                })
                .collect(),
            snaplen: cfg.capture.snaplen,
        };
        let mut slots = NamespaceSlots::default();
        slots.sync(&links, &mut capture, &kernel_filter)?;
        // Before the sinks: the exporter's thread must start with the reduced sets.
        if cfg.drop_privileges {
            drop_privileges(&cfg.links.netns)?;
        }
        if !links.links().any(|l| links.is_selected(l.key)) {
            log::warn!("no link matches yet: waiting for links to appear");
        }
        // Without --id, the board is named as its key file says (the collector binds the
        // connection to the key's name), else by the hostname.
        let key_board = dests.iter().find_map(|d| match d {
            Destination::Collector(_, _, Some((key, _))) => key.board.clone(),
            _ => None,
        });
        let board = cfg.board.clone().or(key_board).unwrap_or_else(hostname);
        let mut sinks: Vec<Box<dyn Sink>> = Vec::with_capacity(dests.len());
        for dest in dests {
            sinks.push(match dest {
                Destination::Collector(c, addrs, keys) => {
                    let greeting = Greeting::new(&board, &links, cfg, capture_mode(&capture));
                    Box::new(export_sink(&board, c, addrs, keys, greeting)?)
                }
                Destination::Stdout(mode) => Box::new(PrintSink::new(mode, &board)),
                Destination::Pcapng(p) => Box::new(
                    PcapngSink::create(p.clone(), &board, links.links())
                        .map_err(RunError::Pcapng)?,
                ),
            });
        }
        let started = Instant::now();
        Ok(LiveCapture {
            links,
            capture,
            slots,
            kernel_filter,
            sinks,
            pipeline: FramePipeline::new(cfg.sample, cfg.clock_offset_ns),
            per_link: super::LinkCounts::default(),
            observations: 0,
            limit: cfg.count.unwrap_or(u64::MAX),
            started,
            deadline: cfg.duration.map(|d| started + d),
            last: Timers {
                housekeeping: started,
                flush: started,
                rescan: started,
                stats: started,
            },
        })
    }

    /// Also hands every kept packet (and the topology, stats and end) to `sink`, after the
    /// sinks of the configured outputs.
    pub fn add_sink(&mut self, sink: Box<dyn Sink>) {
        self.sinks.push(sink);
    }

    /// Steps until `stop` is set or the run is [`Flow::Done`].
    pub fn run_until(&mut self, stop: &AtomicBool) -> Result<(), RunError> {
        while !stop.load(Ordering::Relaxed) && self.step()? == Flow::Continue {}
        Ok(())
    }

    /// One turn: frames from every socket (waiting up to [`POLL_WAIT`]), each kept one to the
    /// sinks; then, when due, output, link changes, stats and the flush.
    pub fn step(&mut self) -> Result<Flow, RunError> {
        if self.observations >= self.limit || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Flow::Done);
        }
        let Self {
            links,
            capture,
            slots,
            kernel_filter,
            sinks,
            pipeline,
            per_link,
            observations,
            limit,
            ..
        } = self;
        pipeline.turn();
        if let Some(step) = pipeline.take_step() {
            clock_stepped(&step, sinks);
        }
        let polled = capture.poll(POLL_WAIT, |slot, order, frame| {
            if *observations >= *limit {
                return;
            }
            let Some(ns) = slots.ns_of(slot) else { return };
            let Some(key) = links.selected_key_of(ns, frame.ifindex) else {
                return;
            };
            // A socket whose kernel program could not take the whole filter (small
            // optmem_max) passes more: the filter is applied here, on the decoded frame.
            let check = slots.user_check(slot);
            let keep = |s: &hopcap_proto::summary::Summary| !check || kernel_filter.accepts(s);
            let kept = pipeline.observe_if(key, order, &frame, keep);
            // A step this frame revealed: the sinks hear of it before its observation.
            if let Some(step) = pipeline.take_step() {
                clock_stepped(&step, sinks);
            }
            if kept {
                let obs = pipeline.observation();
                *per_link.entry(key).or_default() += 1;
                *observations += 1;
                let packet = Captured { obs, frame: &frame };
                for sink in sinks.iter_mut() {
                    sink.push(&packet);
                }
            }
        });
        if let Err(e) = polled {
            log::warn!("capture poll failed: {e}");
        }
        let now = Instant::now();
        if now - self.last.housekeeping < HOUSEKEEPING {
            return Ok(Flow::Continue);
        }
        self.last.housekeeping = now;
        self.housekeeping(now)
    }

    fn housekeeping(&mut self, now: Instant) -> Result<Flow, RunError> {
        for sink in &mut self.sinks {
            match sink.tick(&self.links) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Flow::Done),
                Err(e) => return Err(RunError::Output(e)),
                Ok(()) => {}
            }
        }
        let mut changes = Vec::new();
        let namespaces: Vec<usize> = self.links.namespaces().map(|(i, _)| i).collect();
        for ns in namespaces {
            match self.links.read_events(ns) {
                Ok(c) => changes.extend(c),
                Err(e) => log::warn!("link events of namespace {ns}: {e}"),
            }
        }
        if now - self.last.rescan >= RESCAN_EVERY {
            changes.extend(self.links.rescan());
            self.last.rescan = now;
        }
        if !changes.is_empty() {
            log_changes(&changes, &self.links);
            self.slots
                .sync(&self.links, &mut self.capture, &self.kernel_filter)?;
            // New sockets' filters were compiled on the stack just now.
            super::release_setup_stack();
            self.sinks.iter_mut().for_each(|s| s.topology(&changes));
        }
        if now - self.last.stats >= STATS_EVERY {
            let namespaces = self.capture.stats();
            let counts = Counts {
                namespaces: &namespaces,
                per_link: &self.per_link,
            };
            let interval = now - self.last.stats;
            self.sinks
                .iter_mut()
                .for_each(|s| s.stats(counts, interval));
            self.last.stats = now;
        }
        if now - self.last.flush >= FLUSH_EVERY {
            self.sinks.iter_mut().for_each(|s| s.flush());
            self.last.flush = now;
        }
        Ok(Flow::Continue)
    }

    /// Hands the sinks everything still held (the collector gets up to 3 s to acknowledge),
    /// and sums the run up.
    pub fn finish(mut self) -> Result<RunSummary, RunError> {
        let stats = self.capture.stats();
        let mut summary = RunSummary::new(
            &self.pipeline,
            self.started.elapsed(),
            &stats,
            &self.per_link,
            &self.links,
        );
        let counts = Counts {
            namespaces: &stats,
            per_link: &self.per_link,
        };
        // Every sink finishes (the collector still gets its Bye) before an error is returned.
        let mut failed = None;
        for sink in &mut self.sinks {
            match sink.finish(&self.links, counts) {
                Ok(lines) => summary.lines.extend(lines),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(RunError::Output(e)),
            None => Ok(summary),
        }
    }
}

fn export_sink(
    board: &str,
    c: &CollectorConfig,
    addrs: Vec<SocketAddr>,
    keys: Option<(BoardKey, [u8; 32])>,
    greeting: Greeting,
) -> Result<ExportSink, RunError> {
    let topology = greeting.topology();
    let cfg = ExportConfig {
        queue_bytes: c.queue_bytes,
        ..ExportConfig::default()
    };
    let tcp = TcpConnector::any_of(addrs, TcpOptions::default());
    let connector: Box<dyn Connector> = match keys {
        Some((key, collector)) => {
            if key.board.as_deref().is_some_and(|name| name != board) {
                log::warn!(
                    "--id {board:?} is not the key's board {:?}: the collector will refuse it",
                    key.board.as_deref().unwrap_or_default()
                );
            }
            Box::new(NoiseConnector::new(tcp, key, collector))
        }
        None => {
            log::warn!(
                "--insecure: observations go to the collector in plaintext, unauthenticated"
            );
            Box::new(tcp)
        }
    };
    let exporter = Exporter::spawn(cfg, connector, greeting.into_fn(), hello::wire())
        .map_err(RunError::Exporter)?;
    Ok(ExportSink::new(board, exporter, topology, c.snap_bytes))
}

fn capture_mode(capture: &Capture) -> CaptureMode {
    capture
        .namespaces()
        .next()
        .map_or(CaptureMode::Ring, |n| n.4)
}

fn log_changes(changes: &[Change], links: &LinkTable) {
    let label = |l: &hopcap_proto::record::LinkInfo| {
        LinkLabel {
            netns: &l.netns,
            name: &l.name,
        }
        .to_string()
    };
    for c in changes {
        match c {
            Change::Added(l) => log::info!("link added: {}", label(l)),
            Change::Removed(key) => log::info!("link removed: key {key}"),
            Change::NetnsAdded(i) => log::info!(
                "namespace added: {}",
                links.netns(*i).map_or("?", |n| n.label.as_str())
            ),
            Change::NetnsRemoved(i) => log::info!("namespace {i} gone"),
            Change::Updated(l) => log::debug!("link updated: {}", label(l)),
        }
    }
}

/// A `--netns` name without glob characters that names no captured namespace.
fn missing_netns(spec: &NetnsSpec, links: &LinkTable) -> Result<(), RunError> {
    let NetnsSpec::Named(names) = spec else {
        return Ok(());
    };
    for name in names.iter().filter(|n| !n.contains(['*', '?'])) {
        if !links.namespaces().any(|(_, ns)| ns.label.as_str() == name) {
            return Err(RunError::NoSuchNetns { name: name.clone() });
        }
    }
    Ok(())
}

/// The board's key and the collector's pinned public key (`None` with `--insecure`).
fn keys(security: &Security) -> Result<Option<(BoardKey, [u8; 32])>, RunError> {
    let Security::Noise { key, collector_pub } = security else {
        return Ok(None);
    };
    let err = |what: &str, path: &std::path::Path| {
        let what = format!("{what} {}", path.display());
        move |source| RunError::Key { what, source }
    };
    let board = BoardKey::read(key).map_err(err("--key", key))?;
    let collector = match collector_pub {
        Some(p) => noise::read_public(p).map_err(err("--collector-pub", p))?,
        None => board.collector.ok_or_else(|| {
            err("--key", key)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no `collector` line: give the collector's public key with --collector-pub FILE",
            ))
        })?,
    };
    Ok(Some((board, collector)))
}

/// Every address of `HOST:PORT[,HOST:PORT...]` (the collector's ingest nodes), in order:
/// the exporter moves to the next when one does not answer.
fn resolve_all(addrs: &str) -> Result<Vec<SocketAddr>, RunError> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in super::config::collector_addrs(addrs) {
        let found: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| RunError::Resolve {
                addr: addr.to_string(),
                source,
            })?
            .collect();
        if found.is_empty() {
            return Err(RunError::NoAddress {
                addr: addr.to_string(),
            });
        }
        for a in found {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "board".into())
}

/// Keeps what the rest of the run needs (see [`crate::privileges`]) and says so.
fn drop_privileges(netns: &NetnsSpec) -> Result<(), RunError> {
    let root = crate::sys::caps::euid_is_root();
    let dropped =
        privileges::drop_to(privileges::needed(netns, root)).map_err(RunError::Privileges)?;
    log::info!(
        "capabilities kept after set-up: {}; no_new_privs set",
        privileges::names(dropped.kept)
    );
    if dropped.missing.0 != 0 {
        log::warn!(
            "not held, so namespaces that appear later may be missed: {}",
            privileges::names(dropped.missing)
        );
    }
    Ok(())
}

/// Says so, and tells the sinks (the exporter's batches before this point are on the old
/// clock, and the collector moves them).
fn clock_stepped(step: &Step, sinks: &mut [Box<dyn Sink>]) {
    log::warn!(
        "the real-time clock was stepped by {} at {}: observations from here on (and those \
         captured before it, still in the rings) are on the new clock",
        signed_duration(step.delta_ns),
        hopcap_proto::print::Epoch(step.at_real_ns)
    );
    for sink in sinks {
        sink.clock_step(step);
    }
}

/// `+3d 00:00:01.250` / `-0.120 s`.
fn signed_duration(ns: i64) -> String {
    let sign = if ns < 0 { '-' } else { '+' };
    let ms = ns.unsigned_abs() / 1_000_000;
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    if days == 0 && rest < 60_000 {
        return format!("{sign}{}.{:03} s", rest / 1000, rest % 1000);
    }
    let (h, m, s) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60);
    format!("{sign}{days}d {h:02}:{m:02}:{s:02}.{:03}", rest % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_ingest_nodes_resolves_in_order_each_once() {
        let got = resolve_all("127.0.0.1:7881, 127.0.0.2:7882,127.0.0.1:7881").unwrap();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:7881".parse().unwrap(),
            "127.0.0.2:7882".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_bad_entry_is_named_in_the_error() {
        let e = resolve_all("127.0.0.1:7881,nonsense").unwrap_err();
        assert!(e.to_string().contains("nonsense"), "{e}");
        let e = resolve_all("127.0.0.1:7881,").unwrap_err();
        assert!(e.to_string().contains("--collector"), "{e}");
    }
}
