//! The ClickHouse layout (database `hopcap`), for 18.16 and later: UInt64 ns timestamps,
//! FixedString(16) addresses, no DateTime64, codecs or TTL.
//!
//! ```text
//! observations_local   on every shard: one row per packet seen on one link
//!   ReplacingMergeTree, ORDER BY (ts_ns, run, seq, row): a batch written twice (a crash
//!   between the write and the ack, a redelivery) has the same key and merges away; readers
//!   read with FINAL, so it reads back once before the merge too.
//!   PARTITION BY day of ts_ns: retention drops whole days (ALTER TABLE ... DROP PARTITION).
//! observations         Distributed over the cluster `hopcap` (all shards), sharding key
//!                      fingerprint: every sighting of one packet is on one shard, so a
//!                      journey's hops are joined without crossing shards. Writers route rows
//!                      themselves (shard = fingerprint % shards, in the order of the URLs
//!                      given) and insert into the shards' local tables directly.
//!   ts_ns, board, link, run, seq, row, cursor (arrival order), stored_ns, agent_order,
//!   pkttype, wire_len, cap_len, fingerprint, ethertype, ip_version, src, dst (FixedString(16),
//!   IPv4 in the first 4 bytes), proto, src_port, dst_port, summary (postcard: the whole
//!   decoded summary), snap (frame bytes, '' when none)
//! journeys_local       on every shard: one row per journey a scaled correlator stored
//!   first_ns, id, partition (the correlator's), fingerprint, members (how many rows of
//!   journey_rows it has), body (as `correlate::stored` encodes it)
//!   ReplacingMergeTree, ORDER BY (first_ns, id): a journey stored again merges away (its id
//!   comes from its rows). PARTITION BY day of first_ns: retention drops it with the
//!   observations of that day.
//! journeys             Distributed over it, sharding key fingerprint: a journey is on the
//!                      shard of its observations. Writers route it themselves, as above.
//! journey_rows_local   on every shard, the shard of its journey: one row per member
//!   first_ns (its journey's), run, seq, row, id (its journey's)
//!   ReplacingMergeTree, ORDER BY (run, seq, row): a row is a member of one journey.
//!   PARTITION BY day of first_ns: its rows go with their journey. On a shard a journey is
//!   inserted before its rows, so a row that reads as a member has its journey stored; a
//!   journey with fewer rows than `members` is not read back (its write did not finish).
//! journey_rows         Distributed over it, no sharding key (its rows carry no fingerprint):
//!                      read only; 18.16 refuses inserts into it on more than one shard.
//!
//! On the first shard only (small, append-only logs: readers fold them):
//! hellos       board, name, run, boot_id, agent_version, capture, remote, at_ns,
//!              clock_offset_ns, has_offset
//! disconnects  board, remote, at_ns
//! links        one row per report of a link: board, link, pos (place in its report),
//!              netns, name, ifindex, kind, mac, mtu, addrs, master, peer_ifindex, peer_netns
//!              (-1 / '' when none), up, present, at_ns; the latest row of a link is its state
//! batches      board, run, seq, part, parts, records, lost_batches, at_ns:
//!              ReplacingMergeTree by (run, seq, part): the batches (or parts of a batch split
//!              by partition) stored, each once; a batch is stored once all its parts are
//! tallies      run, board, batches, records, at_ns: the largest is the run's tally
//! gave_up      run, board, first, last, records: the largest `last` of each (run, first)
//! clock_steps  run, board, first_batch, delta_ns, at_ns, stored_ns: rows of the run's
//!              batches below first_batch stored before stored_ns are moved by delta_ns when
//!              read
//! stats        board, run, row_key, ts_ns, kernel_packets, kernel_drops, queue_drops,
//!              synced (-1 unknown), max_error_us: ReplacingMergeTree(ts_ns) by
//!              (board, row_key): reports less than a second apart refresh one row
//! ```

/// The database every table is in.
pub const DATABASE: &str = "hopcap";

/// The cluster the Distributed table reads over (scripts/clickhouse.sh names it so).
pub const CLUSTER: &str = "hopcap";

/// On every shard.
pub const SHARD_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS hopcap.observations_local (
        ts_ns UInt64, board Int64, link Int64, run Int64, seq UInt64, row UInt32,
        cursor Int64, stored_ns Int64, agent_order UInt64, pkttype UInt8, wire_len UInt32,
        cap_len UInt32, fingerprint UInt64, ethertype UInt16, ip_version UInt8,
        src FixedString(16), dst FixedString(16), proto UInt8, src_port UInt16,
        dst_port UInt16, summary String, snap String
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts_ns, 1000000000)))
    ORDER BY (ts_ns, run, seq, row)",
    "CREATE TABLE IF NOT EXISTS hopcap.observations AS hopcap.observations_local
    ENGINE = Distributed(hopcap, hopcap, observations_local, fingerprint)",
    "CREATE TABLE IF NOT EXISTS hopcap.journeys_local (
        first_ns UInt64, id UInt64, partition UInt32, fingerprint UInt64, members UInt32,
        body String
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMMDD(toDateTime(intDiv(first_ns, 1000000000)))
    ORDER BY (first_ns, id)",
    "CREATE TABLE IF NOT EXISTS hopcap.journeys AS hopcap.journeys_local
    ENGINE = Distributed(hopcap, hopcap, journeys_local, fingerprint)",
    "CREATE TABLE IF NOT EXISTS hopcap.journey_rows_local (
        first_ns UInt64, run Int64, seq UInt64, row UInt32, id UInt64
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMMDD(toDateTime(intDiv(first_ns, 1000000000)))
    ORDER BY (run, seq, row)",
    "CREATE TABLE IF NOT EXISTS hopcap.journey_rows AS hopcap.journey_rows_local
    ENGINE = Distributed(hopcap, hopcap, journey_rows_local)",
];

/// The tables partitioned by day, which retention drops by day (on every shard).
pub const DAY_PARTITIONED: &[&str] =
    &["observations_local", "journeys_local", "journey_rows_local"];

/// On the first shard.
pub const SMALL_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS hopcap.hellos (board Int64, name String, run Int64,
        boot_id String, agent_version String, capture String, remote String, at_ns Int64,
        clock_offset_ns Int64, has_offset UInt8) ENGINE = MergeTree() ORDER BY (board, at_ns)",
    "CREATE TABLE IF NOT EXISTS hopcap.disconnects (board Int64, remote String, at_ns Int64)
        ENGINE = MergeTree() ORDER BY (board, at_ns)",
    "CREATE TABLE IF NOT EXISTS hopcap.links (board Int64, link Int64, pos UInt32,
        netns String, name String, ifindex UInt32, kind String, mac String, mtu UInt32,
        addrs String, master Int64, peer_ifindex Int64, peer_netns String, up UInt8,
        present UInt8, at_ns Int64) ENGINE = MergeTree() ORDER BY (board, link, at_ns)",
    "CREATE TABLE IF NOT EXISTS hopcap.batches (board Int64, run Int64, seq UInt64,
        part UInt16, parts UInt16, records UInt64, lost_batches UInt64, at_ns Int64)
        ENGINE = ReplacingMergeTree() ORDER BY (run, seq, part)",
    "CREATE TABLE IF NOT EXISTS hopcap.tallies (run Int64, board Int64, batches UInt64,
        records UInt64, at_ns Int64) ENGINE = MergeTree() ORDER BY (run, at_ns)",
    "CREATE TABLE IF NOT EXISTS hopcap.gave_up (run Int64, board Int64, first UInt64,
        last UInt64, records UInt64) ENGINE = MergeTree() ORDER BY (run, first)",
    "CREATE TABLE IF NOT EXISTS hopcap.clock_steps (run Int64, board Int64,
        first_batch UInt64, delta_ns Int64, at_ns UInt64, stored_ns Int64)
        ENGINE = MergeTree() ORDER BY (run, first_batch)",
    "CREATE TABLE IF NOT EXISTS hopcap.stats (board Int64, run Int64, row_key Int64,
        ts_ns Int64, kernel_packets UInt64, kernel_drops UInt64, queue_drops UInt64,
        synced Int8, max_error_us UInt64)
        ENGINE = ReplacingMergeTree(ts_ns) ORDER BY (board, row_key)",
];
