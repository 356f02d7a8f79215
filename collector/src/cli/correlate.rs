//! `correlate`: scaled mode's consumer of one partition (and, for partition 0, of the
//! boards' metadata), storing into ClickHouse until SIGINT/SIGTERM.

use super::{CmdResult, CorrelateArgs};
use crate::scale::consume::{self, Intake, IntakeCounts, JourneyBuilding};
use crate::store::clickhouse::{
    ClickhouseHandle, ClickhouseJourneys, ClickhouseReader, WriterConfig,
};
use crate::store::StoreWriter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Commands that may wait for the writer before the consumers block.
const WRITER_QUEUE: usize = 256;

pub fn run(args: &CorrelateArgs) -> CmdResult {
    let n = args.partition[0].1;
    if let Some((k, m)) = args.partition.iter().find(|(_, m)| *m != n) {
        return Err(
            format!("--partition {k}/{m}: every partition must be of the same N ({n})").into(),
        );
    }
    let mut ks: Vec<u32> = args.partition.iter().map(|(k, _)| *k).collect();
    ks.sort_unstable();
    ks.dedup();
    let store = ClickhouseHandle::start(&args.clickhouse, WriterConfig::default(), WRITER_QUEUE)?;
    let writer: Arc<dyn StoreWriter> = Arc::new(store.writer());
    let stop = Arc::new(AtomicBool::new(false));
    let mut intakes: Vec<Intake> = ks.iter().map(|&k| Intake::Partition { k, of: n }).collect();
    if ks.first() == Some(&0) {
        intakes.push(Intake::Meta);
    }
    let mut threads = Vec::new();
    for intake in intakes {
        // Each partition builds its own journeys, with its own connections.
        let building = match intake {
            Intake::Partition { .. } => Some(JourneyBuilding {
                journeys: Box::new(ClickhouseJourneys::open(&args.clickhouse)?),
                reader: Box::new(ClickhouseReader::open(&args.clickhouse)?),
                settle: Duration::from_millis(args.settle_ms),
                replicas: args.replicas as usize,
            }),
            Intake::Meta => None,
        };
        let counts = Arc::new(IntakeCounts::default());
        let (urls, writer, stop, c) = (
            args.nats.clone(),
            Arc::clone(&writer),
            Arc::clone(&stop),
            Arc::clone(&counts),
        );
        let replicas = args.replicas as usize;
        let t = std::thread::Builder::new()
            .name(format!("intake-{intake:?}"))
            .spawn(move || consume::run(&urls, intake, replicas, writer, building, stop, c))
            .map_err(|e| format!("cannot start a consumer: {e}"))?;
        threads.push((intake, t, counts));
    }
    log::info!(
        "partitions {ks:?} of {n}{}: NATS {}, ClickHouse {}",
        if ks.first() == Some(&0) {
            " and the boards' metadata"
        } else {
            ""
        },
        args.nats,
        args.clickhouse
    );
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            // Unacknowledged messages come back to the next consumer: nothing is lost.
            std::process::exit(130);
        }
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let mut failed = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some((intake, ..)) = threads.iter().find(|(_, t, _)| t.is_finished()) {
            // A consumer that ended on its own could not set up: stop the others too.
            log::error!("consumer {intake:?} ended");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (intake, t, counts) in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some(format!("consumer {intake:?} panicked")),
        }
        log::info!(
            "{intake:?}: {} messages, {} rows, {} not stored in time, {} corrupt, {} of an \
             unknown version, {} rows for another partition; {} journeys stored, {} rows \
             still waiting, {} rows of unknown links, {} redelivered rows in journeys already",
            counts.messages.load(Ordering::Relaxed),
            counts.rows.load(Ordering::Relaxed),
            counts.not_stored.load(Ordering::Relaxed),
            counts.corrupt.load(Ordering::Relaxed),
            counts.unknown_version.load(Ordering::Relaxed),
            counts.misrouted_rows.load(Ordering::Relaxed),
            counts.journeys.load(Ordering::Relaxed),
            counts.waiting_rows.load(Ordering::Relaxed),
            counts.unlinked_rows.load(Ordering::Relaxed),
            counts.rows_in_journeys_already.load(Ordering::Relaxed)
        );
    }
    drop(writer);
    store.finish();
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_partition;

    #[test]
    fn partitions_are_k_of_n() {
        assert_eq!(parse_partition("0/3"), Ok((0, 3)));
        assert_eq!(parse_partition("2/3"), Ok((2, 3)));
        for bad in ["3/3", "1/0", "1", "a/3", "1/b", "-1/3", ""] {
            let e = parse_partition(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }
}
