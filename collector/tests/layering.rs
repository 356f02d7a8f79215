//! Layers point one way. `cli/` (flags, and the wiring of one backend to the commands) and
//! `main.rs` may name the command line; nothing else does. All SQL lives in the backends
//! (`store/sqlite/`, `store/clickhouse/`), every use of rusqlite in the first and of the
//! clickhouse client in the second. Ingest, correlate, render, select and load see the store only
//! through its seam (`store::{StoreWriter, StoreReader}`), never the SQLite backend, so a
//! second backend needs no change there.

use hopcap_testkit::layering::lines_naming;
use std::path::Path;

/// Lines of `src/` outside `allowed` that contain one of `needles`.
fn offenders(allowed: &[&str], needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    lines_naming(&src, allowed, needles, 30)
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
fn sql_lives_in_the_backends_only() {
    let needles = [
        "rusqlite",
        "SELECT ",
        "INSERT ",
        "UPDATE ",
        "DELETE FROM",
        "CREATE ",
        "PRAGMA ",
    ];
    let found = offenders(&["store/sqlite", "store/clickhouse"], &needles);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let found = offenders(&["store/sqlite"], &["rusqlite"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // (tokio is not checked: scaled mode's transport runs on it too.)
    let client = ["clickhouse::Client", "clickhouse::Row", "clickhouse::error"];
    let found = offenders(&["store/clickhouse"], &client);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_cli_picks_the_backend() {
    let found = offenders(&["cli", "main.rs", "store/sqlite"], &["sqlite::", "Sqlite"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let found = offenders(
        &["cli", "main.rs", "store/clickhouse"],
        &["store::clickhouse", "Clickhouse"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn nats_lives_in_the_scaled_mode_only() {
    let found = offenders(&["scale"], &["async_nats", "jetstream"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
