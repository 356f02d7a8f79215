//! Reading a capture file back with tshark, the way the pcapng tests check what Wireshark
//! will show.

use std::path::Path;
use std::process::Command;

/// Whether tshark can be run here.
pub fn available() -> bool {
    Command::new("tshark").arg("--version").output().is_ok()
}

/// `tshark -r FILE [-Y FILTER] -T fields -e ...`: one Vec of field values per packet.
/// Panics (the test fails) when tshark cannot run or refuses the file.
pub fn fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark (Debian package tshark; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
