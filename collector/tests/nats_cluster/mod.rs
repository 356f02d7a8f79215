//! A 3-node NATS JetStream cluster on loopback for a test (scripts/nats.sh), on ports of its
//! own (so tests run in parallel), stopped by its pid files when dropped, also on failure.

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
    dir: PathBuf,
    base: u16,
    pub urls: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

impl Cluster {
    pub fn up(tag: u16) -> Cluster {
        let base = free_base(tag);
        let dir = std::env::temp_dir().join(format!("hopcap-nats-{}-{tag}", std::process::id()));
        let out = Command::new("bash")
            .arg(script())
            .args(["up", dir.to_str().unwrap(), "--nodes", "3", "--partitions"])
            .arg(PARTITIONS.to_string())
            .env("HOPCAP_NATS_PORT_BASE", base.to_string())
            .output()
            .expect("run scripts/nats.sh");
        let cluster = Cluster {
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
        let out = Command::new("bash")
            .arg(script())
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
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", self.dir.to_str().unwrap()])
            .env("HOPCAP_NATS_PORT_BASE", self.base.to_string())
            .status();
    }
}
