//! ClickHouse shards for a test: started by scripts/clickhouse.sh in a scratch folder on ports
//! of their own, stopped (by the script's pid files) when dropped, a failing test included.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug)]
pub struct Shards {
    /// The namespace the shards run in (None: this one).
    netns: Option<String>,
    dir: PathBuf,
    base: u16,
    pub urls: Vec<String>,
    /// Shards started again by [`Shards::restart`]: reaped after `down` has stopped them.
    restarted: std::sync::Mutex<Vec<std::process::Child>>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/clickhouse.sh")
}

/// A port base whose 3 x N ports are free now: tests in parallel pick different ones.
fn free_base(tag: &str, shards: u16) -> u16 {
    let mut seed: u32 = std::process::id();
    for b in tag.bytes() {
        seed = seed.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    for attempt in 0..50u32 {
        let base = 20_000 + ((seed.wrapping_add(attempt * 7919)) % 130) as u16 * 300;
        let free = (1..=shards).all(|i| {
            [base + i, base + 100 + i, base + 200 + i]
                .iter()
                .all(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no free port range for ClickHouse");
}

impl Shards {
    pub fn up(tag: &str, shards: u16) -> Shards {
        Shards::up_in(None, tag, shards)
    }

    /// [`up`](Self::up) inside network namespace `netns` (its loopback).
    pub fn up_in(netns: Option<&str>, tag: &str, shards: u16) -> Shards {
        let dir = std::env::temp_dir().join(format!("hopcap-ch-{tag}-{}", std::process::id()));
        let base = free_base(tag, shards);
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "bash"]);
                c
            }
            None => Command::new("bash"),
        };
        let out = cmd
            .arg(script())
            .args(["up", dir.to_str().unwrap(), "--shards", &shards.to_string()])
            .env("HOPCAP_CH_PORT_BASE", base.to_string())
            .output()
            .expect("scripts/clickhouse.sh runs");
        let mut me = Shards {
            netns: netns.map(String::from),
            dir,
            base,
            urls: Vec::new(),
            restarted: Default::default(),
        };
        assert!(
            out.status.success(),
            "clickhouse.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me.urls = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("http://"))
            .map(String::from)
            .collect();
        me
    }

    /// The `--clickhouse` value.
    pub fn spec(&self) -> String {
        self.urls.join(",")
    }

    /// Runs `sql` on shard `i` over HTTP; its answer's body.
    pub fn sql(&self, i: usize, sql: &str) -> String {
        let port = self.base + 1 + i as u16;
        if let Some(ns) = &self.netns {
            // The shard listens on the namespace's loopback: ask from inside it (curl comes
            // with scripts/nats.sh, which the tests in namespaces run).
            let mut child = Command::new("ip")
                .args(["netns", "exec", ns, "curl", "-sS", "--fail-with-body"])
                .args(["--data-binary", "@-", &format!("http://127.0.0.1:{port}/")])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("curl runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(sql.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let body = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{sql}: {body}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return body;
        }
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.contains(" 200 "), "{sql}: {answer}");
        body.to_string()
    }
}

impl Shards {
    fn shard_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("shard{}", i + 1))
    }

    /// SIGKILL of shard `i` (its pid file stays, naming a dead process).
    pub fn kill(&self, i: usize) {
        let pid = std::fs::read_to_string(self.shard_dir(i).join("server.pid")).unwrap();
        let ok = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill shard {i}");
        // Until its port no longer answers.
        let port = self.base + 1 + i as u16;
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts shard `i` again on its config and data (as scripts/clickhouse.sh does), and
    /// waits until it answers.
    pub fn restart(&self, i: usize) {
        let d = self.shard_dir(i);
        let config = format!("--config-file={}", d.join("config.xml").display());
        let log = std::fs::File::create(d.join("stdout.log")).unwrap();
        let as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let mut cmd = if as_root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=clickhouse",
                "--regid=clickhouse",
                "--init-groups",
                "--",
            ]);
            c.arg("clickhouse-server");
            c
        } else {
            Command::new("clickhouse-server")
        };
        let child = cmd
            .arg(config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        std::fs::write(d.join("server.pid"), format!("{}\n", child.id())).unwrap();
        self.restarted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        let port = self.base + 1 + i as u16;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "shard {i} does not come back"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", self.dir.to_str().unwrap()])
            .env("HOPCAP_CH_PORT_BASE", self.base.to_string())
            .status();
        for mut child in self
            .restarted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = child.wait();
        }
    }
}
