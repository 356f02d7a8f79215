//! dist/systemd/hopcap-agent.service: systemd accepts every line of it, its sandbox keeps
//! the exposure low, it grants exactly the capabilities the agent keeps after set-up, and
//! every flag it passes is one the agent knows.

mod common;

use hopcap_testkit::systemd::{check_unit, unknown_flags};
use std::path::Path;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dist/systemd/hopcap-agent.service"
);
const BIN: &str = env!("CARGO_BIN_EXE_hopcap-agent");

#[test]
fn the_agent_unit_verifies_and_is_locked_down() {
    let check = check_unit(
        Path::new(UNIT),
        "/usr/local/bin/hopcap-agent",
        Path::new(BIN),
    );
    assert!(check.complaints.is_empty(), "{}", check.complaints);
    // systemd-analyze security: 2.9 today (what remains: the capabilities it must have,
    // AF_PACKET, and the namespaces it must enter). A change that loosens the sandbox
    // shows here.
    assert!(check.exposure <= 3.0, "exposure {}", check.exposure);

    // Through the emulator when the tests are cross-built.
    let help = common::agent::command()
        .arg("--help")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert_eq!(
        unknown_flags(&check.exec_start, &help),
        Vec::<String>::new()
    );

    // The unit grants what `privileges::needed` keeps for --netns all as a user, no more.
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert!(check.exec_start.iter().any(|w| w == "all"));
    let caps = |key: &str| {
        let mut v: Vec<&str> = unit
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key}"))
            .split_whitespace()
            .collect();
        v.sort_unstable();
        v
    };
    let needed = hopcap_agent::privileges::names(hopcap_agent::privileges::needed(
        &hopcap_agent::links::NetnsSpec::All,
        false,
    ));
    let mut needed: Vec<&str> = needed.split(", ").collect();
    needed.sort_unstable();
    assert_eq!(caps("AmbientCapabilities="), needed);
    assert_eq!(caps("CapabilityBoundingSet="), needed);
}
