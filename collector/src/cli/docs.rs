//! `completions SHELL` and `man DIR`: shell completions and man pages, generated from the same
//! clap definitions that parse the command line, so they cannot drift from it.

use super::{Cli, CmdResult};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Completions for `shell`, on stdout (`hopcap-collector completions bash >
/// /etc/bash_completion.d/hopcap-collector`).
pub fn completions(shell: clap_complete::Shell) -> CmdResult {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hopcap-collector", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `hopcap-collector.1` and one page per command (`hopcap-collector-serve.1`, ...) in `dir`.
pub fn man_pages(dir: &Path) -> CmdResult {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, dir)
        .map_err(|e| format!("cannot write man pages to {}: {e}", dir.display()))?;
    Ok(())
}
