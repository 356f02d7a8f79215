//! The real hopcap-collector: `serve` inside a bed namespace (killed and restarted on the same
//! database when a test asks), the query commands run on the database file, and direct
//! SQLite reads of what it stored (WAL mode lets a reader look while it writes).
//!
//! It serves over Noise with keys made by `hopcap-collector keys init` in the test's scratch
//! directory (`DIR/keys`), unless the test passes `--insecure`; [`board_key`] makes a board's
//! key there (the agent helper passes it as `--key`).

use super::bins;
use super::proc::Proc;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Generous: a loaded 2-core CI machine, not a timing claim.
pub const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Collector {
    pub db: PathBuf,
    netns: String,
    listen: String,
    dir: PathBuf,
    proc: Option<Proc>,
    starts: usize,
    /// More `serve` arguments, at every start.
    extra: Vec<String>,
}

impl Collector {
    /// `serve --listen listen --db dir/hopcap.db` in `netns`; returns once it listens.
    pub fn start(netns: &str, listen: &str, dir: &Path) -> Collector {
        Collector::start_with(netns, listen, dir, &[])
    }

    /// [`start`](Self::start) with more `serve` arguments (kept for restarts).
    pub fn start_with(netns: &str, listen: &str, dir: &Path, extra: &[&str]) -> Collector {
        let mut c = Collector {
            db: dir.join("hopcap.db"),
            netns: netns.to_string(),
            listen: listen.to_string(),
            dir: dir.to_path_buf(),
            proc: None,
            starts: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        c.restart();
        c
    }

    /// Starts it again on the same database (after [`kill9`](Self::kill9)).
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "the collector still runs");
        self.starts += 1;
        let db = self.db.to_string_lossy().into_owned();
        let mut args = vec!["serve", "--listen", &self.listen];
        // With --clickhouse (among the extra arguments) the store is ClickHouse, not the file.
        if !self.extra.iter().any(|a| a == "--clickhouse") {
            args.extend(["--db", &db]);
        }
        let keys = keys_dir(&self.dir);
        let (key, trusted) = (
            keys.join("collector.key").to_string_lossy().into_owned(),
            keys.join("trusted-boards").to_string_lossy().into_owned(),
        );
        if !self.extra.iter().any(|a| a == "--insecure") {
            init_keys(&self.dir);
            args.extend(["--key", &key, "--trusted", &trusted]);
        }
        args.extend(self.extra.iter().map(String::as_str));
        let mut p = Proc::spawn(
            &self.netns,
            bins::collector(),
            &args,
            &format!("collector{}", self.starts),
            &self.dir,
        );
        p.wait_for("listening", PATIENCE, |p| {
            p.stderr().contains("listening on")
        });
        self.proc = Some(p);
    }

    /// SIGKILL: no goodbye, no final commit, sockets reset by the kernel.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// A clean stop (SIGTERM: commit and exit).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let status = p.stop();
            assert!(status.success(), "collector exit: {status}\n{}", p.stderr());
        }
    }

    /// Everything this collector (all its starts) logged.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.dir.join(format!("collector{i}.err"))))
            .filter_map(Result::ok)
            .collect()
    }

    /// `hopcap-collector <cmd> --db DB --json [extra...]`, one JSON value per line.
    pub fn json(&self, cmd: &str, extra: &[&str]) -> Vec<Value> {
        let out = Command::new(bins::collector())
            .arg(cmd)
            .arg("--db")
            .arg(&self.db)
            .arg("--json")
            .args(extra)
            .output()
            .expect("run hopcap-collector");
        assert!(
            out.status.success(),
            "hopcap-collector {cmd}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8 output")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// `GET http://addr/metrics` from inside the collector's namespace, parsed by
    /// Prometheus's Python parser (python3-prometheus-client): every sample as
    /// `(name, labels, value)`.
    pub fn scrape(&self, addr: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
        const SCRIPT: &str = "import json, sys, urllib.request\n\
            from prometheus_client.parser import text_string_to_metric_families as parse\n\
            text = urllib.request.urlopen('http://' + sys.argv[1] + '/metrics', timeout=10).read().decode()\n\
            print(json.dumps([[s.name, s.labels, s.value] for f in parse(text) for s in f.samples]))";
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "/usr/bin/python3",
                "-c",
                SCRIPT,
                addr,
            ])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "scrape: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v.as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap_or_default().to_string(),
                    s[1].as_object().cloned().unwrap_or_default(),
                    s[2].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    /// A read connection to the database.
    pub fn sql(&self) -> Connection {
        let c = Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .expect("open the database");
        c.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        c
    }

    /// One integer from a query (0 while the tables do not exist yet).
    pub fn count(&self, query: &str) -> i64 {
        if !self.db.exists() {
            return 0;
        }
        self.sql()
            .query_row(query, [], |r| r.get::<_, Option<i64>>(0))
            .map(Option::unwrap_or_default)
            .unwrap_or(0)
    }

    /// Polls `query` until it returns at least `n`; panics after [`PATIENCE`].
    pub fn wait_count(&self, what: &str, query: &str, n: i64) -> i64 {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let got = self.count(query);
            if got >= n {
                return got;
            }
            assert!(
                Instant::now() < give_up,
                "{what}: {got} of {n} after {PATIENCE:?}\ncollector log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `query` gives the same value for `quiet` (the agent has nothing left to
    /// send); returns that value.
    pub fn wait_stable(&self, query: &str, quiet: Duration) -> i64 {
        let give_up = Instant::now() + PATIENCE;
        let (mut last, mut since) = (self.count(query), Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.count(query);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return now;
            }
            assert!(Instant::now() < give_up, "{query}: still changing");
        }
    }
}

/// The fleet's keys of a test: `dir/keys`.
pub fn keys_dir(dir: &Path) -> PathBuf {
    dir.join("keys")
}

/// `hopcap-collector keys init dir/keys`, once.
pub fn init_keys(dir: &Path) {
    let keys = keys_dir(dir);
    if !keys.join("collector.key").exists() {
        keys_cmd(&["init"], &keys, &[]);
    }
}

/// `hopcap-collector keys SUB DIR args...`, which must succeed.
pub fn keys_cmd(sub: &[&str], dir: &Path, args: &[&str]) {
    let out = Command::new(bins::collector())
        .arg("keys")
        .args(sub)
        .arg(dir)
        .args(args)
        .output()
        .expect("run hopcap-collector keys");
    assert!(
        out.status.success(),
        "keys {sub:?} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The key file of board `name` (made and trusted by `keys add` the first time).
pub fn board_key(dir: &Path, name: &str) -> PathBuf {
    init_keys(dir);
    let keys = keys_dir(dir);
    let path = keys.join("boards").join(format!("{name}.key"));
    if !path.exists() {
        keys_cmd(&["add"], &keys, &[name]);
    }
    path
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

/// `paths --json --filter icmp` of a store (`--db FILE` or `--clickhouse URLS`), run in
/// `netns`: each journey's hop links by fingerprint.
pub fn icmp_journeys(
    netns: &str,
    store: &[&str],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(super::bins::collector())
        .args([&["paths", "--json", "--filter", "icmp"][..], store].concat())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let hops: Vec<String> = v["hops"]
                .as_array()
                .map(|h| h.iter().map(|h| h["link"].to_string()).collect())
                .unwrap_or_default();
            (v["fingerprint"].to_string(), hops)
        })
        .collect()
}
