//! Retention, so an unattended collector never fills its disk: observations older than
//! `--retain-hours` go, and the file is held under `--retain-mb` by deleting the oldest
//! observations (lowest ids = first arrived). Deletion is spread over the writer's loop, one
//! chunk per turn, so ingest never waits for more than one chunk.
//!
//! Why the size rule watches free pages and not live bytes: deleting the oldest rows frees
//! whole table pages (rows are stored in id order) but only thins the pages of indexes on
//! random keys (fingerprint, flow), which stay allocated with room inside. New rows fill that
//! room and the freed pages, so the file need not grow. Retention therefore deletes a slice of
//! rows when the file is near its cap AND its free pages are nearly used up, and again each
//! time that happens: the file stays at about the cap, pages are reused, nothing is rewritten.
//! A file above the cap (the cap was lowered) is shrunk with incremental vacuum.
//! Without a cap, pages freed by age retention are handed back to the filesystem.
//! The cap counts the main file; the WAL beside it adds up to its checkpoint size (about
//! 4 MiB, truncated to journal_size_limit after a checkpoint).

use rusqlite::Connection;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ns: Option<i64>,
    pub max_bytes: Option<u64>,
}

/// Rows deleted per turn.
const CHUNK: u64 = 20_000;
/// Free pages handed back per incremental-vacuum step.
const VACUUM_STEP: u64 = 4096;
/// Under a cap, the slice of rows deleted to make room (per cent of the rows stored).
const SLICE_PERCENT: u64 = 3;

/// Page counts of the main file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSize {
    pub page_size: u64,
    pub pages: u64,
    pub free_pages: u64,
}

impl FileSize {
    pub fn read(conn: &Connection) -> rusqlite::Result<FileSize> {
        let get = |p: &str| conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0));
        Ok(FileSize {
            page_size: get("page_size")? as u64,
            pages: get("page_count")? as u64,
            free_pages: get("freelist_count")? as u64,
        })
    }

    pub fn file_bytes(&self) -> u64 {
        self.pages * self.page_size
    }

    pub fn free_bytes(&self) -> u64 {
        self.free_pages * self.page_size
    }
}

/// Retention's state in the writer: rows it still owes to delete.
#[derive(Debug, Clone, Default)]
pub struct Retainer {
    pub policy: Retention,
    /// Rows to delete by size.
    size_debt: u64,
    /// Age cutoff (ns) still being applied.
    age_cutoff: Option<i64>,
    /// Totals, for the log and the tests.
    pub removed_by_age: u64,
    pub removed_by_size: u64,
}

fn row_estimate(conn: &Connection) -> rusqlite::Result<u64> {
    // Ids are dense up to deletions of the oldest, so this is near count(*) and costs two
    // b-tree descents instead of a scan.
    conn.query_row(
        "SELECT coalesce(max(id) - min(id) + 1, 0) FROM observations",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
}

impl Retainer {
    pub fn new(policy: Retention) -> Retainer {
        Retainer {
            policy,
            ..Default::default()
        }
    }

    /// True while deletions are owed.
    pub fn busy(&self) -> bool {
        self.size_debt > 0 || self.age_cutoff.is_some()
    }

    /// Starts applying the age limit (called every few seconds).
    pub fn start_age(&mut self, now_ns: i64) {
        if let Some(age) = self.policy.max_age_ns {
            self.age_cutoff = Some(now_ns.saturating_sub(age));
        }
    }

    /// Checks the size cap (cheap: reads the file header); called after every commit.
    pub fn check_size(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let Some(max) = self.policy.max_bytes else {
            return Ok(());
        };
        let size = FileSize::read(conn)?;
        if size.file_bytes() > max && size.free_pages > 0 {
            let over = (size.file_bytes() - max).div_ceil(size.page_size);
            vacuum(conn, over.min(size.free_pages))?;
        }
        let near_cap = size.file_bytes() >= max / 100 * 97;
        let room_used_up = size.free_bytes() < max / 100;
        if self.size_debt == 0 && near_cap && room_used_up {
            self.size_debt = (row_estimate(conn)? * SLICE_PERCENT / 100).max(1);
        }
        Ok(())
    }

    /// Deletes one chunk of what is owed; returns the rows deleted.
    pub fn step(&mut self, conn: &mut Connection) -> rusqlite::Result<u64> {
        if let Some(cutoff) = self.age_cutoff {
            let n = conn.execute(
                "DELETE FROM observations WHERE id IN
                     (SELECT id FROM observations WHERE ts_ns < ?1 LIMIT ?2)",
                (cutoff, CHUNK as i64),
            )? as u64;
            self.removed_by_age += n;
            if n < CHUNK {
                self.age_cutoff = None;
                conn.execute("DELETE FROM stats WHERE ts_ns < ?1", [cutoff])?;
                if self.policy.max_bytes.is_none() {
                    let free = FileSize::read(conn)?.free_pages;
                    vacuum(conn, free)?;
                }
            }
            return Ok(n);
        }
        if self.size_debt > 0 {
            let n = conn.execute(
                "DELETE FROM observations WHERE id IN
                     (SELECT id FROM observations ORDER BY id LIMIT ?1)",
                [CHUNK.min(self.size_debt) as i64],
            )? as u64;
            self.removed_by_size += n;
            self.size_debt = if n == 0 {
                0
            } else {
                self.size_debt.saturating_sub(n)
            };
            if self.size_debt == 0 {
                // Statistics older than every remaining observation describe nothing stored.
                conn.execute(
                    "DELETE FROM stats WHERE ts_ns < (SELECT min(ts_ns) FROM observations)",
                    [],
                )?;
            }
            return Ok(n);
        }
        Ok(0)
    }

    /// Runs every owed deletion to the end (tests, and a retention pass with no ingest).
    pub fn finish(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        while self.busy() {
            self.step(conn)?;
        }
        Ok(())
    }
}

/// Hands up to `pages` free pages back to the filesystem, in steps.
fn vacuum(conn: &Connection, pages: u64) -> rusqlite::Result<()> {
    let mut left = pages;
    while left > 0 {
        let step = left.min(VACUUM_STEP);
        let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({step})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        left -= step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{open_for_writing, writer::insert_observations};
    use crate::store::LinkId;
    use hopcap_testkit::{SampleGen, ScratchDir};

    fn fill(conn: &mut Connection, g: &mut SampleGen, packets: usize) {
        let rows: Vec<_> = (0..packets)
            .flat_map(|_| g.packet(&[0], 2))
            .map(|o| (LinkId::from_raw(1), o))
            .collect();
        let tx = conn.transaction().unwrap();
        insert_observations(&tx, 1, &rows).unwrap();
        tx.commit().unwrap();
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn size_cap_holds_the_file_while_ingest_goes_on() {
        let dir = ScratchDir::new("ret-size").unwrap();
        let mut conn = open_for_writing(&dir.join("r.db")).unwrap();
        let mut g = SampleGen::new(3, 1_000);
        let cap = 4 * 1024 * 1024;
        let mut r = Retainer::new(Retention {
            max_age_ns: None,
            max_bytes: Some(cap),
        });
        let (mut largest, mut rows_at_cap) = (0, None);
        // About three caps' worth of rows, in writer-sized transactions.
        for _ in 0..150 {
            fill(&mut conn, &mut g, 250);
            r.check_size(&conn).unwrap();
            if r.busy() && rows_at_cap.is_none() {
                rows_at_cap = Some(count(&conn));
            }
            r.step(&mut conn).unwrap();
            largest = largest.max(FileSize::read(&conn).unwrap().file_bytes());
        }
        assert!(r.removed_by_size > 0 && r.removed_by_age == 0);
        assert!(
            largest <= cap + cap / 20,
            "file reached {largest} bytes, cap {cap}"
        );
        let min_id: i64 = conn
            .query_row("SELECT min(id) FROM observations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            min_id as u64,
            r.removed_by_size + 1,
            "the first-arrived rows went"
        );
        // Most of the cap still holds data: index pages thinned by deletions get refilled.
        let rows_at_cap = rows_at_cap.expect("the cap was reached");
        assert!(
            count(&conn) > rows_at_cap / 10 * 8,
            "{} rows left of {rows_at_cap}",
            count(&conn)
        );
    }

    #[test]
    fn lowered_cap_shrinks_the_file() {
        let dir = ScratchDir::new("ret-lower").unwrap();
        let mut conn = open_for_writing(&dir.join("l.db")).unwrap();
        fill(&mut conn, &mut SampleGen::new(4, 1_000), 20_000);
        let before = FileSize::read(&conn).unwrap().file_bytes();
        let cap = before / 2;
        let mut r = Retainer::new(Retention {
            max_age_ns: None,
            max_bytes: Some(cap),
        });
        for _ in 0..200 {
            r.check_size(&conn).unwrap();
            r.finish(&mut conn).unwrap();
        }
        let after = FileSize::read(&conn).unwrap().file_bytes();
        assert!(after <= cap, "{before} -> {after}, cap {cap}");
        assert!(count(&conn) > 0);
    }

    /// Runs retention with a one-hour age limit an hour after `cutoff_ns`: rows older than
    /// the cutoff go.
    fn age_out_before(conn: &mut Connection, cutoff_ns: i64) -> Retainer {
        let hour = 3600 * 1_000_000_000;
        let mut r = Retainer::new(Retention {
            max_age_ns: Some(hour),
            max_bytes: None,
        });
        r.start_age(cutoff_ns + hour);
        r.finish(conn).unwrap();
        r
    }

    #[test]
    fn age_limit_deletes_old_rows_and_shrinks_the_file() {
        let dir = ScratchDir::new("ret-age").unwrap();
        let mut conn = open_for_writing(&dir.join("a.db")).unwrap();
        fill(&mut conn, &mut SampleGen::new(5, 1_000), 10_000);
        let old = count(&conn);
        let cutoff_ns: i64 = 10_000_000_000_000;
        fill(&mut conn, &mut SampleGen::new(6, cutoff_ns as u64), 1_000);
        let pages_before = FileSize::read(&conn).unwrap().pages;
        let r = age_out_before(&mut conn, cutoff_ns);
        assert_eq!(r.removed_by_age as i64, old);
        assert_eq!(count(&conn), 2_000);
        let after = FileSize::read(&conn).unwrap();
        assert!(
            after.pages < pages_before / 2 && after.free_pages == 0,
            "{pages_before} -> {after:?}"
        );
    }

    #[test]
    fn frame_bytes_are_stored_by_row_and_go_with_their_rows() {
        use crate::store::sqlite::query;
        use crate::store::sqlite::writer::insert_observations_with_frames;
        use crate::store::{Cursor, FrameBytes, TimelineQuery};
        let dir = ScratchDir::new("ret-frames").unwrap();
        let mut conn = open_for_writing(&dir.join("f.db")).unwrap();
        // Old rows with bytes, then newer rows with bytes, then newer rows without.
        let mut frames_of = |g: &mut SampleGen, packets: usize, with: bool| {
            let rows: Vec<_> = (0..packets)
                .flat_map(|_| g.packet(&[0], 2))
                .map(|o| (LinkId::from_raw(1), o))
                .collect();
            let mut frames = FrameBytes::default();
            for (i, _) in rows.iter().enumerate().filter(|_| with) {
                frames.push(&[i as u8; 3][..i % 4]);
            }
            let tx = conn.transaction().unwrap();
            insert_observations_with_frames(&tx, 1, &rows, &frames).unwrap();
            tx.commit().unwrap();
            rows.len()
        };
        let old = frames_of(&mut SampleGen::new(5, 1_000), 50, true);
        let cutoff_ns: i64 = 10_000_000_000_000;
        let new = frames_of(&mut SampleGen::new(6, cutoff_ns as u64), 50, true);
        frames_of(&mut SampleGen::new(7, cutoff_ns as u64), 50, false);
        let stored = |conn: &Connection| {
            let mut got = Vec::new();
            query::frames(
                conn,
                &TimelineQuery::default(),
                &mut |c: Cursor, b: &[u8]| {
                    got.push((c.raw(), b.to_vec()));
                    true
                },
            )
            .unwrap();
            got.sort();
            got
        };
        let all = stored(&conn);
        assert_eq!(all.len(), old + new, "rows without bytes hold NULL");
        // Row k of a batch got [k; k % 4] (ids start at 1; the second batch at old + 1).
        assert_eq!(all[5], (6, vec![5u8; 1]));
        assert_eq!(all[old + 7], ((old + 8) as i64, vec![7u8; 3]));
        age_out_before(&mut conn, cutoff_ns);
        let left = stored(&conn);
        assert_eq!(left.len(), new, "the old rows' bytes went with them");
        assert!(left.iter().all(|(id, _)| *id > old as i64));
    }
}
