//! Per-frame work, straight from the ring: decode in place, condense, sample (by the sample
//! key), fingerprint, and build the observation record. No copy of the frame and no heap
//! allocation per packet (tests/no_alloc.rs proves it with a counting allocator).

use crate::clock::ClockSample;
use crate::clock_watch::{ClockWatch, Step};
use crate::sys::FrameRef;
use hopcap_proto::decode::{decode_into, DecodeOptions};
use hopcap_proto::fingerprint::fingerprint_summarized;
use hopcap_proto::layer::Decoded;
use hopcap_proto::record::{LinkKey, Observation};
use hopcap_proto::sample::SampleKeys;
use hopcap_proto::summary::Summary;
use hopcap_proto::types::LinkType;

/// ARPHRD_* values whose frames do not start with an Ethernet header on an AF_PACKET socket.
const ARPHRD_PPP: u16 = 512;
const ARPHRD_TUNNEL: u16 = 768;
const ARPHRD_TUNNEL6: u16 = 769;
const ARPHRD_SIT: u16 = 776;
const ARPHRD_IPGRE: u16 = 778;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

/// How a frame from a link of this ARPHRD type starts. Links without a link-layer header
/// (tun, WireGuard, IP-in-IP, GRE, PPP, wwan raw-ip) hand out the bare IP packet.
pub fn link_type_of(hatype: u16) -> LinkType {
    match hatype {
        ARPHRD_PPP | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_SIT | ARPHRD_IPGRE | ARPHRD_RAWIP
        | ARPHRD_NONE => LinkType::RAW,
        // Ethernet, loopback (a zeroed Ethernet header) and everything Ethernet-like.
        _ => LinkType::ETHERNET,
    }
}

/// Turns captured frames into observations.
#[derive(Debug)]
pub struct FramePipeline {
    decode: DecodeOptions,
    /// Reused for every frame: ~700 bytes that would otherwise be moved per packet.
    decoded: Decoded,
    /// The last frame's observation, built in place (~230 bytes, not moved per packet).
    obs: Observation,
    /// Keep 1 packet in `sample`, chosen by a key that a packet keeps when it is segmented,
    /// merged or fragmented (same on every board); 1 keeps all.
    sample: u32,
    /// The sample keys of recent first fragments, for their later fragments.
    sample_keys: SampleKeys,
    /// Added to every timestamp: the test-only `--debug-clock-offset-us`.
    clock_offset_ns: i64,
    /// Where frame times are placed on the current clock across real-time clock steps.
    clock: ClockWatch,
    /// Reads the clocks (the real ones; tests step a fake).
    read_clock: fn() -> ClockSample,
    /// A frame fitted no clock epoch in this turn and the clock was sampled again: once a turn.
    resampled: bool,
    /// A step found and not yet taken by [`take_step`](Self::take_step).
    step: Option<Step>,
    /// Frames seen and kept, for the summary.
    pub seen: u64,
    pub kept: u64,
}

impl FramePipeline {
    pub fn new(sample: u32, clock_offset_ns: i64) -> FramePipeline {
        FramePipeline::with_clock(sample, clock_offset_ns, ClockSample::now)
    }

    /// [`new`](Self::new) with the clocks read by `read_clock`.
    pub fn with_clock(
        sample: u32,
        clock_offset_ns: i64,
        read_clock: fn() -> ClockSample,
    ) -> FramePipeline {
        FramePipeline {
            decode: DecodeOptions::default(),
            decoded: Decoded::default(),
            obs: Observation::empty(),
            sample: sample.max(1),
            sample_keys: SampleKeys::new(),
            clock_offset_ns,
            clock: ClockWatch::new(read_clock()),
            read_clock,
            resampled: false,
            step: None,
            seen: 0,
            kept: 0,
        }
    }

    /// Samples the clocks at the start of a capture turn. A step found (now, or by a frame of
    /// the last turn) waits in [`take_step`](Self::take_step).
    pub fn turn(&mut self) {
        self.resampled = false;
        let sample = (self.read_clock)();
        self.note_step(sample);
    }

    fn note_step(&mut self, sample: ClockSample) {
        if let Some(step) = self.clock.sample(sample) {
            // Two steps before the caller looked: it learns the sum.
            self.step = Some(match self.step.take() {
                Some(earlier) => Step {
                    delta_ns: earlier.delta_ns.saturating_add(step.delta_ns),
                    ..step
                },
                None => step,
            });
        }
    }

    /// A real-time clock step seen since the last call. Every observation made after it is
    /// on the new clock (those of frames captured before it included).
    pub fn take_step(&mut self) -> Option<Step> {
        self.step.take()
    }

    /// Frames that fitted no clock epoch (kept on their own stamp).
    pub fn unplaced(&self) -> u64 {
        self.clock.unplaced
    }

    /// `ts_ns` on the current clock.
    fn place(&mut self, ts_ns: u64) -> u64 {
        if let Some(t) = self.clock.place(ts_ns) {
            return t;
        }
        if !self.resampled {
            // Perhaps a step happened during this turn: this frame was stamped after it.
            self.resampled = true;
            let sample = (self.read_clock)();
            self.note_step(sample);
            if let Some(t) = self.clock.place(ts_ns) {
                return t;
            }
        }
        self.clock.unplaced += 1;
        ts_ns
    }

    /// The observation of `frame` on link `link`, or `None` when sampling leaves it out.
    /// `order` is the frame's capture order within its socket. (A copy: the capture loop
    /// uses [`observe_if`](Self::observe_if) and [`observation`](Self::observation).)
    pub fn observe(
        &mut self,
        link: LinkKey,
        order: u64,
        frame: &FrameRef<'_>,
    ) -> Option<Observation> {
        self.observe_if(link, order, frame, |_| true)
            .then(|| self.obs.clone())
    }

    /// Observes `frame` if it also passes `keep` on its summary (the user-space filter when
    /// the kernel program could not decide alone; a frame it refuses is not counted as seen)
    /// and sampling keeps it: then true, and [`observation`](Self::observation) is its
    /// observation until the next call.
    pub fn observe_if(
        &mut self,
        link: LinkKey,
        order: u64,
        frame: &FrameRef<'_>,
        keep: impl FnOnce(&Summary) -> bool,
    ) -> bool {
        let opts = DecodeOptions {
            stripped_vlan_tci: frame.vlan_tci,
            ..self.decode
        };
        decode_into(
            link_type_of(frame.hatype),
            frame.data,
            &opts,
            &mut self.decoded,
        );
        self.obs.summary.set_from_decoded(&self.decoded);
        if !keep(&self.obs.summary) {
            return false;
        }
        self.seen += 1;
        // Consistent hash-based selection (RFC 5475): every link and board keeps the same
        // packets, and a packet's GSO segments or fragments with it, so a sampled packet's
        // path stays complete. Keeping all needs no key.
        if self.sample > 1 {
            let key =
                self.sample_keys
                    .key(&self.decoded, frame.data, &self.obs.summary, frame.ts_ns);
            if key % u64::from(self.sample) != 0 {
                return false;
            }
        }
        self.kept += 1;
        // Only now: a frame sampled away needs no fingerprint.
        let fp = fingerprint_summarized(&self.decoded, frame.data, &self.obs.summary);
        let ts_ns = self
            .place(frame.ts_ns)
            .saturating_add_signed(self.clock_offset_ns);
        let obs = &mut self.obs;
        obs.ts_ns = ts_ns;
        obs.link = link;
        obs.order = order;
        obs.pkttype = frame.pkttype;
        obs.wire_len = frame.wire_len;
        obs.cap_len = frame.cap_len;
        obs.fingerprint = fp;
        true
    }

    /// The observation of the last frame [`observe_if`](Self::observe_if) kept.
    pub fn observation(&self) -> &Observation {
        &self.obs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_proto::summary::{Net, Transport};
    use hopcap_proto::types::{Addr, PacketType};

    /// Ethernet + IPv4 + ICMP echo request 172.17.0.2 > 198.51.100.101, id 0x4000, seq 1.
    pub(crate) fn icmp_frame(src: [u8; 4], id: u16, seq: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let ip = [
            0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, src[0], src[1], src[2], src[3], 198,
            51, 100, 101,
        ];
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[8, 0, 0, 0]);
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend((0..56u8).map(|i| i.wrapping_mul(7)));
        f
    }

    fn frame(data: &[u8], ts_ns: u64) -> FrameRef<'_> {
        FrameRef {
            data,
            ts_ns,
            wire_len: data.len() as u32,
            cap_len: data.len() as u32,
            ifindex: 3,
            pkttype: PacketType::OUTGOING,
            hatype: 1,
            protocol: 0x0800,
            vlan_tci: None,
            losing: false,
        }
    }

    /// The fake clocks of the step test: boot time fixed (frames are "just captured"), the
    /// real-time clock `STEP` ahead of where it began.
    static STEP: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    const REAL0: u64 = 1_764_720_000_000_000_000;
    const BOOT0: u64 = 40_000_000_000;
    const DAY: u64 = 86_400_000_000_000;

    fn stepped_clock() -> ClockSample {
        ClockSample {
            real_ns: REAL0.saturating_add_signed(STEP.load(std::sync::atomic::Ordering::Relaxed)),
            boot_ns: BOOT0,
        }
    }

    #[test]
    fn frames_around_a_clock_step_land_on_the_new_clock() {
        use std::sync::atomic::Ordering::Relaxed;
        let data = icmp_frame([172, 17, 0, 2], 0x4000, 1);
        let mut p = FramePipeline::with_clock(1, 0, stepped_clock);
        p.turn();
        assert_eq!(p.take_step(), None);
        let ts =
            |p: &mut FramePipeline, stamp| p.observe(1, 0, &frame(&data, stamp)).unwrap().ts_ns;
        assert_eq!(ts(&mut p, REAL0 - 1_000_000), REAL0 - 1_000_000);

        // NTP steps the clock 3 days ahead; the next turn sees it.
        STEP.store(3 * DAY as i64, Relaxed);
        p.turn();
        let step = p.take_step().expect("the step");
        assert_eq!(
            (step.delta_ns, step.at_real_ns),
            (3 * DAY as i64, REAL0 + 3 * DAY)
        );
        assert_eq!(p.take_step(), None, "told once");
        // Still in the ring from before the step: moved; stamped after it: as is.
        assert_eq!(ts(&mut p, REAL0 - 2_000_000), REAL0 - 2_000_000 + 3 * DAY);
        assert_eq!(ts(&mut p, REAL0 + 3 * DAY + 5), REAL0 + 3 * DAY + 5);

        // Stepped again within a turn: the first frame stamped by the new clock reveals it.
        STEP.store(5 * DAY as i64, Relaxed);
        assert_eq!(ts(&mut p, REAL0 + 5 * DAY + 7), REAL0 + 5 * DAY + 7);
        assert_eq!(p.take_step().map(|s| s.delta_ns), Some(2 * DAY as i64));
        assert_eq!(ts(&mut p, REAL0 + 3 * DAY + 9), REAL0 + 5 * DAY + 9);
        assert_eq!(p.unplaced(), 0);
    }

    #[test]
    fn observes_an_icmp_echo_with_its_fields() {
        let data = icmp_frame([172, 17, 0, 2], 0x4000, 1);
        let mut p = FramePipeline::new(1, 0);
        let obs = p.observe(7, 42, &frame(&data, 1_000)).expect("kept");
        assert_eq!(
            (obs.link, obs.order, obs.ts_ns, obs.wire_len),
            (7, 42, 1_000, 98)
        );
        let Net::Ip(ip) = obs.summary.net else {
            panic!("{:?}", obs.summary.net)
        };
        assert_eq!(ip.src, Addr::V4([172, 17, 0, 2]));
        assert_eq!(
            obs.summary.transport,
            Transport::Icmp {
                ty: 8,
                code: 0,
                id: 0x4000,
                seq: 1
            }
        );
    }

    #[test]
    fn nat_rewrite_keeps_the_fingerprint_and_seq_changes_it() {
        let mut p = FramePipeline::new(1, 0);
        let before = p
            .observe(1, 0, &frame(&icmp_frame([172, 17, 0, 2], 0x4000, 1), 0))
            .unwrap();
        let after = p
            .observe(2, 1, &frame(&icmp_frame([192, 168, 43, 116], 0x9999, 1), 5))
            .unwrap();
        let next = p
            .observe(1, 2, &frame(&icmp_frame([172, 17, 0, 2], 0x4000, 2), 9))
            .unwrap();
        assert_eq!(before.fingerprint, after.fingerprint);
        assert_ne!(before.fingerprint, next.fingerprint);
    }

    #[test]
    fn sampling_is_consistent_and_keeps_about_one_in_n() {
        let mut a = FramePipeline::new(10, 0);
        let mut b = FramePipeline::new(10, 0);
        let mut kept = 0;
        for seq in 0..2000u16 {
            let data = icmp_frame([172, 17, 0, 2], 1, seq);
            let ka = a.observe(1, 0, &frame(&data, 0)).is_some();
            // The same packet NATed on another hop is kept or dropped alike.
            let natted = icmp_frame([192, 168, 43, 116], 7, seq);
            let kb = b.observe(2, 0, &frame(&natted, 0)).is_some();
            assert_eq!(ka, kb, "seq {seq}");
            kept += usize::from(ka);
        }
        assert!(
            (120..=280).contains(&kept),
            "kept {kept} of 2000 at 1 in 10"
        );
    }

    /// Ethernet + IPv4 (id `id`, from `src`) carrying `ip_payload`, with the flags and
    /// fragment offset word `frag`.
    fn ipv4_frame(src: [u8; 4], id: u16, frag: u16, ip_payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(20 + ip_payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[198, 51, 100, 101]);
        f.extend_from_slice(ip_payload);
        f
    }

    /// A 2000-byte UDP datagram whole from 172.17.0.2, and in two fragments after SNAT.
    fn datagram_and_fragments(id: u16) -> [Vec<u8>; 3] {
        let mut udp = vec![0x13, 0x88, 0x17, 0x70, 0x07, 0xd0, 0, 0];
        udp.extend((0..1992u32).map(|i| (i as u8).wrapping_mul(13) ^ id as u8));
        let natted = [192, 168, 43, 116];
        [
            ipv4_frame([172, 17, 0, 2], id, 0, &udp),
            ipv4_frame(natted, id, 0x2000, &udp[..1480]),
            ipv4_frame(natted, id, 1480 / 8, &udp[1480..]),
        ]
    }

    #[test]
    fn sampling_keeps_a_datagram_and_its_fragments_alike() {
        let mut whole = FramePipeline::new(4, 0);
        let mut pieces = FramePipeline::new(4, 0);
        let mut kept = 0;
        for id in 0..400u16 {
            let [datagram, first, second] = datagram_and_fragments(id);
            let k = whole.observe(1, 0, &frame(&datagram, 0)).is_some();
            let k1 = pieces.observe(2, 0, &frame(&first, 0)).is_some();
            let k2 = pieces.observe(2, 1, &frame(&second, 1_000)).is_some();
            assert_eq!((k1, k2), (k, k), "id {id}");
            kept += usize::from(k);
        }
        assert!((60..=140).contains(&kept), "kept {kept} of 400 at 1 in 4");
    }

    #[test]
    fn clock_offset_shifts_timestamps() {
        let data = icmp_frame([10, 0, 0, 1], 1, 1);
        let mut p = FramePipeline::new(1, -37_000_000);
        let obs = p.observe(1, 0, &frame(&data, 100_000_000)).unwrap();
        assert_eq!(obs.ts_ns, 63_000_000);
    }

    #[test]
    fn raw_ip_links_decode_from_the_ip_header() {
        assert_eq!(link_type_of(0xfffe), LinkType::RAW);
        assert_eq!(link_type_of(1), LinkType::ETHERNET);
        let eth = icmp_frame([10, 0, 0, 1], 1, 1);
        let mut f = frame(&eth[14..], 0);
        f.hatype = 0xfffe;
        let obs = FramePipeline::new(1, 0).observe(1, 0, &f).unwrap();
        assert!(matches!(obs.summary.net, Net::Ip(_)));
    }
}
