//! The command line: `serve` (ingest into the store), and the query commands `timeline`,
//! `boards`, `paths`, `flows`, `diagram` and `report` that read the store.

pub mod boards;
pub mod config;
pub mod correlate;
pub mod diagram;
pub mod docs;
pub mod export;
pub mod keys;
pub mod links;
pub mod paths;
pub mod report;
pub mod serve;
pub mod timeline;

use crate::select::Selection;
use crate::store::sqlite::retention::Retention;
use crate::time;
use clap::{Args, Parser, Subcommand};
use hopcap_proto::filter::Filter;
use std::net::SocketAddr;
use std::path::PathBuf;

/// hopcap collector: ingests from many boards into one SQLite file, merges one timeline,
/// rebuilds each packet's path hop by hop.
#[derive(Parser, Debug)]
#[command(name = "hopcap-collector", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Read flags from this TOML file too: long flag names as keys, top level or in a
    /// [command] table; flags given here win (see the README).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Accept agent connections and store what they send.
    Serve(ServeArgs),
    /// Print the merged timeline of every board, one line per observation.
    Timeline(TimelineArgs),
    /// List the boards, their state and their loss counters.
    Boards(BoardsArgs),
    /// List each board's links as its agent last reported them: the topology.
    Links(LinksArgs),
    /// Rebuild each packet's path hop by hop.
    Paths(PathsArgs),
    /// Summarise flows across boards.
    Flows(QueryArgs),
    /// Draw the hops and the paths over them (SVG, Graphviz dot or Mermaid).
    Diagram(DiagramArgs),
    /// Write one self-contained HTML page: diagram, paths, latency, loss, clocks, drops.
    Report(ReportArgs),
    /// Write the selected packets as pcapng for Wireshark, one interface per hop (agents
    /// must run with --snap-bytes for their packets to have bytes).
    Export(ExportArgs),
    /// Scaled mode: take one partition of what ingest nodes publish to NATS JetStream and
    /// store it in ClickHouse (README "Scaling out").
    Correlate(CorrelateArgs),
    /// Make and revoke the fleet's keys (Noise): the collector's and one per board.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (hopcap-collector.1 and one per command) into DIR.
    Man { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make DIR/collector.key (0600), DIR/collector.pub, DIR/trusted-boards and
    /// DIR/boards/NAME.key (0600) for each board, to copy to that board.
    Init {
        dir: PathBuf,
        /// Board names, comma-separated.
        #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
        boards: Vec<String>,
    },
    /// Make DIR/boards/NAME.key for a new board and trust it (new connections only).
    Add {
        dir: PathBuf,
        name: String,
        /// Trust this existing public key (64 hex digits) instead of making a key.
        #[arg(long, value_name = "HEX")]
        public: Option<String>,
    },
    /// Stop trusting board NAME: refused from its next connection on, and a live connection
    /// of it is cut within about a second.
    Revoke { dir: PathBuf, name: String },
}

#[derive(Args, Debug, Clone)]
pub struct DbArg {
    /// The database file.
    #[arg(long, value_name = "FILE", default_value = "hopcap.db")]
    pub db: PathBuf,
    /// Store in (or read from) ClickHouse instead of the file: every shard's HTTP URL,
    /// comma-separated, in the order of its cluster `hopcap` (scripts/clickhouse.sh up prints
    /// them); the first also holds the boards, links and runs.
    #[arg(long, value_name = "URL,...", conflicts_with = "db")]
    pub clickhouse: Option<String>,
}

impl DbArg {
    /// The store these flags name, for reading.
    pub fn reader(
        &self,
    ) -> Result<Box<dyn crate::store::StoreReader + Send>, Box<dyn std::error::Error>> {
        use crate::store::clickhouse::ClickhouseReader;
        use crate::store::sqlite::SqliteReader;
        Ok(match &self.clickhouse {
            Some(urls) => Box::new(ClickhouseReader::open(urls)?),
            None => Box::new(SqliteReader::open(&self.db)?),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct CorrelateArgs {
    /// The NATS JetStream cluster the ingest nodes publish to: its nodes' nats:// URLs,
    /// comma-separated.
    #[arg(long, value_name = "URL,...")]
    pub nats: String,
    /// A partition this correlator takes, K/N with K from 0 and N the servers' mapping;
    /// repeat it to take several. The correlator of partition 0 also stores the boards'
    /// metadata (hello, links, tallies).
    #[arg(long, value_name = "K/N", value_parser = parse_partition, required = true)]
    pub partition: Vec<(u32, u32)>,
    /// Replicas of each JetStream stream, if this correlator creates them.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub replicas: u64,
    /// The ClickHouse shards to store into: every shard's HTTP URL, comma-separated, in the
    /// order of its cluster `hopcap`.
    #[arg(long, value_name = "URL,...")]
    pub clickhouse: String,
    /// How long a journey must go without a new sighting before it is stored (as
    /// `paths --follow --settle-ms`).
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub settle_ms: u64,
}

/// `K/N` with K < N.
fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: give K/N, e.g. 0/3"))?;
    let k: u32 = k.parse().map_err(|_| format!("{s:?}: K is not a number"))?;
    let n: u32 = n.parse().map_err(|_| format!("{s:?}: N is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("{s:?}: K must be below N (K counts from 0)"));
    }
    Ok((k, n))
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to accept agents on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:7878")]
    pub listen: SocketAddr,
    /// The collector's private key (`keys init DIR` makes DIR/collector.key).
    #[arg(
        long,
        value_name = "FILE",
        requires = "trusted",
        conflicts_with = "insecure"
    )]
    pub key: Option<PathBuf>,
    /// The boards accepted, with their public keys (DIR/trusted-boards); read again when it
    /// changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "insecure"
    )]
    pub trusted: Option<PathBuf>,
    /// Plaintext, unauthenticated TCP: anyone who reaches the port can store rows under any
    /// board name. Trusted networks and tests only.
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub db: DbArg,
    /// Delete observations older than this many hours (by capture time).
    #[arg(long, value_name = "HOURS")]
    pub retain_hours: Option<f64>,
    /// Keep the database's data pages under this many MiB, deleting the oldest observations.
    #[arg(long, value_name = "MIB")]
    pub retain_mb: Option<u64>,
    /// Also build these optional indexes (comma-separated: fingerprint, link, flow). Each
    /// speeds up queries without a time window and slows ingest (see the README).
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = ["fingerprint", "link", "flow"])]
    pub index: Vec<String>,
    /// Close a connection that sends nothing for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Refuse connections beyond this many at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Serve Prometheus metrics (/metrics) and a health check (/healthz) over plain HTTP on
    /// this address (port 0: any free port, logged).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Test knob: wait this many milliseconds before every commit (acks lag accordingly).
    #[arg(long, value_name = "MS", default_value_t = 0, hide = true)]
    pub debug_commit_delay_ms: u64,
    /// Scaled mode: publish what agents send to this NATS JetStream cluster (its nodes'
    /// nats:// URLs, comma-separated) instead of storing it; `correlate` nodes store it
    /// (README "Scaling out").
    #[arg(long, value_name = "URL,...")]
    pub nats: Option<String>,
    /// Scaled mode: the N of the NATS servers' `partition(N, 1)` subject mapping.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
    /// Scaled mode: replicas of each JetStream stream (at most the cluster's nodes).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub replicas: u64,
}

impl ServeArgs {
    pub fn retention(&self) -> Result<Retention, String> {
        let max_age_ns = match self.retain_hours {
            Some(h) if !(h > 0.0 && h.is_finite()) => {
                return Err(format!("--retain-hours must be a positive number, not {h}"))
            }
            Some(h) => Some((h * 3600.0 * 1e9) as i64),
            None => None,
        };
        let max_bytes = match self.retain_mb {
            Some(0) => return Err("--retain-mb must be at least 1".into()),
            Some(mb) => Some(mb.saturating_mul(1024 * 1024)),
            None => None,
        };
        Ok(Retention {
            max_age_ns,
            max_bytes,
        })
    }
}

/// Which observations: time window, board, link, filter expression.
#[derive(Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Start (inclusive): RFC 3339 (2026-11-26T12:00:00Z), Unix seconds, or relative (-10m).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// End (exclusive), same forms as --since.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only this board (its name).
    #[arg(long, value_name = "B")]
    pub board: Option<String>,
    /// Only this link: a name (eth0) or a label as printed (pi1:eth0, pi1:netns:veth0).
    #[arg(long, value_name = "L")]
    pub link: Option<String>,
    /// A filter expression (e.g. "tcp and port 80").
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
}

impl WindowArgs {
    /// The time bounds in ns since the epoch.
    pub fn bounds(&self, now_ns: i64) -> Result<(Option<i64>, Option<i64>), String> {
        let since = self
            .since
            .as_deref()
            .map(|s| time::parse_time(s, now_ns))
            .transpose();
        let until = self
            .until
            .as_deref()
            .map(|s| time::parse_time(s, now_ns))
            .transpose();
        let (since, until) = (
            since.map_err(|e| format!("--since: {e}"))?,
            until.map_err(|e| format!("--until: {e}"))?,
        );
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err("--since must be before --until".into());
            }
        }
        Ok((since, until))
    }

    /// The flags as given, for a page's or file's header (`everything` without any).
    pub fn describe(&self) -> String {
        let flags = [
            ("--since", &self.since),
            ("--until", &self.until),
            ("--board", &self.board),
            ("--link", &self.link),
            ("--filter", &self.filter),
        ];
        let parts: Vec<String> = flags
            .iter()
            .filter_map(|(flag, v)| v.as_ref().map(|v| format!("{flag} {v:?}")))
            .collect();
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(" ")
        }
    }

    /// The selection these flags make.
    pub fn selection(&self, now_ns: i64) -> Result<Selection, String> {
        let (since_ns, until_ns) = self.bounds(now_ns)?;
        let filter = self
            .filter
            .as_deref()
            .map(|e| Filter::parse(e).map_err(|err| format!("--filter {e:?}: {err}")))
            .transpose()?;
        Ok(Selection {
            since_ns,
            until_ns,
            board: self.board.clone(),
            link: self.link.clone(),
            filter,
        })
    }
}

/// What the query commands share: the database, which observations, the output form.
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub window: WindowArgs,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// At most this many results: lines (timeline, before --follow's new ones), packets
    /// (paths) or flows (flows).
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
}

#[derive(Args, Debug, Clone)]
pub struct PathsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Keep printing journeys as they complete, each once: one that has had no new
    /// sighting for --settle-ms.
    #[arg(long, short)]
    pub follow: bool,
    /// With --follow: how long a journey must go without a new sighting before it is
    /// printed.
    #[arg(long, value_name = "MS", default_value_t = 2000, requires = "follow")]
    pub settle_ms: u64,
    /// Print the journeys the scaled mode's correlators built and stored (`correlate`),
    /// rather than correlating the stored rows; with --clickhouse. Without the clock lines:
    /// each correlator estimated the clocks as it went.
    #[arg(long, conflicts_with = "follow")]
    pub built: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Keep printing new observations as they arrive (like tail -f).
    #[arg(long, short)]
    pub follow: bool,
    /// Times of day in this machine's time zone (TZ, /etc/localtime), not UTC.
    #[arg(long)]
    pub local_time: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LinksArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Only this board (its name).
    #[arg(long, value_name = "B")]
    pub board: Option<String>,
    /// Also the links that went (or were renamed).
    #[arg(long)]
    pub all: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BoardsArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DiagramArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub window: WindowArgs,
    /// svg (drawn here, no Graphviz needed), dot (Graphviz) or mermaid.
    #[arg(long, value_name = "FORMAT", default_value = "svg", value_parser = ["svg", "dot", "mermaid"])]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub window: WindowArgs,
    /// The page to write (one file: styles and pictures inline, nothing fetched).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub window: WindowArgs,
    /// The file to write (- for standard output).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub pcapng: PathBuf,
    /// Which sightings of each packet: all (those after its first carry the comment
    /// `hopcap.dup`), its first or last hop, or the one on LINK (as --link takes it).
    #[arg(long, value_name = "first|last|LINK", default_value = "all")]
    pub hop: String,
}

pub type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Serve(args) => serve::serve(&args),
        Command::Correlate(args) => correlate::run(&args),
        Command::Timeline(args) => timeline::run(&*args.query.db.reader()?, &args),
        Command::Boards(args) => boards::run(&*args.db.reader()?, &args),
        Command::Links(args) => links::run(&*args.db.reader()?, &args),
        Command::Paths(args) => {
            let reader = args.query.db.reader()?;
            if args.follow {
                paths::follow(&*reader, &args)
            } else if args.built {
                paths::run_built(&*reader, &args.query)
            } else {
                paths::run_paths(&*reader, &args.query)
            }
        }
        Command::Flows(args) => paths::run_flows(&*args.db.reader()?, &args),
        Command::Diagram(args) => diagram::run(&*args.db.reader()?, &args),
        Command::Report(args) => report::run(&*args.db.reader()?, &args),
        Command::Export(args) => export::run(&*args.db.reader()?, &args),
        Command::Keys(cmd) => keys::run(&cmd),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man_pages(&dir),
    }
}

/// On stderr, so that JSON on stdout stays clean: why a query printed nothing.
fn say_nothing_matched(reader: &dyn crate::store::StoreReader) -> CmdResult {
    if reader.last_cursor()? == crate::store::Cursor::default() {
        eprintln!("hopcap-collector: no observations stored yet");
    } else {
        eprintln!("hopcap-collector: no observations match");
    }
    Ok(())
}

/// True for a write error that means the reader went away (`| head`): exit quietly.
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes `bytes` to `path` (created or truncated); the error names the file.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> CmdResult {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}
