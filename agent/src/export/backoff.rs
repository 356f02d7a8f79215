//! Reconnect delays: exponential, with "full jitter".

use std::time::Duration;

/// Exponential backoff with "full jitter" (a uniform delay in [min, current]), so a fleet of
/// boards that lost the collector at once does not reconnect in lockstep.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        // Boards restarted together must not retry in step: time and pid seed the jitter.
        let seed = (crate::clock::realtime_ns() ^ (u64::from(std::process::id()) << 32)) | 1;
        Backoff {
            min,
            max,
            current: min,
            rng: seed | 1,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs spread, not cryptographic quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = self.current.saturating_sub(self.min).as_micros() as u64;
        let delay =
            self.min + Duration::from_micros(if span == 0 { 0 } else { self.rng % (span + 1) });
        self.current = (self.current * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1600));
        let mut b = Backoff::new(min, max);
        let mut ceiling = min;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= min && d <= ceiling,
                "{d:?} outside [{min:?}, {ceiling:?}]"
            );
            ceiling = (ceiling * 2).min(max);
        }
        b.reset();
        assert_eq!(b.next_delay(), min);
    }
}
