//! Journeys built by the scaled mode's correlators (README "Scaling out"): each partition's
//! correlator stores the journeys of its partition once they have settled, with the store
//! rows each is made of. A row is a member of one journey only; a correlator that restarts
//! asks which rows of a redelivered batch are members already, and leaves them out, so a
//! journey is never rebuilt from part of its rows.

use super::{QueryError, RunId, StoreError};

/// One observation's place in the store, as ingest numbered it: the run, the batch in the
/// run, and the row's position in that batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub run: RunId,
    pub seq: u64,
    pub row: u32,
}

/// One journey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJourney {
    /// Derived from its smallest member: the same rows give the same id, so storing a
    /// journey twice (a correlator that stopped between the write and the ack) keeps one.
    pub id: u64,
    /// The partition whose correlator built it.
    pub partition: u32,
    /// Capture time of its first hop on the reference clock (0 when before the epoch).
    pub first_ns: u64,
    pub fingerprint: u64,
    /// Every observation it is made of (its hops and their pieces), in no order.
    pub members: Vec<RowKey>,
    /// The journey itself, as `correlate::stored` encodes it (versioned).
    pub body: Vec<u8>,
}

impl StoredJourney {
    /// The id of a journey with these members: FNV-1a 64 of its smallest member.
    pub fn id_of(members: &[RowKey]) -> u64 {
        let Some(min) = members.iter().min() else {
            return 0;
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = [
            min.run.raw().to_le_bytes().as_slice(),
            &min.seq.to_le_bytes(),
            &min.row.to_le_bytes(),
        ]
        .concat();
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

/// Where correlators keep journeys. ClickHouse implements it; the embedded store does not
/// need it (its queries correlate what they read).
pub trait JourneyStore: Send + Sync {
    /// Stores `journeys` with their member rows; durable once `Ok` is returned. Storing a
    /// journey again (same id, same members) reads back once.
    fn store_journeys(&self, journeys: &[StoredJourney]) -> Result<(), StoreError>;

    /// The rows of these batches (run, seq) that are members of a stored journey.
    fn members_of(&self, batches: &[(RunId, u64)]) -> Result<Vec<RowKey>, StoreError>;

    /// Stored journeys whose first hop lies in `[from_ns, to_ns)`, by `first_ns` then id,
    /// each once.
    fn journeys(&self, from_ns: u64, to_ns: u64) -> Result<Vec<StoredJourney>, QueryError>;
}
