//! Link tables for tests that need a board's links but no real kernel.

use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind};
use hopcap_proto::types::Mac;

/// A veth named `name` in namespace `netns` ('' = the board's own) with link key `key`:
/// ifindex `key + 1`, MAC 02:00:00:00:00:`key`, MTU 1500, up, no addresses, master or peer.
pub fn veth(key: LinkKey, netns: &str, name: &str) -> LinkInfo {
    LinkInfo {
        key,
        netns: netns.try_into().expect("a namespace name within MAX_NAME"),
        name: name.try_into().expect("a link name within MAX_NAME"),
        ifindex: u32::from(key) + 1,
        kind: LinkKind::Veth,
        mac: Mac([2, 0, 0, 0, 0, key as u8]),
        mtu: 1500,
        addrs: heapless::Vec::new(),
        master: None,
        peer: None,
        up: true,
    }
}
