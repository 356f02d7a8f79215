//! The beds of scripts/testbed.sh, one per test, named `hce<pid><tag>` so parallel tests and
//! test binaries never share a namespace. The guard exists before the script runs, so a bed
//! that fails half-way up is removed too; Drop removes it also when the test panics.
//!
//! Pi+Docker (`up`):  PREFIX-ctr eth0 172.17.0.2 ─ vethctr ─ PREFIX-pi: docker0, wlan0
//!                    192.168.43.116 (MASQUERADE, DNAT tcp 8080 → 172.17.0.2:80) ─ PREFIX-rtr
//!                    eth0 192.168.43.1, lo 198.51.100.101.
//! Two boards (`up2`): PREFIX-pa 10.244.0.2 ─ PREFIX-a (cni0, flannel.1, eth0 192.168.50.11)
//!                    ═ sw0 in PREFIX-lan ═ PREFIX-b (eth0 192.168.50.12, …) ─ PREFIX-pb
//!                    10.244.1.2; collector host PREFIX-srv 192.168.50.2.

use std::process::{Command, Output, Stdio};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/testbed.sh");

pub const CTR: &str = "172.17.0.2";
pub const WLAN: &str = "192.168.43.116";
pub const RTR: &str = "192.168.43.1";
pub const FAR: &str = "198.51.100.101";
pub const POD_A: &str = "10.244.0.2";
pub const POD_B: &str = "10.244.1.2";
pub const BOARD_A: &str = "192.168.50.11";
pub const BOARD_B: &str = "192.168.50.12";
pub const SRV: &str = "192.168.50.2";

#[derive(Debug)]
pub struct Bed {
    pub prefix: String,
    down: &'static str,
}

impl Bed {
    /// The Pi+Docker bed.
    pub fn pi_docker(tag: &str) -> Bed {
        Bed::make("hce", tag, "up", "down")
    }

    /// The Pi+Docker bed under another name prefix (`<base><pid><tag>`), for a test file
    /// that keeps its namespaces apart from the others' by name.
    pub fn pi_docker_as(base: &str, tag: &str) -> Bed {
        Bed::make(base, tag, "up", "down")
    }

    /// Two boards with a flannel VXLAN overlay and a collector host.
    pub fn two_boards(tag: &str) -> Bed {
        Bed::make("hce", tag, "up2", "down2")
    }

    /// The two-board bed under another name prefix (`<base><pid><tag>`).
    pub fn two_boards_as(base: &str, tag: &str) -> Bed {
        Bed::make(base, tag, "up2", "down2")
    }

    fn make(base: &str, tag: &str, up: &str, down: &'static str) -> Bed {
        let bed = Bed {
            prefix: format!("{base}{}{tag}", std::process::id()),
            down,
        };
        run(Command::new(SCRIPT).args([up, &bed.prefix]));
        bed
    }

    /// The namespace of a role (ctr, pi, rtr; a, b, pa, pb, lan, srv).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// [`exec`](Self::exec) of a command line split at spaces (no quoting).
    pub fn sh(&self, role: &str, line: &str) -> Output {
        self.exec(role, &line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs a command in a role's namespace; panics unless it succeeds.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args))
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .args([self.down, &self.prefix])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
