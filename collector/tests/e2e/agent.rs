//! The real hopcap-agent on a board namespace of a bed, and what it says about itself when
//! it stops (its summary on stderr: frames kept, records acknowledged and dropped, kernel
//! drops), which the tests hold the collector's accounting against.

use super::bins;
use super::collector::{board_key, PATIENCE};
use super::proc::Proc;
use std::path::Path;

#[derive(Debug)]
pub struct Agent {
    pub proc: Proc,
}

/// The agent's own report, parsed from its last lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub frames_seen: u64,
    pub kept: u64,
    pub records_acked: u64,
    pub batches_acked: u64,
    pub records_dropped: u64,
    /// Given up after they were written: the collector knows whether they were stored.
    pub records_unconfirmed: u64,
    pub connects: u64,
    pub kernel_drops: u64,
}

impl Agent {
    /// Starts `hopcap-agent args...` in `netns` and waits until it captures in `namespaces`
    /// namespaces (and, with --collector, has connected). With `--collector` and neither
    /// `--key` nor `--insecure`, the board's key (named by `--id`) is made in `dir`'s keys
    /// (see [`super::collector::board_key`]) and passed as `--key`: the test runs on Noise.
    pub fn start(netns: &str, args: &[&str], namespaces: usize, name: &str, dir: &Path) -> Agent {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        if has("--collector") && !has("--key") && !has("--insecure") {
            let id = args
                .iter()
                .position(|a| a == "--id")
                .and_then(|i| args.get(i + 1))
                .expect("a collector test names its board with --id")
                .clone();
            let key = board_key(dir, &id);
            args.extend(["--key".into(), key.to_string_lossy().into_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut proc = Proc::spawn(netns, bins::agent(), &args, name, dir);
        proc.wait_for("capture in every namespace", PATIENCE, |p| {
            p.stderr().matches("capturing netns").count() >= namespaces
        });
        if args.contains(&"--collector") {
            proc.wait_for("a collector connection", PATIENCE, |p| p.connects() >= 1);
        }
        Agent { proc }
    }

    /// SIGTERM (the agent's clean stop: flush, stats, bye, up to 3 s for acks), then its
    /// summary.
    pub fn stop(self) -> Summary {
        self.stop_with_output().0
    }

    /// [`stop`](Self::stop), and what it printed on stdout (`--json`, `--print`).
    pub fn stop_with_output(self) -> (Summary, String) {
        self.stop_with_signal("TERM")
    }

    /// [`stop_with_output`](Self::stop_with_output) by `signal` (`TERM` or `INT`).
    pub fn stop_with_signal(mut self, signal: &str) -> (Summary, String) {
        let status = self.proc.stop_with(signal);
        let err = self.proc.stderr();
        assert!(status.success(), "agent exit: {status}\n{err}");
        (Summary::parse(&err), self.proc.stdout())
    }
}

impl Proc {
    /// Connections the agent has logged so far.
    pub fn connects(&self) -> usize {
        self.stderr().matches("connected to collector").count()
    }
}

/// The first number in `text` after `after`.
fn number_after(text: &str, after: &str) -> Option<u64> {
    let rest = &text[text.find(after)? + after.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The number just before `before` on `line`.
fn number_before(line: &str, before: &str) -> Option<u64> {
    let head = &line[..line.find(before)?];
    head.split_whitespace().last()?.parse().ok()
}

impl Summary {
    pub fn parse(stderr: &str) -> Summary {
        let mut s = Summary::default();
        for line in stderr.lines() {
            if line.contains("frames seen") {
                s.frames_seen = number_after(line, "hopcap-agent:").unwrap_or(0);
                s.kept = number_before(line, " observations kept").unwrap_or(0);
            } else if line.contains(" mode, ") && line.contains("kernel drops") {
                s.kernel_drops += number_after(line, "kernel drops").unwrap_or(0);
            } else if line.contains("hopcap-agent: collector:") {
                s.records_acked = number_after(line, "collector:").unwrap_or(0);
                s.batches_acked = number_before(line, " batches acknowledged").unwrap_or(0);
                s.records_dropped = number_before(line, " records dropped").unwrap_or(0);
                s.records_unconfirmed = number_before(line, " records unconfirmed").unwrap_or(0);
                s.connects = number_before(line, " connects").unwrap_or(0);
            }
        }
        assert!(s.frames_seen > 0, "no agent summary in:\n{stderr}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary() {
        let err = "hopcap-agent info: connected to collector 192.168.50.2:7878\n\
            hopcap-agent: 164 frames seen, 160 observations kept in 3.8s\n\
            hopcap-agent: own namespace: Ring mode, 130 frames, kernel drops 2, ring full 0 times, losing 0\n\
            hopcap-agent: x-pa: Ring mode, 34 frames, kernel drops 3, ring full 0 times, losing 0\n\
            hopcap-agent:   eth0: 42 packets\n\
            hopcap-agent: collector: 150 records in 12 batches acknowledged (3460 bytes sent, 21.1 bytes/record), 7 records dropped, 3 records unconfirmed (sent, not acknowledged: `hopcap-collector boards` says whether they were stored), 2 connects, 5 failed connects\n";
        let s = Summary::parse(err);
        assert_eq!(
            s,
            Summary {
                frames_seen: 164,
                kept: 160,
                records_acked: 150,
                batches_acked: 12,
                records_dropped: 7,
                records_unconfirmed: 3,
                connects: 2,
                kernel_drops: 5,
            }
        );
    }
}
