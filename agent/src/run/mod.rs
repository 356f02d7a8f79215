//! Live capture: links → per-namespace capture with a kernel filter → pipeline → sink
//! (print, JSON or the collector), with hot-plug, periodic stats, and a clean stop.

mod filter;
mod hello;
mod sink;

use crate::capture::{Capture, CaptureConfig, CaptureMode};
use crate::cli::{LiveOptions, OutputMode};
use crate::export::{ExportConfig, Exporter};
use crate::links::{Change, LinkTable, NetnsSpec, Options as LinkOptions};
use crate::pipeline::FramePipeline;
use crate::sys::ring::RingGeometry;
use hopcap_proto::filter::Filter;
use hopcap_proto::record::LinkKey;
use sink::Sink;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why live capture could not start (or stopped early).
#[derive(Debug)]
pub enum RunError {
    Filter { expr: String, error: String },
    Collector { addr: String, error: String },
    Links(io::Error),
    Capture { netns: String, error: io::Error },
    Output(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Filter { expr, error } => write!(f, "--filter {expr:?}: {error}"),
            RunError::Collector { addr, error } => write!(f, "--collector {addr}: {error}"),
            RunError::Links(e) => write!(f, "cannot list links (rtnetlink): {e}"),
            RunError::Capture { netns, error } => {
                let ns = if netns.is_empty() {
                    "the agent's namespace"
                } else {
                    netns
                };
                write!(
                    f,
                    "cannot capture in {ns}: {error} (needs root or CAP_NET_RAW)"
                )
            }
            RunError::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

/// What the agent prints when it stops.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub observations: u64,
    pub lines: Vec<String>,
}

/// Flush a partial batch this often, so the collector sees packets within a fraction of a second.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const RESCAN_EVERY: Duration = Duration::from_secs(1);
const STATS_EVERY: Duration = Duration::from_secs(5);
const HOUSEKEEPING: Duration = Duration::from_millis(20);

pub fn run(
    opts: &LiveOptions,
    output: Option<OutputMode>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, RunError> {
    let filter = match &opts.filter {
        Some(expr) => Some(Filter::parse(expr).map_err(|e| RunError::Filter {
            expr: expr.clone(),
            error: e.to_string(),
        })?),
        None => None,
    };
    let collector = opts.collector.as_deref().map(resolve).transpose()?;

    let mut link_opts = LinkOptions {
        netns: NetnsSpec::parse(&opts.netns),
        ..LinkOptions::default()
    };
    opts.include.iter().for_each(|g| link_opts.include(g));
    opts.exclude.iter().for_each(|g| link_opts.exclude(g));
    let mut links = LinkTable::discover(link_opts).map_err(RunError::Links)?;

    let mut capture = Capture::new(CaptureConfig {
        ring: RingGeometry {
            block_count: (opts.ring_kb / 64).max(2),
            ..RingGeometry::default()
        },
        snaplen: opts.snaplen,
        force_recv: opts.force_recv,
        ..CaptureConfig::default()
    });
    // A new socket drops everything until its namespace's own program is attached: frames
    // caught in between would bypass --filter, -i/--exclude and the collector exclusion.
    capture
        .set_filter(&filter::DROP_ALL)
        .map_err(|error| RunError::Capture {
            netns: String::new(),
            error,
        })?;
    let exclude: Vec<_> = collector.iter().map(filter::endpoint).collect();
    let kernel_filter = filter::KernelFilter {
        user: filter.as_ref(),
        exclude: &exclude,
        snaplen: opts.snaplen,
    };
    // links' namespace index → capture slot
    let mut slots: HashMap<usize, usize> = HashMap::new();
    sync_namespaces(&links, &mut capture, &mut slots, &kernel_filter)?;
    let mut ns_of_slot = invert(&slots);
    if !links.links().any(|l| links.is_selected(l.key)) {
        log::warn!("no link matches yet: waiting for links to appear");
    }

    let board = opts.id.clone().unwrap_or_else(hostname);
    let mut sink =
        match collector {
            Some(addr) => {
                let greeting = hello::Greeting::new(&board, &links, opts, capture_mode(&capture));
                let topology = greeting.topology();
                let mut cfg = ExportConfig::new(addr);
                cfg.queue_bytes = opts.queue_kb as usize * 1024;
                let exporter = Exporter::spawn(cfg, greeting.into_fn(), hello::ack_parser())
                    .map_err(|e| RunError::Collector {
                        addr: addr.to_string(),
                        error: e.to_string(),
                    })?;
                Sink::export(&board, exporter, topology)
            }
            None => Sink::print(output.unwrap_or_default(), &board),
        };

    let mut pipeline = FramePipeline::new(opts.sample, opts.clock_offset_us.saturating_mul(1000));
    let mut per_link: HashMap<LinkKey, u64> = HashMap::new();
    let started = Instant::now();
    let deadline = opts.duration_secs.map(|s| started + Duration::from_secs(s));
    let (mut last_flush, mut last_rescan, mut last_stats) = (started, started, started);
    let mut last_housekeeping = started;
    let mut observations = 0u64;
    let limit = opts.count.unwrap_or(u64::MAX);

    while !stop.load(Ordering::Relaxed)
        && observations < limit
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        let polled = capture.poll(Duration::from_millis(100), |slot, order, frame| {
            if observations >= limit {
                return;
            }
            let Some(&Some(ns)) = ns_of_slot.get(slot) else {
                return;
            };
            let Some(key) = links.key_of(ns, frame.ifindex) else {
                return;
            };
            if !links.is_selected(key) {
                return;
            }
            if let Some(obs) = pipeline.observe(key, order, &frame) {
                *per_link.entry(key).or_default() += 1;
                observations += 1;
                sink.push(&obs);
            }
        });
        if let Err(e) = polled {
            log::warn!("capture poll failed: {e}");
        }
        let now = Instant::now();
        // Housekeeping at most every HOUSEKEEPING: under a flood the loop turns thousands of
        // times a second, and sorting the print buffer or asking netlink each time costs
        // more than the packets (measured: ~40% of the agent's CPU in --json mode).
        if now - last_housekeeping < HOUSEKEEPING {
            continue;
        }
        last_housekeeping = now;
        if let Err(e) = sink.release(&links, false) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(RunError::Output(e));
        }
        let mut changes = Vec::new();
        let namespaces: Vec<usize> = links.namespaces().map(|(i, _)| i).collect();
        for ns in namespaces {
            match links.read_events(ns) {
                Ok(c) => changes.extend(c),
                Err(e) => log::warn!("link events of namespace {ns}: {e}"),
            }
        }
        if now - last_rescan >= RESCAN_EVERY {
            changes.extend(links.rescan());
            last_rescan = now;
        }
        if !changes.is_empty() {
            log_changes(&changes, &links);
            sync_namespaces(&links, &mut capture, &mut slots, &kernel_filter)?;
            ns_of_slot = invert(&slots);
            sink.topology(&changes);
        }
        if now - last_stats >= STATS_EVERY {
            sink.stats(&capture.stats(), &per_link, now - last_stats);
            last_stats = now;
        }
        if now - last_flush >= FLUSH_EVERY {
            sink.flush();
            last_flush = now;
        }
    }
    sink.flush();
    match sink.release(&links, true) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(RunError::Output(e)),
        _ => {}
    }

    let mut summary = RunSummary {
        observations,
        lines: Vec::new(),
    };
    summary.lines.push(format!(
        "{} frames seen, {} observations kept in {:.1}s",
        pipeline.seen,
        pipeline.kept,
        started.elapsed().as_secs_f64()
    ));
    let stats = capture.stats();
    for st in &stats {
        let label = if st.label.is_empty() {
            "own namespace"
        } else {
            &st.label
        };
        let s = &st.stats;
        summary.lines.push(format!(
            "{label}: {:?} mode, {} frames, kernel drops {}{}, ring full {} times, losing {}",
            st.mode,
            s.frames,
            s.kernel_drops,
            if s.kernel_stats {
                ""
            } else {
                " (not reported here)"
            },
            s.freeze_q,
            s.losing_frames
        ));
    }
    let mut keys: Vec<_> = per_link.iter().collect();
    keys.sort();
    for (key, n) in keys {
        summary
            .lines
            .push(format!("  {}: {n} packets", link_label(&links, *key)));
    }
    summary.lines.extend(sink.finish(&stats, &per_link));
    Ok(summary)
}

/// Capture slot → links' namespace index, for the per-frame lookup (rebuilt on changes).
fn invert(slots: &HashMap<usize, usize>) -> Vec<Option<usize>> {
    let mut out = vec![None; slots.values().max().map_or(0, |m| m + 1)];
    for (&ns, &slot) in slots {
        out[slot] = Some(ns);
    }
    out
}

/// Opens capture sockets for namespaces that appeared, closes those that went, and gives each
/// socket the filter for its namespace's selected links.
fn sync_namespaces(
    links: &LinkTable,
    capture: &mut Capture,
    slots: &mut HashMap<usize, usize>,
    kf: &filter::KernelFilter<'_>,
) -> Result<(), RunError> {
    let live: Vec<usize> = links.namespaces().map(|(i, _)| i).collect();
    slots.retain(|ns, slot| {
        let keep = live.contains(ns);
        if !keep {
            capture.remove_namespace(*slot);
        }
        keep
    });
    for (ns, netns) in links.namespaces() {
        if slots.contains_key(&ns) {
            continue;
        }
        let path = if ns == 0 {
            PathBuf::new()
        } else {
            netns.path()
        };
        match capture.add_namespace(netns.label.as_str(), &path) {
            Ok(slot) => {
                slots.insert(ns, slot);
            }
            Err(error) if ns == 0 => {
                return Err(RunError::Capture {
                    netns: String::new(),
                    error,
                })
            }
            Err(error) => log::warn!("cannot capture namespace {}: {error}", netns.label.as_str()),
        }
    }
    for (ns, slot) in slots.iter() {
        let program = kf
            .program(&links.selected_ifindexes(*ns))
            .map_err(|error| RunError::Filter {
                expr: String::new(),
                error,
            })?;
        if let Err(e) = capture.set_filter_of(*slot, &program) {
            log::warn!("cannot set the kernel filter of namespace slot {slot}: {e}");
        }
    }
    Ok(())
}

fn capture_mode(capture: &Capture) -> CaptureMode {
    capture
        .namespaces()
        .next()
        .map_or(CaptureMode::Ring, |n| n.4)
}

fn log_changes(changes: &[Change], links: &LinkTable) {
    for c in changes {
        match c {
            Change::Added(l) => log::info!("link added: {}", label_of(&l.netns, &l.name)),
            Change::Removed(key) => log::info!("link removed: key {key}"),
            Change::NetnsAdded(i) => log::info!(
                "namespace added: {}",
                links.netns(*i).map_or("?", |n| n.label.as_str())
            ),
            Change::NetnsRemoved(i) => log::info!("namespace {i} gone"),
            Change::Updated(l) => log::debug!("link updated: {}", label_of(&l.netns, &l.name)),
        }
    }
}

/// `netns:link`, or `link` in the agent's own namespace.
pub fn label_of(netns: &str, name: &str) -> String {
    if netns.is_empty() {
        name.to_string()
    } else {
        format!("{netns}:{name}")
    }
}

fn link_label(links: &LinkTable, key: LinkKey) -> String {
    links
        .link(key)
        .map_or_else(|| format!("key {key}"), |l| label_of(&l.netns, &l.name))
}

fn resolve(addr: &str) -> Result<SocketAddr, RunError> {
    let err = |error: String| RunError::Collector {
        addr: addr.to_string(),
        error,
    };
    let mut found = addr
        .to_socket_addrs()
        .map_err(|e| err(format!("{e} (expected HOST:PORT)")))?;
    found
        .next()
        .ok_or_else(|| err("resolves to no address".into()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "board".into())
}
