//! Real-time clock steps while the agent runs, and each frame's time on the current clock.
//!
//! The kernel stamps frames with CLOCK_REALTIME. A board without a real-time clock (most
//! Raspberry Pis) boots on the last saved time and NTP later steps it, by minutes or days,
//! often while the agent already runs. A step shows as a change of real-time minus boot time
//! (CLOCK_BOOTTIME never steps); slewing moves that difference by at most 500 ppm.
//!
//! Each frame is placed in the clock epoch its time fits: the boot time its stamp implies
//! under the epoch's offset must lie within the epoch (between the samples around its
//! steps) and within the last [`LAG_MAX_NS`] before now (frames wait in the ring only that
//! long). The current epoch is tried first, then the older ones; the frame's time is then
//! moved onto the current clock. Frames that fit no epoch (only around a step not yet seen)
//! make the caller sample again. Steps larger than the time between two samples plus a
//! frame's time in the ring (well under a second) are placed exactly; for a smaller step
//! the frames already in the ring when it happened may keep the old clock's time.
//!
//! Sans-IO: samples come in as arguments ([`ClockSample`]), so tests step a clock at will.

use crate::clock::ClockSample;

/// A change of the offset above this (plus the slew allowance) is a step.
const STEP_MIN_NS: i64 = 10_000_000;
/// The most a clock can be slewed: 500 ppm of the time between samples.
const SLEW_PPM: i64 = 500;
/// How long a frame may wait in a ring before it is read.
pub const LAG_MAX_NS: u64 = 10_000_000_000;
/// How far past the latest sample a frame's capture may be (frames read later in a turn).
const AHEAD_NS: u64 = 500_000_000;
/// Timestamp jitter allowed at an epoch's edges.
const SLACK_NS: u64 = 50_000_000;
/// Older epochs kept (each for [`LAG_MAX_NS`] after it ended).
const OLD_EPOCHS: usize = 4;

/// A step of the real-time clock, as seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// New clock minus old clock.
    pub delta_ns: i64,
    /// The sample that showed it: on the new clock, and on the boot clock.
    pub at_real_ns: u64,
    pub at_boot_ns: u64,
}

/// A stretch of time with one offset (real-time minus boot time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Epoch {
    offset: i64,
    /// Boot times within which the epoch held (the samples around its steps).
    start_boot: u64,
    end_boot: u64,
}

#[derive(Debug)]
pub struct ClockWatch {
    current: Epoch,
    /// Newest first.
    old: Vec<Epoch>,
    last_boot: u64,
    /// Frames that fitted no epoch: kept on their stamp.
    pub unplaced: u64,
}

impl ClockWatch {
    pub fn new(first: ClockSample) -> ClockWatch {
        ClockWatch {
            current: Epoch {
                offset: first.offset(),
                start_boot: 0,
                end_boot: u64::MAX,
            },
            old: Vec::with_capacity(OLD_EPOCHS),
            last_boot: first.boot_ns,
            unplaced: 0,
        }
    }

    /// Takes a new sample; a step of the real-time clock since the previous one is returned
    /// (once).
    pub fn sample(&mut self, s: ClockSample) -> Option<Step> {
        let since = i64::try_from(s.boot_ns.saturating_sub(self.last_boot)).unwrap_or(i64::MAX);
        let allowed = STEP_MIN_NS.saturating_add(since / 1_000_000 * SLEW_PPM);
        let delta = s.offset().saturating_sub(self.current.offset);
        let previous = self.last_boot;
        self.last_boot = self.last_boot.max(s.boot_ns);
        let horizon = self.last_boot.saturating_sub(LAG_MAX_NS);
        self.old.retain(|e| e.end_boot >= horizon);
        if delta.unsigned_abs() <= allowed.unsigned_abs() {
            // Slewing (or nothing): follow it.
            self.current.offset = s.offset();
            return None;
        }
        let ended = Epoch {
            end_boot: s.boot_ns,
            ..self.current
        };
        self.old.insert(0, ended);
        self.old.truncate(OLD_EPOCHS);
        self.current = Epoch {
            offset: s.offset(),
            start_boot: previous,
            end_boot: u64::MAX,
        };
        Some(Step {
            delta_ns: delta,
            at_real_ns: s.real_ns,
            at_boot_ns: s.boot_ns,
        })
    }

    /// The frame stamped `ts_ns` (real-time) on the current clock, or `None` if it fits no
    /// epoch.
    pub fn place(&self, ts_ns: u64) -> Option<u64> {
        let earliest = i128::from(self.last_boot.saturating_sub(LAG_MAX_NS));
        let latest = i128::from(self.last_boot.saturating_add(AHEAD_NS));
        let slack = i128::from(SLACK_NS);
        for epoch in std::iter::once(&self.current).chain(&self.old) {
            let boot = i128::from(ts_ns) - i128::from(epoch.offset);
            let fits = boot >= earliest.max(i128::from(epoch.start_boot) - slack)
                && boot <= latest.min(i128::from(epoch.end_boot) + slack);
            if fits {
                let on_current = boot + i128::from(self.current.offset);
                return u64::try_from(on_current).ok();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const DAY: u64 = 86_400 * SEC;
    /// 2026-12-03 as a Pi might believe after boot (fake-hwclock), and 40 s of uptime.
    const REAL0: u64 = 1_764_720_000 * SEC;
    const BOOT0: u64 = 40 * SEC;

    fn at(boot: u64, offset: i64) -> ClockSample {
        ClockSample {
            real_ns: (i128::from(boot) + i128::from(offset)) as u64,
            boot_ns: boot,
        }
    }

    fn offset0() -> i64 {
        REAL0 as i64 - BOOT0 as i64
    }

    #[test]
    fn slewing_is_followed_not_reported() {
        let mut w = ClockWatch::new(at(BOOT0, offset0()));
        // 400 ppm over 10 s: 4 ms.
        assert_eq!(w.sample(at(BOOT0 + 10 * SEC, offset0() + 4_000_000)), None);
        // A frame from just now is on the current clock already.
        let ts = REAL0 + 10 * SEC + 4_000_000 - 1_000;
        assert_eq!(w.place(ts), Some(ts));
    }

    #[test]
    fn a_forward_step_of_three_days_moves_frames_captured_before_it() {
        let mut w = ClockWatch::new(at(BOOT0, offset0()));
        let before = REAL0 + 200_000_000; // captured at boot 40.2 s, old clock
        let step = w.sample(at(BOOT0 + 300_000_000, offset0() + 3 * DAY as i64));
        assert_eq!(step.map(|s| s.delta_ns), Some(3 * DAY as i64));
        // Read after the step was seen: moved onto the new clock.
        assert_eq!(w.place(before), Some(before + 3 * DAY));
        // Captured after it: already on the new clock.
        let after = REAL0 + 3 * DAY + 350_000_000;
        assert_eq!(w.place(after), Some(after));
    }

    #[test]
    fn a_backward_step_is_placed_the_same_way() {
        let mut w = ClockWatch::new(at(BOOT0, offset0()));
        let before = REAL0 + 100_000_000;
        w.sample(at(BOOT0 + 200_000_000, offset0() - 2 * DAY as i64))
            .expect("a step");
        assert_eq!(w.place(before), Some(before - 2 * DAY));
        let after = REAL0 - 2 * DAY + 250_000_000;
        assert_eq!(w.place(after), Some(after));
    }

    #[test]
    fn a_frame_of_a_step_not_yet_sampled_fits_nothing() {
        let w = ClockWatch::new(at(BOOT0, offset0()));
        // Stamped by a clock already 3 days ahead: the caller must sample again.
        assert_eq!(w.place(REAL0 + 3 * DAY + 10_000_000), None);
        // Older than any ring holds: fits nothing either.
        assert_eq!(w.place(REAL0 - 60 * SEC), None);
    }

    #[test]
    fn old_epochs_are_forgotten_once_no_frame_can_be_from_them() {
        let mut w = ClockWatch::new(at(BOOT0, offset0()));
        w.sample(at(BOOT0 + SEC, offset0() + DAY as i64)).unwrap();
        let late = BOOT0 + SEC + LAG_MAX_NS + 2 * SEC;
        assert_eq!(w.sample(at(late, offset0() + DAY as i64)), None);
        assert!(w.old.is_empty());
        // Two steps in a row each give an epoch.
        w.sample(at(late + SEC, offset0() + 2 * DAY as i64))
            .unwrap();
        w.sample(at(late + 2 * SEC, offset0() - DAY as i64))
            .unwrap();
        assert_eq!(w.old.len(), 2);
        // A frame of the middle epoch goes to the current clock.
        let mid =
            (i128::from(late + SEC + SEC / 2) + i128::from(offset0() + 2 * DAY as i64)) as u64;
        assert_eq!(w.place(mid), Some(mid - 3 * DAY));
    }

    #[test]
    fn absurd_samples_do_not_overflow() {
        let mut w = ClockWatch::new(ClockSample {
            real_ns: 0,
            boot_ns: u64::MAX,
        });
        let _ = w.sample(ClockSample {
            real_ns: u64::MAX,
            boot_ns: 0,
        });
        let _ = w.place(u64::MAX);
        let _ = w.place(0);
    }
}
