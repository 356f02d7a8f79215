//! The README's list of the agent's flags is the `--help` text's, no more and no less.

mod common;

use std::collections::BTreeSet;

/// The `--long` flags in `text`.
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let flag: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if !flag.is_empty() {
            out.insert(format!("--{flag}"));
        }
        rest = &rest[at + 2..];
    }
    out
}

#[test]
fn the_readme_lists_every_flag_of_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("`hopcap-agent --help` lists every flag")
        .expect("the flag list paragraph");
    let end = start + readme[start..].find("\n\n").expect("its end");
    let listed = long_flags(&readme[start..end]);
    let help = common::agent::command()
        .arg("--help")
        .output()
        .expect("run --help");
    let shown = long_flags(&String::from_utf8_lossy(&help.stdout));
    assert_eq!(listed, shown, "README flag list vs --help");
}
