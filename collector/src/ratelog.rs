//! Rate-limited logging: at most one line per cause per interval, the next line saying how
//! many were left out meanwhile. A hostile peer (or a thousand) cannot flood the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One line per cause every this long.
pub const EVERY: Duration = Duration::from_secs(5);
/// Causes remembered at once (a cause is a short static name, so this is only a guard).
const MAX_CAUSES: usize = 256;

#[derive(Debug, Default)]
struct Slot {
    last: Option<Instant>,
    suppressed: u64,
}

/// Logs a line of a cause unless one was logged less than [`EVERY`] ago.
#[derive(Debug, Default)]
pub struct RateLog {
    slots: Mutex<HashMap<&'static str, Slot>>,
}

impl RateLog {
    pub fn new() -> RateLog {
        RateLog::default()
    }

    /// `Some(n)` when a line of `cause` may be logged now, `n` lines of it having been left
    /// out since the last one; `None` when this one is to be left out (and counted).
    pub fn admit(&self, cause: &'static str) -> Option<u64> {
        self.admit_at(cause, Instant::now())
    }

    fn admit_at(&self, cause: &'static str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= MAX_CAUSES && !slots.contains_key(cause) {
            slots.clear();
        }
        let slot = slots.entry(cause).or_default();
        match slot.last {
            Some(t) if now.duration_since(t) < EVERY => {
                slot.suppressed += 1;
                None
            }
            _ => {
                slot.last = Some(now);
                Some(std::mem::take(&mut slot.suppressed))
            }
        }
    }

    /// Logs `msg` at `level` under `cause`, rate-limited, with the count left out.
    pub fn log(&self, level: log::Level, cause: &'static str, msg: std::fmt::Arguments<'_>) {
        if let Some(n) = self.admit(cause) {
            if n > 0 {
                log::log!(level, "{msg} ({n} more like this not logged)");
            } else {
                log::log!(level, "{msg}");
            }
        }
    }
}

/// The collector's one rate limiter (ingest and store share causes' budgets by name).
pub fn global() -> &'static RateLog {
    static LOG: std::sync::OnceLock<RateLog> = std::sync::OnceLock::new();
    LOG.get_or_init(RateLog::new)
}

/// `warn!` at most once per cause every [`EVERY`].
#[macro_export]
macro_rules! warn_limited {
    ($cause:expr, $($arg:tt)+) => {
        $crate::ratelog::global().log(log::Level::Warn, $cause, format_args!($($arg)+))
    };
}

/// `error!` at most once per cause every [`EVERY`].
#[macro_export]
macro_rules! error_limited {
    ($cause:expr, $($arg:tt)+) => {
        $crate::ratelog::global().log(log::Level::Error, $cause, format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_per_interval_with_the_count_left_out() {
        let r = RateLog::new();
        let t0 = Instant::now();
        assert_eq!(r.admit_at("a", t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(r.admit_at("a", t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(r.admit_at("b", t0), Some(0), "causes are apart");
        assert_eq!(r.admit_at("a", t0 + EVERY), Some(1000));
        assert_eq!(r.admit_at("a", t0 + EVERY * 3), Some(0));
    }
}
