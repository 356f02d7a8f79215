//! The database layout. This comment is the user documentation (it goes in the README):
//! query the file with the `sqlite3` shell, Grafana's SQLite data source or Python's
//! `sqlite3` module while the collector runs (WAL mode lets readers run beside the writer).
//!
//! ```text
//! boards        one row per board (agent host), keyed by the name its agent reports
//!   id INTEGER PRIMARY KEY, name TEXT UNIQUE, agent_version TEXT (the agent's crate version),
//!   capture TEXT (how it captures: `ring, snaplen 192, sample 1/1, protocol 6`; schema
//!   version 6),
//!   boot_id TEXT (the agent run: the board's boot id and the agent's run id),
//!   remote TEXT (last peer address), first_seen_ns, last_seen_ns (collector clock, ns since epoch),
//!   state TEXT ('connected' | 'disconnected'),
//!   clock_offset_ns  collector clock minus board clock, sampled at hello (NULL before one),
//!   batches, observations      stored so far,
//!   lost_batches               batches missing from the sequence numbers when they arrived
//!                              (gaps; `boards` shows the reconciled count, from `runs`)
//!   kernel_drops, queue_drops  the agents' own counts (kernel ring drops, batches dropped from
//!                              the send queue unsent), summed over all agent runs on the board;
//!                              `boards` shows the reconciled queue loss, from `runs`
//!   last_seq                   the last batch sequence number stored (duplicate detection)
//!   clock_synced               1 if the board's clock is NTP-synchronised (adjtimex), 0 if
//!                              not, NULL before a report; clock_max_error_us its error bound
//!   kernel_drops_base, queue_drops_base   the sums of the runs before the current one
//!
//! links         one row per link a board reported (a link re-created with a new name or
//!               ifindex is a new row); `present` = 1 while the board's latest report lists it
//!   id INTEGER PRIMARY KEY, board (boards.id), netns TEXT ('' = the board's own namespace),
//!   name TEXT, ifindex, kind TEXT ('veth', 'bridge', ...), mac BLOB(6), mtu,
//!   addrs TEXT ('10.0.0.2/24 fe80::1/64'), master (ifindex of its bridge in the same netns),
//!   peer_ifindex, peer_netns (a veth's other end), up, first_seen_ns, last_seen_ns, present
//!
//! observations  one row per packet seen on one link (the bulk of the file)
//!   id INTEGER PRIMARY KEY   arrival order (timeline --follow polls by it)
//!   board, link              boards.id, links.id
//!   ts_ns                    capture time, ns since the Unix epoch, on the BOARD's clock
//!   agent_order              capture order within the agent's socket: ties on ts_ns keep it
//!   pkttype                  0 host, 1 broadcast, 2 multicast, 3 otherhost, 4 outgoing (Out)
//!   wire_len, cap_len        bytes on the wire / captured
//!   fingerprint              hop-invariant packet hash (u64 stored as two's-complement i64):
//!                            the same packet on different hops has the same value
//!   ethertype, vlan          innermost EtherType; outermost VLAN id or NULL
//!   ip_version               4, 6, or NULL (not IP)
//!   src, dst                 BLOB of 4 or 16 bytes (hex(src) in SQL); for ARP the sender and
//!                            target protocol addresses
//!   proto, ttl, ip_id, frag_offset (8-byte units), more_frags, ip_payload_len
//!   src_port, dst_port       TCP or UDP ports
//!   tcp_seq, tcp_ack, tcp_flags (12-bit, FIN=1 SYN=2 RST=4 PSH=8 ACK=16), tcp_window
//!   tcp_hdr_len              TCP header length in bytes, options included (0 = unknown);
//!                            TCP data bytes = ip_payload_len - tcp_hdr_len (added in schema
//!                            version 2)
//!   snap                     the frame's first bytes as captured, from the link-layer header
//!                            on (agents run with --snap-bytes N: up to N bytes), else NULL;
//!                            what `export --pcapng` writes. The last column (schema version 5)
//!   udp_len
//!   icmp_type, icmp_code, icmp_id, icmp_seq   ICMP and ICMPv6 (proto says which)
//!   arp_op                   1 request, 2 reply
//!   tun_kind                 outermost tunnel: 1 vxlan, 2 geneve, 3 gre, 4 gtpu, 5 ip-in-ip
//!   tun_id                   its VNI / GRE key / TEID (NULL when none)
//!   tun_src, tun_dst, tun_outer_id, tun_src_port, tun_dst_port   the outer IP/UDP header
//!   tun_more                 further nested tunnels, postcard-encoded (rare)
//!   stop_kind, stop_offset, stop_reason, stop_detail
//!                            where decoding stopped early: stop_kind names the protocol
//!                            (table layer_kinds), stop_reason: 1 truncated (detail =
//!                            needed<<16 | had), 2 unsupported (detail = the number),
//!                            3 too deep, 100+n invalid check n (see store/codes.rs)
//!
//! runs          one row per agent run of a board (its delivery ledger, reconciled by `boards`)
//!   id, board (boards.id), run TEXT (the boot_id the run said hello with), first_seen_ns,
//!   tally_batches, tally_records   the agent's latest tally: batches 0..tally_batches of the
//!                                  run hold tally_records observations (what it kept)
//!   stored_batches, stored_records what of them is stored (each batch once)
//! run_batches   one row per stored batch of a run: run (runs.id), seq, records, first_obs
//!               (the id of its first observation; its rows are first_obs..first_obs+records)
//! clock_steps   real-time clock steps of an agent run: run (runs.id), first_batch, delta_ns,
//!               at_ns (board's new clock). The observations of the run's batches before
//!               first_batch were moved by delta_ns when it arrived (those stored later are
//!               moved as they are stored): every ts_ns of a run is on its latest clock
//! gave_up       ranges of batches an agent run removed from its queue unacknowledged:
//!   run (runs.id), first, last (sequence numbers, inclusive), records (in all of them).
//!   Lost in the queue = records of a range minus the records of its batches in run_batches
//!   (a batch given up after it was written may be stored after all); lost in transit =
//!   tally_records - stored_records - lost in the queue.
//!
//! stats         one row per statistics report of an agent
//!   board, ts_ns (collector clock), kernel_packets, kernel_drops, queue_drops (the agent's
//!   totals for its current run), lost_batches (collector-side total for the board)
//!
//! layer_kinds, pkttypes, tunnel_kinds   small lookup tables to join for names
//! timeline      a view: observations joined with board and link names, ordered columns
//!
//! indexes       obs_ts (ts_ns), always. Optional, with `serve --index NAME`:
//!               fingerprint -> obs_fingerprint (fingerprint)
//!               link        -> obs_link_ts (link, ts_ns)
//!               flow        -> obs_flow (src, dst, proto, src_port, dst_port)
//!               Give queries a time window (`ts_ns BETWEEN ...`) and they need no more:
//!               e.g. one packet's hops: `WHERE ts_ns BETWEEN ?-5e9 AND ?+5e9 AND fingerprint = ?`.
//! ```
//!
//! Example: `SELECT datetime(ts_ns/1e9,'unixepoch'), board_name, link_name, hex(src), dst_port
//! FROM timeline WHERE ts_ns > (strftime('%s','now')-600)*1e9 ORDER BY ts_ns;`
//!
//! Durability: journal_mode=WAL with synchronous=NORMAL. A kill -9 of the collector loses
//! nothing that was committed (the WAL is in the OS page cache and is replayed on the next
//! open); a power cut may lose the last transactions (a few ms of data) but never corrupts
//! the file, because WAL frames are checksummed and only whole committed transactions replay.
//! Agents keep every batch until the collector acknowledges it, and it acknowledges only
//! after the commit: what a crash lost is sent again when the agents reconnect.
//!
//! Size: about 130 bytes per observation with the default index (see the benchmark); 16 KiB
//! pages; `serve --retain-mb` / `--retain-hours` bound the file (store/retention.rs).

use rusqlite::Connection;

/// Bumped when the layout changes; stored in `PRAGMA user_version`. The writer upgrades an
/// older file in place ([`create`]); readers refuse one until it is upgraded.
/// 2: `observations.tcp_hdr_len`. 3: `runs`, `run_batches`, `gave_up` (delivery ledger).
/// 4: `clock_steps`, `run_batches.first_obs`, `boards.clock_synced`/`clock_max_error_us`.
/// 5: `observations.snap` (frame bytes).
pub const SCHEMA_VERSION: i64 = 6;

/// Tables and lookup rows. Observation indexes are in [`TIME_INDEX`] and [`OPTIONAL_INDEXES`].
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS boards (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    boot_id TEXT,
    agent_version TEXT,
    capture TEXT,
    remote TEXT,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'connected',
    clock_offset_ns INTEGER,
    batches INTEGER NOT NULL DEFAULT 0,
    observations INTEGER NOT NULL DEFAULT 0,
    lost_batches INTEGER NOT NULL DEFAULT 0,
    kernel_drops INTEGER NOT NULL DEFAULT 0,
    queue_drops INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER,
    kernel_drops_base INTEGER NOT NULL DEFAULT 0,
    queue_drops_base INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY,
    board INTEGER NOT NULL REFERENCES boards(id),
    netns TEXT NOT NULL,
    name TEXT NOT NULL,
    ifindex INTEGER NOT NULL,
    kind TEXT NOT NULL,
    mac BLOB,
    mtu INTEGER,
    addrs TEXT NOT NULL DEFAULT '',
    master INTEGER,
    peer_ifindex INTEGER,
    peer_netns TEXT,
    up INTEGER NOT NULL DEFAULT 1,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    present INTEGER NOT NULL DEFAULT 1,
    UNIQUE (board, netns, ifindex, name)
);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY,
    board INTEGER NOT NULL,
    link INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    agent_order INTEGER NOT NULL,
    pkttype INTEGER NOT NULL,
    wire_len INTEGER NOT NULL,
    cap_len INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    ethertype INTEGER NOT NULL,
    vlan INTEGER,
    ip_version INTEGER,
    src BLOB,
    dst BLOB,
    proto INTEGER,
    ttl INTEGER,
    ip_id INTEGER,
    frag_offset INTEGER,
    more_frags INTEGER,
    ip_payload_len INTEGER,
    src_port INTEGER,
    dst_port INTEGER,
    tcp_seq INTEGER,
    tcp_ack INTEGER,
    tcp_flags INTEGER,
    tcp_window INTEGER,
    udp_len INTEGER,
    icmp_type INTEGER,
    icmp_code INTEGER,
    icmp_id INTEGER,
    icmp_seq INTEGER,
    arp_op INTEGER,
    tun_kind INTEGER,
    tun_id INTEGER,
    tun_src BLOB,
    tun_dst BLOB,
    tun_outer_id INTEGER,
    tun_src_port INTEGER,
    tun_dst_port INTEGER,
    tun_more BLOB,
    stop_kind INTEGER,
    stop_offset INTEGER,
    stop_reason INTEGER,
    stop_detail INTEGER,
    tcp_hdr_len INTEGER,
    snap BLOB
);
CREATE TABLE IF NOT EXISTS stats (
    id INTEGER PRIMARY KEY,
    board INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    kernel_packets INTEGER NOT NULL,
    kernel_drops INTEGER NOT NULL,
    queue_drops INTEGER NOT NULL,
    lost_batches INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    board INTEGER NOT NULL REFERENCES boards(id),
    run TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    tally_batches INTEGER NOT NULL DEFAULT 0,
    tally_records INTEGER NOT NULL DEFAULT 0,
    stored_batches INTEGER NOT NULL DEFAULT 0,
    stored_records INTEGER NOT NULL DEFAULT 0,
    UNIQUE (board, run)
);
CREATE TABLE IF NOT EXISTS run_batches (
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (run, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gave_up (
    run INTEGER NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (run, first)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clock_steps (
    run INTEGER NOT NULL,
    first_batch INTEGER NOT NULL,
    delta_ns INTEGER NOT NULL,
    at_ns INTEGER NOT NULL,
    PRIMARY KEY (run, first_batch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS layer_kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pkttypes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, direction TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tunnel_kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT OR REPLACE INTO pkttypes VALUES
    (0,'host','In'),(1,'broadcast','In'),(2,'multicast','In'),(3,'otherhost','In'),(4,'outgoing','Out');
INSERT OR REPLACE INTO tunnel_kinds VALUES
    (1,'vxlan'),(2,'geneve'),(3,'gre'),(4,'gtpu'),(5,'ipip');
CREATE VIEW IF NOT EXISTS timeline AS
    SELECT o.*, b.name AS board_name, l.netns AS netns, l.name AS link_name
    FROM observations o JOIN boards b ON b.id = o.board JOIN links l ON l.id = o.link;
CREATE INDEX IF NOT EXISTS stats_board_ts ON stats(board, ts_ns);
";

/// The time index, always built: time windows (timeline, paths, Grafana), retention by age.
pub const TIME_INDEX: &str = "CREATE INDEX IF NOT EXISTS obs_ts ON observations(ts_ns)";

/// Optional indexes (`serve --index NAME`), by name. Each one is a b-tree keyed by a value
/// that arrives in random order, so every transaction touches pages all over it: measured
/// (collector/benches/ingest.rs) it halves the insert rate or worse, and it grows the file
/// by 15-30 bytes per row. Queries with a time window do not need them: the time index
/// narrows first, the rest is filtered in the window. Build one for frequent queries over
/// all of the stored time.
pub const OPTIONAL_INDEXES: &[(&str, &str)] = &[
    // One packet's hops by fingerprint alone.
    (
        "fingerprint",
        "CREATE INDEX IF NOT EXISTS obs_fingerprint ON observations(fingerprint)",
    ),
    // One link's (and, through its links, one board's) traffic over all time.
    (
        "link",
        "CREATE INDEX IF NOT EXISTS obs_link_ts ON observations(link, ts_ns)",
    ),
    // A flow (addresses, protocol, ports) over all time.
    (
        "flow",
        "CREATE INDEX IF NOT EXISTS obs_flow ON observations(src, dst, proto, src_port, dst_port)",
    ),
];

/// Connection settings; run on every connection (readers too, for busy_timeout).
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // 16 KiB pages (only takes effect on a new file): fewer b-tree levels and page splits
    // for these ~110-byte rows; measured ~10% faster inserts than 4 KiB.
    conn.pragma_update(None, "page_size", 16384)?;
    // auto_vacuum must be chosen before the first table exists; INCREMENTAL lets retention
    // hand freed pages back to the filesystem in small steps.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Keep the WAL file from staying large after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // 64 MiB page cache (negative = KiB): index inserts stay in memory.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Creates what is missing: tables, the time index (unless `time_index` is false, for the
/// benchmark's measurements) and the named [`OPTIONAL_INDEXES`]. Indexes built earlier stay.
pub fn create(conn: &Connection, time_index: bool, optional: &[&str]) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {version} is newer than this collector's {SCHEMA_VERSION}"
        )));
    }
    conn.execute_batch(TABLES)?;
    upgrade(conn)?;
    insert_layer_kinds(conn)?;
    if time_index {
        conn.execute(TIME_INDEX, [])?;
    }
    for name in optional {
        let sql = OPTIONAL_INDEXES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, sql)| *sql)
            .ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!("no index named {name:?}"))
            })?;
        conn.execute(sql, [])?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Brings a file of an older layout up to date (the tables exist): each step only adds.
/// Adding a column is instant in SQLite (the rows are not rewritten; old rows read NULL).
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    let has_hdr_len: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('observations') WHERE name = 'tcp_hdr_len'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_hdr_len {
        conn.execute(
            "ALTER TABLE observations ADD COLUMN tcp_hdr_len INTEGER",
            [],
        )?;
    }
    // Version 4.
    add_column(conn, "run_batches", "first_obs", "INTEGER")?;
    add_column(conn, "boards", "clock_synced", "INTEGER")?;
    add_column(conn, "boards", "clock_max_error_us", "INTEGER")?;
    // Version 5.
    add_column(conn, "observations", "snap", "BLOB")?;
    // Version 6.
    add_column(conn, "boards", "capture", "TEXT")?;
    Ok(())
}

fn add_column(conn: &Connection, table: &str, column: &str, kind: &str) -> rusqlite::Result<()> {
    let has: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        (table, column),
        |r| r.get(0),
    )?;
    if has == 0 {
        conn.execute(
            &format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"),
            [],
        )?;
    }
    Ok(())
}

fn insert_layer_kinds(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("INSERT OR REPLACE INTO layer_kinds VALUES (?1, ?2)")?;
    for (code, kind) in super::codes::LAYER_KINDS.iter().enumerate() {
        stmt.execute((code as i64, kind.name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::row::{row_to_observation, OBS_COLUMNS};
    use crate::store::sqlite::{open_for_reading, open_for_writing, OpenError};
    use hopcap_proto::summary::Transport;
    use hopcap_testkit::ScratchDir;

    /// A file as collector schema version 1 left it: no `tcp_hdr_len`, one TCP row.
    fn version_1_file(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        create(&conn, true, &[]).unwrap();
        conn.execute_batch(
            "ALTER TABLE observations DROP COLUMN tcp_hdr_len;
             PRAGMA user_version = 1;
             INSERT INTO observations (board, link, ts_ns, agent_order, pkttype, wire_len,
                cap_len, fingerprint, ethertype, ip_version, src, dst, proto, ip_payload_len,
                src_port, dst_port, tcp_seq, tcp_ack, tcp_flags, tcp_window)
             VALUES (1, 1, 5, 0, 0, 90, 90, 7, 2048, 4, x'0a000001', x'0a000002', 6, 56,
                40000, 80, 100, 200, 24, 502);",
        )
        .unwrap();
    }

    #[test]
    fn an_older_file_is_refused_by_readers_and_upgraded_by_the_writer() {
        let dir = ScratchDir::new("schema-upgrade").unwrap();
        let path = dir.join("old.db");
        version_1_file(&path);
        let err = open_for_reading(&path).unwrap_err();
        assert!(matches!(err, OpenError::OldSchema(_, 1)), "{err}");
        assert!(err.to_string().contains("schema version 1"), "{err}");

        let conn = open_for_writing(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(conn);
        let conn = open_for_reading(&path).unwrap();
        let obs = conn
            .query_row(
                &format!("SELECT {OBS_COLUMNS} FROM observations"),
                [],
                |r| Ok(row_to_observation(r, 0)),
            )
            .unwrap()
            .unwrap();
        // The old row's header length reads as unknown.
        assert!(matches!(
            obs.summary.transport,
            Transport::Tcp {
                seq: 100,
                hdr_len: 0,
                ..
            }
        ));
        // A second open finds nothing to upgrade.
        drop(conn);
        open_for_writing(&path).unwrap();
    }
}
