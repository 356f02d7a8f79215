//! Batch sequence numbers: duplicates (a batch sent again after a reconnect because its
//! acknowledgement was lost) and gaps (batches the agent dropped from its full queue).

/// A batch further behind the last stored one than this is taken as a new sequence (the
/// agent restarted) rather than a resend: an agent's unacknowledged queue never holds this
/// many batches (its byte budget is far smaller).
pub const RESEND_WINDOW: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it; `lost` batches are missing before it.
    New { lost: u64 },
    /// Already stored: acknowledge, do not store.
    Duplicate,
}

/// Judges `seq` against the last stored sequence number of the board's current boot.
/// Sequence 0 always starts over: an agent's encoder numbers from 0 when it starts.
pub fn judge(last: Option<u64>, seq: u64) -> Verdict {
    match last {
        None => Verdict::New { lost: 0 },
        Some(l) if seq > l => Verdict::New { lost: seq - l - 1 },
        Some(l) if seq == 0 || l - seq > RESEND_WINDOW => Verdict::New { lost: 0 },
        Some(_) => Verdict::Duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_restarts() {
        assert_eq!(judge(None, 7), Verdict::New { lost: 0 });
        assert_eq!(judge(Some(7), 8), Verdict::New { lost: 0 });
        assert_eq!(judge(Some(7), 11), Verdict::New { lost: 3 });
        assert_eq!(judge(Some(7), 7), Verdict::Duplicate);
        assert_eq!(judge(Some(7), 3), Verdict::Duplicate);
        assert_eq!(judge(Some(7), 0), Verdict::New { lost: 0 });
        assert_eq!(
            judge(Some(10_000), 10_000 - RESEND_WINDOW - 1),
            Verdict::New { lost: 0 }
        );
        assert_eq!(
            judge(Some(10_000), 10_000 - RESEND_WINDOW),
            Verdict::Duplicate
        );
    }
}
