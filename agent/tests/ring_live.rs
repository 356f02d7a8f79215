//! Live capture between two network namespaces joined by a veth pair, in ring and in recv
//! mode. Needs root (creates namespaces). Every test builds its own bed with unique names and
//! removes it on drop, also when the test panics; all traffic stays between its namespaces.

use hopcap_agent::capture::{Capture, CaptureConfig, CaptureMode, NsStats};
use hopcap_agent::sys::netns::{self, in_netns};
use hopcap_agent::sys::ring::{RingGeometry, RxRing};
use hopcap_agent::sys::socket::PacketSocket;
use hopcap_agent::sys::{FrameRef, PacketType};
use std::cell::OnceCell;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PORT: u16 = 47_001;
const PAYLOAD: usize = 100;
const UDP_FRAME: u32 = 14 + 20 + 8 + PAYLOAD as u32;
const MARK: &[u8; 8] = b"hcsyLIVE";

/// Whether this kernel interface offers the ring: not under qemu-user, which answers
/// PACKET_VERSION with ENOPROTOOPT and also lacks PACKET_STATISTICS and PACKET_AUXDATA. The
/// tests expect the native behaviour where the ring exists, the documented fallback elsewhere.
fn native() -> bool {
    let socket = PacketSocket::open().expect("packet socket");
    match RxRing::new(&socket, &RingGeometry::default()) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => false,
        Err(e) => panic!("ring setup: {e}"),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces A and B, veth `va` (in A, 10.77.0.1) <-> `vb` (in B, 10.77.0.2).
struct Bed {
    ns: [String; 2],
    veth: [String; 2],
    /// B's receiving socket, bound once for the bed's life: rebinding the port for every
    /// `send` can meet EADDRINUSE while another test's fork (a Command) still holds a copy of
    /// the previous socket. Under qemu-user, which forks for vfork, that window is wide.
    rx: OnceCell<UdpSocket>,
}

impl Bed {
    fn new(tag: char) -> Self {
        let base = format!("hcs{}{tag}", std::process::id());
        let bed = Bed {
            ns: [format!("{base}a"), format!("{base}b")],
            veth: [format!("{base}va"), format!("{base}vb")],
            rx: OnceCell::new(),
        };
        for ns in &bed.ns {
            ip(&["netns", "add", ns]);
            // Fewer unrelated frames (router solicitations, MLD) in the capture.
            in_netns(&bed.path(ns), || {
                for conf in ["all", "default"] {
                    let knob = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
                    std::fs::write(knob, "1").expect("disable ipv6");
                }
            })
            .expect("enter netns");
        }
        let [a, b] = &bed.ns;
        let [va, vb] = &bed.veth;
        let peer = ["peer", "name", vb, "index", "23", "netns", b];
        ip(&[
            &["link", "add", va, "index", "17", "netns", a, "type", "veth"][..],
            &peer,
        ]
        .concat());
        for (ns, dev, addr) in [(a, va, "10.77.0.1/24"), (b, vb, "10.77.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        bed
    }

    fn path(&self, ns: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(ns)
    }

    fn ifindex(&self, side: usize) -> u32 {
        let name = self.veth[side].as_str();
        in_netns(&self.path(&self.ns[side]), || {
            nix::net::if_::if_nametoindex(name)
        })
        .expect("enter netns")
        .expect("veth ifindex")
    }

    /// A UDP socket living in namespace `side`.
    fn udp(&self, side: usize, addr: &str) -> UdpSocket {
        in_netns(&self.path(&self.ns[side]), || UdpSocket::bind(addr))
            .expect("enter netns")
            .expect("bind udp")
    }

    /// Sends datagrams `ids` from A to B and waits until B's socket has them all.
    fn send(&self, ids: std::ops::Range<u8>) {
        let rx = self.rx.get_or_init(|| {
            let rx = self.udp(1, &format!("10.77.0.2:{PORT}"));
            rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            rx
        });
        let tx = self.udp(0, "10.77.0.1:0");
        for id in ids.clone() {
            let mut payload = [0u8; PAYLOAD];
            payload[..8].copy_from_slice(MARK);
            payload[8] = id;
            tx.send_to(&payload, format!("10.77.0.2:{PORT}")).unwrap();
        }
        let mut buf = [0u8; 2 * PAYLOAD];
        for id in ids {
            let (n, _) = rx.recv_from(&mut buf).expect("datagram reaches B");
            assert_eq!((n, buf[8]), (PAYLOAD, id));
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth in it; the link delete covers a veth left in
        // the root namespace by a half-done setup.
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for dev in &self.veth {
            let _ = Command::new("ip").args(["link", "del", dev]).output();
        }
    }
}

/// One of our test datagrams as captured.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ns: usize,
    seq: u64,
    id: u8,
    ts_ns: u64,
    ifindex: u32,
    pkttype: PacketType,
    hatype: u16,
    wire_len: u32,
    cap_len: u32,
    data_len: usize,
    losing: bool,
}

/// Our datagram's id if `frame` is one (Ethernet, IPv4 with a 20-byte header, UDP to PORT).
fn test_datagram(frame: &FrameRef<'_>) -> Option<u8> {
    let d = frame.data;
    let is_ours = frame.protocol == 0x0800
        && d.get(12..14)? == [0x08, 0x00]
        && *d.get(14)? == 0x45
        && *d.get(23)? == 17
        && d.get(36..38)? == PORT.to_be_bytes();
    // With a short snaplen the payload may be cut: then the id is unknown (255).
    is_ours.then(|| {
        if d.get(42..50) == Some(MARK) {
            d.get(50).copied().unwrap_or(255)
        } else {
            255
        }
    })
}

/// Polls until `want(seen)` or 10 s (a hang guard, not a timing assertion).
fn collect(capture: &mut Capture, seen: &mut Vec<Seen>, want: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !want(seen) && Instant::now() < deadline {
        capture
            .poll(Duration::from_millis(20), |ns, seq, frame| {
                if let Some(id) = test_datagram(&frame) {
                    seen.push(Seen {
                        ns,
                        seq,
                        id,
                        ts_ns: frame.ts_ns,
                        ifindex: frame.ifindex,
                        pkttype: frame.pkttype,
                        hatype: frame.hatype,
                        wire_len: frame.wire_len,
                        cap_len: frame.cap_len,
                        data_len: frame.data.len(),
                        losing: frame.losing,
                    });
                }
            })
            .expect("poll");
    }
}

fn on(seen: &[Seen], ns: usize) -> Vec<Seen> {
    seen.iter().copied().filter(|s| s.ns == ns).collect()
}

fn stats_of(stats: &[NsStats], index: usize) -> NsStats {
    stats
        .iter()
        .find(|s| s.index == index)
        .cloned()
        .expect("stats for namespace")
}

fn two_sided_capture(bed: &Bed, config: CaptureConfig) -> (Capture, usize, usize) {
    let mut capture = Capture::new(config);
    let a = capture.add_namespace("a", &bed.path(&bed.ns[0])).unwrap();
    let b = capture.add_namespace("b", &bed.path(&bed.ns[1])).unwrap();
    (capture, a, b)
}

fn frames_cross_the_veth(tag: char, force_recv: bool) {
    let bed = Bed::new(tag);
    let config = CaptureConfig {
        force_recv,
        ..CaptureConfig::default()
    };
    let (mut capture, a, b) = two_sided_capture(&bed, config);
    let mode = if force_recv || !native() {
        CaptureMode::Recv
    } else {
        CaptureMode::Ring
    };
    assert_eq!((capture.mode(a), capture.mode(b)), (Some(mode), Some(mode)));
    // The same namespace under another name and path is not captured twice.
    let again = capture
        .add_namespace("b-again", &bed.path(&bed.ns[1]))
        .unwrap();
    assert_eq!(again, b);

    let stats = capture.stats();
    let exact_wire_len = stats_of(&stats, a).stats.exact_wire_len;
    assert_eq!(exact_wire_len, native());

    const N: u8 = 6;
    bed.send(0..N);
    let mut seen = Vec::new();
    collect(&mut capture, &mut seen, |s| {
        on(s, a).len() >= N as usize && on(s, b).len() >= N as usize
    });

    for (side, ns, dir) in [(0, a, PacketType::OUTGOING), (1, b, PacketType::HOST)] {
        let frames = on(&seen, ns);
        let ids: Vec<u8> = frames.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            (0..N).collect::<Vec<_>>(),
            "side {side}: each datagram once, in order"
        );
        let ifindex = bed.ifindex(side);
        for s in &frames {
            assert_eq!((s.ifindex, s.pkttype, s.hatype), (ifindex, dir, 1), "{s:?}");
            assert_eq!(
                (s.wire_len, s.cap_len, s.data_len),
                (UDP_FRAME, UDP_FRAME, UDP_FRAME as usize)
            );
        }
        assert_eq!(dir.direction(), if side == 0 { "Out" } else { "In" });
        for pair in frames.windows(2) {
            assert!(pair[0].seq < pair[1].seq, "{pair:?}");
            assert!(pair[0].ts_ns <= pair[1].ts_ns, "{pair:?}");
        }
    }
    // A datagram is received after it was sent.
    for (tx, rx) in on(&seen, a).iter().zip(on(&seen, b)) {
        assert!(tx.ts_ns <= rx.ts_ns, "{tx:?} {rx:?}");
    }

    let stats = capture.stats();
    for ns in [a, b] {
        let st = stats_of(&stats, ns);
        assert_eq!(st.mode, mode);
        assert_eq!(st.stats.kernel_stats, native());
        // Kernel receive times, also under qemu-user (through SO_TIMESTAMP there).
        assert_eq!(st.stats.receipt_stamped, 0, "{st:?}");
        if st.stats.kernel_stats {
            assert!(st.stats.kernel_packets >= u64::from(N), "{st:?}");
            assert!(st.stats.kernel_packets >= st.stats.frames, "{st:?}");
        }
        assert_eq!(
            (st.stats.kernel_drops, st.stats.losing_frames),
            (0, 0),
            "{st:?}"
        );
        assert_eq!(
            (st.stats.malformed_blocks, st.stats.errors),
            (0, 0),
            "{st:?}"
        );
    }

    // Removing a namespace stops its frames; the other one keeps capturing.
    assert!(capture.remove_namespace(b));
    assert_eq!(capture.mode(b), None);
    bed.send(N..2 * N);
    seen.clear();
    collect(&mut capture, &mut seen, |s| on(s, a).len() >= N as usize);
    assert_eq!(on(&seen, a).len(), N as usize);
    assert!(on(&seen, b).is_empty());
    // Its slot is reused.
    assert_eq!(
        capture.add_namespace("b", &bed.path(&bed.ns[1])).unwrap(),
        b
    );
}

#[test]
fn ring_frames_cross_the_veth() {
    frames_cross_the_veth('r', false);
}

#[test]
fn recv_frames_cross_the_veth() {
    frames_cross_the_veth('v', true);
}

fn snaplen_cuts_frames(tag: char, force_recv: bool) {
    let bed = Bed::new(tag);
    let config = CaptureConfig {
        force_recv,
        snaplen: 60,
        ..CaptureConfig::default()
    };
    let (mut capture, a, b) = two_sided_capture(&bed, config);
    bed.send(0..3);
    let mut seen = Vec::new();
    collect(&mut capture, &mut seen, |s| {
        on(s, a).len() >= 3 && on(s, b).len() >= 3
    });
    assert_eq!(seen.len(), 6, "{seen:?}");
    // Without PACKET_AUXDATA (qemu-user) the kernel reports only the captured length.
    let wire = if native() { UDP_FRAME } else { 60 };
    for s in &seen {
        assert_eq!((s.wire_len, s.cap_len, s.data_len), (wire, 60, 60), "{s:?}");
    }
}

#[test]
fn ring_snaplen_cuts_frames() {
    snaplen_cuts_frames('s', false);
}

#[test]
fn recv_snaplen_cuts_frames() {
    snaplen_cuts_frames('t', true);
}

fn drop_filter_gives_no_frames(tag: char, force_recv: bool) {
    let bed = Bed::new(tag);
    let a_path = bed.path(&bed.ns[0]);
    let config = CaptureConfig {
        force_recv,
        ..CaptureConfig::default()
    };
    // ret #0: the kernel keeps 0 bytes, i.e. drops every frame.
    let drop_all = [libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    // `control` accepts everything; `dropping` has the drop filter from its first frame;
    // `switched` accepts the first batch, then has its filter replaced.
    let mut control = Capture::new(config.clone());
    let c = control.add_namespace("a", &a_path).unwrap();
    let mut dropping = Capture::new(config.clone());
    dropping.set_filter(&drop_all).unwrap();
    let d = dropping.add_namespace("a", &a_path).unwrap();
    let mut switched = Capture::new(config);
    let s = switched.add_namespace("a", &a_path).unwrap();

    bed.send(0..4);
    let mut seen_control = Vec::new();
    collect(&mut control, &mut seen_control, |s| s.len() >= 4);
    let mut seen_switched = Vec::new();
    collect(&mut switched, &mut seen_switched, |s| s.len() >= 4);
    assert_eq!((seen_control.len(), seen_switched.len()), (4, 4));

    switched.set_filter(&drop_all).unwrap();
    let before = stats_of(&switched.stats(), s).stats;
    bed.send(4..8);
    collect(&mut control, &mut seen_control, |s| s.len() >= 8);
    assert_eq!(seen_control.len(), 8);
    // The control saw the second batch, so every tap had its turn at it.
    for capture in [&mut dropping, &mut switched] {
        let mut frames = 0;
        capture.poll(Duration::ZERO, |_, _, _| frames += 1).unwrap();
        assert_eq!(frames, 0);
    }
    let dropped = stats_of(&dropping.stats(), d).stats;
    assert_eq!(
        (dropped.frames, dropped.kernel_packets),
        (0, 0),
        "{dropped:?}"
    );
    let after = stats_of(&switched.stats(), s).stats;
    assert_eq!(after.frames, before.frames, "{before:?} {after:?}");
    assert_eq!(
        after.kernel_packets, before.kernel_packets,
        "{before:?} {after:?}"
    );
    let control_stats = stats_of(&control.stats(), c).stats;
    assert_eq!(control_stats.kernel_stats, native());
    if control_stats.kernel_stats {
        assert!(control_stats.kernel_packets >= 8, "{control_stats:?}");
    }
}

#[test]
fn ring_drop_filter_gives_no_frames() {
    drop_filter_gives_no_frames('d', false);
}

#[test]
fn recv_drop_filter_gives_no_frames() {
    drop_filter_gives_no_frames('e', true);
}

#[test]
fn in_netns_returns_home_also_after_a_panic() {
    let bed = Bed::new('n');
    let home = netns::current_netns_id().unwrap();
    let b_path = bed.path(&bed.ns[1]);
    let b_id = netns::netns_id(&b_path).unwrap();
    assert_ne!(home, b_id);
    assert_eq!(
        in_netns(&b_path, netns::current_netns_id).unwrap().unwrap(),
        b_id
    );
    assert_eq!(netns::current_netns_id().unwrap(), home);
    let caught = std::panic::catch_unwind(|| {
        in_netns(&b_path, || panic!("inside the namespace")).unwrap();
    });
    assert!(caught.is_err());
    assert_eq!(netns::current_netns_id().unwrap(), home);
    assert!(in_netns(&bed.path("hcs-no-such-ns"), || ()).is_err());
    assert_eq!(netns::current_netns_id().unwrap(), home);
}

/// A ring of two one-page blocks, so a few dozen frames fill it.
fn tiny_ring() -> CaptureConfig {
    let ring = RingGeometry {
        block_size: 4096,
        block_count: 2,
        ..RingGeometry::default()
    };
    CaptureConfig {
        ring,
        other_ring: ring,
        ..CaptureConfig::default()
    }
}

#[test]
fn ring_blocks_are_handed_back_and_reused() {
    let bed = Bed::new('w');
    let mut capture = Capture::new(tiny_ring());
    let b = capture.add_namespace("b", &bed.path(&bed.ns[1])).unwrap();
    // Under qemu-user there is no ring: the same 200 frames must come through the recv fallback.
    let mode = if native() {
        CaptureMode::Ring
    } else {
        CaptureMode::Recv
    };
    assert_eq!(capture.mode(b), Some(mode));
    // 200 frames of ~240 ring bytes each pass through the 2 blocks many times over.
    let mut seen = Vec::new();
    for batch in 0..20u8 {
        bed.send(batch * 10..batch * 10 + 10);
        let want = usize::from(batch) * 10 + 10;
        collect(&mut capture, &mut seen, |s| s.len() >= want);
    }
    let ids: Vec<u8> = seen.iter().map(|s| s.id).collect();
    assert_eq!(ids, (0..200).collect::<Vec<u8>>());
    let st = stats_of(&capture.stats(), b).stats;
    assert_eq!(
        (st.kernel_drops, st.losing_frames, st.malformed_blocks),
        (0, 0, 0),
        "{st:?}"
    );
}

#[test]
fn ring_overflow_is_counted_and_flagged() {
    if !native() {
        // qemu-user: no ring to overflow, and no PACKET_STATISTICS to count a full socket
        // buffer's drops with. What remains to check is that the agent says so.
        let bed = Bed::new('o');
        let mut capture = Capture::new(tiny_ring());
        let b = capture.add_namespace("b", &bed.path(&bed.ns[1])).unwrap();
        assert_eq!(capture.mode(b), Some(CaptureMode::Recv));
        let st = stats_of(&capture.stats(), b).stats;
        assert!(!st.kernel_stats, "{st:?}");
        return;
    }
    let bed = Bed::new('o');
    let mut capture = Capture::new(tiny_ring());
    let b = capture.add_namespace("b", &bed.path(&bed.ns[1])).unwrap();
    // Nobody reads while 100 frames arrive: the two blocks fill, the rest is dropped. Taps run
    // before UDP delivery, so when the receiver has them all the ring has seen them all.
    bed.send(0..100);
    let mut seen = Vec::new();
    collect(&mut capture, &mut seen, |s| !s.is_empty());
    // Frozen full, the ring takes frames again once its blocks are handed back.
    bed.send(100..110);
    collect(&mut capture, &mut seen, |s| s.iter().any(|f| f.id >= 100));
    let first = seen.len();
    assert!(first > 0 && first < 110, "{first} frames");
    // Frames come in order, with gaps where the kernel dropped.
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id), "{seen:?}");
    // Drops are not yet read from PACKET_STATISTICS, so blocks closed since carry LOSING.
    assert!(seen.iter().any(|f| f.losing), "{seen:?}");
    let st = stats_of(&capture.stats(), b).stats;
    assert!(st.kernel_drops > 0 && st.freeze_q > 0, "{st:?}");
    assert!(st.losing_frames > 0, "{st:?}");
    assert!(
        st.kernel_packets >= st.kernel_drops + seen.len() as u64,
        "{st:?}"
    );
    // Read and reset: new frames are clean again.
    bed.send(110..120);
    seen.clear();
    collect(&mut capture, &mut seen, |s| s.len() >= 10);
    assert_eq!(
        seen.iter().map(|f| f.id).collect::<Vec<_>>(),
        (110..120).collect::<Vec<u8>>()
    );
    assert!(seen.iter().all(|f| !f.losing), "{seen:?}");
}

#[test]
fn recv_buffer_cuts_long_frames() {
    let bed = Bed::new('c');
    let config = CaptureConfig {
        force_recv: true,
        recv_frame_bytes: 64,
        ..CaptureConfig::default()
    };
    let (mut capture, a, b) = two_sided_capture(&bed, config);
    bed.send(0..3);
    let mut seen = Vec::new();
    collect(&mut capture, &mut seen, |s| {
        on(s, a).len() >= 3 && on(s, b).len() >= 3
    });
    assert_eq!(seen.len(), 6, "{seen:?}");
    for s in &seen {
        // MSG_TRUNC reports the whole captured length even without PACKET_AUXDATA.
        assert_eq!(
            (s.wire_len, s.cap_len, s.data_len),
            (UDP_FRAME, 64, 64),
            "{s:?}"
        );
    }
    let stats = capture.stats();
    for ns in [a, b] {
        let st = stats_of(&stats, ns).stats;
        assert!(st.cut_frames >= 3, "{st:?}");
    }
}
