//! Where kept packets go. A sink sees each packet twice over: the [`Observation`] the
//! pipeline made, and the captured bytes it came from (for sinks that keep the packet
//! itself, such as a pcapng writer). Topology changes and stats come at their own pace.

mod export;
mod pcapng;
mod print;

pub use export::ExportSink;
pub use pcapng::{PcapngConfig, PcapngSink};
pub use print::PrintSink;

use crate::capture::NsStats;
use crate::clock_watch::Step;
use crate::links::{Change, LinkTable};
use crate::pipeline::link_type_of;
use crate::sys::FrameRef;
use hopcap_proto::record::Observation;
use hopcap_proto::types::LinkType;
use std::io;
use std::time::Duration;

/// One kept packet, borrowed for the length of one [`Sink::push`]: nothing is copied.
#[derive(Clone, Copy, Debug)]
pub struct Captured<'a> {
    pub obs: &'a Observation,
    /// The frame as the kernel handed it out, in its ring or recv buffer.
    pub frame: &'a FrameRef<'a>,
}

impl Captured<'_> {
    /// The captured bytes, from the link-layer header on (`frame.cap_len` of them).
    pub fn bytes(&self) -> &[u8] {
        self.frame.data
    }

    /// How [`bytes`](Self::bytes) start (a pcap/pcapng LINKTYPE).
    pub fn link_type(&self) -> LinkType {
        link_type_of(self.frame.hatype)
    }
}

/// Counters a sink may report: per namespace socket, and packets kept per link.
#[derive(Clone, Copy, Debug)]
pub struct Counts<'a> {
    pub namespaces: &'a [NsStats],
    pub per_link: &'a super::LinkCounts,
}

pub trait Sink {
    /// One kept packet. Runs per packet: it must not allocate (beyond a buffer growing to
    /// its working size) nor block.
    fn push(&mut self, packet: &Captured<'_>);

    /// Periodic work (every few tens of ms): write out what is due. An error ends the run;
    /// `BrokenPipe` (the reader went away) ends it quietly.
    fn tick(&mut self, _links: &LinkTable) -> io::Result<()> {
        Ok(())
    }

    /// Links appeared, went or changed (before any packet of a new link is pushed).
    fn topology(&mut self, _changes: &[Change]) {}

    /// The real-time clock was stepped: every observation pushed from now on is on the new
    /// clock, every one before on the old.
    fn clock_step(&mut self, _step: &Step) {}

    /// The counters of the last `interval`.
    fn stats(&mut self, _counts: Counts<'_>, _interval: Duration) {}

    /// Sends what is buffered, so that it is seen soon on a quiet board.
    fn flush(&mut self) {}

    /// End of the run: writes or delivers everything still held (within bounded time) and
    /// returns lines for the agent's summary.
    fn finish(&mut self, links: &LinkTable, counts: Counts<'_>) -> io::Result<Vec<String>>;
}
