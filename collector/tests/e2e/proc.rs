//! A process this test started, inside one of its bed's namespaces (`ip netns exec` execs the
//! program, so the child's PID is the program's). Its stdout and stderr go to files in the
//! test's scratch directory, read back while it runs. It is stopped by its PID only: SIGTERM,
//! then SIGKILL if it has not exited within the grace time; also when the test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    out: PathBuf,
    err: PathBuf,
}

/// How long a stopped process may take to exit before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(15);

impl Proc {
    /// Starts `program args...` in namespace `netns`; `name` names its output files in `dir`.
    pub fn spawn(netns: &str, program: &Path, args: &[&str], name: &str, dir: &Path) -> Proc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let file = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            status: None,
            out,
            err,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Whether it still runs (reaps it if it has exited).
    pub fn running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.status = Some(status);
                self.child = None;
                false
            }
            Err(_) => false,
        }
    }

    /// Polls `ready` until it holds; panics with the process's output after `timeout` or if
    /// the process exits first.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Proc) -> bool,
    ) {
        let give_up = Instant::now() + timeout;
        loop {
            if ready(self) {
                return;
            }
            if !self.running() {
                // Its last words may hold the answer.
                if ready(self) {
                    return;
                }
                panic!(
                    "{} exited ({:?}) before {what}:\n{}\n{}",
                    self.name,
                    self.status,
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < give_up,
                "{}: no {what} after {timeout:?}:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for it to exit by itself; SIGTERM then SIGKILL after that.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let give_up = Instant::now() + timeout;
        while self.running() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop()
    }

    /// SIGTERM, and SIGKILL if it has not exited within [`GRACE`].
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Signal `signal` (`TERM`, `INT`), and SIGKILL if it has not exited within [`GRACE`].
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        if let Some(child) = &self.child {
            // The program's own clean stop; `kill` is procps', a PID of our own child.
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
        let give_up = Instant::now() + GRACE;
        while self.running() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }

    /// SIGKILL (std's `Child::kill`), then reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status = Some(status);
            }
        }
        self.status.expect("the process was reaped")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if std::thread::panicking() {
            let tail = |s: String| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(15)..].join("\n")
            };
            eprintln!(
                "--- {} stderr (last lines):\n{}",
                self.name,
                tail(self.stderr())
            );
        }
    }
}
