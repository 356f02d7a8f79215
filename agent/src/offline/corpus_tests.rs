//! Every file of the shared corpus against its tshark ground truth: packet count (SOURCES.tsv),
//! and per packet the time, wire length, captured length and interface (expected/*.tsv).

use super::*;
use hopcap_testkit::corpus_dir;
use std::fs;

/// Rows of a tab-separated file with a header line, as (header, rows).
fn read_tsv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .split('\t')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// tshark's frame.time_epoch format: seconds, a dot, nine digits.
fn epoch(ts_ns: u64) -> String {
    format!("{}.{:09}", ts_ns / 1_000_000_000, ts_ns % 1_000_000_000)
}

fn read_file(path: &Path) -> (Vec<PacketRecord>, Option<OfflineError>) {
    let mut file = match CaptureFile::open(path) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut packets = Vec::new();
    let mut error = None;
    for item in &mut file {
        match item {
            Ok(p) => packets.push(p),
            Err(e) => error = Some(e),
        }
    }
    (packets, error)
}

#[test]
fn corpus_matches_tshark() {
    let dir = corpus_dir();
    let (header, sources) = read_tsv(&dir.join("SOURCES.tsv"));
    let (name_col, count_col) = (column(&header, "filename"), column(&header, "packet_count"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for source in &sources {
        let name = &source[name_col];
        let path = dir.join(name);
        let (packets, error) = read_file(&path);
        let rejected = dir.join("expected").join(format!("{name}.error")).is_file();
        if rejected {
            if error.is_none() {
                failures.push(format!(
                    "{name}: tshark rejects it, we read {} packets",
                    packets.len()
                ));
            }
            checked += 1;
            continue;
        }
        if let Some(e) = error {
            failures.push(format!("{name}: {e}"));
            continue;
        }
        let count: usize = source[count_col]
            .parse()
            .unwrap_or_else(|_| panic!("{name}: count"));
        if packets.len() != count {
            failures.push(format!(
                "{name}: {} packets, SOURCES.tsv says {count}",
                packets.len()
            ));
            continue;
        }
        let (eh, rows) = read_tsv(&dir.join("expected").join(format!("{name}.tsv")));
        let (time, len, cap_len, encap, iface) = (
            column(&eh, "frame.time_epoch"),
            column(&eh, "frame.len"),
            column(&eh, "frame.cap_len"),
            column(&eh, "frame.encap_type"),
            column(&eh, "frame.interface_id"),
        );
        // tshark numbers pcapng Custom Blocks as frames with no encapsulation: not packets.
        let rows: Vec<_> = rows.iter().filter(|r| !r[encap].is_empty()).collect();
        if rows.len() != packets.len() {
            failures.push(format!(
                "{name}: {} packets, {} tshark rows",
                packets.len(),
                rows.len()
            ));
            continue;
        }
        // tshark prints this file's out-of-range fractions un-normalised (see the corpus README).
        let check_time = name != "tcpdump_timestamp_invalid_nano.pcap";
        for (i, (p, row)) in packets.iter().zip(&rows).enumerate() {
            let want_time = if row[time].is_empty() {
                "0.000000000"
            } else {
                &row[time]
            };
            let mut problems = Vec::new();
            if check_time && epoch(p.ts_ns) != want_time {
                problems.push(format!("time {} != {want_time}", epoch(p.ts_ns)));
            }
            if p.wire_len.to_string() != row[len] {
                problems.push(format!("len {} != {}", p.wire_len, row[len]));
            }
            if p.data.len().to_string() != row[cap_len] {
                problems.push(format!("cap_len {} != {}", p.data.len(), row[cap_len]));
            }
            if !row[iface].is_empty() && p.interface_id.to_string() != row[iface] {
                problems.push(format!("interface {} != {}", p.interface_id, row[iface]));
            }
            if !problems.is_empty() {
                failures.push(format!("{name} packet {}: {}", i + 1, problems.join(", ")));
            }
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, sources.len());
}

#[test]
fn invalid_nano_timestamps_are_added_unnormalised() {
    let (packets, error) = read_file(&corpus_dir().join("tcpdump_timestamp_invalid_nano.pcap"));
    assert!(error.is_none(), "{error:?}");
    // tshark shows 1418145370.1000000000: one second more than the seconds field says.
    assert_eq!(packets[1].ts_ns, 1_418_145_371_000_000_000);
    // A fraction of 0x8000_0000 ns (tshark reads it as negative) is 2.147483648 s.
    assert_eq!(packets[2].ts_ns, 1_418_145_370_000_000_000 + 0x8000_0000);
}
