//! The agent's command line. Parsing only fills [`Cli`]; `main` decides what to run, so new
//! flags (live capture, collector address, ...) are one field and one match arm each.
//! [`Cli::run_config`] turns the live flags into the plain [`RunConfig`] that `run` takes.

use crate::capture::{ring_budget, CaptureConfig};
use crate::config_file;
use crate::links::{NetnsSpec, Options as LinkOptions};
pub use crate::offline::OutputMode;
use crate::offline::ReadOptions;
use crate::run::{CollectorConfig, Output, PcapngConfig, RunConfig, Security};
use hopcap_proto::batch::MAX_SNAP_BYTES;
use hopcap_proto::filter::{Filter, ParseError};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: hopcap-agent [--collector HOST:PORT] [--print | --json] [-w FILE] [OPTIONS]
       hopcap-agent --read FILE [--print | --json] [--filter EXPR] [-c N] [--sample N] [-i GLOB]

Live capture (root, or CAP_NET_RAW; + CAP_SYS_ADMIN, CAP_SYS_PTRACE for --netns):
      --collector HOST:PORT  stream observations to hopcap-collector, encrypted (Noise) with:
                             (HOST:PORT,HOST:PORT,...: ingest nodes, the next tried when one
                             does not answer)
      --key FILE             this board's key file (`hopcap-collector keys init/add` makes it;
                             it names the board and pins the collector's public key)
      --collector-pub FILE   the collector's public key, if the key file does not carry it
      --insecure             plaintext, unauthenticated TCP instead (trusted networks only)
      --print                print one tcpdump-like line per packet (default without --collector)
      --json                 print one JSON object per packet
  -w, --write FILE           write the captured frames as pcapng for Wireshark (- is stdout),
                             one interface per netns:link; alone, nothing is printed
  -C, --rotate-mb N          with -w: start FILE1, FILE2... after every N million bytes
  -G, --rotate-secs N        with -w: start the next file every N seconds
      --id NAME              this board's name at the collector (default: the key file's
                             board, else the hostname)
  -i, --interface GLOB       capture only links matching GLOB (name or netns:name; repeatable,
                             comma lists allowed; default: every up, non-loopback link)
      --exclude GLOB         never capture links matching GLOB (repeatable)
      --netns SPEC           other network namespaces to capture: none (default), all
                             (/run/netns/* and every container's), or NAME,NAME...
      --filter EXPR          tcpdump-style filter (host/net/port/proto, tcp/udp/icmp/icmp6/arp,
                             vlan, and/or/not), compiled to classic BPF in the kernel
      --sample N             keep 1 packet in N, chosen by a key that a packet keeps when it
                             is segmented, merged or fragmented (same on every board)
      --snaplen N            bytes captured per frame (default 192: headers + fingerprint)
      --snap-bytes N         with --collector: also ship each frame's first N bytes (at most
                             the snaplen), for the collector's pcapng export; off by default
                             (costs about N more bytes per observation)
      --ring-kb N            ring memory in KiB, all namespaces together (default 1792): the
                             board's namespace gets it all, or half with --netns, each
                             other namespace a quarter
      --queue-kb N           send queue in KiB while the collector is away (default 512)
      --recv                 use recvmsg() instead of the mmap ring
  -c, --count N              stop after N observations
      --duration SECS        stop after SECS seconds
  -v, --verbose / -q, --quiet  more / less logging (or HOPCAP_LOG=debug)

Offline:
  -r, --read FILE            read packets from a pcap or pcapng file (- for stdin) instead of
                             capturing; --filter, -c, --sample and -i/--exclude (on pcapng
                             interface names) apply as they do live

  -D, --list-links           list the links (with --netns, -i, --exclude: those of other
                             namespaces too) and whether each would be captured, then exit
      --doctor               check this board (kernel, ring, optmem_max and filters,
                             capabilities, runtimes, links, the collector) and say how to fix
                             what stands in the way; exit 1 if capture cannot work
      --config FILE          read flags from a TOML file first: `name = value` per long flag
                             (`interface = ['eth*', 'wlan0']`, `insecure = true`); flags
                             given here override the file's (lists are replaced, not extended)
      --completions SHELL    print a completion script for bash, zsh or fish, then exit
      --man                  print the man page (roff: `hopcap-agent --man | man -l -`)
  -h, --help                 print this help
  -V, --version              print the version";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cli {
    pub help: bool,
    pub version: bool,
    /// `--list-links` / `-D`: print what would be captured, then exit.
    pub list_links: bool,
    /// `--doctor`: check the board, then exit.
    pub doctor: bool,
    /// `--completions SHELL`: print the completion script, then exit.
    pub completions: Option<String>,
    /// `--man`: print the man page, then exit.
    pub man: bool,
    /// `--config FILE`: flags read from this TOML file before the command line's.
    pub config: Option<PathBuf>,
    /// `--read FILE`: packets come from this capture file.
    pub read: Option<PathBuf>,
    /// `--print` / `--json`; `None` when neither was given.
    pub output: Option<OutputMode>,
    pub live: LiveOptions,
}

/// Everything live capture takes from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    pub collector: Option<String>,
    /// `--key FILE`.
    pub key: Option<PathBuf>,
    /// `--collector-pub FILE`.
    pub collector_pub: Option<PathBuf>,
    pub insecure: bool,
    pub id: Option<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub netns: String,
    pub filter: Option<String>,
    pub sample: u32,
    pub snaplen: u32,
    /// `--snap-bytes N`: 0 when not given.
    pub snap_bytes: u16,
    pub ring_kb: u32,
    pub queue_kb: u32,
    pub force_recv: bool,
    pub count: Option<u64>,
    pub duration_secs: Option<u64>,
    /// `-w FILE`.
    pub write: Option<PathBuf>,
    pub rotate_mb: Option<u64>,
    pub rotate_secs: Option<u64>,
    /// -v minus -q.
    pub verbosity: i8,
    pub clock_offset_us: i64,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            collector: None,
            key: None,
            collector_pub: None,
            insecure: false,
            id: None,
            include: Vec::new(),
            exclude: Vec::new(),
            netns: "none".into(),
            filter: None,
            sample: 1,
            snaplen: 192,
            snap_bytes: 0,
            ring_kb: (crate::capture::DEFAULT_RING_BUDGET / 1024) as u32,
            queue_kb: 512,
            force_recv: false,
            count: None,
            duration_secs: None,
            write: None,
            rotate_mb: None,
            rotate_secs: None,
            verbosity: 0,
            clock_offset_us: 0,
        }
    }
}

impl LiveOptions {
    /// `--snap-bytes` as shipped: no more than was captured (`--snaplen`).
    pub fn shipped_snap_bytes(&self) -> u16 {
        u16::try_from(self.snaplen).map_or(self.snap_bytes, |s| self.snap_bytes.min(s))
    }
}

/// A command line that cannot be run; its Display is the message for stderr.
#[derive(Debug)]
pub enum CliError {
    Parse(lexopt::Error),
    /// Two flags that exclude each other.
    Conflict(&'static str, &'static str),
    /// A number outside its flag's range.
    Range {
        flag: &'static str,
        value: String,
        min: String,
        max: String,
    },
    /// A flag that only means something with another.
    Needs(&'static str, &'static str),
    /// `--filter` does not parse.
    Filter {
        expr: String,
        error: ParseError,
    },
    /// `--collector` without `--key` or `--insecure`.
    NoKey,
    /// `--config FILE` cannot be read.
    ConfigFile {
        path: PathBuf,
        error: String,
    },
    /// A line of the `--config` file that cannot be used.
    Config {
        path: PathBuf,
        line: usize,
        what: String,
    },
    /// A flag's value is out of range or malformed.
    Value {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Parse(e) => write!(f, "{e}"),
            CliError::Conflict(a, b) => write!(f, "{a} and {b} cannot be used together"),
            CliError::Needs(a, b) => write!(f, "{a} needs {b}"),
            CliError::Range {
                flag,
                value,
                min,
                max,
            } => write!(f, "{flag} {value}: out of range (from {min} to {max})"),
            CliError::Filter { expr, error } => write!(f, "--filter {expr:?}: {error}"),
            CliError::Value { flag, value, why } => write!(f, "{flag} {value:?}: {why}"),
            CliError::ConfigFile { path, error } => {
                write!(f, "--config {}: {error}", path.display())
            }
            CliError::Config { path, line, what } => write!(f, "{}:{line}: {what}", path.display()),
            CliError::NoKey => f.write_str(
                "--collector needs --key FILE, this board's key: make the fleet's keys on the \
                 collector with `hopcap-collector keys init DIR --boards NAME,...` (or `keys add \
                 DIR NAME`) and copy DIR/boards/NAME.key to the board; or --insecure for \
                 plaintext",
            ),
        }
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError::Parse(e)
    }
}

/// Keys of a `--config` file that are actions, not settings.
const NOT_IN_FILE: [&str; 7] = [
    "help",
    "version",
    "config",
    "completions",
    "man",
    "doctor",
    "list-links",
];
/// Repeatable flags: a file gives them as a list.
const LISTS: [&str; 2] = ["interface", "exclude"];
/// Counted switches: a file may give how many times (`verbose = 2` is -vv).
const COUNTED: [&str; 2] = ["verbose", "quiet"];

/// What a long flag is, found by parsing it alone (so the match in [`Cli::apply`] stays the
/// one flag table).
enum FlagKind {
    Unknown,
    Switch,
    Valued,
}

impl Cli {
    /// Parses arguments (without the program name). With `--config FILE`, the file's flags
    /// are read first and the command line's after them, so that the command line wins; its
    /// `-i`/`--exclude` lists and `--print`/`--json` replace the file's.
    pub fn parse<I>(args: I) -> Result<Cli, CliError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut given = Cli::default();
        given.apply(args.clone())?;
        let cli = match given.config.take() {
            Some(path) => {
                let mut cli = Cli::default();
                cli.apply_file(&path)?;
                if !given.live.include.is_empty() {
                    cli.live.include.clear();
                }
                if !given.live.exclude.is_empty() {
                    cli.live.exclude.clear();
                }
                if given.output.is_some() {
                    cli.output = None;
                }
                cli.apply(args)?;
                cli
            }
            None => given,
        };
        cli.check()?;
        Ok(cli)
    }

    /// The flags of a `--config` file, each checked as on the command line; errors name the
    /// file, the line and the key.
    fn apply_file(&mut self, path: &std::path::Path) -> Result<(), CliError> {
        let bytes = std::fs::read(path).map_err(|e| CliError::ConfigFile {
            path: path.into(),
            error: e.to_string(),
        })?;
        let at = |line, what| CliError::Config {
            path: path.into(),
            line,
            what,
        };
        let entries = config_file::read(&bytes).map_err(|e| at(e.line, e.kind.to_string()))?;
        for entry in &entries {
            self.apply_entry(entry)
                .map_err(|what| at(entry.line, format!("{}: {what}", entry.key)))?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, entry: &config_file::Entry) -> Result<(), String> {
        use config_file::Value;
        let key = entry.key.as_str();
        let flag = format!("--{key}");
        if NOT_IN_FILE.contains(&key) {
            return Err(format!(
                "an action, not a setting: give {flag} on the command line"
            ));
        }
        let args: Vec<String> = match (self.flag_kind(&flag), &entry.value) {
            (FlagKind::Unknown, _) => {
                return Err(format!("unknown key (hopcap-agent has no {flag} flag)"))
            }
            (FlagKind::Switch, Value::Bool(on)) => [flag].into_iter().filter(|_| *on).collect(),
            (FlagKind::Switch, Value::Int(n @ 0..=9)) if COUNTED.contains(&key) => {
                vec![flag; *n as usize]
            }
            (FlagKind::Switch, _) if COUNTED.contains(&key) => {
                return Err("true, false or a count from 0 to 9".into())
            }
            (FlagKind::Switch, _) => return Err("a switch: true or false".into()),
            (FlagKind::Valued, Value::Bool(_)) => {
                return Err(format!("takes a value as {flag} does, not true or false"))
            }
            (FlagKind::Valued, Value::Str(s)) => vec![format!("{flag}={s}")],
            (FlagKind::Valued, Value::Int(n)) => vec![format!("{flag}={n}")],
            (FlagKind::Valued, Value::List(items)) if LISTS.contains(&key) => {
                items.iter().map(|i| format!("{flag}={i}")).collect()
            }
            (FlagKind::Valued, Value::List(_)) => return Err("takes one value, not a list".into()),
        };
        self.apply(args.into_iter().map(OsString::from).collect())
            .map_err(|e| e.to_string())
    }

    fn flag_kind(&self, flag: &str) -> FlagKind {
        match Cli::default().apply(vec![flag.into()]) {
            Err(CliError::Parse(lexopt::Error::UnexpectedOption(_))) => FlagKind::Unknown,
            Err(CliError::Parse(lexopt::Error::MissingValue { .. })) => FlagKind::Valued,
            _ => FlagKind::Switch,
        }
    }

    /// Reads flags into `self`: later ones override earlier ones, repeatable ones add up.
    /// Not generic: one copy of this big match in the binary.
    fn apply(&mut self, args: Vec<OsString>) -> Result<(), CliError> {
        use lexopt::prelude::*;
        let cli = self;
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => cli.help = true,
                Short('V') | Long("version") => cli.version = true,
                Short('D') | Long("list-links") => cli.list_links = true,
                Long("doctor") => cli.doctor = true,
                Long("completions") => {
                    let shell = string(&mut parser)?;
                    if !crate::docs::SHELLS.contains(&shell.as_str()) {
                        return Err(CliError::Value {
                            flag: "--completions",
                            value: shell,
                            why: "one of bash, zsh, fish",
                        });
                    }
                    cli.completions = Some(shell);
                }
                Long("man") => cli.man = true,
                Long("config") => cli.config = Some(parser.value()?.into()),
                Short('r') | Long("read") => cli.read = Some(parser.value()?.into()),
                Long("print") => cli.set_output(OutputMode::Print)?,
                Long("json") => cli.set_output(OutputMode::Json)?,
                Long("collector") => cli.live.collector = Some(string(&mut parser)?),
                Long("key") => cli.live.key = Some(parser.value()?.into()),
                Long("collector-pub") => cli.live.collector_pub = Some(parser.value()?.into()),
                Long("insecure") => cli.live.insecure = true,
                Long("id") => cli.live.id = Some(string(&mut parser)?),
                Short('i') | Long("interface") => cli.live.include.push(string(&mut parser)?),
                Long("exclude") => cli.live.exclude.push(string(&mut parser)?),
                Long("netns") => cli.live.netns = string(&mut parser)?,
                Long("filter") => cli.live.filter = Some(string(&mut parser)?),
                Long("sample") => cli.live.sample = number(&mut parser, "--sample", 1, 1 << 24)?,
                Long("snaplen") => cli.live.snaplen = number(&mut parser, "--snaplen", 64, 65535)?,
                Long("snap-bytes") => {
                    cli.live.snap_bytes = number(&mut parser, "--snap-bytes", 1, MAX_SNAP_BYTES)?
                }
                Long("ring-kb") => {
                    cli.live.ring_kb = number(&mut parser, "--ring-kb", 16, 1 << 20)?
                }
                Long("queue-kb") => {
                    cli.live.queue_kb = number(&mut parser, "--queue-kb", 16, 1 << 22)?
                }
                Long("recv") => cli.live.force_recv = true,
                Short('c') | Long("count") => {
                    cli.live.count = Some(number(&mut parser, "--count", 1, u64::MAX)?)
                }
                Long("duration") => {
                    cli.live.duration_secs = Some(number(&mut parser, "--duration", 1, 1 << 32)?)
                }
                Short('w') | Long("write") => cli.live.write = Some(parser.value()?.into()),
                Short('C') | Long("rotate-mb") => {
                    cli.live.rotate_mb = Some(number(&mut parser, "-C", 1, 1 << 30)?)
                }
                Short('G') | Long("rotate-secs") => {
                    cli.live.rotate_secs = Some(number(&mut parser, "-G", 1, 1 << 32)?)
                }
                Short('v') | Long("verbose") => cli.live.verbosity += 1,
                Short('q') | Long("quiet") => cli.live.verbosity -= 1,
                Long("debug-clock-offset-us") => {
                    cli.live.clock_offset_us = number(
                        &mut parser,
                        "--debug-clock-offset-us",
                        -(1i64 << 40),
                        1 << 40,
                    )?
                }
                _ => return Err(arg.unexpected().into()),
            }
        }
        Ok(())
    }

    /// The rules between flags, once all are read.
    fn check(&self) -> Result<(), CliError> {
        let cli = self;
        if cli.read.is_some() && cli.live.collector.is_some() {
            return Err(CliError::Conflict("--read", "--collector"));
        }
        if cli.live.snap_bytes > 0 && cli.live.collector.is_none() && !cli.doctor {
            return Err(CliError::Needs("--snap-bytes", "--collector"));
        }
        if cli.read.is_some() && cli.live.write.is_some() {
            return Err(CliError::Conflict("--read", "-w"));
        }
        let live = &cli.live;
        // --doctor and -D only look (the doctor tries a TCP connection): no key needed.
        let streams = !cli.doctor && !cli.list_links;
        if streams && live.collector.is_some() && live.key.is_none() && !live.insecure {
            return Err(CliError::NoKey);
        }
        if live.insecure && (live.key.is_some() || live.collector_pub.is_some()) {
            return Err(CliError::Conflict("--insecure", "--key/--collector-pub"));
        }
        if live.collector.is_none() && (live.key.is_some() || live.insecure) {
            return Err(CliError::Needs("--key/--insecure", "--collector"));
        }
        if live.collector_pub.is_some() && live.key.is_none() {
            return Err(CliError::Needs("--collector-pub", "--key"));
        }
        let to_stdout = cli.live.write.as_deref() == Some(std::path::Path::new("-"));
        if to_stdout && cli.output.is_some() {
            return Err(CliError::Conflict("-w -", "--print/--json"));
        }
        if cli.live.write.is_none() {
            if cli.live.rotate_mb.is_some() {
                return Err(CliError::Needs("-C", "-w FILE"));
            }
            if cli.live.rotate_secs.is_some() {
                return Err(CliError::Needs("-G", "-w FILE"));
            }
        } else if to_stdout && (cli.live.rotate_mb.is_some() || cli.live.rotate_secs.is_some()) {
            return Err(CliError::Conflict("-w -", "-C/-G"));
        }
        Ok(())
    }

    /// What live capture is to do. Without `--collector`, output goes to stdout (`--print`
    /// unless `--json`).
    pub fn run_config(&self) -> RunConfig {
        let live = &self.live;
        let mut links = LinkOptions {
            netns: NetnsSpec::parse(&live.netns),
            ..LinkOptions::default()
        };
        live.include.iter().for_each(|g| links.include(g));
        live.exclude.iter().for_each(|g| links.exclude(g));
        let mut outputs = Vec::new();
        if let Some(addr) = &live.collector {
            let security = match &live.key {
                Some(key) => Security::Noise {
                    key: key.clone(),
                    collector_pub: live.collector_pub.clone(),
                },
                None => Security::Insecure,
            };
            outputs.push(Output::Collector(CollectorConfig {
                addr: addr.clone(),
                queue_bytes: live.queue_kb as usize * 1024,
                security,
                snap_bytes: live.shipped_snap_bytes(),
            }));
        }
        if let Some(path) = &live.write {
            outputs.push(Output::Pcapng(PcapngConfig {
                path: path.clone(),
                rotate_bytes: live.rotate_mb.map(|mb| mb * 1_000_000),
                rotate_every: live.rotate_secs.map(Duration::from_secs),
                snaplen: live.snaplen,
            }));
        }
        // Lines on stdout when asked, or when nothing else would get the packets.
        if self.output.is_some() || outputs.is_empty() {
            outputs.push(Output::Stdout(self.output.unwrap_or_default()));
        }
        let others = !matches!(links.netns, NetnsSpec::None);
        let (ring, other_ring) = ring_budget(live.ring_kb as usize * 1024, others);
        RunConfig {
            board: live.id.clone(),
            links,
            capture: CaptureConfig {
                ring,
                other_ring,
                snaplen: live.snaplen,
                force_recv: live.force_recv,
                ..CaptureConfig::default()
            },
            filter: live.filter.clone(),
            sample: live.sample,
            // --debug-clock-offset-us is bounded to ±2^40 µs, so this cannot overflow.
            clock_offset_ns: live.clock_offset_us * 1000,
            count: live.count,
            duration: live.duration_secs.map(Duration::from_secs),
            drop_privileges: true,
            outputs,
        }
    }

    /// What `--read` prints: the file's packets that `--filter`, `-i`/`--exclude` and
    /// `--sample` keep, up to `-c`.
    pub fn read_options(&self) -> Result<ReadOptions, CliError> {
        let live = &self.live;
        let filter = match &live.filter {
            Some(expr) => Some(Filter::parse(expr).map_err(|error| CliError::Filter {
                expr: expr.clone(),
                error,
            })?),
            None => None,
        };
        let mut links = LinkOptions::default();
        live.include.iter().for_each(|g| links.include(g));
        live.exclude.iter().for_each(|g| links.exclude(g));
        Ok(ReadOptions {
            mode: self.output.unwrap_or_default(),
            filter,
            sample: live.sample,
            count: live.count,
            links,
        })
    }

    fn set_output(&mut self, mode: OutputMode) -> Result<(), CliError> {
        match self.output {
            Some(old) if old != mode => Err(CliError::Conflict("--print", "--json")),
            _ => {
                self.output = Some(mode);
                Ok(())
            }
        }
    }
}

fn string(parser: &mut lexopt::Parser) -> Result<String, CliError> {
    use lexopt::ValueExt;
    Ok(parser.value()?.string()?)
}

fn number<T>(parser: &mut lexopt::Parser, flag: &'static str, min: T, max: T) -> Result<T, CliError>
where
    T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
{
    let raw = string(parser)?;
    match raw.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        Ok(_) => Err(CliError::Range {
            flag,
            value: raw,
            min: min.to_string(),
            max: max.to_string(),
        }),
        Err(_) => Err(CliError::Value {
            flag,
            value: raw,
            why: "not a number",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, CliError> {
        Cli::parse(args.iter().copied())
    }

    #[test]
    fn read_with_each_output() {
        let cli = parse(&["--read", "a.pcap", "--json"]).unwrap();
        assert_eq!(cli.read, Some(PathBuf::from("a.pcap")));
        assert_eq!(cli.output, Some(OutputMode::Json));
        let cli = parse(&["-r", "b.pcapng", "--print"]).unwrap();
        assert_eq!(cli.output, Some(OutputMode::Print));
        let cli = parse(&["--read=c.pcap"]).unwrap();
        assert_eq!(
            (cli.read, cli.output),
            (Some(PathBuf::from("c.pcap")), None)
        );
    }

    #[test]
    fn help_and_version_need_no_input() {
        assert!(parse(&["--help"]).unwrap().help);
        assert!(parse(&["-V"]).unwrap().version);
    }

    #[test]
    fn bad_command_lines() {
        let e = parse(&["--read", "a.pcap", "--frobnicate"]).unwrap_err();
        assert!(e.to_string().contains("--frobnicate"), "{e}");
        let e = parse(&["--read"]).unwrap_err();
        assert!(e.to_string().contains("--read"), "{e}");
        let e = parse(&["--read", "a", "--print", "--json"]).unwrap_err();
        assert!(matches!(e, CliError::Conflict(..)));
        let e = parse(&["--sample", "0"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--sample 0: out of range (from 1 to 16777216)"
        );
        let e = parse(&["--snaplen", "lots"]).unwrap_err();
        assert_eq!(e.to_string(), "--snaplen \"lots\": not a number");
    }

    #[test]
    fn live_flags() {
        let cli = parse(&[
            "--collector",
            "10.0.0.1:7878",
            "--insecure",
            "-i",
            "eth*,wlan0",
            "--exclude",
            "veth9",
            "--netns",
            "all",
            "--filter",
            "icmp or port 53",
            "--sample",
            "10",
            "-vv",
            "-c",
            "5",
            "--debug-clock-offset-us",
            "-37000",
        ])
        .unwrap();
        assert_eq!(cli.live.collector.as_deref(), Some("10.0.0.1:7878"));
        assert_eq!(cli.live.include, vec!["eth*,wlan0".to_string()]);
        assert_eq!(cli.live.exclude, vec!["veth9".to_string()]);
        assert_eq!(cli.live.netns, "all");
        assert_eq!(cli.live.filter.as_deref(), Some("icmp or port 53"));
        assert_eq!(
            (cli.live.sample, cli.live.verbosity, cli.live.count),
            (10, 2, Some(5))
        );
        assert_eq!(cli.live.clock_offset_us, -37000);
        assert!(parse(&[]).unwrap().read.is_none());
    }

    /// A config file named for this process and `name` (tests run in parallel), and its path.
    fn config(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("hopcap-agent-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn with_config(path: &std::path::Path, args: &[&str]) -> Result<Cli, CliError> {
        let mut all = vec!["--config".to_string(), path.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        Cli::parse(all)
    }

    #[test]
    fn a_config_file_gives_flags_and_the_command_line_overrides_them() {
        let path = config(
            "agent.toml",
            "# a board\n\
             collector = \"10.0.0.1:7878\"\n\
             key = \"/etc/hopcap/board.key\"\n\
             netns = \"all\"\n\
             interface = [\"eth*\", \"wlan0\"]\n\
             exclude = [\"veth9\"]\n\
             sample = 10\n\
             recv = true\n\
             verbose = 2\n\
             quiet = false\n\
             json = true\n",
        );
        let cli = with_config(&path, &[]).unwrap();
        let file_only = Cli::parse([
            "--collector",
            "10.0.0.1:7878",
            "--key",
            "/etc/hopcap/board.key",
            "--netns",
            "all",
            "-i",
            "eth*",
            "-i",
            "wlan0",
            "--exclude",
            "veth9",
            "--sample",
            "10",
            "--recv",
            "-vv",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.live, file_only.live);
        assert_eq!(cli.output, Some(OutputMode::Json));

        // Scalars and the output mode are overridden, lists replaced, counts added.
        let cli = with_config(&path, &["--sample", "3", "-i", "lo", "-q", "--print"]).unwrap();
        assert_eq!(cli.live.sample, 3);
        assert_eq!(cli.live.include, ["lo"]);
        assert_eq!(cli.live.exclude, ["veth9"], "not given: the file's");
        assert_eq!(cli.live.verbosity, 1);
        assert_eq!(cli.output, Some(OutputMode::Print));
        // The rules between flags see both: the file's collector with --insecure conflicts
        // with the file's key.
        let e = with_config(&path, &["--insecure"]).unwrap_err();
        assert!(matches!(e, CliError::Conflict("--insecure", _)), "{e}");
        // A collector in the file needs the key there or here.
        let path = config("nokey.toml", "collector = \"h:1\"\n");
        assert!(matches!(with_config(&path, &[]), Err(CliError::NoKey)));
        assert!(with_config(&path, &["--insecure"]).is_ok());
        std::fs::remove_file(
            path.with_file_name(format!("hopcap-agent-{}-agent.toml", std::process::id())),
        )
        .unwrap();
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_shipped_example_config_reads() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/hopcap-agent.toml");
        let cli = Cli::parse(["--config", example]).unwrap();
        assert_eq!(cli.live.collector.as_deref(), Some("collector.lan:7878"));
        assert_eq!(cli.live.netns, "all");
    }

    #[test]
    fn a_config_file_is_checked_as_the_flags_are() {
        let path = config("bad.toml", "");
        let shown = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let e = with_config(&path, &[]).unwrap_err().to_string();
            e.strip_prefix(&format!("{}:", path.display()))
                .unwrap_or(&e)
                .to_string()
        };
        // The flags' own messages.
        assert_eq!(
            shown("# sampling\nsample = 0\n"),
            "2: sample: --sample 0: out of range (from 1 to 16777216)"
        );
        assert_eq!(
            shown("snaplen = \"lots\""),
            "1: snaplen: --snaplen \"lots\": not a number"
        );
        assert_eq!(
            shown("completions = \"tcsh\""),
            "1: completions: an action, not a setting: give --completions on the command line"
        );
        assert_eq!(
            shown("frobnicate = 1"),
            "1: frobnicate: unknown key (hopcap-agent has no --frobnicate flag)"
        );
        assert_eq!(
            shown("i = \"eth0\""),
            "1: i: unknown key (hopcap-agent has no --i flag)"
        );
        assert_eq!(
            shown("insecure = \"yes\""),
            "1: insecure: a switch: true or false"
        );
        assert_eq!(
            shown("verbose = 12"),
            "1: verbose: true, false or a count from 0 to 9"
        );
        assert_eq!(
            shown("collector = true"),
            "1: collector: takes a value as --collector does, not true or false"
        );
        assert_eq!(
            shown("filter = [\"icmp\"]"),
            "1: filter: takes one value, not a list"
        );
        assert_eq!(
            shown("sample = 2\n[agent]\n"),
            "2: a [table] is not supported by hopcap-agent's config reader"
        );
        assert_eq!(
            shown("print = true\njson = true"),
            "2: json: --print and --json cannot be used together"
        );
        // A value that starts like a flag is still the value.
        std::fs::write(&path, "filter = \"--not-a-flag\"").unwrap();
        let cli = with_config(&path, &[]).unwrap();
        assert_eq!(cli.live.filter.as_deref(), Some("--not-a-flag"));
        // The file itself.
        let missing = path.with_file_name("missing.toml");
        let e = with_config(&missing, &[]).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--config {}: ", missing.display())),
            "{e}"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn snap_bytes_go_to_the_collector_clamped_to_the_snaplen() {
        let snap = |args: &[&str]| {
            let cli = parse(args).unwrap();
            match &cli.run_config().outputs[0] {
                Output::Collector(c) => c.snap_bytes,
                other => panic!("{other:?}"),
            }
        };
        let base = ["--collector", "h:1", "--insecure", "--snap-bytes"];
        assert_eq!(snap(&[&base[..], &["128"]].concat()), 128);
        assert_eq!(
            snap(&[&base[..], &["1500", "--snaplen", "256"]].concat()),
            256
        );
        let e = parse(&[&base[..], &["0"]].concat()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--snap-bytes 0: out of range (from 1 to 2048)"
        );
        let e = parse(&["--snap-bytes", "96"]).unwrap_err();
        assert_eq!(e.to_string(), "--snap-bytes needs --collector");
    }

    #[test]
    fn a_collector_needs_a_key_or_insecure() {
        let e = parse(&["--collector", "10.0.0.1:7878"]).unwrap_err();
        assert!(matches!(e, CliError::NoKey));
        assert!(e.to_string().contains("hopcap-collector keys init"), "{e}");
        let cli = parse(&["--collector", "h:1", "--insecure"]).unwrap();
        let Output::Collector(c) = &cli.run_config().outputs[0] else {
            panic!("a collector output")
        };
        assert_eq!(c.security, Security::Insecure);
        let cli = parse(&["--collector", "h:1", "--key", "k", "--collector-pub", "c"]).unwrap();
        let Output::Collector(c) = &cli.run_config().outputs[0] else {
            panic!("a collector output")
        };
        assert_eq!(
            c.security,
            Security::Noise {
                key: "k".into(),
                collector_pub: Some("c".into())
            }
        );
        assert!(parse(&["--collector", "h:1", "--key", "k", "--insecure"]).is_err());
        assert!(parse(&["--key", "k"]).is_err());
        assert!(parse(&["--collector", "h:1", "--collector-pub", "c", "--insecure"]).is_err());
        assert!(
            parse(&["--doctor", "--collector", "h:1"]).is_ok(),
            "the doctor only looks"
        );
    }

    #[test]
    fn live_flags_make_a_run_config() {
        let cfg = parse(&[
            "--collector",
            "10.0.0.1:7878",
            "--key",
            "/etc/hopcap/board.key",
            "--queue-kb",
            "64",
            "--ring-kb",
            "1024",
            "--snaplen",
            "96",
            "--recv",
            "-i",
            "eth*,wlan0",
            "--netns",
            "all",
            "--duration",
            "3",
            "--debug-clock-offset-us",
            "-37000",
        ])
        .unwrap()
        .run_config();
        assert_eq!(
            cfg.outputs,
            [Output::Collector(CollectorConfig {
                addr: "10.0.0.1:7878".into(),
                queue_bytes: 64 * 1024,
                security: Security::Noise {
                    key: "/etc/hopcap/board.key".into(),
                    collector_pub: None
                },
                snap_bytes: 0,
            })]
        );
        // 1 MiB in all: half for the board's namespace, a quarter for each container's.
        assert_eq!(
            (
                cfg.capture.ring.block_count,
                cfg.capture.other_ring.block_count
            ),
            (8, 4)
        );
        assert_eq!((cfg.capture.snaplen, cfg.capture.force_recv), (96, true));
        let Output::Collector(c) = &cfg.outputs[0] else {
            panic!("a collector output")
        };
        assert_eq!(c.snap_bytes, 0, "off by default");
        assert_eq!(cfg.links.include, ["eth*", "wlan0"]);
        assert_eq!(cfg.links.netns, NetnsSpec::All);
        assert_eq!(cfg.duration, Some(Duration::from_secs(3)));
        assert_eq!(cfg.clock_offset_ns, -37_000_000);
        let cfg = parse(&["--json"]).unwrap().run_config();
        assert_eq!(cfg.outputs, [Output::Stdout(OutputMode::Json)]);
        assert_eq!((cfg.board, cfg.sample, cfg.count), (None, 1, None));
        // 1.75 MiB, all for the board's own namespace: 14 blocks of 128 KiB.
        assert_eq!(
            (cfg.capture.ring.block_count, cfg.capture.ring.block_size),
            (14, 128 * 1024)
        );
    }
}
