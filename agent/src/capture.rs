//! Frames from every captured network namespace: one packet socket per namespace (not bound
//! to a link, so it sees all of that namespace's links in the kernel's own order across
//! veth → bridge hops), polled together. Safe code over [`crate::sys`].

mod source;

pub use source::{
    accept_filter, ring_budget, CaptureConfig, CaptureMode, CaptureSource, SourceStats,
    DEFAULT_RING_BUDGET,
};

use crate::sys::netns::{self, NsId};
use crate::sys::FrameRef;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One captured namespace.
#[derive(Debug)]
struct Namespace {
    label: String,
    path: PathBuf,
    id: NsId,
    source: CaptureSource,
    /// net.core.optmem_max where the socket lives, read when it was made (None: unreadable).
    optmem_max: Option<u32>,
}

/// What [`Capture::stats`] reports for one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsStats {
    pub index: usize,
    pub label: String,
    pub mode: CaptureMode,
    pub stats: SourceStats,
}

/// Captures a changing set of network namespaces.
///
/// Namespaces are numbered by slot: an index stays valid from [`add_namespace`] until
/// [`remove_namespace`], after which it may be given to a namespace added later.
///
/// [`add_namespace`]: Capture::add_namespace
/// [`remove_namespace`]: Capture::remove_namespace
pub struct Capture {
    config: CaptureConfig,
    filter: Vec<libc::sock_filter>,
    slots: Vec<Option<Namespace>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("config", &self.config)
            .field("filter_len", &self.filter.len())
            .field("slots", &self.slots)
            .finish()
    }
}

impl Capture {
    /// No namespace yet; the filter is `ret #snaplen` until [`set_filter`](Self::set_filter).
    pub fn new(config: CaptureConfig) -> Self {
        let filter = accept_filter(config.snaplen).to_vec();
        Self {
            config,
            filter,
            slots: Vec::new(),
        }
    }

    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// Starts capturing the namespace at `path` ("" = this thread's own) under `label`.
    /// A namespace already captured (same nsfs inode, whatever path or label) is not opened
    /// twice: its existing index is returned.
    pub fn add_namespace(&mut self, label: &str, path: &Path) -> io::Result<usize> {
        self.add_namespace_from(label, path, path)
    }

    /// [`add_namespace`](Self::add_namespace), with `shown` as the namespace's path in
    /// messages (where it was found, when `path` is a /proc/thread-self/fd/N of it).
    pub fn add_namespace_from(
        &mut self,
        label: &str,
        path: &Path,
        shown: &Path,
    ) -> io::Result<usize> {
        let own = path.as_os_str().is_empty();
        let id = if own {
            netns::current_netns_id()?
        } else {
            netns::netns_id(path)?
        };
        if let Some(index) = self.find(|ns| ns.id == id) {
            return Ok(index);
        }
        // optmem_max is read where the socket is made: it is per namespace since Linux 6.9.
        // Before, it is one global value that only the initial namespace's /proc/sys/net/core
        // shows (Debian's 6.1 ARM kernels: 10240 / 20480); a namespace without the file then
        // takes the value the agent's own namespace shows.
        let open = || {
            let source = CaptureSource::open(&self.config, own, &self.filter)?;
            io::Result::Ok((source, netns::optmem_max()))
        };
        let (source, optmem_max) = if own {
            open()?
        } else {
            netns::in_netns(path, open)??
        };
        let optmem_max = match optmem_max {
            Err(e) if !own && e.kind() == io::ErrorKind::NotFound => netns::optmem_max(),
            read => read,
        }
        .inspect_err(|e| log::debug!("net.core.optmem_max of {label:?}: {e}"))
        .ok();
        log::info!(
            "capturing netns {label:?} ({}) in {:?} mode, {} bytes",
            shown.display(),
            source.mode(),
            source.buffer_bytes()
        );
        let ns = Namespace {
            label: label.to_owned(),
            path: path.to_owned(),
            id,
            source,
            optmem_max,
        };
        match self.slots.iter().position(Option::is_none) {
            Some(free) => {
                self.slots[free] = Some(ns);
                Ok(free)
            }
            None => {
                self.slots.push(Some(ns));
                Ok(self.slots.len() - 1)
            }
        }
    }

    /// Stops capturing namespace `index` (closing its socket); false if there was none.
    /// Call it when a namespace goes away: an open packet socket keeps its namespace alive.
    pub fn remove_namespace(&mut self, index: usize) -> bool {
        let removed = self.slots.get_mut(index).and_then(Option::take).is_some();
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        removed
    }

    /// Names namespace `index` `label` from now on (its runtime name became known).
    pub fn set_label(&mut self, index: usize, label: &str) {
        if let Some(ns) = self.slots.get_mut(index).and_then(Option::as_mut) {
            if ns.label != label {
                label.clone_into(&mut ns.label);
            }
        }
    }

    fn find(&self, pred: impl Fn(&Namespace) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.as_ref().is_some_and(&pred))
    }

    /// The index of the namespace captured under `label`.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.find(|ns| ns.label == label)
    }

    /// Every captured namespace: index, label, path, identity, mode.
    pub fn namespaces(&self) -> impl Iterator<Item = (usize, &str, &Path, NsId, CaptureMode)> {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let ns = slot.as_ref()?;
            Some((
                i,
                ns.label.as_str(),
                ns.path.as_path(),
                ns.id,
                ns.source.mode(),
            ))
        })
    }

    /// net.core.optmem_max of namespace `index`, as read when its socket was made.
    pub fn optmem_max(&self, index: usize) -> Option<u32> {
        self.slots.get(index)?.as_ref()?.optmem_max
    }

    pub fn mode(&self, index: usize) -> Option<CaptureMode> {
        Some(self.slots.get(index)?.as_ref()?.source.mode())
    }

    /// Replaces the filter on every socket and for namespaces added later. The kernel cuts
    /// each frame to the program's return value (0 drops it).
    pub fn set_filter(&mut self, program: &[libc::sock_filter]) -> io::Result<()> {
        for ns in self.slots.iter().flatten() {
            ns.source.set_filter(program)?;
        }
        self.filter = program.to_vec();
        Ok(())
    }

    /// Replaces the filter of one namespace only (ifindexes differ per namespace, so the
    /// agent's link allow-list is a per-namespace program).
    pub fn set_filter_of(&mut self, index: usize, program: &[libc::sock_filter]) -> io::Result<()> {
        match self.slots.get(index) {
            Some(Some(ns)) => ns.source.set_filter(program),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such capture namespace",
            )),
        }
    }

    /// Waits up to `timeout` for frames, then hands every waiting frame (up to the drain
    /// budget per namespace) to `f(ns_index, seq, frame)`, in capture order per namespace;
    /// `seq` counts that namespace's frames from 0. Returns how many frames were handed out.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(usize, u64, FrameRef<'_>),
    ) -> io::Result<usize> {
        // A ring block left over from a budget-limited drain does not make poll() readable
        // again, so look before sleeping.
        let pending = self.slots.iter().flatten().any(|ns| ns.source.has_ready());
        let wait = if pending { Duration::ZERO } else { timeout };
        let ready = self.wait_readable(wait)?;
        let budget = self.config.drain_budget;
        let mut total = 0;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(ns) = slot else { continue };
            // Rings are checked every time (one atomic load); recv sockets only when readable.
            if ns.source.mode() == CaptureMode::Ring || ready.get(index).copied().unwrap_or(false) {
                total += ns.source.drain(budget, |seq, frame| f(index, seq, frame));
            }
        }
        Ok(total)
    }

    /// poll(2) over every socket; readable flags by slot index.
    fn wait_readable(&self, timeout: Duration) -> io::Result<Vec<bool>> {
        let mut fds = Vec::with_capacity(self.slots.len());
        let mut slot_of = Vec::with_capacity(self.slots.len());
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(ns) = slot {
                fds.push(PollFd::new(ns.source.as_fd(), PollFlags::POLLIN));
                slot_of.push(index);
            }
        }
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut ready = vec![false; self.slots.len()];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(ready),
            Err(e) => return Err(e.into()),
        }
        for (fd, index) in fds.iter().zip(slot_of) {
            ready[index] = fd.revents().is_some_and(|r| !r.is_empty());
        }
        Ok(ready)
    }

    /// Counters per namespace (reading them collects PACKET_STATISTICS).
    pub fn stats(&mut self) -> Vec<NsStats> {
        let mut out = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(ns) = slot {
                let mode = ns.source.mode();
                out.push(NsStats {
                    index,
                    label: ns.label.clone(),
                    mode,
                    stats: ns.source.stats(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_filter_is_ret_k() {
        let [insn] = accept_filter(96);
        assert_eq!((insn.code, insn.jt, insn.jf, insn.k), (0x06, 0, 0, 96));
    }

    #[test]
    fn capture_can_move_to_a_capture_thread() {
        fn is_send<T: Send>() {}
        is_send::<Capture>();
    }

    #[test]
    fn empty_capture_polls_and_reports_nothing() {
        let mut capture = Capture::new(CaptureConfig::default());
        let n = capture
            .poll(Duration::ZERO, |_, _, _| panic!("no namespace, no frame"))
            .unwrap();
        assert_eq!(n, 0);
        assert!(capture.stats().is_empty());
        assert!(!capture.remove_namespace(0));
        assert_eq!(capture.index_of(""), None);
    }
}
