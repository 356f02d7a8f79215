//! `paths` and `flows`: read a time window from the store, rebuild each packet's journey
//! (crate::correlate) and print it (crate::render). Store link rows become per-board link
//! keys so the correlator sees the same topology the agents reported.

use crate::cli::{CmdResult, FlowsArgs, PathsArgs, WindowArgs};
use crate::correlate::{correlate, Config, DropInterval, Hop, Report, Topology};
use crate::render::timeline::RowFilter;
use crate::store::query::{self, TimelineQuery};
use crate::store::writer::now_ns;
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKind, Peer};
use hopcap_proto::types::{Addr, Mac};
use rusqlite::Connection;
use std::collections::HashMap;
use std::io::Write;

pub fn run_paths(conn: &Connection, args: &PathsArgs) -> CmdResult {
    let mut report = load_and_correlate(conn, &args.window)?;
    if let Some(n) = args.limit {
        report.journeys.truncate(usize::try_from(n).unwrap_or(0));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        crate::render::paths::write_json(&report, &mut out)?;
    } else {
        crate::render::paths::write_text(&report, &mut out)?;
        for line in crate::render::paths::clock_lines(&report) {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn run_flows(conn: &Connection, args: &FlowsArgs) -> CmdResult {
    let report = load_and_correlate(conn, &args.window)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        crate::render::flows::write_json(&report, &mut out)?;
    } else {
        crate::render::flows::write_text(&report, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Every observation of the window is correlated (a journey's hops may sit on other boards
/// or links than the ones asked for); --board, --link and --filter then pick the journeys
/// that touch them.
fn load_and_correlate(
    conn: &Connection,
    window: &WindowArgs,
) -> Result<Report, Box<dyn std::error::Error>> {
    let (since_ns, until_ns) = window.bounds(now_ns())?;
    let filter = RowFilter::new(window.filter.as_deref())?;
    let links = load_links(conn)?;
    let q = TimelineQuery {
        since_ns,
        until_ns,
        ..TimelineQuery::default()
    };
    let mut hops = Vec::new();
    let mut wanted = Vec::new();
    query::timeline(conn, &q, &mut |row| {
        let Some((_, info)) = links.get(&row.link_id) else {
            return true;
        };
        let mut obs = row.obs;
        obs.link = info.key;
        let board_ok = window.board.as_ref().is_none_or(|b| *b == row.board);
        let link_ok = window.link.as_ref().is_none_or(|l| {
            *l == row.link || *l == query::link_label(&row.board, &row.netns, &row.link)
        });
        wanted.push(board_ok && link_ok && filter.matches(&obs));
        hops.push(Hop {
            board: row.board,
            obs,
        });
        true
    })?;
    let mut topo = Topology::default();
    let mut by_board: HashMap<&str, Vec<LinkInfo>> = HashMap::new();
    for (board, info) in links.values() {
        by_board
            .entry(board.as_str())
            .or_default()
            .push(info.clone());
    }
    for (board, infos) in by_board {
        topo.add_board(board, infos);
    }
    let cfg = Config {
        drops: load_drops(conn)?,
        ..Config::default()
    };
    let mut report = correlate(hops, &topo, &cfg);
    report.journeys.retain(|j| {
        j.hops
            .iter()
            .any(|h| wanted.get(h.input).copied().unwrap_or(false))
    });
    Ok(report)
}

/// Link rows as the agents' `LinkInfo`, keyed by row id. Keys are dense per board (row ids
/// are global and may exceed a `LinkKey`).
fn load_links(conn: &Connection) -> rusqlite::Result<HashMap<i64, (String, LinkInfo)>> {
    let mut stmt = conn.prepare(
        "SELECT l.id, b.name, l.netns, l.name, l.ifindex, l.kind, l.mac, l.mtu, l.addrs,
                l.master, l.peer_ifindex, l.peer_netns, l.up
         FROM links l JOIN boards b ON b.id = l.board ORDER BY l.board, l.id",
    )?;
    let mut next_key: HashMap<String, u16> = HashMap::new();
    let mut out = HashMap::new();
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<Vec<u8>>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, Option<i64>>(9)?,
            r.get::<_, Option<i64>>(10)?,
            r.get::<_, Option<String>>(11)?,
            r.get::<_, i64>(12)?,
        ))
    })?;
    for row in rows {
        let (
            id,
            board,
            netns,
            name,
            ifindex,
            kind,
            mac,
            mtu,
            addrs,
            master,
            peer_ifindex,
            peer_netns,
            up,
        ) = row?;
        let key = next_key.entry(board.clone()).or_insert(0);
        let info = LinkInfo {
            key: *key,
            netns: bounded(&netns),
            name: bounded(&name),
            ifindex: u32::try_from(ifindex).unwrap_or(0),
            kind: LinkKind::from_name(&kind),
            mac: Mac(mac
                .and_then(|m| <[u8; 6]>::try_from(m.as_slice()).ok())
                .unwrap_or_default()),
            mtu: mtu.and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
            addrs: parse_addrs(&addrs),
            master: master.and_then(|m| u32::try_from(m).ok()),
            peer: peer_ifindex
                .and_then(|i| u32::try_from(i).ok())
                .map(|ifindex| Peer {
                    ifindex,
                    netns: bounded(peer_netns.as_deref().unwrap_or("")),
                }),
            up: up != 0,
        };
        *key = key.wrapping_add(1);
        out.insert(id, (board, info));
    }
    Ok(out)
}

/// Capture drops between consecutive stats reports, moved to the board's clock with the
/// offset sampled at hello.
fn load_drops(conn: &Connection) -> rusqlite::Result<Vec<DropInterval>> {
    let mut stmt = conn.prepare(
        "SELECT b.name, s.ts_ns - coalesce(b.clock_offset_ns, 0), s.kernel_drops + s.queue_drops
         FROM stats s JOIN boards b ON b.id = s.board ORDER BY s.board, s.ts_ns",
    )?;
    let mut out = Vec::new();
    let mut last: Option<(String, i64, i64)> = None;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (board, ts, total) = row?;
        if let Some((b, t0, before)) = &last {
            if *b == board && total > *before {
                out.push(DropInterval {
                    board: board.clone(),
                    start_ns: u64::try_from(*t0).unwrap_or(0),
                    end_ns: u64::try_from(ts).unwrap_or(0),
                    dropped: u64::try_from(total - before).unwrap_or(0),
                });
            }
        }
        last = Some((board, ts, total));
    }
    Ok(out)
}

fn bounded<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// `10.0.0.2/24 fe80::1/64` as stored in `links.addrs`.
fn parse_addrs(text: &str) -> heapless::Vec<LinkAddr, { hopcap_proto::record::MAX_ADDRS }> {
    let mut out = heapless::Vec::new();
    for item in text.split_whitespace() {
        let (ip, prefix) = item.split_once('/').unwrap_or((item, "0"));
        let addr = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => Addr::V4(a.octets()),
            Ok(std::net::IpAddr::V6(a)) => Addr::V6(a.octets()),
            Err(_) => continue,
        };
        let _ = out.push(LinkAddr {
            addr,
            prefix: prefix.parse().unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stored_addresses() {
        let a = parse_addrs("10.0.0.2/24 fe80::1/64 junk");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0],
            LinkAddr {
                addr: Addr::V4([10, 0, 0, 2]),
                prefix: 24
            }
        );
        assert_eq!(a[1].prefix, 64);
    }
}
