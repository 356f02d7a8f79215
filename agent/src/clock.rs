//! The agent's clocks, read here and nowhere else: proto is clockless, so every timestamp
//! and interval it carries comes from these, as arguments.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME); 0 for a clock set before 1970.
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Nanoseconds of CLOCK_MONOTONIC (since boot, suspend not counted); 0 if unreadable.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// Nanoseconds of CLOCK_BOOTTIME (since boot, suspend counted: it never steps); 0 if
/// unreadable.
pub fn boottime_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// The real-time clock read against the boot clock: their difference changes only when the
/// real-time clock is slewed (slowly) or stepped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    pub real_ns: u64,
    pub boot_ns: u64,
}

impl ClockSample {
    /// Both clocks, now.
    pub fn now() -> ClockSample {
        ClockSample {
            real_ns: realtime_ns(),
            boot_ns: boottime_ns(),
        }
    }

    /// Real-time minus boot time.
    pub fn offset(&self) -> i64 {
        (i128::from(self.real_ns) - i128::from(self.boot_ns)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_and_move_forward() {
        // After 2020-01-01, and monotonic time does not go back.
        assert!(realtime_ns() > 1_577_836_800_000_000_000);
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a, "{a} {b}");
    }
}
