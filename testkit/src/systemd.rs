//! Checks a shipped systemd unit (dist/systemd/) the way systemd itself reads it, without
//! installing or starting it: `systemd-analyze verify` (syntax, every key and value known,
//! the binary present) and `systemd-analyze security --offline` (the exposure score). The
//! unit's `ExecStart=` binary is pointed at the one cargo built.

use crate::ScratchDir;
use std::path::Path;
use std::process::Command;

/// What `systemd-analyze` said of a unit.
#[derive(Debug)]
pub struct UnitCheck {
    /// `verify`'s complaints (stderr and stdout); empty for a clean unit.
    pub complaints: String,
    /// The overall exposure, 0.0 (locked down) to 10.0 (unprotected).
    pub exposure: f32,
    /// The unit's `ExecStart=` words, `${...}` left as they are.
    pub exec_start: Vec<String>,
}

/// Checks the unit at `unit` after replacing `installed` (its ExecStart binary path) by
/// `built`. Panics when systemd-analyze is missing: scripts/test.sh installs it.
pub fn check_unit(unit: &Path, installed: &str, built: &Path) -> UnitCheck {
    let text = std::fs::read_to_string(unit).unwrap_or_else(|e| panic!("{}: {e}", unit.display()));
    assert!(
        text.contains(installed),
        "{} does not run {installed}",
        unit.display()
    );
    let dir = ScratchDir::new("unit").expect("scratch dir");
    let name = unit.file_name().expect("unit file name");
    let copy = dir.path().join(name);
    std::fs::write(&copy, text.replace(installed, &built.display().to_string()))
        .expect("write the unit copy");
    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&copy)
            .output()
            .unwrap_or_else(|e| {
                panic!("systemd-analyze: {e} (apt-get install systemd; scripts/test.sh does)")
            })
    };
    let verify = analyze(&["verify", "--man=no"]);
    let mut complaints = String::from_utf8_lossy(&verify.stderr).into_owned();
    complaints.push_str(&String::from_utf8_lossy(&verify.stdout));
    if !verify.status.success() && complaints.is_empty() {
        complaints = format!("verify exited {}", verify.status);
    }
    let security = analyze(&["security", "--offline=yes", "--no-pager"]);
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure = report
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    let exec_start = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    UnitCheck {
        complaints,
        exposure,
        exec_start,
    }
}

/// The `--long` flags among `words` that `help` (a `--help` text) does not mention.
pub fn unknown_flags(words: &[String], help: &str) -> Vec<String> {
    words
        .iter()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .filter(|flag| {
            !help
                .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                .any(|h| h == flag)
        })
        .collect()
}
