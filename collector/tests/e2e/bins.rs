//! The two binaries under test. The collector's is built by cargo for this crate's tests.
//! The agent is another package: `cargo test --workspace` builds it (for its own tests) next
//! to the collector, but `cargo test -p hopcap-collector` does not. So the agent binary next
//! to the collector is used when it is newer than every source it is built from; otherwise
//! the first test that needs it runs `cargo build -p hopcap-agent` into the same target
//! directory and profile, so a stale agent is never tested. `HOPCAP_AGENT_BIN` overrides.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn collector() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hopcap-collector"))
}

pub fn agent() -> &'static Path {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT.get_or_init(|| match std::env::var_os("HOPCAP_AGENT_BIN") {
        Some(p) => PathBuf::from(p),
        None => build_agent(),
    })
}

/// Where cargo put the collector: `<target>/[<triple>/]<profile>/hopcap-collector`.
struct Layout {
    target_dir: PathBuf,
    triple: Option<String>,
    profile_dir: PathBuf,
}

fn layout() -> Layout {
    let profile_dir = collector()
        .parent()
        .expect("the collector binary has a directory")
        .to_path_buf();
    // cargo marks the root of every target directory with CACHEDIR.TAG.
    let up = profile_dir
        .parent()
        .expect("a profile directory has a parent");
    if up.join("CACHEDIR.TAG").exists() {
        return Layout {
            target_dir: up.to_path_buf(),
            triple: None,
            profile_dir,
        };
    }
    let root = up.parent().expect("a target triple directory has a parent");
    assert!(
        root.join("CACHEDIR.TAG").exists(),
        "cannot find the target directory above {}",
        profile_dir.display()
    );
    Layout {
        target_dir: root.to_path_buf(),
        triple: up.file_name().map(|t| t.to_string_lossy().into_owned()),
        profile_dir,
    }
}

fn build_agent() -> PathBuf {
    let l = layout();
    let bin = l.profile_dir.join("hopcap-agent");
    if is_fresh(&bin) {
        return bin;
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace())
        .args([
            "build",
            "--quiet",
            "-p",
            "hopcap-agent",
            "--bin",
            "hopcap-agent",
        ])
        .env("CARGO_TARGET_DIR", &l.target_dir);
    match l.profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => {}
    }
    if let Some(t) = &l.triple {
        cmd.args(["--target", t]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "building the agent failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// True when `bin` exists and is newer than the agent's and proto's sources and manifests.
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let ws = workspace();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "agent/Cargo.toml",
        "proto/Cargo.toml",
    ] {
        newest = newest.max(modified(&ws.join(p)));
    }
    for dir in ["agent/src", "proto/src"] {
        newest = newest.max(newest_in(&ws.join(dir)));
    }
    built > newest
}

fn modified(p: &Path) -> std::time::SystemTime {
    p.metadata()
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

fn newest_in(dir: &Path) -> std::time::SystemTime {
    let mut newest = modified(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            newest = newest.max(if p.is_dir() {
                newest_in(&p)
            } else {
                modified(&p)
            });
        }
    }
    newest
}
