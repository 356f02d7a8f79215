//! What a live capture is asked to do, as plain values: `cli` builds it from the command
//! line, tests build it by hand. Nothing here does I/O; [`super::LiveCapture::start`] does.

use crate::capture::CaptureConfig;
use crate::links::Options as LinkOptions;
use crate::offline::OutputMode;
pub use crate::run::sink::PcapngConfig;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// This board's name at the collector and in JSON lines; `None`: the hostname.
    pub board: Option<String>,
    /// Which namespaces and links to capture.
    pub links: LinkOptions,
    /// Ring geometry, snap length, recv fallback.
    pub capture: CaptureConfig,
    /// A tcpdump-style expression, compiled into every socket's kernel filter.
    pub filter: Option<String>,
    /// Keep 1 packet in `sample`, chosen by a key that a packet keeps when it is segmented,
    /// merged or fragmented (same on every board); 1 keeps all.
    pub sample: u32,
    /// Added to every timestamp (tests of clock-offset recovery).
    pub clock_offset_ns: i64,
    /// Stop after this many observations ...
    pub count: Option<u64>,
    /// ... or after this long.
    pub duration: Option<Duration>,
    /// Drop every capability the rest of the run does not need once its sockets are open,
    /// and set no_new_privs (the binary does; tests running in-process may not).
    pub drop_privileges: bool,
    /// Where observations go: `cli` gives one; each gets its own sink. (Callers may add
    /// sinks of their own with [`super::LiveCapture::add_sink`].)
    pub outputs: Vec<Output>,
}

/// Where observations go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Lines on stdout, all namespaces merged in time order.
    Stdout(OutputMode),
    /// Batches to a collector.
    Collector(CollectorConfig),
    /// The frames themselves, as pcapng (`-w`).
    Pcapng(PcapngConfig),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorConfig {
    /// `HOST:PORT[,HOST:PORT...]` ([`collector_addrs`]), resolved when the capture starts.
    pub addr: String,
    /// Byte budget of encoded batches held while the collector is away.
    pub queue_bytes: usize,
    pub security: Security,
    /// Frame bytes shipped with each observation (`--snap-bytes`, for `hopcap-collector
    /// export`); 0: none, the records alone.
    pub snap_bytes: u16,
}

/// How the connection to the collector is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP (`--insecure`): anyone on the path reads and forges it.
    Insecure,
    /// Noise IK with the board's key file (`--key`); the collector's public key comes from
    /// `collector_pub` (`--collector-pub`) or else from the key file.
    Noise {
        key: PathBuf,
        collector_pub: Option<PathBuf>,
    },
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            board: None,
            links: LinkOptions::default(),
            capture: CaptureConfig::default(),
            filter: None,
            sample: 1,
            clock_offset_ns: 0,
            count: None,
            duration: None,
            drop_privileges: false,
            outputs: vec![Output::Stdout(OutputMode::default())],
        }
    }
}

/// The entries of a `--collector` list (a scaled mode's ingest nodes), in order.
pub fn collector_addrs(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim)
}
