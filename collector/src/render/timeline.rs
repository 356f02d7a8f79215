//! `timeline`: the merged timeline of every board, one tcpdump-like line per observation
//! prefixed with where it was seen (`board:link` or `board:netns:link`) and In/Out, or JSON
//! lines. `--follow` then polls for rows stored after the last one printed, like tail -f.

use crate::cli::time::format_rfc3339;
use crate::cli::{CmdResult, TimelineArgs};
use crate::store::query::{self, TimelineQuery, TimelineRow};
use crate::store::writer::now_ns;
use hopcap_proto::filter::Filter;
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Net, Transport};
use rusqlite::Connection;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` looks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The packet part of a line (after time, label and direction).
fn describe(obs: &Observation) -> String {
    let s = &obs.summary;
    let mut out = String::new();
    for t in &s.tunnels {
        out.push_str(&format!("[{:?} {} > {}] ", t.kind, t.src, t.dst));
    }
    match (&s.net, &s.transport) {
        (
            Net::Ip(ip),
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
            },
        ) => {
            out.push_str(&format!(
                "IP {}.{src_port} > {}.{dst_port}: tcp flags {flags:#05x}, seq {seq}, ack {ack}, win {window}",
                ip.src, ip.dst
            ));
        }
        (
            Net::Ip(ip),
            Transport::Udp {
                src_port,
                dst_port,
                length,
            },
        ) => {
            out.push_str(&format!(
                "IP {}.{src_port} > {}.{dst_port}: UDP, length {length}",
                ip.src, ip.dst
            ));
        }
        (Net::Ip(ip), Transport::Icmp { ty, code, id, seq }) => {
            out.push_str(&format!(
                "IP {} > {}: ICMP type {ty} code {code}, id {id}, seq {seq}",
                ip.src, ip.dst
            ));
        }
        (Net::Ip(ip), Transport::None) => {
            out.push_str(&format!("IP {} > {}: proto {}", ip.src, ip.dst, ip.proto.0));
        }
        (Net::Arp { op, spa, tpa }, _) => {
            let (spa, tpa) = (
                std::net::Ipv4Addr::from(*spa),
                std::net::Ipv4Addr::from(*tpa),
            );
            out.push_str(&format!("ARP op {op}, {spa} > {tpa}"));
        }
        (Net::None, _) => out.push_str(&format!("ethertype {:#06x}", s.ethertype.0)),
    }
    out.push_str(&format!(", length {}", obs.wire_len));
    if let Some(stop) = s.stop {
        out.push_str(&format!(" [|{}]", stop.kind.name()));
    }
    out
}

/// One text line.
pub fn write_text(out: &mut dyn Write, row: &TimelineRow) -> std::io::Result<()> {
    let ts = format_rfc3339(row.obs.ts_ns as i64);
    writeln!(
        out,
        "{} {} {} {}",
        ts,
        row.label(),
        row.obs.pkttype.direction(),
        describe(&row.obs)
    )
}

/// One JSON line.
pub fn write_json(out: &mut dyn Write, row: &TimelineRow) -> std::io::Result<()> {
    let o = &row.obs;
    let v = serde_json::json!({
        "id": row.id,
        "ts_ns": o.ts_ns,
        "time": format_rfc3339(o.ts_ns as i64),
        "board": row.board,
        "netns": row.netns,
        "link": row.link,
        "direction": o.pkttype.direction(),
        "pkttype": o.pkttype.0,
        "order": o.order,
        "wire_len": o.wire_len,
        "cap_len": o.cap_len,
        "fingerprint": format!("{:016x}", o.fingerprint),
        "summary": describe(o),
    });
    writeln!(out, "{v}")
}

/// `--filter`, applied to each row after the SQL query.
#[derive(Debug)]
pub struct RowFilter(Option<Filter>);

impl RowFilter {
    pub fn new(expr: Option<&str>) -> Result<RowFilter, String> {
        match expr {
            None => Ok(RowFilter(None)),
            Some(e) => Filter::parse(e).map(|f| RowFilter(Some(f))).map_err(|err| format!("--filter {e:?}: {err}")),
        }
    }

    pub fn matches(&self, obs: &Observation) -> bool {
        self.0.as_ref().is_none_or(|f| f.matches(&obs.summary))
    }
}

pub fn run(conn: &Connection, args: &TimelineArgs) -> CmdResult {
    let (since_ns, until_ns) = args.window.bounds(now_ns())?;
    let filter = RowFilter::new(args.window.filter.as_deref())?;
    let mut q = TimelineQuery {
        since_ns,
        until_ns,
        board: args.window.board.clone(),
        link: args.window.link.clone(),
        after_id: None,
        limit: args.limit,
    };
    let write: fn(&mut dyn Write, &TimelineRow) -> std::io::Result<()> =
        if args.json { write_json } else { write_text };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Rows stored after this point are the follow part's.
    let mut last_id = query::max_id(conn)?;
    let mut io_err: Option<std::io::Error> = None;
    let mut emit = |row: TimelineRow, out: &mut dyn Write| -> bool {
        if row.id > last_id && args.follow {
            return true; // printed by the follow loop, in its turn
        }
        if !filter.matches(&row.obs) {
            return true;
        }
        match write(out, &row) {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    };
    query::timeline(conn, &q, &mut |row| emit(row, &mut out))?;
    if let Some(e) = io_err.take() {
        return Err(e.into());
    }
    out.flush()?;
    if !args.follow {
        return Ok(());
    }
    q.limit = None;
    loop {
        q.after_id = Some(last_id);
        let mut fresh = Vec::new();
        if let Some(max) = query::arrived(conn, &q, &mut |row| {
            fresh.push(row);
            true
        })? {
            last_id = max;
        }
        // Agents deliver in batches: order what arrived together as the timeline does.
        fresh.sort_by(|a, b| {
            (a.obs.ts_ns, a.board_id, a.obs.order).cmp(&(b.obs.ts_ns, b.board_id, b.obs.order))
        });
        for row in fresh {
            if filter.matches(&row.obs) {
                write(&mut out, &row)?;
            }
        }
        out.flush()?;
        std::thread::sleep(FOLLOW_POLL);
    }
}
