//! dist/systemd/hopcap-collector.service: systemd accepts every line of it, its sandbox
//! keeps the exposure low, and every flag it passes is one `serve` knows.

use hopcap_testkit::systemd::{check_unit, unknown_flags};
use std::path::Path;
use std::process::Command;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dist/systemd/hopcap-collector.service"
);
const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

#[test]
fn the_collector_unit_verifies_and_is_locked_down() {
    let check = check_unit(
        Path::new(UNIT),
        "/usr/local/bin/hopcap-collector",
        Path::new(BIN),
    );
    assert!(check.complaints.is_empty(), "{}", check.complaints);
    // 1.2 today: no capability, no namespace, only IP sockets.
    assert!(check.exposure <= 1.5, "exposure {}", check.exposure);
    assert_eq!(check.exec_start[1], "serve");
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert_eq!(
        unknown_flags(&check.exec_start, &help),
        Vec::<String>::new()
    );
}
