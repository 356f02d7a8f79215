//! Batch sequence numbers: duplicates (a batch sent again after a reconnect because its
//! acknowledgement was lost) and gaps (batches the agent dropped from its full queue).
//! Batches decode on their own (proto's codec keeps no state between them), so this is the
//! one place that judges the sequence.
//!
//! Sequence numbers are bounded: an agent numbers its batches from 0, one by one, so a number
//! far ahead of the last one is not a gap but a forged or broken peer ([`Verdict::TooFar`]),
//! and no number ever gets near the top of a u64 (or of SQLite's i64 columns).

/// The largest jump ahead of the last stored batch (or of 0 for a run with none) accepted: at
/// one batch per 50 ms an agent needs over six years to number this many.
pub const MAX_SEQ_JUMP: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it; `lost` batches are missing before it.
    New { lost: u64 },
    /// Already stored: acknowledge, do not store.
    Duplicate,
    /// More than [`MAX_SEQ_JUMP`] ahead of the last one: a protocol error.
    TooFar { last: Option<u64> },
}

/// Judges `seq` against the last stored sequence number of the agent's current run. A new
/// run (new boot id or run id in the hello) starts with no last sequence, so anything at or
/// below the last one is a resend, batch 0 included.
pub fn judge(last: Option<u64>, seq: u64) -> Verdict {
    let base = last.map_or(0, |l| l.saturating_add(1));
    if seq.saturating_sub(base) > MAX_SEQ_JUMP {
        return Verdict::TooFar { last };
    }
    match last {
        None => Verdict::New { lost: seq },
        Some(l) if seq > l => Verdict::New { lost: seq - l - 1 },
        Some(_) => Verdict::Duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_restarts() {
        assert_eq!(judge(None, 0), Verdict::New { lost: 0 });
        // The run's first batches were dropped from the agent's queue before any arrived.
        assert_eq!(judge(None, 7), Verdict::New { lost: 7 });
        assert_eq!(judge(Some(7), 8), Verdict::New { lost: 0 });
        assert_eq!(judge(Some(7), 11), Verdict::New { lost: 3 });
        assert_eq!(judge(Some(7), 7), Verdict::Duplicate);
        assert_eq!(judge(Some(7), 3), Verdict::Duplicate);
        // Batch 0 resent after its acknowledgement was lost is not stored twice.
        assert_eq!(judge(Some(7), 0), Verdict::Duplicate);
    }

    #[test]
    fn jumps_past_the_bound_and_the_top_of_u64_are_refused() {
        assert_eq!(
            judge(None, MAX_SEQ_JUMP),
            Verdict::New { lost: MAX_SEQ_JUMP }
        );
        assert_eq!(
            judge(None, MAX_SEQ_JUMP + 1),
            Verdict::TooFar { last: None }
        );
        assert_eq!(judge(None, 1 << 40), Verdict::TooFar { last: None });
        assert_eq!(
            judge(Some(10), 11 + MAX_SEQ_JUMP + 1),
            Verdict::TooFar { last: Some(10) }
        );
        assert_eq!(judge(Some(u64::MAX), 5), Verdict::Duplicate);
        assert_eq!(judge(Some(u64::MAX), u64::MAX), Verdict::Duplicate);
        assert!(matches!(
            judge(Some(i64::MAX as u64), u64::MAX),
            Verdict::TooFar { .. }
        ));
        assert!(matches!(judge(None, u64::MAX), Verdict::TooFar { .. }));
    }
}
