//! hopcap-collector: ingest from many boards, embedded store, merged timeline and paths.
//! The modules live in the library (src/lib.rs: cli, correlate, ingest, render, store).

use clap::Parser;
use hopcap_collector::cli;

/// Exit status for a command line that cannot be run (clap's).
const EXIT_USAGE: i32 = 2;

fn main() {
    let argv = match cli::config::with_config(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("hopcap-collector: {e}");
            std::process::exit(EXIT_USAGE);
        }
    };
    let args = cli::Cli::parse_from(argv);
    let serving = matches!(args.command, cli::Command::Serve(_));
    let level = match args.verbose {
        0 if serving => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if let Err(e) = cli::run(args) {
        if cli::is_broken_pipe(e.as_ref()) {
            return;
        }
        eprintln!("hopcap-collector: {e}");
        std::process::exit(1);
    }
}
