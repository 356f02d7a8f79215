//! What the agent prints when it stops: frames seen and kept, each namespace socket's
//! counters, packets per link, then what the sink adds (the collector's delivery totals).

use super::LinkLabel;
use crate::capture::NsStats;
use crate::links::LinkTable;
use crate::pipeline::FramePipeline;
use hopcap_proto::record::LinkKey;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct RunSummary {
    pub observations: u64,
    pub lines: Vec<String>,
}

impl RunSummary {
    pub(super) fn new(
        pipeline: &FramePipeline,
        elapsed: Duration,
        stats: &[NsStats],
        per_link: &super::LinkCounts,
        links: &LinkTable,
    ) -> RunSummary {
        // Tenths in integers (no float formatting in the agent: it costs the binary ~15 KB).
        let tenths = (elapsed.as_millis() + 50) / 100;
        let mut lines = vec![format!(
            "{} frames seen, {} observations kept in {}.{}s",
            pipeline.seen,
            pipeline.kept,
            tenths / 10,
            tenths % 10
        )];
        for st in stats {
            let label = if st.label.is_empty() {
                "own namespace"
            } else {
                &st.label
            };
            let s = &st.stats;
            lines.push(format!(
                // Not TP_STATUS_LOSING's count: the kernel marks every frame until the drop
                // counters are read, so it counts frames, not losses (kernel drops do).
                "{label}: {:?} mode, {} frames, kernel drops {}{}, ring full {} times",
                st.mode,
                s.frames,
                s.kernel_drops,
                if s.kernel_stats {
                    ""
                } else {
                    " (not reported here)"
                },
                s.freeze_q,
            ));
        }
        let mut keys: Vec<_> = per_link.iter().collect();
        keys.sort();
        for (key, n) in keys {
            lines.push(format!("  {}: {n} packets", link_label(links, *key)));
        }
        RunSummary {
            observations: per_link.values().sum(),
            lines,
        }
    }
}

pub(super) fn link_label(links: &LinkTable, key: LinkKey) -> String {
    links.link(key).map_or_else(
        || format!("key {key}"),
        |l| {
            LinkLabel {
                netns: &l.netns,
                name: &l.name,
            }
            .to_string()
        },
    )
}
