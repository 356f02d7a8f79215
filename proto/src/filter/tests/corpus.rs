//! The BPF program against `Filter::matches` on real captures: every packet of the shared
//! corpus (Ethernet and raw-IP link types, the framings an AF_PACKET socket sees) is decoded
//! by crate::decode, and the verdicts must agree for every expression of the table. Packets
//! where they may differ are listed with the reason in ALLOWED; a listed packet that no
//! longer differs fails the test too, so the list stays exact.
//!
//! The corpus is found through `HOPCAP_CORPUS`, else as `shared/corpus/pcap` in the nearest
//! ancestor of this crate that has one.

extern crate std;
use std::collections::BTreeMap;
use std::format;
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use super::EXPRESSIONS;
use crate::decode::{decode, DecodeOptions};
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

fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOPCAP_CORPUS") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/corpus/pcap"))
        .find(|dir| dir.join("SOURCES.tsv").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus/pcap above {}; set HOPCAP_CORPUS",
                manifest.display()
            )
        })
}

fn u16_at(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(x)
    } else {
        u16::from_be_bytes(x)
    })
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(x)
    } else {
        u32::from_be_bytes(x)
    })
}

/// The packets of a pcap or pcapng file with their link types; stops at the first broken
/// record (some corpus files are broken on purpose).
fn packets(file: &[u8]) -> Vec<(LinkType, Vec<u8>)> {
    let mut out = Vec::new();
    let magic = u32_at(file, 0, false).unwrap_or(0);
    if magic == 0x0a0d_0d0a {
        let (mut at, mut le, mut links) = (0usize, true, Vec::new());
        while let Some(kind) = u32_at(file, at, le) {
            if kind == 0x0a0d_0d0a {
                le = u32_at(file, at + 8, true) == Some(0x1a2b_3c4d);
                links.clear();
            }
            let Some(len) = u32_at(file, at + 4, le).map(|l| l as usize) else {
                break;
            };
            let Some(body) = file.get(at + 8..(at + len).saturating_sub(4)) else {
                break;
            };
            if len < 12 {
                break;
            }
            match kind {
                1 => links.push(u16_at(body, 0, le).unwrap_or(0)),
                6 => {
                    let (Some(iface), Some(cap)) = (u32_at(body, 0, le), u32_at(body, 12, le))
                    else {
                        break;
                    };
                    let link = links.get(iface as usize).copied().unwrap_or(0);
                    let Some(data) = body.get(20..20 + cap as usize) else {
                        break;
                    };
                    out.push((LinkType(link), data.to_vec()));
                }
                _ => {}
            }
            at += len;
        }
        return out;
    }
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => false,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
        _ => return out,
    };
    // The link type's high bits may carry FCS flags.
    let link = LinkType((u32_at(file, 20, le).unwrap_or(0) & 0x0fff_ffff) as u16);
    let mut at = 24;
    while let Some(cap) = u32_at(file, at + 8, le) {
        let Some(data) = file.get(at + 16..at + 16 + cap as usize) else {
            break;
        };
        out.push((link, data.to_vec()));
        at += 16 + cap as usize;
    }
    out
}

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
            })
            .unwrap()
        })
        .collect();
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
            for ((expr, filter), prog) in filters.iter().zip(&programs) {
                let bpf = bpf_vm::run(prog, &data, &anc) != 0;
                verdicts += 1;
                if bpf != filter.matches(&summary) {
                    let key = (name.clone(), number as u32 + 1);
                    differences
                        .entry(key)
                        .or_default()
                        .push(format!("{expr} (bpf {bpf})"));
                }
            }
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
    assert!(
        report.is_empty(),
        "{frames} frames, {verdicts} verdicts:\n{report}"
    );
}
