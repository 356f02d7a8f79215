//! One collector-wide memory budget for what agents make the collector hold: partial frames in
//! the connections' receive buffers (and link tables being received), and decoded batches from
//! the moment they are decoded until the store's writer has committed and dropped them (the
//! writer's queue included). A connection that cannot get its share waits, and while it waits
//! it does not read its socket: the agent is slowed down (TCP back-pressure) instead of the
//! collector growing.
//!
//! The budget is split in two pools, so that connections holding receive buffers can never
//! starve the batches that free memory as the writer commits them: `frames` (receive buffers,
//! link tables) and `batches` (decoded rows in flight). Limits: one request larger than its
//! pool waits for the whole pool to be free and then takes it all; a frame that stalls while
//! holding its buffer is ended by the connection's frame deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Default size of the whole budget (both pools).
pub const DEFAULT_BUDGET: usize = 64 << 20;

#[derive(Debug)]
pub struct Pool {
    name: &'static str,
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// The two pools of the budget.
#[derive(Debug, Clone)]
pub struct Budget {
    pub frames: Arc<Pool>,
    pub batches: Arc<Pool>,
}

impl Budget {
    /// A budget of `total` bytes: half for receive buffers, half for batches (32 MiB of
    /// batches by default: some 130 000 decoded records, more than a second of the writer's
    /// work, so it never idles for want of them, and a well-behaved board's batch never waits
    /// behind much more).
    pub fn new(total: usize) -> Budget {
        let frames = (total / 2).max(1);
        Budget {
            frames: Pool::new("frames", frames),
            batches: Pool::new("batches", total.saturating_sub(frames).max(1)),
        }
    }

    /// Bytes held now, both pools.
    pub fn used(&self) -> usize {
        self.frames.used() + self.batches.used()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BUDGET)
    }
}

impl Pool {
    fn new(name: &'static str, limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            name,
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `bytes` (at most the whole pool), waiting while the pool is short; `None` if
    /// `stop` is raised meanwhile. Waits in steps of `poll`.
    pub fn acquire(
        self: &Arc<Self>,
        bytes: usize,
        stop: &AtomicBool,
        poll: Duration,
    ) -> Option<Permit> {
        let bytes = bytes.min(self.limit);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let mut logged = false;
        while *used + bytes > self.limit {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if !logged {
                crate::warn_limited!(
                    "budget-full",
                    "memory budget: the {} pool is full ({} of {} bytes held); agents are \
                     slowed down until it frees",
                    self.name,
                    *used,
                    self.limit
                );
                logged = true;
            }
            used = self
                .freed
                .wait_timeout(used, poll)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        *used += bytes;
        Some(Permit {
            pool: Arc::clone(self),
            bytes,
        })
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }
}

/// Bytes held against a pool, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    pool: Arc<Pool>,
    bytes: usize,
}

impl Permit {
    /// An empty permit of `pool` (grown later with [`Permit::grow_to`]).
    pub fn empty(pool: &Arc<Pool>) -> Permit {
        Permit {
            pool: Arc::clone(pool),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds exactly `bytes` (capped at the pool): waits for a growth, gives a shrink back at
    /// once. False if `stop` was raised while waiting.
    pub fn resize(&mut self, bytes: usize, stop: &AtomicBool, poll: Duration) -> bool {
        let bytes = bytes.min(self.pool.limit);
        if bytes > self.bytes {
            match self.pool.acquire(bytes - self.bytes, stop, poll) {
                Some(mut more) => {
                    self.bytes += std::mem::take(&mut more.bytes);
                    true
                }
                None => false,
            }
        } else {
            self.pool.release(self.bytes - bytes);
            self.bytes = bytes;
            true
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_wait_for_room_and_give_it_back() {
        let b = Budget::new(8000);
        let stop = AtomicBool::new(false);
        let poll = Duration::from_millis(5);
        let a = b.batches.acquire(2000, &stop, poll).unwrap();
        let c = b.batches.acquire(1000, &stop, poll).unwrap();
        assert_eq!(b.batches.used(), 3000);
        let pool = Arc::clone(&b.batches);
        let waiter = std::thread::spawn(move || {
            let stop = AtomicBool::new(false);
            pool.acquire(2000, &stop, Duration::from_millis(5))
                .map(|p| p.bytes())
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "waits while the pool is short");
        drop(a);
        assert_eq!(waiter.join().unwrap(), Some(2000));
        drop(c);
        assert_eq!(b.used(), 0);
        let mut p = Permit::empty(&b.frames);
        assert!(p.resize(500, &stop, poll));
        assert!(p.resize(100_000, &stop, poll), "capped at the pool");
        assert_eq!(p.bytes(), 4000);
        assert!(p.resize(10, &stop, poll));
        assert_eq!(b.frames.used(), 10);
        stop.store(true, Ordering::Relaxed);
        let _all = b.frames.acquire(3990, &stop, poll).unwrap();
        assert!(b.frames.acquire(1000, &stop, poll).is_none());
    }
}
