//! `--doctor` (root) on the Pi + Docker bed's board: a small net.core.optmem_max (Debian's
//! 6.1 armmp value, set inside the test namespace only) is flagged with its fix, the
//! container namespace's links are among what would be captured, and an unreachable
//! collector fails the check.

mod common;

use common::bed::{run, Bed};
use std::process::Command;

fn doctor(bed: &Bed, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("pi")])
        .args(common::agent::argv())
        .arg("--doctor")
        .args(args)
        .output()
        .expect("run the agent");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn flags_a_small_optmem_max_and_an_unreachable_collector() {
    let bed = Bed::up("doc");
    let (healthy, text) = doctor(&bed, &["--netns", &bed.ns("ctr")]);
    assert!(healthy, "{text}");
    // qemu-user emulates no packet ring: the doctor says so.
    let ring = if common::agent::emulated() {
        "WARN no packet ring"
    } else {
        "ok   TPACKET_V3 ring works"
    };
    assert!(text.contains(ring), "{text}");
    assert!(text.contains("a full --filter program"), "{text}");
    assert!(
        text.contains("would be captured") && text.contains(&format!("{}:eth0", bed.ns("ctr"))),
        "{text}"
    );

    run(Command::new("ip").args([
        "netns",
        "exec",
        &bed.ns("pi"),
        "sysctl",
        "-qw",
        "net.core.optmem_max=10240",
    ]));
    let (still_works, text) = doctor(&bed, &[]);
    assert!(
        still_works,
        "a fallback is a warning, not a failure: {text}"
    );
    assert!(
        text.contains("WARN net.core.optmem_max 10240 is too small")
            && text.contains("fix: sysctl -w net.core.optmem_max=65536"),
        "{text}"
    );

    // The router's address, but no collector listens there.
    let (reachable, text) = doctor(&bed, &["--collector", "192.168.43.1:7878"]);
    assert!(!reachable, "{text}");
    assert!(text.contains("FAIL collector 192.168.43.1:7878"), "{text}");
}
