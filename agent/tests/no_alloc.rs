//! The per-packet path allocates nothing: a counting global allocator watches
//! `FramePipeline::observe`, `BatchEncoder::push` (with the batch turnover `finish`) and the
//! collector sink's `push` over thousands of frames of every kind a board carries, after a
//! warm-up pass.
//!
//! Only allocations made by the measuring thread count, so tests running in parallel
//! threads do not disturb the figure.

#[path = "common/frames.rs"]
mod frames;

use hopcap_agent::export::{Connector, ExportConfig, Exporter, Stream};
use hopcap_agent::pipeline::FramePipeline;
use hopcap_agent::run::sink::{Captured, ExportSink, PcapngConfig, PcapngSink, Sink};
use hopcap_agent::sys::FrameRef;
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Net, Transport};
use hopcap_proto::types::{Addr, PacketType};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // const-initialised and without a destructor: touching them never allocates. Both are
    // per thread, so tests measuring in parallel do not count each other's allocations.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract; counting touches only const thread-locals.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's layout contract is passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from this allocator (so from System) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from System) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

const FRAMES: usize = 7 * 1000;

fn frame_ref(data: &[u8], i: usize) -> FrameRef<'_> {
    FrameRef {
        data,
        ts_ns: 1_700_000_000_000_000_000 + i as u64 * 1_000,
        wire_len: data.len() as u32,
        cap_len: data.len() as u32,
        ifindex: 3,
        pkttype: if i % 2 == 0 {
            PacketType::OUTGOING
        } else {
            PacketType::HOST
        },
        hatype: 1,
        protocol: 0x0800,
        vlan_tci: (i % 5 == 0).then_some(100),
        losing: false,
    }
}

/// The observations of `frames`, made outside any measurement.
fn observations(frames: &[Vec<u8>]) -> Vec<Observation> {
    let mut p = FramePipeline::new(1, 0);
    frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| p.observe((i % 4) as u16, i as u64, &frame_ref(f, i)))
        .collect()
}

#[test]
fn the_mix_covers_every_kind() {
    let obs = observations(&frames::mix(FRAMES));
    assert_eq!(obs.len(), FRAMES);
    let count = |pred: &dyn Fn(&Observation) -> bool| obs.iter().filter(|o| pred(o)).count();
    let v6 =
        |o: &Observation| matches!(o.summary.net, Net::Ip(ip) if matches!(ip.src, Addr::V6(_)));
    assert!(count(&|o| matches!(o.summary.transport, Transport::Icmp { .. })) > 1000);
    assert!(count(&|o| matches!(o.summary.transport, Transport::Tcp { .. })) > 2000);
    assert!(count(&|o| matches!(o.summary.transport, Transport::Udp { .. })) > 1000);
    assert!(count(&|o| !o.summary.tunnels.is_empty()) >= FRAMES / 7);
    assert!(count(&v6) >= 2 * FRAMES / 7);
    assert!(
        obs.iter().all(|o| o.summary.stop.is_none()),
        "all decode whole"
    );
}

#[test]
fn observe_allocates_nothing_after_warm_up() {
    let frames = frames::mix(FRAMES);
    let mut pipeline = FramePipeline::new(1, 0);
    let mut kept = 0usize;
    let pass = |pipeline: &mut FramePipeline, kept: &mut usize| {
        for (i, f) in frames.iter().enumerate() {
            // The capture loop's way: observe in place, then borrow the observation.
            if pipeline.observe_if((i % 4) as u16, i as u64, &frame_ref(f, i), |_| true) {
                std::hint::black_box(pipeline.observation());
                *kept += 1;
            }
        }
    };
    pass(&mut pipeline, &mut kept);
    let n = allocations_in(|| pass(&mut pipeline, &mut kept));
    assert_eq!(kept, 2 * FRAMES);
    assert_eq!(n, 0, "allocations in {FRAMES} observe calls");
}

/// The user-space filter (a socket whose kernel program could not take the whole filter):
/// every level of every frame judged, the collector endpoint excluded, without allocating.
#[test]
fn user_space_filter_allocates_nothing() {
    use hopcap_proto::filter::{CompileOptions, Endpoint, Filter};
    let frames = frames::mix(FRAMES);
    let filter = Filter::parse("icmp or udp port 53 or host 2001:db8::1 or vlan 100").unwrap();
    let exclude = [Endpoint {
        addr: Addr::V4([10, 0, 0, 9]),
        port: 7077,
    }];
    let opts = CompileOptions {
        filter: Some(&filter),
        exclude: &exclude,
        ifindexes: &[],
        snaplen: 192,
        tunnel_ports: Default::default(),
        depth: Default::default(),
    };
    let mut pipeline = FramePipeline::new(1, 0);
    let mut kept = 0usize;
    let mut pass = |kept: &mut usize| {
        for (i, f) in frames.iter().enumerate() {
            let obs = pipeline.observe_if(1, i as u64, &frame_ref(f, i), |s| opts.accepts(s));
            *kept += usize::from(std::hint::black_box(obs));
        }
    };
    pass(&mut kept);
    let n = allocations_in(|| pass(&mut kept));
    assert!(kept > 0 && kept < 2 * FRAMES, "kept {kept}");
    assert_eq!(n, 0);
}

#[test]
fn sampling_allocates_nothing_either() {
    let frames = frames::mix(FRAMES);
    let mut pipeline = FramePipeline::new(4, 0);
    let mut kept = 0usize;
    let n = allocations_in(|| {
        for (i, f) in frames.iter().enumerate() {
            kept += usize::from(pipeline.observe(1, i as u64, &frame_ref(f, i)).is_some());
        }
    });
    assert!(kept > 0 && kept < FRAMES, "kept {kept}");
    assert_eq!(n, 0);
}

#[test]
fn batch_push_and_finish_allocate_nothing_after_warm_up() {
    let obs = observations(&frames::mix(FRAMES));
    let mut encoder = Box::new(BatchEncoder::new("pi-board-01", 16 * 1024));
    let mut batches = 0u32;
    let mut bytes = 0usize;
    let push_all = |encoder: &mut BatchEncoder, batches: &mut u32, bytes: &mut usize| {
        for o in &obs {
            if encoder.push(o).is_err() {
                *bytes += encoder.finish().len();
                *batches += 1;
                encoder.push(o).expect("an empty batch takes one record");
            }
        }
        *bytes += encoder.finish().len();
        *batches += 1;
    };
    push_all(&mut encoder, &mut batches, &mut bytes);
    let warm = batches;
    let n = allocations_in(|| push_all(&mut encoder, &mut batches, &mut bytes));
    // 7000 records of up to a few dozen bytes do not fit one 16 KiB batch.
    assert!(batches - warm > 1, "{} batches", batches - warm);
    assert!(bytes > 0);
    assert_eq!(n, 0, "allocations in {} pushes", obs.len());
    // Every batch starts from fresh state, rebuilt in place: a second round allocates
    // nothing either.
    let n = allocations_in(|| push_all(&mut encoder, &mut batches, &mut bytes));
    assert_eq!(n, 0, "allocations in the second round");
}

/// A collector that is never there: batches stay queued (and are dropped over budget).
struct Unreachable;

impl Connector for Unreachable {
    fn connect(&mut self) -> std::io::Result<Box<dyn Stream>> {
        Err(std::io::ErrorKind::ConnectionRefused.into())
    }
    fn peer(&self) -> &str {
        "nowhere"
    }
}

#[test]
fn the_collector_sink_allocates_per_batch_not_per_packet() {
    collector_sink_allocates_per_batch(0);
}

#[test]
fn the_collector_sink_with_frame_bytes_allocates_per_batch_not_per_packet() {
    collector_sink_allocates_per_batch(128);
}

/// The sink with `--snap-bytes snap` (0: off).
fn collector_sink_allocates_per_batch(snap: u16) {
    let frames = frames::mix(FRAMES);
    let obs = observations(&frames);
    let cfg = ExportConfig {
        queue_bytes: 64 * 1024,
        backoff_min: std::time::Duration::from_secs(60),
        ..ExportConfig::default()
    };
    let exporter = Exporter::spawn(
        cfg,
        Box::new(Unreachable),
        Box::new(Vec::new),
        hopcap_agent::export::Wire::acks_only(hopcap_proto::frame::parse_ack),
    )
    .unwrap();
    let topology = std::sync::Arc::default();
    let mut sink = ExportSink::new("pi-board-01", exporter, topology, snap);
    let push_all = |sink: &mut ExportSink| {
        for (i, (o, f)) in obs.iter().zip(&frames).enumerate() {
            sink.push(&Captured {
                obs: o,
                frame: &frame_ref(f, i),
            });
        }
    };
    push_all(&mut sink);
    let n = allocations_in(|| push_all(&mut sink));
    // The batches the sink fills (16 KiB each, as it makes them), counted outside.
    let mut encoder = Box::new(BatchEncoder::with_snap_bytes(
        "pi-board-01",
        16 * 1024,
        snap,
    ));
    let mut batches = 0u64;
    for (o, f) in obs.iter().zip(&frames) {
        if encoder.push_with_bytes(o, f).is_err() {
            encoder.finish();
            batches += 1;
            encoder
                .push_with_bytes(o, f)
                .expect("an empty batch takes one record");
        }
    }
    // One per shipped batch (its queued frame bytes), and a spare for the queue growing.
    assert!(batches > 1, "{batches} batches");
    assert!(n > 0, "batches were shipped");
    assert!(
        n <= batches + 2,
        "{n} allocations in {} pushes, {batches} batches",
        obs.len()
    );
}

#[test]
fn the_pcapng_sink_allocates_nothing_per_packet() {
    let frames = frames::mix(FRAMES);
    let obs = observations(&frames);
    let dir = hopcap_testkit::ScratchDir::new("noalloc-pcapng").expect("scratch dir");
    let cfg = PcapngConfig {
        path: dir.join("a.pcapng"),
        rotate_bytes: None,
        rotate_every: None,
        snaplen: 192,
    };
    let mut sink = PcapngSink::create(cfg, "pi-board-01", []).expect("create");
    let push_all = |sink: &mut PcapngSink| {
        for (i, (o, f)) in obs.iter().zip(&frames).enumerate() {
            sink.push(&Captured {
                obs: o,
                frame: &frame_ref(f, i),
            });
        }
    };
    // The first round describes each link once (a label per interface).
    push_all(&mut sink);
    let n = allocations_in(|| push_all(&mut sink));
    assert_eq!(n, 0, "allocations in {} pushes", obs.len());
}

#[test]
fn the_counter_counts() {
    // The measurement itself must be able to fail.
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}
