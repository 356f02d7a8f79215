//! Arrival positions ([`Cursor`](crate::store::Cursor)s) that several writers hand out
//! without coordination.

/// A writer number from the host name and the process id: distinct for the ingest nodes of
/// one fleet but by chance (1 in 4096 a pair); give `writer_no` explicitly to be sure.
pub fn default_writer_no() -> u16 {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h: u32 = 2166136261;
    for b in host.trim().bytes().chain(std::process::id().to_le_bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    (h & 0xfff) as u16
}

/// Arrival positions: microseconds since 2020 in the high bits, the writer's number in the
/// low 12. Each row takes one microsecond tick (ahead of the clock under more than a million
/// rows a second, never backwards), so one writer's cursors only grow, and the cursors of
/// several writers interleave by arrival time (to their clocks' agreement).
#[derive(Debug)]
pub struct CursorClock {
    writer_no: i64,
    last_tick: i64,
}

/// 2020-01-01T00:00:00Z in µs since the epoch.
const CURSOR_EPOCH_US: i64 = 1_577_836_800_000_000;

impl CursorClock {
    pub fn new(writer_no: u16) -> CursorClock {
        CursorClock {
            writer_no: i64::from(writer_no & 0xfff),
            last_tick: 0,
        }
    }

    /// The first of `n` consecutive cursors (row i's is `first + (i << 12)`).
    pub fn take(&mut self, now_ns: i64, n: usize) -> (i64, i64) {
        let now = (now_ns / 1000).saturating_sub(CURSOR_EPOCH_US);
        let base = now.max(self.last_tick + 1);
        self.last_tick = base + n.max(1) as i64 - 1;
        (base << 12 | self.writer_no, 1 << 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_only_grow_and_carry_the_writer_number() {
        let mut c = CursorClock::new(7);
        let now = 1_800_000_000_000_000_000;
        let (a, step) = c.take(now, 3);
        let (b, _) = c.take(now, 1);
        assert_eq!(a & 0xfff, 7);
        assert_eq!(b, a + 3 * step, "rows of the first batch took three ticks");
        let (later, _) = c.take(now - 1_000_000_000, 1);
        assert!(later > b, "a clock going back does not take cursors back");
        let other = CursorClock::new(8).take(now, 1).0;
        assert_ne!(other, a);
    }
}
