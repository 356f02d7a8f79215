//! The shared capture corpus (real pcap / pcapng files with tshark ground truth, see its
//! README): `$HOPCAP_CORPUS` if set, else `shared/corpus/pcap` in the nearest ancestor of the
//! workspace that has one (for a checkout or worktree, `../shared/corpus/pcap`). A folder
//! counts when it holds `SOURCES.tsv`.

use std::path::{Path, PathBuf};

/// The corpus folder, or None when there is none (benchmarks say so and go on).
pub fn find_corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOPCAP_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/corpus/pcap"))
        .find(|dir| dir.join("SOURCES.tsv").is_file())
}

/// The corpus folder. A missing corpus fails the test; it never skips.
pub fn corpus_dir() -> PathBuf {
    find_corpus_dir().unwrap_or_else(|| {
        panic!(
            "no shared/corpus/pcap above {}; set HOPCAP_CORPUS to the folder holding SOURCES.tsv",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}
