//! What a store's writer says about itself while it runs: how many requests wait for it and
//! whether it can write. Written by the backend, read by health checks and metrics, never
//! blocking the writer (atomics, and one short lock for the problem's text).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct WriterStatus {
    queued: AtomicUsize,
    capacity: AtomicUsize,
    problem: Mutex<Option<String>>,
    stopped: AtomicBool,
}

impl WriterStatus {
    /// Requests sent to the writer and not yet taken by it (senders blocked on a full queue
    /// included: they wait too).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Requests that may wait before senders block.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Why the writer cannot write now (database file gone, replaced or overwritten, disk
    /// full, ...), or that it has stopped; `None` when it is healthy.
    pub fn problem(&self) -> Option<String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Some("the store's writer has stopped".into());
        }
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    // The backend's side.

    pub fn set_capacity(&self, n: usize) {
        self.capacity.store(n, Ordering::Relaxed);
    }

    pub fn enqueued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Saturating: requests sent around the counting sender (tests drive the writer raw) must
    /// not wrap the gauge.
    pub fn dequeued(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn set_problem(&self, problem: Option<String>) {
        let mut p = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        if *p != problem {
            *p = problem;
        }
    }

    pub fn set_stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_gauge_never_wraps_and_problems_clear() {
        let s = WriterStatus::default();
        s.dequeued();
        assert_eq!(s.queued(), 0);
        s.enqueued();
        s.enqueued();
        s.dequeued();
        assert_eq!(s.queued(), 1);
        s.set_problem(Some("database file x is gone".into()));
        assert_eq!(s.problem().as_deref(), Some("database file x is gone"));
        s.set_problem(None);
        assert_eq!(s.problem(), None);
        s.set_stopped();
        assert!(s.problem().unwrap().contains("stopped"));
    }
}
