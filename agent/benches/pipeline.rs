//! CPU per frame of the agent's per-packet work, without the kernel: `FramePipeline::observe`
//! (decode in place, summary, fingerprint, sampling) per kind of frame, and then what each
//! output adds: the collector batch (`BatchEncoder::push`), a `--json` line, a `--print` line.
//!
//! `cargo bench -p hopcap-agent --bench pipeline` (BENCH_FRAMES=N to change the 70 000
//! frames). Best of 15 rounds each; figures only, nothing asserted.
//! `... --bench pipeline -- batch` runs only the collector path (observe + batch push), for
//! perf or callgrind to look at.

#[path = "../tests/common/frames.rs"]
mod frames;

use hopcap_agent::pipeline::FramePipeline;
use hopcap_agent::sys::FrameRef;
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::print::{write_json_observation, write_line};
use hopcap_proto::types::PacketType;
use std::hint::black_box;
use std::time::Instant;

/// Rounds per figure, the best kept: the build machines are shared and busy.
const ROUNDS: usize = 15;

fn frame_ref(data: &[u8], i: usize) -> FrameRef<'_> {
    FrameRef {
        data,
        ts_ns: 1_700_000_000_000_000_000 + i as u64 * 1_000,
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

/// Best ns per frame of `f` over the frames, in `ROUNDS` rounds.
fn best(frames: &[&Vec<u8>], mut f: impl FnMut(usize, FrameRef<'_>)) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for (i, data) in frames.iter().enumerate() {
                f(i, frame_ref(data, i));
            }
            t.elapsed().as_nanos() as f64 / frames.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// What the agent does per frame for a collector: observe, then push into a 16 KiB batch.
fn observe_and_push(mix: &[&Vec<u8>], batches: &mut u64) -> f64 {
    let mut p = FramePipeline::new(1, 0);
    let mut enc = Box::new(BatchEncoder::new("pi-board-01", 16 * 1024));
    best(mix, |i, f| {
        if p.observe_if((i % 5) as u16, i as u64, &f, |_| true) {
            let o = p.observation();
            if enc.push(o).is_err() {
                black_box(enc.finish());
                *batches += 1;
                let _ = enc.push(o);
            }
        }
    })
}

fn main() {
    let n: usize = std::env::var("BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(70_000);
    let all = frames::mix(n);
    if std::env::args().any(|a| a == "batch") {
        let mix: Vec<&Vec<u8>> = all.iter().collect();
        let ns = observe_and_push(&mix, &mut 0);
        println!("mix, observe + batch push: {ns:.1} ns per frame");
        return;
    }
    let kinds = [
        ("icmp", vec![0]),
        ("tcp", vec![1, 2]),
        ("udp", vec![3]),
        ("vxlan", vec![4]),
        ("ipv6", vec![5, 6]),
        ("mix", (0..7).collect()),
    ];
    println!("{:<8} {:>8} {:>12}", "frames", "count", "observe ns");
    for (name, slots) in &kinds {
        // Copied, so each kind's frames lie together in memory as the mix's do.
        let owned: Vec<Vec<u8>> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| slots.contains(&(i % 7)))
            .map(|(_, f)| f.clone())
            .collect();
        let chosen: Vec<&Vec<u8>> = owned.iter().collect();
        let mut p = FramePipeline::new(1, 0);
        let ns = best(&chosen, |i, f| {
            black_box(p.observe(1, i as u64, &f));
        });
        println!("{name:<8} {:>8} {ns:>12.1}", chosen.len());
    }

    let mix: Vec<&Vec<u8>> = all.iter().collect();
    let mut p = FramePipeline::new(1, 0);
    let sampled = {
        let mut p4 = FramePipeline::new(4, 0);
        best(&mix, |i, f| {
            black_box(p4.observe(1, i as u64, &f));
        })
    };
    let mut batches = 0u64;
    let batch = observe_and_push(&mix, &mut batches);
    let mut line = String::with_capacity(512);
    let json = best(&mix, |i, f| {
        if let Some(o) = p.observe(1, i as u64, &f) {
            line.clear();
            let _ = write_json_observation(&mut line, "pi-board-01", "", "docker0", &o);
            black_box(&line);
        }
    });
    let print = best(&mix, |i, f| {
        if let Some(o) = p.observe(1, i as u64, &f) {
            line.clear();
            let _ = write_line(
                &mut line,
                o.ts_ns,
                "docker0",
                Some(o.pkttype),
                &o.summary,
                o.wire_len,
            );
            black_box(&line);
        }
    });
    println!();
    println!("mix, per frame (ns)");
    println!("  observe, --sample 4          {sampled:>8.1}");
    println!(
        "  observe + batch push         {batch:>8.1}  ({} batches of 16 KiB per round)",
        batches / ROUNDS as u64
    );
    println!("  observe + --json line        {json:>8.1}");
    println!("  observe + --print line       {print:>8.1}");
}
