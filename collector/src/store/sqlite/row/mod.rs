//! One observation <-> one `observations` row. Writing binds every column of a prepared
//! statement (no per-row allocation except for nested tunnels); reading rebuilds the exact
//! [`Observation`], so rendering and filtering work on proto types.

mod read;
mod write;

pub use read::row_to_observation;
pub use write::bind_observation;

/// The columns after `board, link`, in bind and read order.
pub const OBS_COLUMNS: &str = "ts_ns, agent_order, pkttype, wire_len, cap_len, fingerprint, \
    ethertype, vlan, ip_version, src, dst, proto, ttl, ip_id, frag_offset, more_frags, \
    ip_payload_len, src_port, dst_port, tcp_seq, tcp_ack, tcp_flags, tcp_window, tcp_hdr_len, \
    udp_len, icmp_type, icmp_code, icmp_id, icmp_seq, arp_op, tun_kind, tun_id, tun_src, \
    tun_dst, tun_outer_id, tun_src_port, tun_dst_port, tun_more, stop_kind, stop_offset, \
    stop_reason, stop_detail";

/// How many columns [`OBS_COLUMNS`] names.
pub const OBS_COLUMN_COUNT: usize = 42;

/// Parameters one row binds (board, link and [`OBS_COLUMNS`]).
pub const ROW_PARAMS: usize = OBS_COLUMN_COUNT + 2;

/// Rows per multi-row insert statement: one statement step per this many rows saves most of
/// SQLite's per-statement overhead (measured by the benchmark).
pub const ROWS_PER_INSERT: usize = 16;

fn multi_insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; ROW_PARAMS].join(","));
    format!(
        "INSERT INTO observations (board, link, {OBS_COLUMNS}) VALUES {}",
        vec![one; rows].join(",")
    )
}

/// `INSERT INTO observations (board, link, ...) VALUES (?, ..., ?)`: one row.
pub fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| multi_insert_sql(1))
}

/// The same for [`ROWS_PER_INSERT`] rows (bind row k at offset k * [`ROW_PARAMS`]).
pub fn insert_many_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| multi_insert_sql(ROWS_PER_INSERT))
}

/// `INSERT INTO observations (board, link, ..., snap) VALUES (...)`: one row with its frame
/// bytes, bound as [`insert_sql`]'s and then the bytes at [`ROW_PARAMS`] + 1.
pub fn insert_with_frame_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO observations (board, link, {OBS_COLUMNS}, snap) VALUES ({})",
            vec!["?"; ROW_PARAMS + 1].join(",")
        )
    })
}

/// A row that does not rebuild an observation (written by something else, or damaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub column: &'static str,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "observation row has an invalid `{}` value", self.column)
    }
}

impl std::error::Error for BadRow {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::codes::LAYER_KINDS;
    use crate::store::sqlite::schema;
    use hopcap_proto::layer::{Invalid, StopReason};
    use hopcap_proto::record::Observation;
    use hopcap_proto::summary::{Net, Stop, Summary, Transport};
    use hopcap_proto::types::PacketType;
    use hopcap_testkit::SampleGen;
    use rusqlite::Connection;

    fn round_trip(obs: &[Observation]) -> Vec<Observation> {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, true, &[]).unwrap();
        let mut stmt = conn.prepare(insert_sql()).unwrap();
        for o in obs {
            stmt.clear_bindings();
            bind_observation(&mut stmt, 0, 1, 2, o).unwrap();
            stmt.raw_execute().unwrap();
        }
        let mut read = conn
            .prepare(&format!(
                "SELECT {OBS_COLUMNS} FROM observations ORDER BY id"
            ))
            .unwrap();
        let rows = read
            .query_map([], |r| Ok(row_to_observation(r, 0)))
            .unwrap();
        rows.map(|r| r.unwrap().unwrap()).collect()
    }

    #[test]
    fn sample_mix_round_trips() {
        let mut g = SampleGen::new(7, 1_795_000_000_000_000_000);
        let mut obs = Vec::new();
        for _ in 0..500 {
            obs.extend(g.packet(&[0], 2));
        }
        // Every branch of the mix is present, so every column path is exercised.
        assert!(obs.iter().any(|o| o.summary.tunnels.len() == 2));
        assert!(obs.iter().any(|o| matches!(o.summary.net, Net::Arp { .. })));
        assert!(obs
            .iter()
            .any(|o| matches!(o.summary.transport, Transport::Icmp { .. })));
        assert!(obs.iter().any(|o| o.summary.stop.is_some()));
        let back = round_trip(&obs);
        let expect: Vec<Observation> = obs
            .into_iter()
            .map(|o| Observation { link: 0, ..o })
            .collect();
        assert_eq!(back, expect);
    }

    #[test]
    fn extremes_and_every_stop_reason_round_trip() {
        let reasons = [
            StopReason::Truncated {
                needed: u16::MAX,
                had: 0,
            },
            StopReason::Unsupported(0x88cc),
            StopReason::TooDeep,
            StopReason::Invalid(Invalid::IpVersion(7)),
            StopReason::Invalid(Invalid::Ipv4HeaderLen(3)),
            StopReason::Invalid(Invalid::Ipv4TotalLen(9)),
            StopReason::Invalid(Invalid::TcpHeaderLen(4)),
            StopReason::Invalid(Invalid::UdpLength(2)),
            StopReason::Invalid(Invalid::ExtHeaderLen(1000)),
            StopReason::Invalid(Invalid::GreVersion(2)),
            StopReason::Invalid(Invalid::GeneveVersion(1)),
            StopReason::Invalid(Invalid::ArpLengths { hlen: 255, plen: 0 }),
            StopReason::Invalid(Invalid::SllAddrLen(9)),
        ];
        let obs: Vec<Observation> = reasons
            .iter()
            .zip(LAYER_KINDS.iter().cycle())
            .map(|(reason, kind)| {
                let mut summary = Summary::empty();
                summary.stop = Some(Stop {
                    offset: u16::MAX,
                    kind: *kind,
                    reason: *reason,
                });
                Observation {
                    ts_ns: u64::MAX >> 1,
                    link: 0,
                    order: u64::MAX,
                    pkttype: PacketType(255),
                    wire_len: u32::MAX,
                    cap_len: 0,
                    fingerprint: u64::MAX,
                    summary,
                }
            })
            .collect();
        assert_eq!(round_trip(&obs), obs);
    }

    #[test]
    fn damaged_address_is_reported_by_column() {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, false, &[]).unwrap();
        conn.execute(
            "INSERT INTO observations (board, link, ts_ns, agent_order, pkttype, wire_len, cap_len,
             fingerprint, ethertype, ip_version, src, dst) VALUES (1,1,1,1,0,60,60,0,2048,4,x'0a00',x'0a000001')",
            [],
        )
        .unwrap();
        let err = conn
            .query_row(
                &format!("SELECT {OBS_COLUMNS} FROM observations"),
                [],
                |r| Ok(row_to_observation(r, 0)),
            )
            .unwrap()
            .unwrap_err();
        assert_eq!(err, BadRow { column: "src" });
    }
}
