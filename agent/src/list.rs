//! `--list-links`: what live capture would take, like `tcpdump -D`, without capturing. The
//! same discovery and the same `-i`/`--exclude`/`--netns` selection as a run.

use crate::links::{LinkTable, Options};
use crate::run::LinkLabel;
use std::fmt::Write as _;
use std::io;

/// One line per link the agent knows, in capture order: its number, `netns:name`, kind,
/// state, addresses, where its veth peer is, and whether it would be captured.
pub fn list_links(opts: Options) -> io::Result<Vec<String>> {
    let table = LinkTable::discover(opts)?;
    let mut lines = Vec::new();
    for (n, l) in table.links().enumerate() {
        let mut line = format!(
            "{}.{} ({}, {}",
            n + 1,
            LinkLabel {
                netns: &l.netns,
                name: &l.name,
            },
            l.kind.name(),
            if l.up { "up" } else { "down" }
        );
        for a in &l.addrs {
            let _ = write!(line, ", {}/{}", a.addr, a.prefix);
        }
        if let Some(peer) = &l.peer {
            let at = if peer.netns.is_empty() {
                "here"
            } else {
                peer.netns.as_str()
            };
            let _ = write!(line, ", peer ifindex {} in {at}", peer.ifindex);
        }
        line.push(')');
        line.push_str(if table.is_selected(l.key) {
            " captured"
        } else {
            " not captured"
        });
        lines.push(line);
    }
    Ok(lines)
}
