//! Live capture: links → per-namespace capture with a kernel filter → pipeline → sink
//! (print, JSON or the collector), with hot-plug, periodic stats, and a clean stop.
//!
//! `cli` builds a [`RunConfig`]; nothing here reads the command line.

mod config;
mod error;
pub mod filter;
mod hello;
mod link_counts;
mod live;
pub mod sink;
mod slots;
mod summary;

pub use config::{collector_addrs, CollectorConfig, Output, PcapngConfig, RunConfig, Security};
pub use error::RunError;
pub use link_counts::LinkCounts;
pub use live::{Flow, LiveCapture};
pub use summary::RunSummary;

use std::fmt;
use std::sync::atomic::AtomicBool;

/// Runs a live capture until `stop` is set, the count or duration is reached, or stdout's
/// reader goes away. `started` runs once set-up is done (and capabilities dropped).
pub fn run(
    cfg: &RunConfig,
    stop: &AtomicBool,
    started: impl FnOnce(),
) -> Result<RunSummary, RunError> {
    let mut live = LiveCapture::start(cfg)?;
    release_setup_stack();
    started();
    live.run_until(stop)?;
    live.finish()
}

/// Gives back the stack pages that set-up (the BPF compiler's arrays) touched once.
pub(crate) fn release_setup_stack() {
    match crate::sys::stack::release_unused() {
        Ok(bytes) => log::debug!("stack below the capture loop released ({bytes} bytes)"),
        Err(e) => log::debug!("stack pages not released: {e}"),
    }
}

/// `netns:link`, or `link` in the agent's own namespace.
#[derive(Clone, Copy, Debug)]
pub struct LinkLabel<'a> {
    pub netns: &'a str,
    pub name: &'a str,
}

impl fmt::Display for LinkLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.netns.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{}:{}", self.netns, self.name)
        }
    }
}
