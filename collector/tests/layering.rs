//! Layers point one way. `cli/` (flags, and the wiring of one backend to the commands) and
//! `main.rs` may name the command line; nothing else does. All SQL and every use of rusqlite
//! live in `store/sqlite/`. Ingest, correlate, render, select and load see the store only
//! through its seam (`store::{StoreWriter, StoreReader}`), never the SQLite backend, so a
//! second backend needs no change there.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: text` for every line of the files under `src/` (but not under `allowed`)
/// that contains one of `needles`.
fn offenders(allowed: &[&str], needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 30, "found only {} files", files.len());
    let mut out = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(file).expect("source file");
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|w| line.contains(w)) {
                out.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn nothing_below_cli_imports_it() {
    let found = offenders(
        &["cli", "main.rs"],
        &["crate::cli", "hopcap_collector::cli"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn sql_lives_in_the_sqlite_backend_only() {
    let needles = [
        "rusqlite",
        "SELECT ",
        "INSERT ",
        "UPDATE ",
        "DELETE FROM",
        "CREATE ",
        "PRAGMA ",
    ];
    let found = offenders(&["store/sqlite"], &needles);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_cli_picks_the_backend() {
    let found = offenders(&["cli", "main.rs", "store/sqlite"], &["sqlite::", "Sqlite"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
