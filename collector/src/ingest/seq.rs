//! Batch sequence numbers: duplicates (a batch sent again after a reconnect because its
//! acknowledgement was lost) and gaps (batches the agent dropped from its full queue).
//! Batches decode on their own (proto's codec keeps no state between them), so this is the
//! one place that judges the sequence.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it; `lost` batches are missing before it.
    New { lost: u64 },
    /// Already stored: acknowledge, do not store.
    Duplicate,
}

/// Judges `seq` against the last stored sequence number of the agent's current run. A new
/// run (new boot id or run id in the hello) starts with no last sequence, so anything at or
/// below the last one is a resend, batch 0 included.
pub fn judge(last: Option<u64>, seq: u64) -> Verdict {
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
}
