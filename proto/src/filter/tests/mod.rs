//! The compiled BPF program and `Filter::matches` must agree on every frame.

extern crate std;
use std::format;
use std::string::String;
use std::vec::Vec;

mod corpus;
mod deep_frames;
mod frames;

use super::bpf_vm::{self, Ancillary};
use super::eval::endpoint_at_any_level;
use super::{compile, CompileError, CompileOptions, Depth, Endpoint, Filter};
use crate::decode::{decode, DecodeOptions, TunnelPorts};
use crate::layer::Layer;
use crate::summary::Summary;
use crate::types::{Addr, LinkType};

const SNAPLEN: u32 = 262_144;

const EXPRESSIONS: &[&str] = &[
    "host 10.0.0.1",
    "src host 10.0.0.2",
    "dst host 10.0.0.1",
    "host 2001:db8::1",
    "ip6 src host fe80::1",
    "net 10.0.0.0/8",
    "net 192.168.1.0/24",
    "src net 172.16.0.0/12",
    "dst net 2001:db8::/32",
    "net 10.0.0.0 mask 255.0.255.0",
    "src and dst net 10.0.0.0/8",
    "port 80",
    "src port 80",
    "dst port 53",
    "tcp port 22",
    "udp port 4789",
    "portrange 1000-2000",
    "udp dst portrange 500-600",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "arp",
    "ip",
    "ip6",
    "not ip",
    "ip proto 47",
    "proto 4",
    "ip6 proto 17",
    "vlan",
    "vlan 100",
    "vlan 200 or vlan 10",
    "not vlan",
    "host 192.168.1.9 and arp",
    "arp src host 192.168.1.1",
    "ip host 192.168.1.1",
    "tcp and not port 22",
    "not port 53 and udp",
    "udp or icmp and host 10.0.0.2",
    "host 172.16.0.2 and port 22",
    "not (tcp or udp)",
    "ip host 10.8.0.2",
    "net 0.0.0.0/0 and not net ::/0",
    "port 5353 or 546",
    "host 10.7.0.2",
    "portrange 0-65535",
    "ip6 and udp and not src port 1",
    "host 8.8.8.8 or host 10.45.0.2",
    "dst net 2001:db8::/127 and tcp",
];

/// The frame as the decoder sees it (Ethernet, or raw IP on other device types).
fn decoded_summary(f: &frames::Frame) -> Summary {
    let link = if f.anc.hatype == 1 {
        LinkType::ETHERNET
    } else {
        LinkType::RAW
    };
    let opts = DecodeOptions {
        stripped_vlan_tci: f.anc.vlan_tci,
        ..DecodeOptions::default()
    };
    Summary::from_decoded(&decode(link, &f.bytes, &opts))
}

/// IPv6 extension headers (and AH) the decoder walked in the frame.
fn ext_headers(f: &frames::Frame) -> usize {
    let link = if f.anc.hatype == 1 {
        LinkType::ETHERNET
    } else {
        LinkType::RAW
    };
    let decoded = decode(link, &f.bytes, &DecodeOptions::default());
    decoded
        .layers
        .iter()
        .filter(|l| matches!(l, Layer::Ipv6Ext { .. }))
        .count()
}

fn verdict(prog: &[super::BpfInsn], f: &frames::Frame) -> u32 {
    bpf_vm::run(prog, &f.bytes, &f.anc)
}

#[test]
fn bpf_agrees_with_eval_on_every_frame() {
    let frames = frames::all();
    let mut mismatches: Vec<String> = Vec::new();
    let (mut accepted, mut total) = (0, 0);
    for expr in EXPRESSIONS {
        let filter = Filter::parse(expr).unwrap();
        let opts = CompileOptions {
            filter: Some(&filter),
            exclude: &[],
            ifindexes: &[],
            snaplen: SNAPLEN,
            tunnel_ports: TunnelPorts::default(),
            depth: Default::default(),
        };
        let prog = compile(&opts).unwrap();
        bpf_vm::validate(&prog).unwrap_or_else(|e| panic!("{expr}: kernel would reject: {e:?}"));
        let mut hits = 0;
        for f in &frames {
            let bpf = verdict(&prog, f);
            let eval = filter.matches(&f.summary);
            // The hand-written summary must say what the decoder says.
            let decoded = filter.matches(&decoded_summary(f));
            if decoded != eval {
                mismatches.push(format!(
                    "{expr:?} on {:?}: decoded {decoded} hand-made {eval}",
                    f.name
                ));
            }
            assert!(
                bpf == 0 || bpf == SNAPLEN,
                "{expr} on {}: returned {bpf}",
                f.name
            );
            if (bpf != 0) != eval {
                mismatches.push(format!(
                    "{expr:?} on {:?}: bpf {} eval {eval}",
                    f.name,
                    bpf != 0
                ));
            }
            hits += usize::from(eval);
        }
        accepted += hits;
        total += frames.len();
        assert!(
            hits < frames.len() || expr.contains("0-65535") || expr.contains("::/0"),
            "{expr} matched every frame"
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The table must exercise both outcomes broadly.
    assert!(
        accepted * 10 > total && accepted * 10 < total * 9,
        "{accepted} of {total}"
    );
}

#[test]
fn exclude_list_drops_both_directions_at_any_level() {
    let frames = frames::all();
    let collector = Endpoint {
        addr: Addr::V4([10, 0, 0, 9]),
        port: 7077,
    };
    let dns = Endpoint {
        addr: Addr::V4([8, 8, 8, 8]),
        port: 53,
    };
    let v6 = Endpoint {
        addr: Addr::V6(frames::v6("2001:db8::2")),
        port: 50000,
    };
    let exclude = [collector, dns, v6];
    let tcp = Filter::parse("tcp or udp").unwrap();
    for filter in [None, Some(&tcp)] {
        let opts = CompileOptions {
            filter,
            exclude: &exclude,
            ifindexes: &[],
            snaplen: 96,
            tunnel_ports: TunnelPorts::default(),
            depth: Default::default(),
        };
        let prog = compile(&opts).unwrap();
        bpf_vm::validate(&prog).unwrap();
        let mut dropped = 0;
        for f in &frames {
            let excluded = exclude
                .iter()
                .any(|e| endpoint_at_any_level(&f.summary, e.addr, e.port));
            dropped += usize::from(excluded);
            let want = !excluded && filter.is_none_or(|flt| flt.matches(&f.summary));
            assert_eq!(
                verdict(&prog, f) == 96,
                want,
                "{} (filter {filter:?})",
                f.name
            );
        }
        // The collector link, the geneve inner DNS query and the IPv6 TCP frame.
        assert_eq!(dropped, 3);
    }
}

#[test]
fn ifindex_allow_list_and_plain_accept() {
    let frames = frames::all();
    let f = &frames[0];
    let prog = compile(&CompileOptions {
        filter: None,
        exclude: &[],
        ifindexes: &[3, 7],
        snaplen: 1500,
        tunnel_ports: TunnelPorts::default(),
        depth: Default::default(),
    })
    .unwrap();
    bpf_vm::validate(&prog).unwrap();
    for (ifindex, want) in [(3, 1500), (7, 1500), (2, 0), (0, 0)] {
        let anc = Ancillary { ifindex, ..f.anc };
        assert_eq!(
            bpf_vm::run(&prog, &f.bytes, &anc),
            want,
            "ifindex {ifindex}"
        );
    }
    let all = compile(&CompileOptions {
        filter: None,
        exclude: &[],
        ifindexes: &[],
        snaplen: 64,
        tunnel_ports: TunnelPorts::default(),
        depth: Default::default(),
    })
    .unwrap();
    assert_eq!(all.len(), 2, "no walk without a filter");
    assert_eq!(bpf_vm::run(&all, &[], &Ancillary::default()), 64);
    let zero = CompileOptions {
        filter: None,
        exclude: &[],
        ifindexes: &[],
        snaplen: 0,
        tunnel_ports: TunnelPorts::default(),
        depth: Default::default(),
    };
    assert_eq!(compile(&zero), Err(CompileError::ZeroSnaplen));
}

#[test]
fn large_filters_use_long_jumps_or_fail_cleanly() {
    let frames = frames::all();
    // Many IPv6 host tests push the accept label more than 255 instructions away.
    let mut expr = String::from("tcp port 80");
    for i in 0..20 {
        expr.push_str(&format!(" or host 2001:db8::{i:x}"));
    }
    expr.push_str(" or port 5353");
    let filter = Filter::parse(&expr).unwrap();
    let prog = compile(&CompileOptions {
        filter: Some(&filter),
        exclude: &[],
        ifindexes: &[],
        snaplen: 9,
        tunnel_ports: TunnelPorts::default(),
        depth: Default::default(),
    });
    let prog = prog.unwrap_or_else(|e| panic!("{e:?}"));
    bpf_vm::validate(&prog).unwrap();
    assert!(prog.len() > 1000, "{}", prog.len());
    for f in &frames {
        assert_eq!(
            verdict(&prog, f) != 0,
            filter.matches(&f.summary),
            "{}",
            f.name
        );
    }
    // Too long for the kernel: an error, not a truncated program.
    let exclude: Vec<Endpoint> = (0..40)
        .map(|i| Endpoint {
            addr: Addr::V6([i; 16]),
            port: 9,
        })
        .collect();
    let opts = CompileOptions {
        filter: Some(&filter),
        exclude: &exclude,
        ifindexes: &[],
        snaplen: 9,
        tunnel_ports: TunnelPorts::default(),
        depth: Default::default(),
    };
    assert_eq!(compile(&opts), Err(CompileError::TooLong));
}

/// The walker bounds-checks every header before a primitive reads it, so no prefix of any
/// frame makes the program trap (a trap is a drop: `not port 80` would turn false).
#[test]
fn truncated_frames_never_trap() {
    let frames = frames::all();
    let exclude = [Endpoint {
        addr: Addr::V4([10, 0, 0, 9]),
        port: 7077,
    }];
    for expr in EXPRESSIONS {
        let filter = Filter::parse(expr).unwrap();
        let opts = CompileOptions {
            filter: Some(&filter),
            exclude: &exclude,
            ifindexes: &[],
            snaplen: 1,
            tunnel_ports: TunnelPorts::default(),
            depth: Default::default(),
        };
        let prog = compile(&opts).unwrap();
        for f in &frames {
            for cut in 0..=f.bytes.len() {
                let got = bpf_vm::run_checked(&prog, &f.bytes[..cut], &f.anc);
                assert!(got.is_ok(), "{expr} on {} cut at {cut}: {got:?}", f.name);
            }
        }
    }
}

/// Damaged frames: byte flips and cuts of every hand-made frame, decoded by crate::decode.
/// The walk must agree with the summary on malformed headers too (lengths, versions, flags).
#[test]
fn bpf_agrees_with_decoder_on_damaged_frames() {
    let frames = frames::all();
    let filters: Vec<Filter> = EXPRESSIONS
        .iter()
        .map(|e| Filter::parse(e).unwrap())
        .collect();
    let programs: Vec<_> = filters
        .iter()
        .map(|f| {
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
    let mut rng = hopcap_testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let mut mismatches: Vec<String> = Vec::new();
    for f in &frames {
        for _ in 0..300 {
            let mut bytes = f.bytes.clone();
            // A few flips in the headers (where they matter), sometimes a cut.
            for _ in 0..1 + next() % 3 {
                let at = (next() % bytes.len().min(96) as u64) as usize;
                bytes[at] ^= 1 << (next() % 8);
            }
            if next() % 4 == 0 {
                bytes.truncate((next() % bytes.len() as u64) as usize);
            }
            let damaged = frames::Frame {
                name: f.name,
                bytes,
                anc: f.anc,
                summary: f.summary.clone(),
            };
            if ext_headers(&damaged) > 4 {
                continue; // longer chains than the walk follows: a documented difference
            }
            let summary = decoded_summary(&damaged);
            for ((expr, filter), prog) in EXPRESSIONS.iter().zip(&filters).zip(&programs) {
                let got = bpf_vm::run_checked(prog, &damaged.bytes, &damaged.anc);
                let bpf =
                    got.unwrap_or_else(|t| panic!("{expr} on damaged {}: {t:?}", f.name)) != 0;
                if bpf != filter.matches(&summary) && mismatches.len() < 20 {
                    mismatches.push(format!(
                        "{expr:?} on damaged {:?} {:02x?}: bpf {bpf}",
                        f.name, damaged.bytes
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_walk_follows_the_decoders_tunnel_ports() {
    use crate::decode::fixtures::{eth, ipv4, ipv4_frag, udp, vxlan};
    // VXLAN on UDP 9999, inner packet 192.168.7.1 > 192.168.7.2.
    let inner = eth(
        0x0800,
        &ipv4_frag(
            17,
            0x4000,
            [192, 168, 7, 1],
            [192, 168, 7, 2],
            &udp(1, 2, b"x"),
        ),
    );
    let frame = eth(0x0800, &ipv4(17, &udp(51000, 9999, &vxlan(42, &inner))));
    let custom = TunnelPorts {
        vxlan: [9999, 0],
        geneve: 0,
        gtpu: 0,
        ..TunnelPorts::default()
    };
    let filter = Filter::parse("host 192.168.7.2").unwrap();
    let anc = Ancillary {
        hatype: 1,
        ..Ancillary::default()
    };
    for (ports, inside) in [(TunnelPorts::default(), false), (custom, true)] {
        let prog = compile(&CompileOptions {
            filter: Some(&filter),
            exclude: &[],
            ifindexes: &[],
            snaplen: SNAPLEN,
            tunnel_ports: ports,
            depth: Default::default(),
        })
        .unwrap();
        bpf_vm::validate(&prog).unwrap();
        let opts = DecodeOptions {
            tunnel_ports: ports,
            ..DecodeOptions::default()
        };
        let summary = Summary::from_decoded(&decode(LinkType::ETHERNET, &frame, &opts));
        assert_eq!(filter.matches(&summary), inside, "{ports:?}");
        assert_eq!(bpf_vm::run(&prog, &frame, &anc) != 0, inside, "{ports:?}");
    }
}

/// Instruction counts of the full and the outer-only program (print them with
/// `cargo test -p hopcap-proto program_sizes -- --nocapture`).
#[test]
fn program_sizes_per_depth() {
    use super::Depth;
    let collector = [Endpoint {
        addr: Addr::V4([10, 0, 0, 9]),
        port: 7077,
    }];
    for expr in [
        "",
        "icmp",
        "tcp port 80",
        "udp port 53",
        "host 10.0.0.1",
        "tcp and host 10.0.0.1",
        "udp port 4789 and icmp",
        "host 2001:db8::1",
        "vlan 100",
    ] {
        let filter = (!expr.is_empty()).then(|| Filter::parse(expr).unwrap());
        let mut sizes = [[0usize; 2]; 2];
        for (i, exclude) in [&[][..], &collector[..]].into_iter().enumerate() {
            for (j, depth) in [Depth::Full, Depth::Outer].into_iter().enumerate() {
                let prog = compile(&CompileOptions {
                    filter: filter.as_ref(),
                    exclude,
                    ifindexes: &[2],
                    snaplen: 192,
                    tunnel_ports: TunnelPorts::default(),
                    depth,
                })
                .unwrap();
                bpf_vm::validate(&prog).unwrap();
                sizes[i][j] = prog.len();
            }
        }
        if filter.is_some() {
            // The lean walk is about a fifth of the full one: ~2.7 KB of classic BPF,
            // which fits the 10 KB optmem_max of Debian's armmp kernels.
            assert!(sizes[1][1] * 4 < sizes[1][0], "{expr}: {sizes:?}");
            assert!(sizes[1][1] < 350, "{expr}: {sizes:?}");
        }
        std::println!(
            "{expr:28} full {:5} outer {:4} | with exclude: full {:5} outer {:4}",
            sizes[0][0],
            sizes[0][1],
            sizes[1][0],
            sizes[1][1]
        );
    }
}

/// A lean outer-only program ([`Depth::Outer`]) and what it leaves to user space.
pub(super) struct Outer {
    prog: super::Program,
    /// The same walk with a filter that never holds: accepts exactly the frames the walk
    /// leaves to user space.
    deeper: super::Program,
}

impl Outer {
    pub(super) fn new(filter: &Filter, exclude: &[Endpoint]) -> Outer {
        let never = Filter::parse("ip and not ip").unwrap();
        let build = |filter| {
            let prog = compile(&CompileOptions {
                filter: Some(filter),
                exclude,
                ifindexes: &[],
                snaplen: 1,
                tunnel_ports: TunnelPorts::default(),
                depth: Depth::Outer,
            })
            .unwrap();
            bpf_vm::validate(&prog).unwrap();
            prog
        };
        Outer {
            prog: build(filter),
            deeper: build(&never),
        }
    }

    /// Checks the outer program on one frame against the exact verdict `want`: it must
    /// accept every frame the filter keeps, and differ only on frames it leaves to user
    /// space. Returns (left to user space, error).
    pub(super) fn check(&self, data: &[u8], anc: &Ancillary, want: bool) -> (bool, Option<String>) {
        let got = bpf_vm::run_checked(&self.prog, data, anc);
        let deeper = bpf_vm::run_checked(&self.deeper, data, anc);
        let (Ok(got), Ok(deeper)) = (got, deeper) else {
            return (false, Some(format!("trap: {got:?} {deeper:?}")));
        };
        let (got, deeper) = (got != 0, deeper != 0);
        let error = if deeper && !got {
            Some(String::from("left to user space but dropped"))
        } else if !deeper && got != want {
            Some(format!("outer bpf {got}, eval {want}"))
        } else {
            None
        };
        (deeper, error)
    }
}

/// The lean outer program is exact on every hand-made frame it does not leave to user
/// space, keeps every frame the filter selects, and leaves only tunnels and rare framings.
#[test]
fn outer_program_is_exact_or_leaves_the_frame_to_user_space() {
    let frames = frames::all();
    let collector = [Endpoint {
        addr: Addr::V4([10, 0, 0, 9]),
        port: 7077,
    }];
    let mut errors: Vec<String> = Vec::new();
    let mut deeper = Vec::new();
    for expr in EXPRESSIONS {
        let filter = Filter::parse(expr).unwrap();
        for exclude in [&[][..], &collector[..]] {
            let outer = Outer::new(&filter, exclude);
            for f in &frames {
                let opts = CompileOptions {
                    filter: Some(&filter),
                    exclude,
                    ifindexes: &[],
                    snaplen: 1,
                    tunnel_ports: TunnelPorts::default(),
                    depth: Depth::Outer,
                };
                let want = opts.accepts(&f.summary);
                // Truncated copies too: the lean walk must never trap or misjudge them.
                for cut in [f.bytes.len(), f.bytes.len() / 2, 20] {
                    let data = &f.bytes[..cut.min(f.bytes.len())];
                    let want = if cut >= f.bytes.len() {
                        want
                    } else {
                        opts.accepts(&decoded_summary(&frames::Frame {
                            name: f.name,
                            bytes: data.to_vec(),
                            anc: f.anc,
                            summary: f.summary.clone(),
                        }))
                    };
                    let (left, error) = outer.check(data, &f.anc, want);
                    if let Some(e) = error {
                        errors.push(format!("{expr:?} on {:?} cut {cut}: {e}", f.name));
                    }
                    if left && cut >= f.bytes.len() && !deeper.contains(&f.name) {
                        deeper.push(f.name);
                    }
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Only frames with a tunnel or a framing the lean walk leaves out go to user space.
    for name in &deeper {
        let f = frames.iter().find(|f| f.name == *name).unwrap();
        assert!(leaves_the_lean_walk(f), "{name} left to user space");
    }
    assert!(
        !deeper.is_empty() && deeper.len() < frames.len() / 2,
        "{deeper:?}"
    );
}

/// Whether the decoder finds in the frame what the lean walk leaves to user space: a
/// tunnel, MPLS, PPPoE, more than 2 VLAN tags or more than 1 IPv6 extension header (AH
/// counts), or a Cisco shim (which the decoder does not list as a layer).
fn leaves_the_lean_walk(f: &frames::Frame) -> bool {
    let link = if f.anc.hatype == 1 {
        LinkType::ETHERNET
    } else {
        LinkType::RAW
    };
    let decoded = decode(link, &f.bytes, &DecodeOptions::default());
    let count = |want: fn(&Layer) -> bool| decoded.layers.iter().filter(|l| want(l)).count();
    let shim = f.bytes.len() > 14
        && f.anc.hatype == 1
        && f.bytes
            .windows(2)
            .step_by(2)
            .take(12)
            .any(|w| w == [0x89, 0x26] || w == [0x89, 0x09]);
    shim || !decoded_summary(f).tunnels.is_empty()
        || count(|l| matches!(l, Layer::Mpls { .. } | Layer::Pppoe { .. })) > 0
        || count(|l| matches!(l, Layer::Vlan { .. })) > 2
        || count(|l| matches!(l, Layer::Ipv6Ext { .. })) > 1
}
