//! The shared capture corpus (real pcap / pcapng files, see its README) for the crate's
//! tests: its folder is `hopcap_testkit::corpus_dir` (`HOPCAP_CORPUS`, else
//! `shared/corpus/pcap` in the nearest ancestor that has one); here, a reader of its files.

extern crate std;
use crate::types::LinkType;
use std::vec::Vec;

pub use hopcap_testkit::corpus_dir;

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
pub fn packets(file: &[u8]) -> Vec<(LinkType, Vec<u8>)> {
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

/// The packets of the corpus file `name`.
pub fn file(name: &str) -> Vec<(LinkType, Vec<u8>)> {
    let path = corpus_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    packets(&bytes)
}
