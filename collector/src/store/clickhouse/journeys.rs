//! [`ClickhouseJourneys`]: the [`JourneyStore`] over the shards. A journey and its member
//! rows go to one shard, the one its fingerprint picks (as observations do), into the local
//! tables directly; on that shard the journey is inserted before its rows, so a row that
//! reads as a member always has its journey stored (see [`super::schema`]).

use super::shards::{insert_rows, Shards};
use crate::store::{JourneyStore, QueryError, RowKey, RunId, StoreError, StoredJourney};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// A row of `journeys_local`, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
struct JourneyRow {
    first_ns: u64,
    id: u64,
    partition: u32,
    fingerprint: u64,
    /// How many rows of `journey_rows` it has: a journey with fewer is not read back.
    members: u32,
    body: Vec<u8>,
}

/// A row of `journey_rows_local`, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
struct MemberRow {
    /// Its journey's: the day partition it is kept (and dropped) with.
    first_ns: u64,
    run: i64,
    seq: u64,
    row: u32,
    id: u64,
}

#[derive(Debug)]
pub struct ClickhouseJourneys {
    shards: Shards,
}

impl ClickhouseJourneys {
    /// Connects to the shards `spec` names (comma-separated HTTP URLs, in the writers'
    /// order: it decides which shard a journey goes to) and creates the tables that are
    /// missing.
    pub fn open(spec: &str) -> Result<ClickhouseJourneys, String> {
        let shards = Shards::connect(spec)?;
        shards.create_schema()?;
        Ok(ClickhouseJourneys { shards })
    }
}

/// The shard (of `shards`, in URL order) a journey of `fingerprint` goes to: its
/// observations' shard.
fn shard_of(fingerprint: u64, shards: usize) -> usize {
    (fingerprint % shards as u64) as usize
}

/// What one shard is given of a [`JourneyStore::store_journeys`].
#[derive(Debug, Clone, Default)]
struct ShardInsert {
    journeys: Vec<JourneyRow>,
    rows: Vec<MemberRow>,
}

/// `journeys` split by shard, as rows of the two tables.
fn rows_by_shard(
    journeys: &[StoredJourney],
    shards: usize,
) -> Result<Vec<ShardInsert>, StoreError> {
    let mut out = vec![ShardInsert::default(); shards];
    for j in journeys {
        let members = u32::try_from(j.members.len()).map_err(|_| {
            StoreError::Refused(format!(
                "journey {:#x} has {} members (at most {} fit)",
                j.id,
                j.members.len(),
                u32::MAX
            ))
        })?;
        let insert = &mut out[shard_of(j.fingerprint, shards)];
        insert.journeys.push(JourneyRow {
            first_ns: j.first_ns,
            id: j.id,
            partition: j.partition,
            fingerprint: j.fingerprint,
            members,
            body: j.body.clone(),
        });
        insert.rows.extend(j.members.iter().map(|m| MemberRow {
            first_ns: j.first_ns,
            run: m.run.raw(),
            seq: m.seq,
            row: m.row,
            id: j.id,
        }));
    }
    Ok(out)
}

/// The query for the member rows of `batches` (not empty), over every shard.
fn members_sql(batches: &[(RunId, u64)]) -> String {
    let mut list = String::new();
    for (run, seq) in batches {
        let sep = if list.is_empty() { "" } else { ", " };
        let _ = write!(list, "{sep}({}, {seq})", run.raw());
    }
    // 18.16 reads `IN ((r, s))` (a single pair) as a set of one tuple too.
    format!("SELECT DISTINCT run, seq, row FROM hopcap.journey_rows WHERE (run, seq) IN ({list})")
}

/// The journeys of one shard with their members, leaving out those whose rows are not all
/// stored yet (a write under way, or one cut short that the correlator will repeat).
fn complete(journeys: Vec<JourneyRow>, rows: Vec<MemberRow>) -> Vec<StoredJourney> {
    let mut members: HashMap<u64, Vec<RowKey>> = HashMap::new();
    for r in rows {
        members.entry(r.id).or_default().push(RowKey {
            run: RunId::from_raw(r.run),
            seq: r.seq,
            row: r.row,
        });
    }
    journeys
        .into_iter()
        .filter_map(|j| {
            let mut keys = members.remove(&j.id).unwrap_or_default();
            keys.sort_unstable();
            keys.dedup();
            (keys.len() == j.members as usize).then_some(StoredJourney {
                id: j.id,
                partition: j.partition,
                first_ns: j.first_ns,
                fingerprint: j.fingerprint,
                members: keys,
                body: j.body,
            })
        })
        .collect()
}

/// Merges the shards' journeys: by `first_ns` then id, each id once.
fn merged(per_shard: Vec<Vec<StoredJourney>>) -> Vec<StoredJourney> {
    let mut all: Vec<StoredJourney> = per_shard.into_iter().flatten().collect();
    all.sort_by_key(|j| (j.first_ns, j.id));
    let mut seen = HashSet::new();
    all.retain(|j| seen.insert(j.id));
    all
}

impl JourneyStore for ClickhouseJourneys {
    fn store_journeys(&self, journeys: &[StoredJourney]) -> Result<(), StoreError> {
        if journeys.is_empty() {
            return Ok(());
        }
        let by_shard: Vec<std::sync::Mutex<ShardInsert>> =
            rows_by_shard(journeys, self.shards.len())?
                .into_iter()
                .map(std::sync::Mutex::new)
                .collect();
        let results = self.shards.on_each(|i, c| {
            let insert =
                std::mem::take(&mut *by_shard[i].lock().unwrap_or_else(|e| e.into_inner()));
            async move {
                // The journeys first: their rows never stand for a journey not stored.
                insert_rows(&c, "hopcap.journeys_local", insert.journeys).await?;
                insert_rows(&c, "hopcap.journey_rows_local", insert.rows).await
            }
        });
        let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Refused(format!(
                "journeys not stored: {}",
                failed.join("; ")
            )))
        }
    }

    fn members_of(&self, batches: &[(RunId, u64)]) -> Result<Vec<RowKey>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let sql = members_sql(batches);
        let rows: Vec<(i64, u64, u32)> = self
            .shards
            .run(0, |c| async move { c.query(&sql).fetch_all().await })
            .map_err(StoreError::Refused)?;
        let mut keys: Vec<RowKey> = rows
            .into_iter()
            .map(|(run, seq, row)| RowKey {
                run: RunId::from_raw(run),
                seq,
                row,
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    fn journeys(&self, from_ns: u64, to_ns: u64) -> Result<Vec<StoredJourney>, QueryError> {
        read_journeys(&self.shards, from_ns, to_ns)
    }
}

/// The journeys stored in `[from_ns, to_ns)` (for [`ClickhouseJourneys`] and the reader).
pub(super) fn read_journeys(
    shards: &Shards,
    from_ns: u64,
    to_ns: u64,
) -> Result<Vec<StoredJourney>, QueryError> {
    if from_ns >= to_ns {
        return Ok(Vec::new());
    }
    // Each shard's local tables: a journey's rows are on its shard, and FINAL on the
    // local table merges what was written twice.
    let results = shards.on_each(|_, c| async move {
        let journeys: Vec<JourneyRow> = c
            .query(
                "SELECT ?fields FROM hopcap.journeys_local FINAL \
                 WHERE first_ns >= ? AND first_ns < ?",
            )
            .bind(from_ns)
            .bind(to_ns)
            .fetch_all()
            .await?;
        if journeys.is_empty() {
            return Ok(Vec::new());
        }
        // Read after the journeys: rows are written after theirs, so none is missed.
        let rows: Vec<MemberRow> = c
            .query(
                "SELECT ?fields FROM hopcap.journey_rows_local FINAL \
                 WHERE first_ns >= ? AND first_ns < ?",
            )
            .bind(from_ns)
            .bind(to_ns)
            .fetch_all()
            .await?;
        Ok(complete(journeys, rows))
    });
    let per_shard = results
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| QueryError::Backend(e.into()))?;
    Ok(merged(per_shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(run: i64, seq: u64, row: u32) -> RowKey {
        RowKey {
            run: RunId::from_raw(run),
            seq,
            row,
        }
    }

    fn journey(fingerprint: u64, first_ns: u64, members: Vec<RowKey>) -> StoredJourney {
        StoredJourney {
            id: StoredJourney::id_of(&members),
            partition: 3,
            first_ns,
            fingerprint,
            members,
            body: vec![1, 2],
        }
    }

    #[test]
    fn the_members_query_lists_each_batch() {
        assert_eq!(
            members_sql(&[(RunId::from_raw(-5), 7)]),
            "SELECT DISTINCT run, seq, row FROM hopcap.journey_rows WHERE (run, seq) IN ((-5, 7))"
        );
        assert!(
            members_sql(&[(RunId::from_raw(1), 2), (RunId::from_raw(3), u64::MAX)])
                .ends_with("IN ((1, 2), (3, 18446744073709551615))")
        );
    }

    #[test]
    fn a_journey_and_its_rows_go_to_its_fingerprints_shard() {
        let a = journey(4, 10, vec![key(1, 0, 0), key(1, 0, 1)]);
        let b = journey(7, 11, vec![key(1, 0, 2)]);
        let split = rows_by_shard(&[a.clone(), b.clone()], 3).unwrap();
        let ids = |s: usize| -> Vec<u64> { split[s].journeys.iter().map(|j| j.id).collect() };
        assert_eq!((ids(0), ids(1), ids(2)), (vec![], vec![a.id, b.id], vec![]));
        assert_eq!(split[1].rows.len(), 3);
        assert!(split[1].rows.iter().all(|m| m.id == a.id || m.id == b.id));
        assert_eq!(split[1].journeys[0].members, 2);
        assert_eq!(split[1].rows[2].first_ns, b.first_ns);
    }

    #[test]
    fn a_journey_reads_back_once_all_its_rows_do() {
        let a = journey(4, 10, vec![key(1, 0, 1), key(1, 0, 0)]);
        let b = journey(4, 11, vec![key(1, 0, 2), key(1, 0, 3)]);
        let mut insert = rows_by_shard(&[a.clone(), b.clone()], 1).unwrap().remove(0);
        insert.rows.pop(); // b's last row not stored yet
        insert.rows.push(insert.rows[0].clone()); // a's first row read twice
        let back = complete(insert.journeys, insert.rows);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].members, vec![key(1, 0, 0), key(1, 0, 1)]);
        assert_eq!(
            StoredJourney {
                members: a.members.clone(),
                ..back[0].clone()
            },
            a
        );
    }

    #[test]
    fn shards_merge_by_time_then_id_each_id_once() {
        let a = journey(0, 20, vec![key(1, 0, 0)]);
        let b = journey(1, 10, vec![key(2, 0, 0)]);
        let m = merged(vec![vec![a.clone()], vec![b.clone(), a.clone()]]);
        assert_eq!(m, vec![b, a]);
    }
}
