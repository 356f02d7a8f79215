//! The store through the command line: a database filled through the library's writer, read
//! back by `timeline`, `boards` and the error paths of the query commands.

use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::BoardHello;
use hopcap_collector::store::{BoardId, LinkId, ObservationBatch};
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc::sync_channel;

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");
/// 2026-11-26T12:00:00Z
const T0: u64 = 1_795_694_400_000_000_000;

/// Two boards, each with 50 packets seen on three links (one in a container namespace).
fn fill(path: &Path) {
    let w =
        WriterHandle::spawn(open_for_writing(path).unwrap(), WriterConfig::default(), 8).unwrap();
    for (i, name) in ["pi1", "pi2"].into_iter().enumerate() {
        let (reply, answer) = sync_channel(1);
        let hello = BoardHello {
            name: name.into(),
            boot_id: "0011".into(),
            agent_version: "test".into(),
            capture: String::new(),
            remote: "127.0.0.1:9".into(),
            board_clock_ns: None,
        };
        let links = vec![
            veth(0, "", "eth0"),
            veth(1, "", "cni0"),
            veth(2, "web", "eth0"),
        ];
        w.sender()
            .send(WriteCmd::Hello {
                hello,
                links,
                reply,
            })
            .unwrap();
        let s = answer.recv().unwrap().unwrap();
        let mut g = SampleGen::new(i as u64 + 1, T0 + i as u64 * 7_000);
        for seq in 0..5u64 {
            let rows = (0..10)
                .flat_map(|_| g.packet(&[0, 1, 2], 3))
                .map(|o| (s.links[o.link as usize].1, o))
                .collect();
            let batch = ObservationBatch {
                seq: Some(seq),
                ..ObservationBatch::new(s.board, rows)
            };
            w.sender().send(WriteCmd::Batch(batch)).unwrap();
        }
    }
    w.finish();
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn timeline_merges_boards_in_time_order() {
    let dir = ScratchDir::new("cli-timeline").unwrap();
    let db = dir.join("t.db");
    fill(&db);
    let db = db.to_str().unwrap();
    let text = stdout(&run(&["timeline", "--db", db]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * 5 * 10 * 3);
    // Lines start with tcpdump's time of day: sorted text is sorted time within one day.
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.split(' ').next().unwrap().to_string());
    let times = |v: &[&str]| {
        v.iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(times(&lines), times(&sorted));
    assert!(
        lines.iter().any(|l| l.contains(" pi1:eth0 ")),
        "{}",
        lines[0]
    );
    assert!(lines.iter().any(|l| l.contains(" pi2:web:eth0 ")));
    assert!(lines
        .iter()
        .all(|l| l.contains(" In ") || l.contains(" Out ")));

    // JSON lines parse, and --board / --link narrow.
    let o = run(&[
        "timeline", "--db", db, "--board", "pi2", "--link", "web:eth0",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no link matches"),
        "a label needs its board"
    );
    let json = stdout(&run(&[
        "timeline",
        "--db",
        db,
        "--json",
        "--link",
        "pi2:web:eth0",
    ]));
    let objs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 50);
    assert!(objs
        .iter()
        .all(|o| o["board"] == "pi2" && o["netns"] == "web" && o["link"] == "eth0"));

    // --filter keeps only matching packets; --since/--until bound by time.
    let tcp = stdout(&run(&["timeline", "--db", db, "--filter", "tcp"]))
        .lines()
        .count();
    let other = stdout(&run(&["timeline", "--db", db, "--filter", "icmp or arp"]))
        .lines()
        .count();
    assert!(
        tcp > 0 && other > 0 && tcp + other < lines.len(),
        "{tcp} {other}"
    );
    let window = stdout(&run(&[
        "timeline",
        "--db",
        db,
        "--since",
        "2026-11-26T12:00:00Z",
        "--until",
        "1795694400.001",
    ]));
    assert!(window.lines().count() < lines.len() && window.lines().count() > 0);
    let tcp7 = stdout(&run(&[
        "timeline", "--db", db, "--filter", "tcp", "--limit", "7",
    ]));
    assert_eq!(
        tcp7.lines().count(),
        7,
        "the limit counts lines printed after the filter"
    );
    let limited = stdout(&run(&["timeline", "--db", db, "--limit", "7"]));
    assert_eq!(limited.lines().collect::<Vec<_>>(), lines[..7]);
}

#[test]
fn boards_lists_counts() {
    let dir = ScratchDir::new("cli-boards").unwrap();
    let db = dir.join("b.db");
    fill(&db);
    let out = stdout(&run(&["boards", "--db", db.to_str().unwrap(), "--json"]));
    let boards: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(boards.len(), 2);
    for b in &boards {
        assert_eq!(
            (
                b["batches"].as_i64(),
                b["observations"].as_i64(),
                b["links"].as_i64()
            ),
            (Some(5), Some(150), Some(3))
        );
    }
    let table = stdout(&run(&["boards", "--db", db.to_str().unwrap()]));
    assert!(table.lines().next().unwrap().starts_with("BOARD"));
    assert_eq!(table.lines().count(), 3);
}

#[test]
fn query_errors_are_clear() {
    let dir = ScratchDir::new("cli-errors").unwrap();
    let missing = dir.join("nothing.db");
    let o = run(&["timeline", "--db", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no database at") && err.contains("run `hopcap-collector serve` first"),
        "{err}"
    );
    assert!(!missing.exists(), "a query must not create the database");

    let db = dir.join("e.db");
    fill(&db);
    let db = db.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["timeline", "--db", db, "--since", "yesterday"],
            "--since",
        ),
        (
            vec!["timeline", "--db", db, "--filter", "tcp and ("],
            "--filter",
        ),
        (
            vec!["timeline", "--db", db, "--board", "nope"],
            "no board named",
        ),
        (
            vec!["timeline", "--db", db, "--since", "-1m", "--until", "-2m"],
            "before --until",
        ),
        (vec!["paths", "--db", db, "--filter", "port"], "--filter"),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Wrong flags are clap's usage error (exit 2).
    assert_eq!(run(&["timeline", "--nope"]).status.code(), Some(2));
    let not_db = dir.join("text.db");
    std::fs::write(&not_db, "hello, not sqlite").unwrap();
    let o = run(&["boards", "--db", not_db.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a hopcap database"));
}

#[test]
fn follow_prints_rows_as_they_arrive() {
    use std::io::{BufRead, BufReader};
    let dir = ScratchDir::new("cli-follow").unwrap();
    let db = dir.join("f.db");
    fill(&db);
    /// Ends the follower also when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // After every row fill() wrote, so only the new ones print.
    let mut child = Kill(
        Command::new(BIN)
            .args([
                "timeline",
                "--db",
                db.to_str().unwrap(),
                "--follow",
                "--since",
                "2026-11-26T12:30:00Z",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    // New rows written by a second writer while the follower runs.
    let w =
        WriterHandle::spawn(open_for_writing(&db).unwrap(), WriterConfig::default(), 8).unwrap();
    let obs = SampleGen::new(99, T0 + 3_600_000_000_000).packet(&[0], 2);
    let rows = obs.into_iter().map(|o| (LinkId::from_raw(1), o)).collect();
    w.sender()
        .send(WriteCmd::Batch(ObservationBatch {
            ..ObservationBatch::new(BoardId::from_raw(1), rows)
        }))
        .unwrap();
    w.finish();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("13:00:00.") && first.contains(" pi1:eth0 "),
        "{first}"
    );
    assert!(
        second.starts_with("13:00:00.") && second.contains(" pi1:eth0 "),
        "{second}"
    );
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: std::path::PathBuf, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .ok()?
            .success();
        ok.then_some(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn full_disk_stalls_writes_then_resumes_without_loss() {
    use std::io::Write;
    let dir = ScratchDir::new("full-disk").unwrap();
    let Some(fs) = Tmpfs::mount(dir.join("mnt"), "8m") else {
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let db = fs.path.join("full.db");
    let config = WriterConfig {
        retry_every: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let w = WriterHandle::spawn(open_for_writing(&db).unwrap(), config, 64).unwrap();
    let (reply, answer) = sync_channel(1);
    let hello = BoardHello {
        name: "pi".into(),
        boot_id: String::new(),
        agent_version: String::new(),
        capture: String::new(),
        remote: String::new(),
        board_clock_ns: None,
    };
    w.sender()
        .send(WriteCmd::Hello {
            hello,
            links: vec![veth(0, "", "eth0")],
            reply,
        })
        .unwrap();
    let s = answer.recv().unwrap().unwrap();
    w.flush();
    // Fill the filesystem, then leave about 200 KB.
    let filler_path = fs.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while filler
        .write_all(&chunk)
        .and_then(|()| filler.sync_all())
        .is_ok()
    {}
    let len = filler.metadata().unwrap().len();
    filler.set_len(len.saturating_sub(200 * 1024)).unwrap();
    // About 2.5 MB of observations: they cannot fit.
    let mut g = SampleGen::new(8, T0);
    for seq in 0..10 {
        let rows = (0..2000)
            .map(|_| (s.links[0].1, g.packet(&[0], 1).remove(0)))
            .collect();
        let batch = ObservationBatch {
            seq: Some(seq),
            ..ObservationBatch::new(s.board, rows)
        };
        w.sender().send(WriteCmd::Batch(batch)).unwrap();
    }
    let (done_tx, done) = sync_channel(1);
    let sender = w.sender();
    std::thread::spawn(move || {
        let (tx, rx) = sync_channel(1);
        if sender.send(WriteCmd::Flush(tx)).is_ok() && rx.recv().is_ok() {
            let _ = done_tx.send(());
        }
    });
    let stalled = done
        .recv_timeout(std::time::Duration::from_secs(2))
        .is_err();
    assert!(stalled, "the writes should be waiting for space");
    // Space comes back: everything held goes in.
    filler.set_len(0).unwrap();
    done.recv_timeout(std::time::Duration::from_secs(30))
        .expect("writes resume");
    w.finish();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10 * 2000);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
}

/// `--local-time` prints the time of day in the zone TZ names (12:00 UTC is 17:30 in Kolkata,
/// and 13:00 in Paris in November), and without it UTC, whatever TZ says.
#[test]
fn local_time_follows_tz_and_utc_is_the_default() {
    let dir = ScratchDir::new("cli-localtime").unwrap();
    let db = dir.join("t.db");
    fill(&db);
    let db = db.to_str().unwrap();
    let first = |tz: &str, extra: &[&str]| {
        let out = Command::new(BIN)
            .env("TZ", tz)
            .args(["timeline", "--db", db, "--limit", "1"])
            .args(extra)
            .output()
            .unwrap();
        let text = stdout(&out);
        text.split(' ').next().unwrap()[..5].to_string()
    };
    assert_eq!(first("Asia/Kolkata", &[]), "12:00");
    assert_eq!(first("Asia/Kolkata", &["--local-time"]), "17:30");
    assert_eq!(first("Europe/Paris", &["--local-time"]), "13:00");
    assert_eq!(first("UTC", &["--local-time"]), "12:00");
}
