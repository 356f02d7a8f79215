//! End to end: the real agent with `--snap-bytes` on the Pi+Docker bed (its own namespace and
//! the container's, traffic out through the masquerade) streams to the real collector, and
//! `export --pcapng` writes what it stored; tshark reads the file back:
//! - one interface per hop, named as `timeline` and `paths` name hops;
//! - as many packets as `paths` has sightings, in time order, each commented with its
//!   journey (the fingerprint `paths --json` prints), hop and the NAT rewrite at wlan0;
//! - the display filter that hides `hopcap.dup` leaves one packet per journey, and the frames
//!   are real (tshark dissects the ICMP, UDP and TCP in them);
//! - `--hop last` and `--hop LINK` write one packet per journey; `-` writes to stdout.
//!
//! Root only (namespaces, AF_PACKET); tshark must be installed (scripts/test.sh installs it).
//! The bed's namespaces are named `hcx<pid>...` and removed by name, also on failure.

mod e2e;

use e2e::bed::{Bed, FAR};
use e2e::collector::Collector;
use e2e::pi::{self, BOARD, COLLECTOR};
use e2e::{bins, scratch, traffic};
use hopcap_testkit::tshark;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const MARKER_ID: u16 = 1309;

fn export(db: &Path, args: &[&str]) -> Output {
    Command::new(bins::collector())
        .arg("export")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run hopcap-collector export")
}

fn export_ok(db: &Path, args: &[&str]) -> Output {
    let out = export(db, args);
    assert!(
        out.status.success(),
        "export {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn exported_pcapng_opens_in_tshark_with_one_interface_per_hop() {
    let dir = scratch("export");
    let d = dir.path();
    let bed = Bed::pi_docker_as("hcx", "x");
    let mut collector = Collector::start(&bed.ns("rtr"), COLLECTOR, d);
    let streamer = pi::streaming_agent(&bed, &["--snap-bytes", "128"], d);
    pi::warm_up(&bed, &collector, &[]);
    let mut servers = vec![
        traffic::server(&bed, "rtr", "tcp", FAR, 80, 1, d),
        traffic::server(&bed, "rtr", "udp", FAR, 53, 3, d),
    ];
    traffic::ping(&bed, "ctr", FAR, 1301, 5, "0.05");
    traffic::client(&bed, "ctr", "tcp", (FAR, 80), 41301, 3);
    traffic::client(&bed, "ctr", "udp", (FAR, 53), 41302, 3);
    for s in &mut servers {
        assert!(s.wait(e2e::collector::PATIENCE).success(), "{}", s.name);
    }
    traffic::ping(&bed, "ctr", FAR, MARKER_ID, 1, "0.2");
    let marker = format!("SELECT count(*) FROM observations WHERE icmp_id = {MARKER_ID}");
    collector.wait_count("the marker ping", &marker, 8);
    streamer.stop();
    collector.stop();
    let (with, without) = (
        collector.count("SELECT count(*) FROM observations WHERE snap IS NOT NULL"),
        collector.count("SELECT count(*) FROM observations WHERE snap IS NULL"),
    );
    assert!(
        with > 80 && without == 0,
        "{with} stored with bytes, {without} without"
    );

    let journeys = collector.json("paths", &[]);
    let sightings: usize = journeys
        .iter()
        .map(|j| j["hops"].as_array().unwrap().len())
        .sum();
    let file = d.join("all.pcapng");
    let out = export_ok(&collector.db, &["--pcapng", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("wrote {sightings} packets")),
        "{said}"
    );

    // Interfaces: the four hops of the route, named as timeline and paths name them.
    let ctr = bed.ns("ctr");
    let want: BTreeSet<String> = [
        format!("{BOARD}:{ctr}:eth0"),
        format!("{BOARD}:vethctr"),
        format!("{BOARD}:docker0"),
        format!("{BOARD}:wlan0"),
    ]
    .into();
    let rows = tshark::fields(
        &file,
        None,
        &["frame.interface_name", "frame.time_epoch", "frame.comment"],
    );
    assert_eq!(rows.len(), sightings, "a packet per sighting");
    let names: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(names, want);
    let capinfos = Command::new("capinfos").arg(&file).output().unwrap();
    let capinfos = String::from_utf8_lossy(&capinfos.stdout);
    assert!(
        capinfos.contains("Number of interfaces in file: 4"),
        "{capinfos}"
    );
    assert!(
        capinfos.contains("times on board pi1's clock"),
        "{capinfos}"
    );
    // Time order.
    let times: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
    // Every journey of `paths` is in the comments; one packet each without duplicates.
    let comments: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    // (Identical packets, such as repeated ARP requests, are journeys of one fingerprint.)
    let mut per_id: std::collections::BTreeMap<String, usize> = Default::default();
    for j in &journeys {
        let id = format!("journey={} ", j["fingerprint"].as_str().unwrap());
        *per_id.entry(id).or_default() += j["hops"].as_array().unwrap().len();
    }
    for (id, hops) in &per_id {
        let n = comments.iter().filter(|c| c.contains(id.as_str())).count();
        assert_eq!(n, *hops, "{id}");
    }
    let firsts = tshark::fields(
        &file,
        Some("!(frame.comment contains \"hopcap.dup\")"),
        &["frame.comment"],
    );
    assert_eq!(firsts.len(), journeys.len(), "one packet per journey");
    assert!(firsts.iter().all(|r| r[0].contains(" hop=0 ")));
    // The masquerade, said at the hop where it shows.
    let nat = tshark::fields(
        &file,
        Some("icmp.ident == 1301 && icmp.type == 8 && frame.comment contains \"nat=\""),
        &["frame.interface_name", "frame.comment"],
    );
    assert_eq!(nat.len(), 5, "each echo request's SNAT");
    let snat: Vec<_> = nat
        .iter()
        .filter(|r| r[1].contains("SNAT 172.17.0.2"))
        .collect();
    assert_eq!(snat.len(), 5);
    assert!(snat.iter().all(|r| r[0] == format!("{BOARD}:wlan0")));
    // The bytes are the frames: tshark dissects them.
    assert_eq!(
        tshark::fields(&file, Some("icmp.ident == 1301"), &["frame.number"]).len(),
        40
    );
    assert_eq!(
        tshark::fields(&file, Some("udp.port == 53"), &["frame.number"]).len(),
        24
    );
    assert!(
        tshark::fields(
            &file,
            Some("tcp.port == 80 && tcp.flags.syn == 1"),
            &["frame.number"]
        )
        .len()
            >= 8
    );

    // One hop per packet.
    let last = d.join("last.pcapng");
    export_ok(
        &collector.db,
        &["--pcapng", last.to_str().unwrap(), "--hop", "last"],
    );
    let rows = tshark::fields(&last, None, &["frame.comment"]);
    assert_eq!(rows.len(), journeys.len());
    assert!(rows.iter().all(|r| !r[0].contains("hopcap.dup")));
    let wlan = d.join("wlan.pcapng");
    let label = format!("{BOARD}:wlan0");
    export_ok(
        &collector.db,
        &["--pcapng", wlan.to_str().unwrap(), "--hop", &label],
    );
    let rows = tshark::fields(&wlan, None, &["frame.interface_name"]);
    let crossed = journeys
        .iter()
        .filter(|j| {
            j["hops"].as_array().unwrap().iter().any(|h| {
                (h["board"].as_str(), h["netns"].as_str(), h["link"].as_str())
                    == (Some(BOARD), Some(""), Some("wlan0"))
            })
        })
        .count();
    assert!(crossed >= 5 + 3 + 3, "{crossed}");
    assert_eq!(rows.len(), crossed, "the packets that crossed wlan0");
    assert!(rows.iter().all(|r| r[0] == label));
    // To stdout: the same file.
    let out = export_ok(&collector.db, &["--pcapng", "-"]);
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());
}
