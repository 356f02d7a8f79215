//! `--list-links` / `-D` (root): on the Pi + Docker bed's board, the links of the board and of
//! the container's namespace, each marked as live capture would treat it.

mod common;

use common::bed::Bed;

fn listed(bed: &Bed, args: &[&str]) -> Vec<String> {
    let mut cmd = common::agent::argv();
    cmd.push("-D".into());
    cmd.extend(args.iter().map(|a| a.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = bed.exec("pi", &cmd);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn line_of<'a>(lines: &'a [String], link: &str) -> &'a str {
    lines
        .iter()
        .find(|l| {
            l.split_once('.')
                .is_some_and(|(_, r)| r.starts_with(&format!("{link} (")))
        })
        .unwrap_or_else(|| panic!("{link} not listed: {lines:#?}"))
}

#[test]
fn lists_the_board_and_container_links_with_their_fate() {
    let bed = Bed::up("list");
    let ctr = bed.ns("ctr");
    let lines = listed(&bed, &["--netns", &ctr]);
    assert!(
        line_of(&lines, "wlan0").ends_with(") captured"),
        "{lines:#?}"
    );
    assert!(
        line_of(&lines, "docker0").contains("(bridge, up"),
        "{lines:#?}"
    );
    let veth = line_of(&lines, "vethctr");
    assert!(
        veth.contains("(veth, up") && veth.contains("peer ifindex"),
        "{veth}"
    );
    let inside = line_of(&lines, &format!("{ctr}:eth0"));
    assert!(
        inside.contains("172.17.0.2/16") && inside.ends_with(" captured"),
        "{inside}"
    );
    assert!(
        line_of(&lines, "lo").ends_with(" not captured"),
        "loopback is left out"
    );
    // The same selection flags as a run.
    let lines = listed(&bed, &["--netns", &ctr, "--exclude", "wlan0"]);
    assert!(
        line_of(&lines, "wlan0").ends_with(" not captured"),
        "{lines:#?}"
    );
    let lines = listed(&bed, &["-i", "docker0"]);
    assert!(
        line_of(&lines, "docker0").ends_with(" captured"),
        "{lines:#?}"
    );
    assert!(
        line_of(&lines, "vethctr").ends_with(" not captured"),
        "{lines:#?}"
    );
}
