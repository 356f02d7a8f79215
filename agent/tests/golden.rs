//! Golden tests in the manner of tcpdump's tests/TESTLIST: each line of golden/TESTLIST is
//! `name  pcapfile  options...  expected-output-file`. The agent binary runs as
//! `hopcap-agent --read pcapfile options...` and its stdout must equal the expected file byte
//! for byte. When it exits non-zero or writes to stderr, `expected-output-file.stderr` holds
//! `exit N` and the stderr text. `HOPCAP_BLESS=1` rewrites the expected files instead.
//!
//! A pcapfile is looked up in tests/golden/ first, then in the shared corpus
//! ($HOPCAP_CORPUS, or `shared/corpus/pcap` beside an ancestor of this crate).
//!
//! Cross-built tests run under qemu-user as cargo's runner, but that runner wraps only the test
//! binary: the agent it spawns is an ARM binary too. `HOPCAP_AGENT_RUNNER` (for example
//! `qemu-aarch64-static`, words split on spaces) names the command that runs it then;
//! scripts/build-arm.sh sets it.

use hopcap_testkit::corpus_dir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

struct Case {
    name: String,
    pcap: String,
    options: Vec<String>,
    expected: String,
}

fn read_testlist() -> Vec<Case> {
    let text = fs::read_to_string(golden_dir().join("TESTLIST")).expect("golden/TESTLIST");
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() >= 3,
            "TESTLIST line {}: too few fields: {line}",
            n + 1
        );
        cases.push(Case {
            name: words[0].to_owned(),
            pcap: words[1].to_owned(),
            options: words[2..words.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            expected: words[words.len() - 1].to_owned(),
        });
    }
    cases
}

/// The agent binary, behind `$HOPCAP_AGENT_RUNNER` when that names an emulator.
fn agent_command() -> Command {
    let agent = env!("CARGO_BIN_EXE_hopcap-agent");
    let runner = std::env::var("HOPCAP_AGENT_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(agent);
            command
        }
        None => Command::new(agent),
    }
}

/// Runs the agent from the capture's folder with a bare file name, so that messages naming
/// the file read the same on every machine.
fn run(case: &Case) -> (Vec<u8>, Option<String>) {
    let local = golden_dir().join(&case.pcap);
    let dir = if local.is_file() {
        golden_dir()
    } else {
        corpus_dir()
    };
    assert!(
        dir.join(&case.pcap).is_file(),
        "{}: no file {}",
        case.name,
        case.pcap
    );
    let output = agent_command()
        .current_dir(&dir)
        .arg("--read")
        .arg(&case.pcap)
        .args(&case.options)
        .output()
        .unwrap_or_else(|e| panic!("run hopcap-agent: {e} (cross-built? set HOPCAP_AGENT_RUNNER)"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failure = (!output.status.success() || !stderr.is_empty())
        .then(|| format!("exit {}\n{stderr}", output.status.code().unwrap_or(-1)));
    (output.stdout, failure)
}

/// The first line where two outputs differ, for the failure message.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let (want, got) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    let mut want_lines = want.lines();
    let mut got_lines = got.lines();
    for n in 1.. {
        match (want_lines.next(), got_lines.next()) {
            (None, None) => break,
            (w, g) if w != g => {
                return format!("line {n}:\n  want {w:?}\n  got  {g:?}");
            }
            _ => {}
        }
    }
    "the outputs differ only in line endings".to_owned()
}

#[test]
fn golden_outputs() {
    let bless = std::env::var_os("HOPCAP_BLESS").is_some_and(|v| v == "1");
    let cases = read_testlist();
    assert!(!cases.is_empty(), "TESTLIST has no tests");
    let mut failures = Vec::new();
    for case in &cases {
        let (stdout, stderr) = run(case);
        let out_path = golden_dir().join(&case.expected);
        let err_path = golden_dir().join(format!("{}.stderr", case.expected));
        if bless {
            fs::write(&out_path, &stdout).unwrap();
            match &stderr {
                Some(text) => fs::write(&err_path, text).unwrap(),
                None if err_path.exists() => fs::remove_file(&err_path).unwrap(),
                None => {}
            }
            continue;
        }
        let want = fs::read(&out_path).unwrap_or_default();
        if want != stdout {
            failures.push(format!(
                "{}: stdout differs, {}",
                case.name,
                first_difference(&want, &stdout)
            ));
        }
        let want_err = fs::read_to_string(&err_path).ok();
        if want_err != stderr {
            failures.push(format!(
                "{}: stderr/exit: want {want_err:?}, got {stderr:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden tests failed (HOPCAP_BLESS=1 rewrites them after checking by eye):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
