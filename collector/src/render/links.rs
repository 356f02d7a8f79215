//! Links as a table or JSON lines: each link under its hop name (`board:netns:link`, the
//! netns left out in the board's own namespace), with its bridge and its veth peer named the
//! same way when the board reported them.

use crate::store::{link_label, StoredLink};
use std::io::{self, Write};

/// The hop name of the link of `board` in `netns` with `ifindex`, if reported.
fn named(links: &[StoredLink], board: &str, netns: &str, ifindex: u32) -> Option<String> {
    links
        .iter()
        .find(|l| l.board == board && l.info.netns.as_str() == netns && l.info.ifindex == ifindex)
        .map(label)
}

fn label(l: &StoredLink) -> String {
    link_label(&l.board, &l.info.netns, &l.info.name)
}

fn master(links: &[StoredLink], l: &StoredLink) -> Option<String> {
    let m = l.info.master?;
    Some(named(links, &l.board, &l.info.netns, m).unwrap_or_else(|| format!("ifindex {m}")))
}

fn peer(links: &[StoredLink], l: &StoredLink) -> Option<String> {
    let p = l.info.peer.as_ref()?;
    Some(
        named(links, &l.board, &p.netns, p.ifindex)
            .unwrap_or_else(|| format!("ifindex {} (not captured)", p.ifindex)),
    )
}

fn addrs(l: &StoredLink) -> Vec<String> {
    l.info
        .addrs
        .iter()
        .map(|a| format!("{}/{}", a.addr, a.prefix))
        .collect()
}

/// One JSON object a line.
pub fn write_json(links: &[StoredLink], out: &mut impl Write) -> io::Result<()> {
    for l in links {
        let v = serde_json::json!({
            "board": l.board,
            "netns": l.info.netns.as_str(),
            "link": l.info.name.as_str(),
            "label": label(l),
            "kind": l.info.kind.name(),
            "ifindex": l.info.ifindex,
            "mtu": l.info.mtu,
            "mac": l.info.mac.to_string(),
            "addrs": addrs(l),
            "master": master(links, l),
            "peer": peer(links, l),
            "up": l.info.up,
            "present": l.present,
        });
        writeln!(out, "{v}")?;
    }
    Ok(())
}

/// A table, or `no links yet`.
pub fn write_table(links: &[StoredLink], out: &mut impl Write) -> io::Result<()> {
    if links.is_empty() {
        writeln!(out, "no links yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36} {:<9} {:>7} {:<5} {:>5}  {:<28} {:<24} PEER",
        "LINK", "KIND", "IFINDEX", "STATE", "MTU", "ADDRESSES", "BRIDGE"
    )?;
    for l in links {
        let state = match (l.present, l.info.up) {
            (false, _) => "gone",
            (true, true) => "up",
            (true, false) => "down",
        };
        writeln!(
            out,
            "{:<36} {:<9} {:>7} {:<5} {:>5}  {:<28} {:<24} {}",
            super::term::clean(&label(l)),
            l.info.kind.name(),
            l.info.ifindex,
            state,
            l.info.mtu,
            super::term::clean(&addrs(l).join(" ")),
            super::term::clean(&master(links, l).unwrap_or_else(|| "-".into())),
            super::term::clean(&peer(links, l).unwrap_or_else(|| "-".into())),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LinkId;
    use hopcap_proto::record::{LinkKind, Peer};

    fn stored(id: i64, board: &str, netns: &str, name: &str, ifindex: u32) -> StoredLink {
        let mut info = hopcap_testkit::veth(0, netns, name);
        info.ifindex = ifindex;
        StoredLink {
            id: LinkId::from_raw(id),
            board: board.into(),
            info,
            present: true,
        }
    }

    #[test]
    fn bridges_and_peers_are_named_as_hops_and_names_are_escaped() {
        let mut docker0 = stored(1, "pi1", "", "docker0", 5);
        docker0.info.kind = LinkKind::Bridge;
        let mut veth = stored(2, "pi1", "", "vethctr", 7);
        veth.info.master = Some(5);
        veth.info.peer = Some(Peer {
            ifindex: 2,
            netns: "web".try_into().unwrap(),
        });
        let eth0 = stored(3, "pi1", "web", "eth0", 2);
        let mut evil = stored(4, "pi1", "x\u{1b}[2J", "e", 9);
        evil.present = false;
        let links = [docker0, veth, eth0, evil];
        let mut text = Vec::new();
        write_table(&links, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let row = text.lines().find(|l| l.starts_with("pi1:vethctr")).unwrap();
        assert!(
            row.contains("pi1:docker0") && row.ends_with("pi1:web:eth0"),
            "{row}"
        );
        assert!(
            text.contains("x\\x1b[2J") && !text.contains('\u{1b}'),
            "{text}"
        );
        assert!(text.lines().any(|l| l.contains(" gone ")), "{text}");
        let mut json = Vec::new();
        write_json(&links, &mut json).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8(json).unwrap().lines().nth(1).unwrap()).unwrap();
        assert_eq!(first["master"], "pi1:docker0");
        assert_eq!(first["peer"], "pi1:web:eth0");
    }
}
