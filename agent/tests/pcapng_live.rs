//! `-w FILE` (root): the Pi + Docker bed of scripts/testbed.sh, the agent on the board
//! capturing its own links and the container's (`--netns all`) into pcapng while the
//! container pings the far host through docker0 and NAT. The file must read back, with the
//! agent's own reader and with tshark (Wireshark's engine), as one interface per
//! `netns:link` holding exactly the packets a `--json` agent saw at the same time, in
//! time order per interface, with their directions. Rotation (`-G`) gives complete files.

mod common;

use common::agent::Agent;
use common::bed::{Bed, FAR};
use hopcap_testkit::tshark;
use hopcap_testkit::ScratchDir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn ping(bed: &Bed, count: &str) {
    bed.exec(
        "ctr",
        &["ping", "-q", "-n", "-c", count, "-i", "0.2", "-W", "2", FAR],
    );
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// ICMP echo requests and replies per `netns:link` (`link` in the board's own namespace)
/// of live `--json` lines: the test's own traffic (not the odd neighbour solicitation).
fn per_link(lines: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in lines.iter().map(|l| json(l)) {
        let t = &v["summary"]["transport"];
        if !(t["kind"] == "icmp" && (t["type"] == 8 || t["type"] == 0)) {
            continue;
        }
        let (netns, link) = (v["netns"].as_str().unwrap_or(""), v["link"].as_str());
        let Some(link) = link else { continue };
        let label = if netns.is_empty() {
            link.to_owned()
        } else {
            format!("{netns}:{link}")
        };
        *out.entry(label).or_default() += 1;
    }
    out
}

/// ICMP echo requests and replies per interface of `--read --json` lines, and how many of
/// them are requests.
fn per_interface(lines: &[String]) -> BTreeMap<u64, (usize, usize)> {
    let mut out: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for v in lines.iter().map(|l| json(l)) {
        let id = v["interface_id"].as_u64().expect("interface_id");
        let icmp_type = v["layers"].as_array().and_then(|layers| {
            layers
                .iter()
                .find(|l| l["proto"] == "icmp")
                .and_then(|l| l["type"].as_u64())
        });
        if !matches!(icmp_type, Some(0 | 8)) {
            continue;
        }
        let e = out.entry(id).or_default();
        e.0 += 1;
        e.1 += usize::from(icmp_type == Some(8));
    }
    out
}

fn sorted_counts(counts: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = counts.collect();
    v.sort_unstable();
    v
}

/// The agent's own reader on a pcapng file: JSON lines.
fn read_back(file: &Path) -> Vec<String> {
    let out = common::agent::command()
        .arg("--read")
        .arg(file)
        .arg("--json")
        .output()
        .expect("run hopcap-agent --read");
    assert!(
        out.status.success(),
        "--read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_file_holds_every_hop_as_its_own_interface() {
    let bed = Bed::up("pcapw");
    ping(&bed, "1"); // neighbours resolved before the capture
    let dir = ScratchDir::new("pcapw").expect("scratch dir");
    let file = dir.join("cap.pcapng");
    let file_arg = file.to_string_lossy().into_owned();
    let ctr = bed.ns("ctr");
    let reference = Agent::start(&bed, &["--json", "--netns", &ctr], 2);
    let writer = Agent::start(&bed, &["--netns", &ctr, "-w", &file_arg], 2);
    ping(&bed, "5");
    let (writer, reference) = (writer.stop(), reference.stop());
    assert!(writer.status.success(), "{:#?}", writer.stderr);
    assert!(
        writer.stdout.is_empty(),
        "-w alone prints nothing: {:#?}",
        writer.stdout
    );
    assert!(
        writer
            .stderr
            .iter()
            .any(|l| l.contains("packets written to")),
        "{:#?}",
        writer.stderr
    );

    // The agent's own reader: as many interfaces as links the live --json agent saw
    // packets on, holding the same numbers of packets.
    let want = per_link(&reference.stdout);
    let got = per_interface(&read_back(&file));
    assert_eq!(
        sorted_counts(got.values().map(|(n, _)| *n)),
        sorted_counts(want.values().copied()),
        "file {got:?}, live {want:?}"
    );
    // The ping's four hops (ctr:eth0, vethctr, docker0, wlan0) carry 5 requests each.
    let with_requests = got.values().filter(|(_, echo)| *echo >= 5).count();
    assert!(with_requests >= 4, "{got:?}");

    if !tshark::available() {
        eprintln!("tshark not installed: Wireshark's reading not checked");
        return;
    }
    // Wireshark's engine: interface names and descriptions, directions, counts.
    let rows = tshark::fields(
        &file,
        None,
        &[
            "frame.interface_name",
            "frame.interface_description",
            "frame.packet_flags_direction",
            "icmp.type",
        ],
    );
    let total: usize = want.values().sum();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| r[3] == "8" || r[3] == "0")
        .collect();
    assert_eq!(rows.len(), total, "{rows:#?}");
    let mut by_iface: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *by_iface.entry(r[0].as_str()).or_default() += 1;
        assert!(
            r[1].ends_with(&r[0]) && r[1].contains(':'),
            "description names the board: {r:?}"
        );
        assert!(
            r[2] == "1" || r[2] == "2" || r[2] == "0x00000001" || r[2] == "0x00000002",
            "direction: {r:?}"
        );
    }
    let named: BTreeMap<String, usize> =
        by_iface.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(named, want, "{rows:#?}");
    // Outbound on the container's eth0 and on wlan0, inbound on vethctr and docker0.
    let direction_of = |iface_suffix: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r[0].ends_with(iface_suffix) && r[3] == "8")
            .map(|r| r[2].trim_start_matches("0x0000000").to_owned())
            .collect()
    };
    assert!(direction_of("ctr:eth0").iter().all(|d| d == "2"));
    assert!(direction_of("wlan0").iter().all(|d| d == "2"));
    assert!(direction_of("vethctr").iter().all(|d| d == "1"));
    assert!(!direction_of("docker0").is_empty());
}

#[test]
fn rotation_by_time_gives_complete_files() {
    let bed = Bed::up("pcapg");
    ping(&bed, "1");
    let dir = ScratchDir::new("pcapg").expect("scratch dir");
    let file = dir.join("rot.pcapng");
    let file_arg = file.to_string_lossy().into_owned();
    let writer = Agent::start(&bed, &["-w", &file_arg, "-G", "1"], 1);
    ping(&bed, "12"); // ~2.4 s: at least two rotations
    let done = writer.stop();
    assert!(done.status.success(), "{:#?}", done.stderr);
    let mut files = vec![file.clone()];
    for i in 1.. {
        let mut name = file.clone().into_os_string();
        name.push(i.to_string());
        let next = std::path::PathBuf::from(name);
        if !next.exists() {
            break;
        }
        files.push(next);
    }
    assert!(files.len() >= 3, "{} files", files.len());
    // Each file reads on its own; together they hold every echo request (the board's own
    // links: vethctr, docker0, wlan0).
    let mut requests = 0;
    for f in &files {
        let lines = read_back(f);
        requests += per_interface(&lines)
            .values()
            .map(|(_, e)| e)
            .sum::<usize>();
        if tshark::available() {
            assert_eq!(
                tshark::fields(f, None, &["frame.number"]).len(),
                lines.len()
            );
        }
    }
    assert!(requests >= 3 * 12, "{requests} echo requests");
}

#[test]
fn bad_write_arguments_are_errors() {
    for (args, says) in [
        (&["-C", "5"][..], "-C needs -w FILE"),
        (&["-w", "-", "--json"][..], "cannot be used together"),
        (
            &["-w", "/nonexistent-dir/x.pcapng", "-c", "1"][..],
            "cannot write",
        ),
    ] {
        let out = common::agent::command()
            .args(args)
            .output()
            .expect("run agent");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
