//! The README's synopsis of each collector command lists exactly the flags of its `--help`
//! (besides `--help`, `--verbose` and `--config`, which every command takes).

use std::collections::BTreeSet;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

/// The `--long` flags in a synopsis line.
fn in_line(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// The flags `--help` defines: option lines start with `-x, --name` or `--name`.
fn in_help(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // `-v, --verbose`: the long name after the short one.
            let l = match l.strip_prefix('-') {
                Some(rest) if !rest.starts_with('-') => rest.split_once(", ").map_or(l, |x| x.1),
                _ => l,
            };
            let name: String = l
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--verbose" && f != "--config")
        .collect()
}

#[test]
fn the_synopsis_lists_every_flag_of_each_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("## hopcap-collector\n\n```\n")
        .expect("the synopsis");
    let block = &readme[start..];
    let block = &block[block.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    let mut commands = 0;
    for line in block.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"hopcap-collector"), "{line}");
        // The command: `serve`, or `keys init` (the words before the first argument).
        let command: Vec<&str> = words[1..]
            .iter()
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .copied()
            .collect();
        assert_eq!(
            in_line(line),
            in_help(&command),
            "README synopsis of `{}` vs its --help",
            command.join(" ")
        );
        commands += 1;
    }
    assert_eq!(commands, 15, "{block}");
}
