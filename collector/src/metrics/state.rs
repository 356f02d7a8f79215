//! What a scrape shows, kept current by one background thread: the boards as the store
//! reconciles them, the hop latencies and clock offsets of the last correlation
//! ([`super::hops`]), the database's size. A scrape renders this and the live counters
//! (ingest's and the writer's atomics); it never touches the database, so however often
//! it comes, the store sees one read pass per tick.

use super::hops::{BoardOffset, HopHistograms, HopSampler};
use crate::ingest::IngestStats;
use crate::store::{BoardRow, StoreReader, WriterStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The live counters a scrape reads as they are.
#[derive(Debug, Clone)]
pub struct Sources {
    pub ingest: Arc<IngestStats>,
    pub writer: Arc<WriterStatus>,
    /// The database file (its size, and its WAL's, are read with stat).
    pub db: PathBuf,
}

/// What the background thread last found.
#[derive(Debug, Default)]
pub struct Published {
    pub boards: Vec<BoardRow>,
    pub reference: Option<String>,
    /// The latest estimate of each board tied to the reference (kept while a board's
    /// traffic pauses; forgotten when the reference changes).
    pub offsets: BTreeMap<String, BoardOffset>,
    pub hops: HopHistograms,
    pub hop_skips: u64,
    pub db_bytes: Option<u64>,
    pub refresh_errors: u64,
    /// How long the last pass took (reads and correlation).
    pub last_pass: Duration,
    pub observations_correlated: usize,
}

#[derive(Debug)]
pub struct Shared {
    pub sources: Sources,
    pub published: Mutex<Published>,
}

impl Shared {
    pub fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The database file and its WAL, in bytes (what the store takes on disk).
fn db_bytes(db: &Path) -> Option<u64> {
    let main = std::fs::metadata(db).ok()?.len();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    Some(main + wal)
}

/// The background thread's body: a pass every `every` until `stop`.
pub fn refresh(
    shared: Arc<Shared>,
    reader: Box<dyn StoreReader + Send>,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut sampler = None;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        pass(&shared, reader.as_ref(), &mut sampler);
        let elapsed = started.elapsed();
        shared.published().last_pass = elapsed;
        // Sleep in short steps, so that stop is seen soon.
        let next = started + every.max(elapsed);
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50).min(next - Instant::now()));
        }
    }
}

fn pass(shared: &Shared, reader: &dyn StoreReader, sampler: &mut Option<HopSampler>) {
    let boards = reader.boards();
    let db = db_bytes(&shared.sources.db);
    let hops = match sampler {
        Some(s) => s.tick(reader).map(Some),
        None => HopSampler::new(reader).map(|s| {
            *sampler = Some(s);
            None
        }),
    };
    let mut p = shared.published();
    p.db_bytes = db;
    match boards {
        Ok(b) => p.boards = b,
        Err(e) => {
            p.refresh_errors += 1;
            crate::warn_limited!("metrics-boards", "metrics: cannot read the boards: {e}");
        }
    }
    match hops {
        Ok(Some(pass)) => {
            if pass.reference != p.reference {
                p.offsets.clear();
                p.reference = pass.reference;
            }
            p.offsets.extend(pass.offsets);
            for (pair, ns) in pass.latencies {
                p.hops.observe(pair, ns);
            }
            p.observations_correlated = pass.observations;
        }
        Ok(None) => {}
        Err(e) => {
            p.refresh_errors += 1;
            crate::warn_limited!("metrics-hops", "metrics: cannot read observations: {e}");
        }
    }
    if let Some(s) = sampler {
        p.hop_skips = s.skips;
    }
}
