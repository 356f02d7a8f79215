//! The answers: `/metrics` (every family, from the published state and the live counters)
//! and `/healthz` (the writer's health).

use super::hops::{MAX_PAIRS, MAX_ROWS_PER_TICK, TICKS_KEPT};
use super::http::Response;
use super::state::Shared;
use super::text::{seconds, Exposition, Kind, CONTENT_TYPE};

/// Answers one path.
pub fn answer(shared: &Shared, path: &str) -> Response {
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: CONTENT_TYPE,
            body: metrics(shared),
        },
        "/healthz" => match shared.sources.writer.problem() {
            None => Response::text(200, "ok\n"),
            Some(why) => Response::text(503, format!("{why}\n")),
        },
        _ => Response::text(404, "not found: try /metrics or /healthz\n"),
    }
}

/// A counter or gauge per board, from one field of its row.
fn per_board(
    e: &mut Exposition,
    rows: &[crate::store::BoardRow],
    name: &str,
    kind: Kind,
    help: &str,
    value: impl Fn(&crate::store::BoardRow) -> Option<f64>,
) {
    e.family(name, kind, help);
    for b in rows {
        if let Some(v) = value(b) {
            e.sample(name, &[("board", &b.name)], v);
        }
    }
}

pub fn metrics(shared: &Shared) -> String {
    let src = &shared.sources;
    let mut e = Exposition::new();
    let p = shared.published();
    let boards = &p.boards;
    per_board(
        &mut e,
        boards,
        "hopcap_board_records_seen_total",
        Kind::Counter,
        "Records the board's agent kept and put in batches (its tallies); seen = stored + queue drops + lost in transit.",
        |b| Some(b.seen as f64),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_records_stored_total",
        Kind::Counter,
        "Of the records seen, those stored.",
        |b| Some(b.stored as f64),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_kernel_drops_total",
        Kind::Counter,
        "Frames the board's kernel dropped before the agent saw them.",
        |b| Some(b.kernel_drops as f64),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_queue_drops_total",
        Kind::Counter,
        "Of the records seen, those in batches the agent gave up on (queue over budget, unacknowledged at exit) and not stored.",
        |b| Some(b.queue_drops as f64),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_records_lost_in_transit_total",
        Kind::Counter,
        "Of the records seen, those neither stored nor given up by the agent (lost connections, killed agents, undecodable batches).",
        |b| Some(b.lost_in_transit as f64),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_connected",
        Kind::Gauge,
        "1 while the board's agent is connected.",
        |b| Some(f64::from(u8::from(b.state == "connected"))),
    );
    per_board(
        &mut e,
        boards,
        "hopcap_board_hello_clock_offset_seconds",
        Kind::Gauge,
        "The collector's clock minus the board's, sampled at the agent's hello (transit delay included: coarse).",
        |b| b.clock_offset_ns.map(|o| o as f64 / 1e9),
    );
    let reference = p.reference.clone().unwrap_or_default();
    e.family(
        "hopcap_board_clock_offset_seconds",
        Kind::Gauge,
        "The board's clock minus the reference board's, estimated from matched packets (Paxson minimum delay, as paths does) over the last few seconds of traffic; only boards tied to the reference.",
    );
    for (board, o) in &p.offsets {
        let labels = [("board", board.as_str()), ("reference", reference.as_str())];
        e.sample(
            "hopcap_board_clock_offset_seconds",
            &labels,
            o.offset_ns as f64 / 1e9,
        );
    }
    e.family(
        "hopcap_board_clock_offset_uncertainty_seconds",
        Kind::Gauge,
        "Half width of the interval the estimated offset lies in (absent when traffic went one way only).",
    );
    for (board, o) in &p.offsets {
        if let Some(u) = o.uncertainty_ns {
            let labels = [("board", board.as_str()), ("reference", reference.as_str())];
            e.sample(
                "hopcap_board_clock_offset_uncertainty_seconds",
                &labels,
                seconds(u),
            );
        }
    }
    e.family(
        "hopcap_hop_latency_seconds",
        Kind::Histogram,
        "Latency from one hop of a packet's path to the next (board:netns:link names), from a background correlation of recent arrivals.",
    );
    for (from, to, h) in p.hops.snapshots() {
        e.histogram(
            "hopcap_hop_latency_seconds",
            &[("from", from), ("to", to)],
            &h,
        );
    }
    e.family(
        "hopcap_hop_latency_overflow_total",
        Kind::Counter,
        &format!(
            "Hop latencies not kept: their hop pair came after the cap on pairs ({MAX_PAIRS})."
        ),
    );
    e.sample(
        "hopcap_hop_latency_overflow_total",
        &[],
        p.hops.overflow as f64,
    );
    e.family(
        "hopcap_hop_latency_skips_total",
        Kind::Counter,
        &format!("Background passes that skipped arrivals (more than {MAX_ROWS_PER_TICK} in a pass): the hop histograms are then a sample."),
    );
    e.sample("hopcap_hop_latency_skips_total", &[], p.hop_skips as f64);
    e.family(
        "hopcap_metrics_refresh_seconds",
        Kind::Gauge,
        "How long the last background pass took (boards, reads and correlation).",
    );
    e.sample(
        "hopcap_metrics_refresh_seconds",
        &[],
        p.last_pass.as_secs_f64(),
    );
    e.family(
        "hopcap_metrics_observations_correlated",
        Kind::Gauge,
        &format!(
            "Observations the last background pass correlated (at most {}).",
            MAX_ROWS_PER_TICK as u64 * TICKS_KEPT
        ),
    );
    e.sample(
        "hopcap_metrics_observations_correlated",
        &[],
        p.observations_correlated as f64,
    );
    e.family(
        "hopcap_metrics_refresh_errors_total",
        Kind::Counter,
        "Background passes that could not read the store.",
    );
    e.sample(
        "hopcap_metrics_refresh_errors_total",
        &[],
        p.refresh_errors as f64,
    );
    e.family(
        "hopcap_database_size_bytes",
        Kind::Gauge,
        "The database file and its write-ahead log, on disk.",
    );
    if let Some(n) = p.db_bytes {
        e.sample("hopcap_database_size_bytes", &[], n as f64);
    }
    drop(p);
    e.family(
        "hopcap_ingest_records_total",
        Kind::Counter,
        "Records received from agents (decoded from batches); its rate is the ingest rate.",
    );
    e.sample(
        "hopcap_ingest_records_total",
        &[],
        src.ingest.records() as f64,
    );
    e.family(
        "hopcap_ingest_batches_total",
        Kind::Counter,
        "Batches received from agents.",
    );
    e.sample(
        "hopcap_ingest_batches_total",
        &[],
        src.ingest.batches() as f64,
    );
    e.family(
        "hopcap_ingest_connections",
        Kind::Gauge,
        "Agent connections open.",
    );
    e.sample(
        "hopcap_ingest_connections",
        &[],
        src.ingest.connections() as f64,
    );
    e.family(
        "hopcap_ack_latency_seconds",
        Kind::Histogram,
        "Time from receiving a batch to sending its acknowledgement (its commit included).",
    );
    e.histogram(
        "hopcap_ack_latency_seconds",
        &[],
        &src.ingest.ack_latency().snapshot(),
    );
    e.family(
        "hopcap_writer_queue_depth",
        Kind::Gauge,
        "Requests waiting for the store's writer (senders blocked on a full queue included).",
    );
    e.sample("hopcap_writer_queue_depth", &[], src.writer.queued() as f64);
    e.family(
        "hopcap_writer_queue_capacity",
        Kind::Gauge,
        "Requests that may wait for the writer before ingest blocks.",
    );
    e.sample(
        "hopcap_writer_queue_capacity",
        &[],
        src.writer.capacity() as f64,
    );
    e.family(
        "hopcap_writer_healthy",
        Kind::Gauge,
        "1 while the writer can write (0: database file gone, replaced or overwritten, disk full, writer stopped; see /healthz).",
    );
    e.sample(
        "hopcap_writer_healthy",
        &[],
        f64::from(u8::from(src.writer.problem().is_none())),
    );
    e.finish()
}
