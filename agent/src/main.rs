//! hopcap-agent: for now, reads capture files (`--read FILE --print | --json`).

use hopcap_agent::cli::{Cli, CliError, USAGE};
use hopcap_agent::offline::{self, OfflineError};
use std::io::{self, Write};
use std::process::ExitCode;

/// Exit status for a command line that cannot be run (as clap and getopt tools use).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if cli.help {
        println!("hopcap-agent {}\n\n{USAGE}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!("hopcap-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(path) = cli.read else {
        return usage_error(&CliError::NoInput);
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = offline::print_file(&path, cli.output.unwrap_or_default(), &mut out);
    let flushed = out.flush();
    match result.and_then(|_| flushed.map_err(OfflineError::output)) {
        Ok(_) => ExitCode::SUCCESS,
        // The reader went away (`| head`): not an error worth a message.
        Err(OfflineError::Output { source }) if source.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e @ OfflineError::Io { .. }) | Err(e @ OfflineError::Output { .. }) => {
            eprintln!("hopcap-agent: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hopcap-agent: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn usage_error(e: &CliError) -> ExitCode {
    eprintln!("hopcap-agent: {e}\n\n{USAGE}");
    ExitCode::from(EXIT_USAGE)
}
