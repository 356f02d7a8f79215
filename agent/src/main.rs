//! hopcap-agent: live capture on every relevant link of a board (`--print`, `--json`, or
//! `--collector HOST:PORT`), or offline decoding of a capture file (`--read FILE`).

use hopcap_agent::cli::{Cli, CliError, USAGE};
use hopcap_agent::doctor::{self, DoctorConfig, Level};
use hopcap_agent::offline::{self, OfflineError, ReadOptions};
use hopcap_agent::sys::caps::CapSet;
use hopcap_agent::{logger, privileges, run};
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    if let Some(shell) = &cli.completions {
        return print_text(&hopcap_agent::docs::completions(USAGE, shell).unwrap_or_default());
    }
    if cli.man {
        return print_text(&hopcap_agent::docs::man_page(USAGE));
    }
    if cli.list_links {
        return list_links(&cli);
    }
    if cli.doctor {
        return doctor(&cli);
    }
    match &cli.read {
        Some(path) => match cli.read_options() {
            Ok(read) => read_file(path, &read),
            Err(e) => usage_error(&e),
        },
        None => live(&cli),
    }
}

fn live(cli: &Cli) -> ExitCode {
    let level = std::env::var("HOPCAP_LOG")
        .ok()
        .and_then(|s| logger::parse_level(&s))
        .unwrap_or(match cli.live.verbosity {
            i8::MIN..=-2 => log::LevelFilter::Error,
            -1 => log::LevelFilter::Warn,
            0 => log::LevelFilter::Info,
            1 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        });
    logger::init(level);
    let shipped = cli.live.shipped_snap_bytes();
    if shipped < cli.live.snap_bytes {
        log::warn!(
            "--snap-bytes {} is more than --snaplen captures: {shipped} bytes are shipped",
            cli.live.snap_bytes
        );
    }
    // The handler's thread is started after set-up, which drops capabilities: threads
    // inherit their maker's sets, and a thread started before would keep them all. Until
    // then Ctrl-C ends the agent at once, with nothing captured yet to flush.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle_ctrlc = move || {
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
            log::warn!("cannot catch Ctrl-C/SIGTERM ({e}): stopping will not flush");
        }
    };
    match run::run(&cli.run_config(), &stop, handle_ctrlc) {
        Ok(summary) => {
            for line in &summary.lines {
                eprintln!("hopcap-agent: {line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hopcap-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_file(path: &Path, read: &ReadOptions) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // Like tcpdump -r: the file is opened with whatever privileges the user has, and its
    // (possibly hostile) contents are decoded with none.
    let file = match offline::CaptureFile::open(path) {
        Ok(file) => file,
        Err(e) => return read_failed(path, e),
    };
    if let Err(e) = privileges::drop_to(CapSet(0)) {
        eprintln!("hopcap-agent: {e}");
        return ExitCode::FAILURE;
    }
    let result = offline::print_capture(file, read, &mut out);
    let flushed = out.flush();
    match result.and_then(|_| flushed.map_err(OfflineError::output)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => read_failed(path, e),
    }
}

fn read_failed(path: &Path, e: OfflineError) -> ExitCode {
    match e {
        // The reader went away (`| head`): not an error worth a message.
        OfflineError::Output { source } if source.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        e @ (OfflineError::Io { .. } | OfflineError::Output { .. }) => {
            eprintln!("hopcap-agent: {e}");
            ExitCode::FAILURE
        }
        e => {
            eprintln!("hopcap-agent: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn doctor(cli: &Cli) -> ExitCode {
    logger::init(log::LevelFilter::Error);
    let run = cli.run_config();
    let cfg = DoctorConfig {
        links: run.links,
        capture: run.capture,
        collector: cli.live.collector.clone(),
    };
    let findings = doctor::examine(&cfg);
    for f in &findings {
        println!("{f}");
    }
    if findings.iter().any(|f| f.level == Level::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn list_links(cli: &Cli) -> ExitCode {
    logger::init(log::LevelFilter::Warn);
    match hopcap_agent::list::list_links(cli.run_config().links) {
        Ok(lines) => {
            let mut out = io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hopcap-agent: cannot list links (rtnetlink): {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(e: &CliError) -> ExitCode {
    eprintln!("hopcap-agent: {e}\nTry 'hopcap-agent --help' for more information.");
    ExitCode::from(EXIT_USAGE)
}

/// Writes `text` on stdout; a reader that went away is no error.
fn print_text(text: &str) -> ExitCode {
    match io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("hopcap-agent: cannot write output: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
