//! A 3-node NATS JetStream cluster for a test (scripts/nats.sh): on loopback on ports of its
//! own (so tests run in parallel), or inside a test's namespace; stopped by its pid files
//! when dropped, also on failure.

use std::path::PathBuf;
use std::process::Command;

pub const PARTITIONS: u32 = 3;

/// A port base whose client (base+i), cluster (+2000) and monitoring (+4000) ports are free
/// now, spread by process and tag so parallel tests (and ClickHouse's shards) miss each other.
fn free_base(tag: u16) -> u16 {
    let seed = std::process::id()
        .wrapping_mul(31)
        .wrapping_add(u32::from(tag));
    for attempt in 0..50u32 {
        let base = 21_000 + (seed.wrapping_add(attempt * 7919) % 1000) as u16 * 3;
        let free = (0..3u16).all(|i| {
            [base + i, base + 2000 + i, base + 4000 + i]
                .iter()
                .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no free ports for a NATS cluster");
}

/// A cluster this test started, stopped (by its pid files) when dropped.
pub struct Cluster {
    netns: Option<String>,
    dir: PathBuf,
    base: u16,
    pub urls: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

/// `bash scripts/nats.sh`, in `netns` when given.
fn nats_sh(netns: Option<&str>) -> Command {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "bash"]);
            c
        }
        None => Command::new("bash"),
    };
    c.arg(script());
    c
}

impl Cluster {
    #[allow(dead_code)] // not every test runs on loopback
    pub fn up(tag: u16) -> Cluster {
        Cluster::up_in(None, tag)
    }

    /// In `netns` (a fresh namespace: the default ports are free there), or on loopback.
    pub fn up_in(netns: Option<&str>, tag: u16) -> Cluster {
        let base = if netns.is_some() {
            14_222
        } else {
            free_base(tag)
        };
        let dir = std::env::temp_dir().join(format!("hopcap-nats-{}-{tag}", std::process::id()));
        let out = nats_sh(netns)
            .args(["up", dir.to_str().unwrap(), "--nodes", "3", "--partitions"])
            .arg(PARTITIONS.to_string())
            .env("HOPCAP_NATS_PORT_BASE", base.to_string())
            .output()
            .expect("run scripts/nats.sh");
        let cluster = Cluster {
            netns: netns.map(String::from),
            dir,
            base,
            urls: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        };
        assert!(
            out.status.success(),
            "nats.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    #[allow(dead_code)] // not every test kills nodes
    pub fn node(&self, verb: &str, k: u32) {
        let out = nats_sh(self.netns.as_deref())
            .args([verb, self.dir.to_str().unwrap(), &k.to_string()])
            .env("HOPCAP_NATS_PORT_BASE", self.base.to_string())
            .output()
            .expect("run scripts/nats.sh");
        assert!(
            out.status.success(),
            "nats.sh {verb} {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = nats_sh(self.netns.as_deref())
            .args(["down", self.dir.to_str().unwrap()])
            .env("HOPCAP_NATS_PORT_BASE", self.base.to_string())
            .status();
    }
}
