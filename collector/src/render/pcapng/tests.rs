use super::*;
use crate::correlate::testbed::{flannel_pings, pi_docker, Bed, BedExt, INTERNET};
use crate::correlate::{correlate, Config};

const T0: u64 = 1_700_000_000_000_000_000;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The file's blocks as (type, block bytes); panics if one is badly framed.
fn blocks(b: &[u8]) -> Vec<(u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let len = u32_at(b, at + 4) as usize;
        assert_eq!(u32_at(b, at + len - 4) as usize, len);
        out.push((u32_at(b, at), &b[at..at + len]));
        at += len;
    }
    out
}

/// Options of a block from `start` (after its fixed part) as (code, value).
fn options(block: &[u8], start: usize) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 4 <= block.len() - 4 {
        let code = u16::from_le_bytes([block[at], block[at + 1]]);
        let len = u16::from_le_bytes([block[at + 2], block[at + 3]]) as usize;
        if code == 0 {
            break;
        }
        out.push((
            code,
            String::from_utf8_lossy(&block[at + 4..at + 4 + len]).into_owned(),
        ));
        at += 4 + len.next_multiple_of(4);
    }
    out
}

/// Each packet's (interface, timestamp, comment).
fn packets(file: &[u8]) -> Vec<(u32, u64, String)> {
    blocks(file)
        .into_iter()
        .filter(|(k, _)| *k == 6)
        .map(|(_, b)| {
            let caplen = u32_at(b, 20) as usize;
            let ts = (u64::from(u32_at(b, 12)) << 32) | u64::from(u32_at(b, 16));
            let comment = options(b, 28 + caplen.next_multiple_of(4))
                .into_iter()
                .find(|(c, _)| *c == 1)
                .map(|(_, v)| v)
                .unwrap_or_default();
            (u32_at(b, 8), ts, comment)
        })
        .collect()
}

fn interface_names(file: &[u8]) -> Vec<String> {
    blocks(file)
        .into_iter()
        .filter(|(k, _)| *k == 1)
        .map(|(_, b)| options(b, 16).into_iter().find(|(c, _)| *c == 2).unwrap().1)
        .collect()
}

/// Every observation with a frame: its input index as one byte, repeated.
fn all_frames(report: &Report) -> Vec<Option<Vec<u8>>> {
    let n = report
        .journeys
        .iter()
        .flat_map(|j| j.hops.iter().map(|h| h.input + 1))
        .max()
        .unwrap_or(0);
    (0..n).map(|i| Some(vec![i as u8; 20])).collect()
}

fn export(report: &Report, frames: &[Option<Vec<u8>>], hop: HopChoice) -> (Vec<u8>, Exported) {
    let mut out = Vec::new();
    let got = write(
        &ExportInput {
            report,
            frames,
            hop,
            application: "test",
            selection: "everything",
        },
        &mut out,
    );
    (out, got)
}

#[test]
fn a_nat_path_as_packets_with_comments() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    pi.request(&mut bed, 0, T0, INTERNET, 0, [23_000, 340_000, 0]);
    let (topo, hops, _) = bed.finish();
    let r = correlate(hops, &topo, &Config::default());
    let (file, got) = export(&r, &all_frames(&r), HopChoice::All);
    assert_eq!((got.packets, got.interfaces, got.duplicates), (4, 4, 3));
    assert_eq!(
        interface_names(&file),
        [
            "pi1:ctr:eth0",
            "pi1:docker0",
            "pi1:vethc426d5b",
            "pi1:wlan0"
        ]
    );
    let p = packets(&file);
    let comments: Vec<&str> = p.iter().map(|(_, _, c)| c.as_str()).collect();
    let fp = format!("{:016x}", r.journeys[0].fingerprint);
    assert_eq!(
        comments,
        [
            format!("hopcap journey={fp} hop=0 hops=4 pi1:ctr:eth0 Out"),
            format!("hopcap journey={fp} hop=1 hops=4 pi1:vethc426d5b In hopcap.dup"),
            format!("hopcap journey={fp} hop=2 hops=4 pi1:docker0 In hopcap.dup"),
            format!(
                "hopcap journey={fp} hop=3 hops=4 pi1:wlan0 Out \
                 nat=\"SNAT 172.17.0.2→192.168.43.116\" hopcap.dup"
            ),
        ]
    );
    // Interfaces are numbered in name order: ctr:eth0 0, docker0 1, veth 2, wlan0 3.
    let ifaces: Vec<u32> = p.iter().map(|(i, _, _)| *i).collect();
    assert_eq!(ifaces, [0, 2, 1, 3]);
    let times: Vec<u64> = p.iter().map(|(_, t, _)| *t).collect();
    assert_eq!(times, [T0, T0 + 23_000, T0 + 23_000, T0 + 363_000]);
}

#[test]
fn packets_are_in_time_order_across_boards_on_the_reference_clock() {
    // pi2's clock runs 37 ms ahead; its times come out corrected.
    let r = flannel_pings(4);
    let (file, got) = export(&r, &all_frames(&r), HopChoice::All);
    let p = packets(&file);
    assert_eq!(p.len(), got.packets);
    assert!(p.windows(2).all(|w| w[0].1 <= w[1].1), "time order");
    let last = p.last().unwrap().1;
    assert!(
        last < T0 + 100_000_000,
        "{} ms after T0",
        (last - T0) / 1_000_000
    );
    assert_eq!(
        p.iter().filter(|(_, _, c)| !c.contains(DUP_TOKEN)).count(),
        r.journeys.len(),
        "one packet per journey without the duplicates"
    );
    let shb = blocks(&file)[0].1;
    let comment = options(shb, 24)
        .into_iter()
        .find(|(c, _)| *c == 1)
        .unwrap()
        .1;
    let reference = r.clock.reference.clone().unwrap();
    let other = if reference == "pi1" { "pi2" } else { "pi1" };
    assert!(
        comment.contains(&format!("times on board {reference}'s clock")),
        "{comment}"
    );
    assert!(
        comment.contains(&format!("{other}: clock offset ")) && comment.contains('±'),
        "{comment}"
    );
    assert!(comment.contains("37."), "the 37 ms skew: {comment}");
}

#[test]
fn observations_without_bytes_are_left_out_and_counted() {
    let r = flannel_pings(2);
    let mut frames = all_frames(&r);
    let firsts: Vec<usize> = r.journeys.iter().map(|j| j.hops[0].input).collect();
    for &i in &firsts {
        frames[i] = None;
    }
    let (file, got) = export(&r, &frames, HopChoice::All);
    assert_eq!(got.without_bytes, r.journeys.len());
    assert_eq!(packets(&file).len(), got.packets);
    // Nothing at all: a file with a header and no interface.
    let none = vec![None; frames.len()];
    let (file, got) = export(&r, &none, HopChoice::Last);
    assert_eq!((got.packets, got.interfaces), (0, 0));
    assert_eq!(got.without_bytes, r.journeys.len());
    assert_eq!(blocks(&file).len(), 1);
}

#[test]
fn a_udp_gso_send_exports_its_whole_and_every_segment() {
    use crate::correlate::testbed::{walk, CTR, PI1_WLAN};
    use hopcap_proto::summary::{Ip, Net, Summary, Transport};
    use hopcap_proto::types::{Addr, EtherType, IpProto};
    let udp4 = |src: [u8; 4], id: u16, payload: u16| Summary {
        ethertype: EtherType::IPV4,
        net: Net::Ip(Ip {
            src: Addr::V4(src),
            dst: Addr::V4(INTERNET),
            proto: IpProto::UDP,
            ttl: 64,
            id: u32::from(id),
            frag_offset: 0,
            more_fragments: false,
            payload_len: payload + 8,
        }),
        transport: Transport::Udp {
            src_port: 40001,
            dst_port: 9000,
            length: payload + 8,
        },
        ..Summary::empty()
    };
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let whole = udp4(CTR, 300, 10_900);
    let mut t = walk(
        &mut bed,
        0,
        T0,
        &[
            (pi.eth0, true, 0, &whole),
            (pi.veth, false, 20_000, &whole),
            (pi.docker0, false, 0, &whole),
        ],
    );
    for k in 0..8u16 {
        t += 2_000;
        let size = if k == 7 { 1100 } else { 1400 };
        bed.see(0, pi.wlan0, true, t, &udp4(PI1_WLAN, 300 + k, size));
    }
    let (topo, hops, _) = bed.finish();
    let r = correlate(hops, &topo, &Config::default());
    assert_eq!(r.journeys.len(), 1);
    let frames: Vec<Option<Vec<u8>>> = (0..11).map(|i| Some(vec![i as u8; 20])).collect();
    let (file, got) = export(&r, &frames, HopChoice::All);
    assert_eq!((got.packets, got.without_bytes), (11, 0), "{got:?}");
    // The eight segments, each once, on wlan0.
    let on_wlan0 = packets(&file)
        .iter()
        .filter(|(iface, _, _)| interface_names(&file)[*iface as usize] == "pi1:wlan0")
        .count();
    assert_eq!(on_wlan0, 8);
}
