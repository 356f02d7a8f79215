//! The agent's command line. Parsing only fills [`Cli`]; `main` decides what to run, so new
//! flags (live capture, collector address, ...) are one field and one match arm each.

pub use crate::offline::OutputMode;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: hopcap-agent --read FILE [--print | --json]

Options:
  -r, --read FILE   read packets from a pcap or pcapng file instead of capturing
      --print       print one tcpdump-like line per packet (the default)
      --json        print one JSON object per packet
  -h, --help        print this help
  -V, --version     print the version";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cli {
    pub help: bool,
    pub version: bool,
    /// `--read FILE`: packets come from this capture file.
    pub read: Option<PathBuf>,
    /// `--print` / `--json`; `None` when neither was given.
    pub output: Option<OutputMode>,
}

/// A command line that cannot be run; its Display is the message for stderr.
#[derive(Debug)]
pub enum CliError {
    Parse(lexopt::Error),
    /// Two flags that exclude each other.
    Conflict(&'static str, &'static str),
    /// Nothing to do: no input was named.
    NoInput,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Parse(e) => write!(f, "{e}"),
            CliError::Conflict(a, b) => write!(f, "{a} and {b} cannot be used together"),
            CliError::NoInput => write!(f, "live capture is not available yet: use --read FILE"),
        }
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError::Parse(e)
    }
}

impl Cli {
    /// Parses arguments (without the program name).
    pub fn parse<I>(args: I) -> Result<Cli, CliError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        use lexopt::prelude::*;
        let mut cli = Cli::default();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => cli.help = true,
                Short('V') | Long("version") => cli.version = true,
                Short('r') | Long("read") => cli.read = Some(parser.value()?.into()),
                Long("print") => cli.set_output(OutputMode::Print)?,
                Long("json") => cli.set_output(OutputMode::Json)?,
                _ => return Err(arg.unexpected().into()),
            }
        }
        if !cli.help && !cli.version && cli.read.is_none() {
            return Err(CliError::NoInput);
        }
        Ok(cli)
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
        assert_eq!((cli.read, cli.output), (Some(PathBuf::from("c.pcap")), None));
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
        assert!(matches!(parse(&[]).unwrap_err(), CliError::NoInput));
    }
}
