//! Source checks for the layering tests: which lines of a crate's `src/` name what they
//! should not.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: text` for every line of the `.rs` files under `src` that contains one of
/// `needles`, leaving out files whose path below `src` starts with one of `allowed`
/// (`"cli"` covers `cli.rs` and `cli/`). Panics if `src` holds fewer than `min_files` files
/// (a wrong folder would otherwise pass).
pub fn lines_naming(
    src: &Path,
    allowed: &[&str],
    needles: &[&str],
    min_files: usize,
) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    assert!(
        files.len() >= min_files,
        "found only {} files in {}",
        files.len(),
        src.display()
    );
    let mut out = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.to_string_lossy();
        if allowed.iter().any(|a| first.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(file).expect("source file");
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|w| line.contains(w)) {
                out.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    out
}
