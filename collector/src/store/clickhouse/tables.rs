//! Rows of the small tables (see [`super::schema`]), as the writer appends them and the
//! reader folds them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct HelloRow {
    pub board: i64,
    pub name: String,
    pub run: i64,
    pub boot_id: String,
    pub agent_version: String,
    pub capture: String,
    pub remote: String,
    pub at_ns: i64,
    pub clock_offset_ns: i64,
    pub has_offset: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct DisconnectRow {
    pub board: i64,
    pub remote: String,
    pub at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct LinkRow {
    pub board: i64,
    pub link: i64,
    pub pos: u32,
    pub netns: String,
    pub name: String,
    pub ifindex: u32,
    pub kind: String,
    pub mac: Vec<u8>,
    pub mtu: u32,
    pub addrs: String,
    /// -1: none.
    pub master: i64,
    /// -1: none.
    pub peer_ifindex: i64,
    pub peer_netns: String,
    pub up: u8,
    pub present: u8,
    pub at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct BatchRow {
    pub board: i64,
    pub run: i64,
    pub seq: u64,
    /// Part `part` of `parts` (scaled mode splits a batch by partition; 0 of 1 otherwise).
    pub part: u16,
    pub parts: u16,
    pub records: u64,
    pub lost_batches: u64,
    pub at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct TallyRow {
    pub run: i64,
    pub board: i64,
    pub batches: u64,
    pub records: u64,
    pub at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct GaveUpRow {
    pub run: i64,
    pub board: i64,
    pub first: u64,
    pub last: u64,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct ClockStepRow {
    pub run: i64,
    pub board: i64,
    pub first_batch: u64,
    pub delta_ns: i64,
    pub at_ns: u64,
    pub stored_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct StatsRow {
    pub board: i64,
    pub run: i64,
    pub row_key: i64,
    pub ts_ns: i64,
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub queue_drops: u64,
    /// -1 unknown, 0 not synchronised, 1 synchronised.
    pub synced: i8,
    pub max_error_us: u64,
}
