//! The command line as a new user meets it: an empty database says so, a date alone is a
//! time, and `serve` fails cleanly (no fresh database left behind) on an address it cannot
//! bind or a folder that does not exist.

use hopcap_collector::store::sqlite::open_for_writing;
use hopcap_testkit::ScratchDir;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

fn collector(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run collector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn empty_db(dir: &ScratchDir) -> String {
    let db = dir.join("empty.db");
    drop(open_for_writing(&db).expect("create the database"));
    db.to_string_lossy().into_owned()
}

#[test]
fn an_empty_database_says_so_on_stderr() {
    let dir = ScratchDir::new("cli-empty").expect("scratch dir");
    let db = empty_db(&dir);
    for cmd in ["timeline", "paths", "flows"] {
        for json in [false, true] {
            let mut args = vec![cmd, "--db", &db];
            if json {
                args.push("--json");
            }
            let out = collector(&args);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            assert!(out.stdout.is_empty(), "{args:?}: stdout stays clean");
            assert!(
                text(&out.stderr).contains("no observations stored yet"),
                "{args:?}: {}",
                text(&out.stderr)
            );
        }
    }
    let out = collector(&["boards", "--db", &db]);
    assert_eq!(text(&out.stdout).trim(), "no boards yet");
}

#[test]
fn built_journeys_from_the_embedded_store_are_a_clear_error() {
    let dir = ScratchDir::new("cli-built").expect("scratch dir");
    let db = empty_db(&dir);
    let out = collector(&["paths", "--built", "--db", &db]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("--built") && err.contains("--clickhouse"),
        "{err}"
    );
    // And it is not a way to follow.
    let out = collector(&["paths", "--built", "--follow", "--db", &db]);
    assert!(!out.status.success());
}

#[test]
fn a_date_alone_is_a_time() {
    let dir = ScratchDir::new("cli-date").expect("scratch dir");
    let db = empty_db(&dir);
    let out = collector(&["timeline", "--db", &db, "--since", "2026-12-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = collector(&["timeline", "--db", &db, "--since", "2026-13-01"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bad time"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_fails_cleanly_before_creating_anything() {
    let dir = ScratchDir::new("cli-serve").expect("scratch dir");
    // An address already taken (by this test, on loopback).
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let db = dir.join("fresh.db");
    let out = collector(&[
        "serve",
        "--insecure",
        "--listen",
        &addr,
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot listen on"),
        "{}",
        text(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
    // A database in a folder that does not exist: named as such.
    let missing = Path::new("/nonexistent-hopcap-dir/x.db");
    let out = collector(&[
        "serve",
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        "--db",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no directory /nonexistent-hopcap-dir"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let bash = collector(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    for word in ["serve", "paths", "--metrics", "--filter", "keys"] {
        assert!(script.contains(word), "{word} not in the bash completion");
    }
    assert!(!collector(&["completions", "tcsh"]).status.success());
    let dir = ScratchDir::new("man").unwrap();
    let out = collector(&["man", &dir.path().to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "hopcap-collector.1",
        "hopcap-collector-serve.1",
        "hopcap-collector-keys-revoke.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.starts_with(".ie") || roff.contains(".TH"), "{page}");
    }
    let serve = std::fs::read_to_string(dir.join("hopcap-collector-serve.1")).unwrap();
    assert!(serve.contains("trusted"), "{serve}");
}
