//! The Pi+Docker bed of scripts/testbed.sh (namespaces PREFIX-ctr, PREFIX-pi, PREFIX-rtr),
//! made per test with a prefix unique to the process and the test, and torn down by a guard
//! also when the test panics. Extra namespaces a test adds (more containers) go with it.

use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::process::{Command, Output, Stdio};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/testbed.sh");

/// Addresses of the bed (see the script's drawing).
pub const CTR: &str = "172.17.0.2";
pub const WLAN: &str = "192.168.43.116";
pub const RTR: &str = "192.168.43.1";
pub const FAR: &str = "198.51.100.101";

#[derive(Debug)]
pub struct Bed {
    pub prefix: String,
    /// Namespaces made beyond the script's three, deleted by exact name.
    extra: Vec<String>,
    /// The script's `down` command for this bed.
    down: &'static str,
}

impl Bed {
    /// `tag` tells this test's bed from the others of the same run.
    pub fn up(tag: &str) -> Bed {
        Bed::make("up", "down", tag)
    }

    /// The script's two boards with a VXLAN overlay (`up2`): roles a, b (boards), pa, pb
    /// (their pods), lan, srv.
    #[allow(dead_code)] // not every test binary uses it
    pub fn up2(tag: &str) -> Bed {
        Bed::make("up2", "down2", tag)
    }

    fn make(up: &str, down: &'static str, tag: &str) -> Bed {
        let bed = Bed {
            prefix: format!("hcit{}{tag}", std::process::id()),
            extra: Vec::new(),
            down,
        };
        // The guard exists before the script runs: a half-made bed is removed too.
        run(Command::new(SCRIPT).args([up, &bed.prefix]));
        bed
    }

    /// The full namespace name of a role: ctr, pi, rtr, or an added container.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Runs a command inside a role's namespace; panics unless it succeeds.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args))
    }

    /// `ip -n <role> args...`
    pub fn ip(&self, role: &str, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.ns(role)]).args(args));
    }

    /// Runs `f` on a fresh thread inside the role's namespace and returns its result. Sockets
    /// made there stay in that namespace wherever they are used afterwards.
    pub fn in_ns<T: Send>(&self, role: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(role));
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("thread in netns")
        })
    }

    /// Another container on docker0, as `docker run` makes it: namespace PREFIX-`name` with
    /// eth0 at `addr`/16, its peer `veth<name>` a port of docker0 in the pi namespace.
    pub fn add_container(&mut self, name: &str, addr: &str) -> String {
        let ns = self.ns(name);
        self.extra.push(ns.clone());
        run(Command::new("ip").args(["netns", "add", &ns]));
        let host_side = format!("veth{name}");
        self.ip(name, &["link", "set", "lo", "up"]);
        self.ip(
            "pi",
            &[
                "link", "add", &host_side, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        self.ip(name, &["addr", "add", &format!("{addr}/16"), "dev", "eth0"]);
        self.ip(name, &["link", "set", "eth0", "up"]);
        self.ip(name, &["route", "add", "default", "via", "172.17.0.1"]);
        self.ip(
            "pi",
            &["link", "set", &host_side, "master", "docker0", "up"],
        );
        host_side
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .args([self.down, &self.prefix])
            .stderr(Stdio::null())
            .status();
        for ns in &self.extra {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
