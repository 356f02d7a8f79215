//! One observation <-> one row of `observations` in RowBinary. The columns a query filters or
//! sorts on are their own (time, board, link, fingerprint, addresses, protocol, ports); the
//! summary is kept whole in postcard (the agents' own encoding) so that it reads back exactly.

use crate::store::{FrameBytes, LinkId};
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Net, Summary, Transport};
use hopcap_proto::types::{Addr, PacketType};
use serde::{Deserialize, Serialize};

/// A row of `observations` (and of its per-shard `observations_local`), in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct ObsRow {
    /// Capture time on the board's clock, as the agent sent it (clock steps apply at read).
    pub ts_ns: u64,
    pub board: i64,
    pub link: i64,
    /// With `seq` and `row`: the row's identity, which a batch written again repeats.
    pub run: i64,
    pub seq: u64,
    pub row: u32,
    /// Arrival order (see `cursor::CursorClock`).
    pub cursor: i64,
    /// When the writer stored it (collector clock): which clock steps it predates.
    pub stored_ns: i64,
    pub agent_order: u64,
    pub pkttype: u8,
    pub wire_len: u32,
    pub cap_len: u32,
    pub fingerprint: u64,
    pub ethertype: u16,
    /// 4, 6, or 0 (not IP).
    pub ip_version: u8,
    /// IPv4 addresses in the first 4 bytes, zero-padded; ARP's sender and target likewise.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// The whole summary, postcard-encoded.
    pub summary: Vec<u8>,
    /// The frame's first bytes (`agent --snap-bytes`), empty when none.
    pub snap: Vec<u8>,
}

/// Where a row goes and when: the parts of [`ObsRow`] that are not the observation.
#[derive(Debug, Clone, Copy)]
pub struct RowPlace {
    pub board: i64,
    pub run: i64,
    pub seq: u64,
    pub stored_ns: i64,
}

/// The columns of [`ObsRow`], in order, for SELECTs.
pub const OBS_COLUMNS: &str = "ts_ns, board, link, run, seq, row, cursor, stored_ns, \
    agent_order, pkttype, wire_len, cap_len, fingerprint, ethertype, ip_version, src, dst, \
    proto, src_port, dst_port, summary, snap";

fn padded(a: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = a.len().min(16);
    out[..n].copy_from_slice(&a[..n]);
    out
}

fn addr_bytes(a: &Addr) -> &[u8] {
    match a {
        Addr::V4(b) => b,
        Addr::V6(b) => b,
    }
}

/// The rows of one batch: row `i` is `rows[i]` with cursor `first_cursor + i`.
pub fn encode_batch(
    place: RowPlace,
    rows: &[(LinkId, Observation)],
    frames: &FrameBytes,
    first_cursor: i64,
) -> Vec<ObsRow> {
    rows.iter()
        .enumerate()
        .map(|(i, (link, obs))| {
            let snap = frames.get(i).map(<[u8]>::to_vec).unwrap_or_default();
            encode(place, *link, i as u32, first_cursor + i as i64, obs, snap)
        })
        .collect()
}

pub fn encode(
    place: RowPlace,
    link: LinkId,
    row: u32,
    cursor: i64,
    obs: &Observation,
    snap: Vec<u8>,
) -> ObsRow {
    let s = &obs.summary;
    let (ip_version, src, dst, proto) = match &s.net {
        Net::Ip(ip) => (
            if matches!(ip.src, Addr::V4(_)) { 4 } else { 6 },
            padded(addr_bytes(&ip.src)),
            padded(addr_bytes(&ip.dst)),
            ip.proto.0,
        ),
        Net::Arp { spa, tpa, .. } => (0, padded(spa), padded(tpa), 0),
        Net::None => (0, [0; 16], [0; 16], 0),
    };
    let (src_port, dst_port) = match s.transport {
        Transport::Tcp {
            src_port, dst_port, ..
        }
        | Transport::Udp {
            src_port, dst_port, ..
        } => (src_port, dst_port),
        _ => (0, 0),
    };
    ObsRow {
        ts_ns: obs.ts_ns,
        board: place.board,
        link: link.raw(),
        run: place.run,
        seq: place.seq,
        row,
        cursor,
        stored_ns: place.stored_ns,
        agent_order: obs.order,
        pkttype: obs.pkttype.0,
        wire_len: obs.wire_len,
        cap_len: obs.cap_len,
        fingerprint: obs.fingerprint,
        ethertype: s.ethertype.0,
        ip_version,
        src,
        dst,
        proto,
        src_port,
        dst_port,
        // A summary always encodes (postcard into a Vec cannot run out of room).
        summary: postcard::to_allocvec(s).unwrap_or_default(),
        snap,
    }
}

/// A row whose summary does not decode (written by something else, or damaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSummary(pub String);

impl std::fmt::Display for BadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "observation row has an invalid `summary` value: {}",
            self.0
        )
    }
}

impl std::error::Error for BadSummary {}

/// The observation a row holds (`link` 0, as the SQLite backend reads it: the stored link is
/// the row's `link` column).
pub fn decode(row: &ObsRow) -> Result<Observation, BadSummary> {
    let summary: Summary =
        postcard::from_bytes(&row.summary).map_err(|e| BadSummary(e.to_string()))?;
    Ok(Observation {
        ts_ns: row.ts_ns,
        link: 0,
        order: row.agent_order,
        pkttype: PacketType(row.pkttype),
        wire_len: row.wire_len,
        cap_len: row.cap_len,
        fingerprint: row.fingerprint,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_testkit::SampleGen;

    const PLACE: RowPlace = RowPlace {
        board: 7,
        run: 9,
        seq: 3,
        stored_ns: 11,
    };

    #[test]
    fn sample_mix_round_trips_with_its_query_columns() {
        let mut g = SampleGen::new(7, 1_795_000_000_000_000_000);
        let obs: Vec<Observation> = (0..500).flat_map(|_| g.packet(&[0], 2)).collect();
        assert!(obs.iter().any(|o| o.summary.tunnels.len() == 2));
        assert!(obs.iter().any(|o| matches!(o.summary.net, Net::Arp { .. })));
        let rows: Vec<(LinkId, Observation)> = obs
            .iter()
            .map(|o| (LinkId::from_raw(5), o.clone()))
            .collect();
        let encoded = encode_batch(PLACE, &rows, &FrameBytes::default(), 100);
        for (i, (r, o)) in encoded.iter().zip(&obs).enumerate() {
            assert_eq!((r.row, r.cursor, r.link), (i as u32, 100 + i as i64, 5));
            assert_eq!(
                decode(r).unwrap(),
                Observation {
                    link: 0,
                    ..o.clone()
                }
            );
            if let Net::Ip(ip) = &o.summary.net {
                assert_eq!(&r.src[..addr_bytes(&ip.src).len()], addr_bytes(&ip.src));
                assert_eq!(r.proto, ip.proto.0);
            }
        }
    }

    #[test]
    fn frames_go_to_their_row_and_a_damaged_summary_is_an_error() {
        let mut g = SampleGen::new(1, 5);
        let rows: Vec<_> = g
            .packet(&[0, 1], 2)
            .into_iter()
            .map(|o| (LinkId::from_raw(2), o))
            .collect();
        let mut frames = FrameBytes::default();
        frames.push(&[0xaa, 0xbb]);
        frames.push(&[]);
        let mut r = encode_batch(PLACE, &rows, &frames, 1);
        assert_eq!(
            (r[0].snap.as_slice(), r[1].snap.as_slice()),
            (&[0xaa, 0xbb][..], &[][..])
        );
        r[0].summary.truncate(1);
        assert!(decode(&r[0]).unwrap_err().to_string().contains("summary"));
    }
}
