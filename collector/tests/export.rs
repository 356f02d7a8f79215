//! `export --pcapng` through the command line on a database filled from a synthetic bed (the
//! test kit's flood: a container pinging and uploading to a second Pi through the masquerade,
//! Pi 2's clock 37 ms ahead), some batches stored with frame bytes and some without (agents
//! that ran without --snap-bytes): those are left out and counted on stderr, the rest read
//! back by tshark; nothing to write, bad flags and missing files are clear errors.

#[path = "fill/mod.rs"]
mod fill;

use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{FrameBytes, ObservationBatch};
use hopcap_testkit::bed::flood;
use hopcap_testkit::ScratchDir;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

/// The flood bed in batches of 100; the batches `with_bytes(seq)` picks carry frame bytes
/// (60 bytes: the observation's position, repeated).
fn fill(path: &Path, with_bytes: impl Fn(usize) -> bool) {
    let w =
        WriterHandle::spawn(open_for_writing(path).unwrap(), WriterConfig::default(), 8).unwrap();
    let parts = flood(40, 5_000_000, 37_000_000, 7).into_parts();
    for (name, links) in &parts.links {
        let s = fill::hello(&w, name, links);
        let rows = fill::rows_of(&parts.hops, name, &s);
        for (seq, chunk) in rows.chunks(100).enumerate() {
            let mut frames = FrameBytes::default();
            if with_bytes(seq) {
                for i in 0..chunk.len() {
                    frames.push(&[i as u8; 60]);
                }
            }
            let batch = ObservationBatch {
                seq: Some(seq as u64),
                frames,
                ..ObservationBatch::new(s.board, chunk.to_vec())
            };
            w.sender().send(WriteCmd::Batch(batch)).unwrap();
        }
    }
    w.finish();
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number before `words` in `text`.
fn number_before(text: &str, words: &str) -> usize {
    let at = text
        .find(words)
        .unwrap_or_else(|| panic!("{words:?} in {text}"));
    text[..at]
        .split_whitespace()
        .last()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a number before {words:?} in {text}"))
}

#[test]
fn observations_without_bytes_are_left_out_and_said_so() {
    let dir = ScratchDir::new("export-some").unwrap();
    let db = dir.join("some.db");
    fill(&db, |seq| seq % 2 == 0);
    let file = dir.join("some.pcapng");
    let (db, f) = (db.to_str().unwrap(), file.to_str().unwrap());
    let out = run(&["export", "--db", db, "--pcapng", f]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    let left = number_before(
        &said,
        "sightings left out: stored without frame bytes (their agents ran without --snap-bytes)",
    );
    let wrote = number_before(&said, "packets (");
    assert!(left > 0 && wrote > 0, "{said}");
    let tshark = Command::new("tshark")
        .args(["-r", f, "-T", "fields", "-e", "frame.interface_name"])
        .output()
        .expect("tshark (scripts/test.sh installs it)");
    assert!(tshark.status.success(), "{}", stderr(&tshark));
    assert_eq!(
        String::from_utf8_lossy(&tshark.stdout).lines().count(),
        wrote
    );
    // Every sighting is either written or counted.
    let paths = run(&["paths", "--db", db, "--json"]);
    let sightings: usize = String::from_utf8_lossy(&paths.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["hops"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(wrote + left, sightings);
}

#[test]
fn nothing_to_write_bad_flags_and_missing_files_are_errors_not_panics() {
    let dir = ScratchDir::new("export-none").unwrap();
    let db = dir.join("none.db");
    fill(&db, |_| false);
    let file = dir.join("none.pcapng");
    let (db, f) = (db.to_str().unwrap(), file.to_str().unwrap());
    let out = run(&["export", "--db", db, "--pcapng", f, "--hop", "first"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("packets left out: stored without frame bytes"),
        "{said}"
    );
    assert!(said.contains("not written: no packet to write"), "{said}");
    assert!(!file.exists(), "no empty file left behind");

    let cases: [(&[&str], &str); 5] = [
        (&["export", "--db", db], "--pcapng <FILE>"),
        (&["export", "--db", db, "--pcapng"], "a value is required"),
        (
            &["export", "--db", "/nonexistent/hopcap.db", "--pcapng", f],
            "/nonexistent/hopcap.db",
        ),
        (
            &["export", "--db", db, "--pcapng", f, "--since", "soon"],
            "--since",
        ),
        (
            &["export", "--db", db, "--pcapng", f, "--board", "nope"],
            "no observations match",
        ),
    ];
    for (args, says) in cases {
        let out = run(args);
        let said = stderr(&out);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{args:?}: {said}");
    }
}

#[test]
fn an_unwritable_file_is_named_in_the_error() {
    let dir = ScratchDir::new("export-unwritable").unwrap();
    let db = dir.join("u.db");
    fill(&db, |_| true);
    let out = run(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--pcapng",
        "/nonexistent/dir/x.pcapng",
    ]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("/nonexistent/dir/x.pcapng"), "{said}");
}
