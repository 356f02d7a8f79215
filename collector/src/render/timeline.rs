//! Timeline rows as text, one tcpdump-like line per observation prefixed with where it was
//! seen (`board:link` or `board:netns:link`) and In/Out, or as JSON lines.

use crate::store::TimelineRow;
use hopcap_proto::print;
use std::io::Write;

/// One text line: tcpdump's time of day (UTC, or `shift_ns` ahead of it: the local time
/// zone's offset at that instant), where, In/Out, the packet.
pub fn write_text(out: &mut dyn Write, row: &TimelineRow, shift_ns: i64) -> std::io::Result<()> {
    let o = &row.obs;
    let mut line = String::with_capacity(160);
    let label = row.label();
    // Writing into a String cannot fail.
    let _ = print::write_line(
        &mut line,
        o.ts_ns.saturating_add_signed(shift_ns),
        &label,
        Some(o.pkttype),
        &o.summary,
        o.wire_len,
    );
    let mut line = super::term::clean(&line).into_owned();
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// One JSON line (hopcap_proto's observation object).
pub fn write_json(out: &mut dyn Write, row: &TimelineRow) -> std::io::Result<()> {
    let mut line = String::with_capacity(512);
    let _ = print::write_json_observation(&mut line, &row.board, &row.netns, &row.link, &row.obs);
    line.push('\n');
    out.write_all(line.as_bytes())
}
