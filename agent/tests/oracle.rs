//! Differential test against tshark: every capture of the shared corpus is read, every
//! packet decoded, and the layers are compared field by field with tshark's decode
//! (`expected/<file>.tsv`, see the corpus README). Each difference must be listed, with a
//! reason, in `oracle-allow.tsv`; an unlisted difference fails the test, and so does a
//! listed one that no longer occurs (the list stays exact).
//!
//! The corpus is found through `HOPCAP_CORPUS`, else as `shared/corpus/pcap` in the
//! nearest ancestor of this crate that has one (`<repo>/../shared` on CI and on main).

#[path = "oracle/columns.rs"]
mod columns;

use hopcap_agent::offline::{CaptureFile, PacketRecord};
use hopcap_proto::decode::{decode, DecodeOptions};
use hopcap_proto::summary::Summary;
use hopcap_testkit::corpus_dir;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// One tshark table: header names and rows of fields.
struct Table {
    columns: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text
            .lines()
            .map(|line| line.split('\t').map(str::to_owned).collect::<Vec<_>>());
        let header = lines.next().unwrap_or_default();
        let columns = header
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, i))
            .collect();
        Table {
            columns,
            rows: lines.collect(),
        }
    }

    fn get<'r>(&self, row: &'r [String], column: &str) -> Option<&'r str> {
        self.columns
            .get(column)
            .map(|&i| row.get(i).map_or("", String::as_str))
    }
}

/// One line of the allow-list: a known, explained difference.
struct Allowed {
    file: String,
    /// `None` for `*`: every frame of the file.
    frame: Option<u64>,
    column: String,
    line: usize,
    hits: usize,
}

fn read_allow_list(path: &Path) -> Vec<Allowed> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, frame, column, reason] = fields[..] else {
            panic!(
                "{}:{}: want 4 tab-separated fields: file, frame|*, column, reason",
                path.display(),
                i + 1
            );
        };
        assert!(
            !reason.trim().is_empty(),
            "{}:{}: the reason is empty",
            path.display(),
            i + 1
        );
        let frame = match frame {
            "*" => None,
            n => Some(
                n.parse()
                    .unwrap_or_else(|_| panic!("{}:{}: bad frame {n:?}", path.display(), i + 1)),
            ),
        };
        entries.push(Allowed {
            file: file.to_owned(),
            frame,
            column: column.to_owned(),
            line: i + 1,
            hits: 0,
        });
    }
    entries
}

struct Mismatch {
    file: String,
    frame: u64,
    column: String,
    expected: String,
    got: String,
}

#[derive(Default)]
struct Totals {
    files: usize,
    rejected_files: usize,
    packets: usize,
    /// (packet, column) pairs where tshark or the decoder has a value.
    fields: usize,
    /// Comma-joined values inside those fields.
    values: usize,
}

/// Reads every packet; a read error ends the file (after the packets before it).
fn read_packets(path: &Path) -> Result<Vec<PacketRecord>, String> {
    let mut file = CaptureFile::open(path).map_err(|e| e.to_string())?;
    let mut packets = Vec::new();
    while let Some(next) = file.next_packet() {
        packets.push(next.map_err(|e| format!("after {} packets: {e}", packets.len()))?);
    }
    Ok(packets)
}

/// Compares one capture file; problems that are not field mismatches go to `failures`.
fn compare_file(
    dir: &Path,
    name: &str,
    totals: &mut Totals,
    mismatches: &mut Vec<Mismatch>,
    failures: &mut Vec<String>,
) {
    let expected_dir = dir.join("expected");
    let path = dir.join(name);
    if expected_dir.join(format!("{name}.error")).is_file() {
        // tshark rejects the file: the reader must too, cleanly and before any packet.
        totals.rejected_files += 1;
        match CaptureFile::open(&path).map(|mut f| f.next_packet()) {
            Err(_) | Ok(Some(Err(_))) => {}
            Ok(Some(Ok(_))) | Ok(None) => {
                failures.push(format!("{name}: tshark rejects it, the reader did not"))
            }
        }
        return;
    }
    totals.files += 1;
    let table = Table::read(&expected_dir.join(format!("{name}.tsv")));
    // tshark numbers pcapng Custom Blocks as frames (no encapsulation): not packets.
    let rows: Vec<&Vec<String>> = table
        .rows
        .iter()
        .filter(|row| !table.get(row, "frame.encap_type").unwrap_or("").is_empty())
        .collect();
    let packets = match read_packets(&path) {
        Ok(packets) => packets,
        Err(e) => {
            failures.push(format!("{name}: read error {e}"));
            return;
        }
    };
    if packets.len() != rows.len() {
        failures.push(format!(
            "{name}: {} packets read, tshark has {}",
            packets.len(),
            rows.len()
        ));
    }
    let opts = DecodeOptions::default();
    for (record, row) in packets.iter().zip(rows) {
        totals.packets += 1;
        let decoded = decode(record.link_type, &record.data, &opts);
        // The summary must cope with every stack the decoder makes.
        let _ = Summary::from_decoded(&decoded);
        let frame = table
            .get(row, "frame.number")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for column in columns::COMPARED {
            let Some(expected) = table.get(row, column) else {
                continue;
            };
            let got = columns::render(column, record, &decoded);
            if expected.is_empty() && got.is_empty() {
                continue;
            }
            totals.fields += 1;
            totals.values += expected.split(',').count().max(got.split(',').count());
            if expected != got {
                mismatches.push(Mismatch {
                    file: name.to_owned(),
                    frame,
                    column: column.to_string(),
                    expected: expected.to_owned(),
                    got,
                });
            }
        }
    }
}

#[test]
fn decoder_agrees_with_tshark_on_the_corpus() {
    let dir = corpus_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".pcap") || name.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no captures in {}", dir.display());

    let mut totals = Totals::default();
    let mut mismatches = Vec::new();
    let mut failures = Vec::new();
    for name in &names {
        compare_file(&dir, name, &mut totals, &mut mismatches, &mut failures);
    }

    let allow_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle-allow.tsv");
    let mut allowed = read_allow_list(&allow_path);
    let mut allowed_count = 0;
    for m in &mismatches {
        let entry = allowed.iter_mut().find(|a| {
            a.file == m.file && a.column == m.column && a.frame.is_none_or(|f| f == m.frame)
        });
        match entry {
            Some(entry) => {
                entry.hits += 1;
                allowed_count += 1;
            }
            None => failures.push(format!(
                "{}\t{}\t{}\texpected {:?}, decoded {:?}",
                m.file, m.frame, m.column, m.expected, m.got
            )),
        }
    }
    for stale in allowed.iter().filter(|a| a.hits == 0) {
        failures.push(format!(
            "oracle-allow.tsv:{}: stale, matches nothing ({} {} {})",
            stale.line,
            stale.file,
            stale.frame.map_or("*".to_owned(), |f| f.to_string()),
            stale.column
        ));
    }

    println!(
        "oracle: {} files ({} more rejected as tshark does), {} packets, {} fields ({} values) compared, \
         {} mismatches allowed by {} allow-list entries, {} failures",
        totals.files,
        totals.rejected_files,
        totals.packets,
        totals.fields,
        totals.values,
        allowed_count,
        allowed.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} oracle failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
