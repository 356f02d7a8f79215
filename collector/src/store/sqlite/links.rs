//! Reading the links table back as the agents reported it ([`LinkInfo`]), for the topology
//! the correlator works on.

use crate::store::{LinkId, StoredLink};
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKind, Peer, MAX_ADDRS};
use hopcap_proto::types::{Addr, Mac};
use rusqlite::Connection;

/// Every link ever reported, by board and then by first report. `info.key` is 0.
pub fn stored_links(conn: &Connection) -> rusqlite::Result<Vec<StoredLink>> {
    let mut stmt = conn.prepare(
        "SELECT l.id, b.name, l.netns, l.name, l.ifindex, l.kind, l.mac, l.mtu, l.addrs,
                l.master, l.peer_ifindex, l.peer_netns, l.up, l.present
         FROM links l JOIN boards b ON b.id = l.board ORDER BY l.board, l.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let mac: Option<Vec<u8>> = r.get(6)?;
        let mtu: Option<i64> = r.get(7)?;
        let master: Option<i64> = r.get(9)?;
        let peer_ifindex: Option<i64> = r.get(10)?;
        let peer_netns: Option<String> = r.get(11)?;
        let info = LinkInfo {
            key: 0,
            netns: bounded(&r.get::<_, String>(2)?),
            name: bounded(&r.get::<_, String>(3)?),
            ifindex: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            kind: LinkKind::from_name(&r.get::<_, String>(5)?),
            mac: Mac(mac
                .and_then(|m| <[u8; 6]>::try_from(m.as_slice()).ok())
                .unwrap_or_default()),
            mtu: mtu.and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
            addrs: parse_addrs(&r.get::<_, String>(8)?),
            master: master.and_then(|m| u32::try_from(m).ok()),
            peer: peer_ifindex
                .and_then(|i| u32::try_from(i).ok())
                .map(|ifindex| Peer {
                    ifindex,
                    netns: bounded(peer_netns.as_deref().unwrap_or("")),
                }),
            up: r.get::<_, i64>(12)? != 0,
        };
        Ok(StoredLink {
            id: LinkId::from_raw(r.get(0)?),
            board: r.get(1)?,
            info,
            present: r.get::<_, i64>(13)? != 0,
        })
    })?;
    rows.collect()
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
fn parse_addrs(text: &str) -> heapless::Vec<LinkAddr, MAX_ADDRS> {
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
