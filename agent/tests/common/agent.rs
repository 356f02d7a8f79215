//! The hopcap-agent binary cargo built for these tests, run inside a bed's pi namespace
//! (the board). Its stdout and stderr are collected line by line while it runs; it is
//! stopped with SIGTERM (its clean stop) and killed by PID if a test panics first.

use super::bed::Bed;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hopcap-agent");

/// The emulator that runs [`BIN`] when the tests are cross-built (`HOPCAP_AGENT_RUNNER`, e.g.
/// `qemu-aarch64-static`, set by scripts/build-arm.sh): cargo's runner wraps only the test
/// binary, not the agent it spawns. Empty natively.
pub fn runner() -> Vec<String> {
    std::env::var("HOPCAP_AGENT_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The agent binary as a command, behind the emulator when the tests run under one.
pub fn command() -> Command {
    let mut words = runner();
    words.push(BIN.to_owned());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// The words that run the agent (the emulator first, when there is one).
pub fn argv() -> Vec<String> {
    let mut words = runner();
    words.push(BIN.to_owned());
    words
}

/// Whether the agent runs under qemu-user (no packet ring, no RTM_GETNSID there).
pub fn emulated() -> bool {
    !runner().is_empty()
}

type Lines = Arc<Mutex<Vec<String>>>;

#[derive(Debug)]
pub struct Agent {
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped agent printed.
#[derive(Debug)]
pub struct Finished {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub status: ExitStatus,
}

impl Agent {
    /// Starts the agent on the bed's board with `args`, and returns once it captures in
    /// `namespaces` namespaces (its own counts) and has set their filters.
    pub fn start(bed: &Bed, args: &[&str], namespaces: usize) -> Agent {
        Agent::start_on(bed, "pi", args, namespaces)
    }

    /// [`start`](Self::start) on another role of the bed.
    pub fn start_on(bed: &Bed, role: &str, args: &[&str], namespaces: usize) -> Agent {
        Agent::start_wrapped(&bed.ns(role), &[], args, namespaces)
    }

    /// [`start`](Self::start) in the named namespace `netns` (a bed of another kind).
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_in(netns: &str, args: &[&str], namespaces: usize) -> Agent {
        Agent::start_wrapped(netns, &[], args, namespaces)
    }

    /// [`start_in`](Self::start_in) behind `wrapper` (e.g. `setpriv ...`), which must exec
    /// the agent in its own process so that [`pid`](Self::pid) stays the agent's.
    pub fn start_wrapped(netns: &str, wrapper: &[&str], args: &[&str], namespaces: usize) -> Agent {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(wrapper)
            .args(runner())
            .arg(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hopcap-agent");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        let mut agent = Agent {
            child: Some(child),
            stdout,
            stderr,
            readers,
        };
        agent.wait_ready(namespaces);
        agent
    }

    fn wait_ready(&mut self, namespaces: usize) {
        // Generous: a loaded machine, not a timing claim.
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let capturing = self
                .stderr()
                .iter()
                .filter(|l| l.contains("capturing netns"))
                .count();
            if capturing >= namespaces {
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("agent exited early ({status}): {:#?}", self.stderr());
            }
            assert!(
                Instant::now() < give_up,
                "agent not capturing after 30 s: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The kernel filters are attached right after the sockets open (until then a socket
        // drops everything). An emulated agent (qemu-user: 5-50 times slower) takes longer.
        let settle = if runner().is_empty() { 300 } else { 3000 };
        std::thread::sleep(Duration::from_millis(settle));
    }

    /// The agent's PID (`ip netns exec` and the wrappers exec it in place).
    #[allow(dead_code)] // not every test binary uses it
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("lines").clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lines").clone()
    }

    /// SIGTERM, then everything it printed once it has exited.
    pub fn stop(mut self) -> Finished {
        let mut child = self.child.take().expect("running");
        // The agent holds blocks up to their retire timeout and lines up to 150 ms to sort
        // them: let the last packets reach the output before asking it to stop.
        std::thread::sleep(Duration::from_millis(400));
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, Signal::SIGTERM).expect("SIGTERM to the agent");
        let status = child.wait().expect("wait for the agent");
        for r in self.readers.drain(..) {
            r.join().expect("reader");
        }
        Finished {
            stdout: self.stdout(),
            stderr: self.stderr(),
            status,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn collect(pipe: impl Read + Send + 'static, into: Lines) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            into.lock().expect("lines").push(line);
        }
    })
}
