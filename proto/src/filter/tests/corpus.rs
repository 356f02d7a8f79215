//! The BPF program against `Filter::matches` on real captures: every packet of the shared
//! corpus (Ethernet and raw-IP link types, the framings an AF_PACKET socket sees) is decoded
//! by crate::decode, and the verdicts must agree for every expression of the table. Packets
//! where they may differ are listed with the reason in ALLOWED; a listed packet that no
//! longer differs fails the test too, so the list stays exact.
//!
//! The corpus is found as `crate::corpus` says.

extern crate std;
use std::collections::BTreeMap;
use std::format;
use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use super::EXPRESSIONS;
use crate::corpus::{corpus_dir, packets};
use crate::decode::{decode, DecodeOptions, TunnelPorts};
use crate::filter::bpf_vm::{self, Ancillary};
use crate::filter::{compile, CompileOptions, Filter};
use crate::summary::Summary;
use crate::types::LinkType;

/// (file, 1-based packet number, why BPF and the decoded summary may disagree on it).
const ALLOWED: &[(&str, u32, &str)] = &[
    ("tcpdump_mpls-over-udp.pcap", 1, MPLS_IN_UDP),
    ("tcpdump_mpls-over-udp.pcap", 2, MPLS_IN_UDP),
];

const MPLS_IN_UDP: &str = "MPLS-in-UDP: the summary keeps only the inner packet (the outer \
    IP and UDP are not a tunnel kind and vanish); the BPF walk does not follow MPLS-in-UDP";

/// How the kernel frames a packet of this link type on an AF_PACKET socket (ARPHRD_*).
fn hatype(link: LinkType) -> Option<u16> {
    match link {
        LinkType::ETHERNET => Some(1),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => Some(0xfffe),
        _ => None,
    }
}

#[test]
fn bpf_agrees_with_decoded_summaries_on_the_corpus() {
    let dir = corpus_dir();
    let filters: Vec<(&str, Filter)> = EXPRESSIONS
        .iter()
        .map(|e| (*e, Filter::parse(e).unwrap()))
        .collect();
    let programs: Vec<_> = filters
        .iter()
        .map(|(_, f)| {
            compile(&CompileOptions {
                filter: Some(f),
                exclude: &[],
                ifindexes: &[],
                snaplen: 1,
                tunnel_ports: TunnelPorts::default(),
                depth: Default::default(),
            })
            .unwrap()
        })
        .collect();
    let outers: Vec<super::Outer> = filters
        .iter()
        .map(|(_, f)| super::Outer::new(f, &[]))
        .collect();
    let mut outer_errors: Vec<String> = Vec::new();
    let mut left_to_user_space = 0;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // (file, packet) -> the expressions that disagree there.
    let mut differences: BTreeMap<(String, u32), Vec<String>> = BTreeMap::new();
    let (mut frames, mut verdicts) = (0, 0);
    for path in names.iter().filter(|p| p.is_file()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        for (number, (link, data)) in packets(&bytes).into_iter().enumerate() {
            let Some(hatype) = hatype(link) else { continue };
            let summary = Summary::from_decoded(&decode(link, &data, &DecodeOptions::default()));
            let anc = Ancillary {
                hatype,
                ..Ancillary::default()
            };
            frames += 1;
            let allowed = ALLOWED
                .iter()
                .any(|(f, n, _)| *f == name && *n == number as u32 + 1);
            let mut left = false;
            for (((expr, filter), prog), outer) in filters.iter().zip(&programs).zip(&outers) {
                let bpf = bpf_vm::run(prog, &data, &anc) != 0;
                verdicts += 1;
                // The lean outer-only program: exact, or the frame goes to user space.
                let (deeper, error) = outer.check(&data, &anc, filter.matches(&summary));
                left |= deeper;
                if let Some(e) = error.filter(|_| !allowed) {
                    if outer_errors.len() < 20 {
                        outer_errors.push(format!("{name} #{}: {expr}: {e}", number + 1));
                    }
                }
                if bpf != filter.matches(&summary) {
                    let key = (name.clone(), number as u32 + 1);
                    differences
                        .entry(key)
                        .or_default()
                        .push(format!("{expr} (bpf {bpf})"));
                }
            }
            left_to_user_space += usize::from(left);
        }
    }
    assert!(
        frames > 1000,
        "only {frames} frames read from {}",
        dir.display()
    );
    let mut report = String::new();
    for ((file, number), exprs) in &differences {
        if !ALLOWED.iter().any(|(f, n, _)| f == file && n == number) {
            report.push_str(&format!("{file} #{number}: {}\n", exprs.join("; ")));
        }
    }
    for (file, number, why) in ALLOWED {
        if !differences.contains_key(&(String::from(*file), *number)) {
            report.push_str(&format!(
                "{file} #{number} is allowed ({why}) but agrees now\n"
            ));
        }
    }
    assert!(outer_errors.is_empty(), "{}", outer_errors.join("\n"));
    // Tunnels and rare framings only (the corpus has many of them, on purpose).
    assert!(
        left_to_user_space * 2 < frames,
        "{left_to_user_space} of {frames} frames left to user space by the outer program"
    );
    std::println!(
        "outer program: {left_to_user_space} of {frames} corpus frames left to user space"
    );
    assert!(
        report.is_empty(),
        "{frames} frames, {verdicts} verdicts:\n{report}"
    );
}
