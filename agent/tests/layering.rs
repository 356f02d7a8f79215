//! Layers point one way: only `cli.rs` (which parses flags and builds the run configuration)
//! and `main.rs` (which wires the program) may name the command line; everything below takes
//! plain configuration types.

use hopcap_testkit::layering::lines_naming;
use std::path::Path;

#[test]
fn nothing_below_cli_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let needles = ["crate::cli", "hopcap_agent::cli"];
    let found = lines_naming(&src, &["cli.rs", "main.rs"], &needles, 20);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
