//! The link table's data: every link of every captured namespace, keyed by (namespace index,
//! ifindex), each with a [`LinkKey`] that is never reused within a run. No I/O here: the caller
//! resolves namespaces and peers, the store keeps topology consistent and says what changed.

use super::rtnl::{AddrMsg, LinkMsg};
use super::select::Options;
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKey, LinkKind, Peer, MAX_NAME};
use std::collections::BTreeMap;

/// What changed in the table, for the agent to tell the collector and adjust its capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A link appeared (or became known): its key is new.
    Added(LinkInfo),
    /// Something about a known link changed (name, addresses, MTU, master, peer, up/down or
    /// whether it is selected).
    Updated(LinkInfo),
    /// A link vanished; its key is not used again.
    Removed(LinkKey),
    /// A namespace is now captured (its links follow as `Added`).
    NetnsAdded(usize),
    /// A namespace is gone (its links went before as `Removed`).
    NetnsRemoved(usize),
}

/// Where a veth's other end is: as reported, and its place in this table when its namespace is
/// captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPeer {
    pub peer: Peer,
    pub at: Option<(usize, u32)>,
}

#[derive(Clone, Debug)]
struct Entry {
    info: LinkInfo,
    selected: bool,
    loopback: bool,
}

#[derive(Debug, Default)]
pub struct LinkStore {
    entries: BTreeMap<(usize, u32), Entry>,
    keys: BTreeMap<LinkKey, (usize, u32)>,
    next_key: u32,
}

impl LinkStore {
    pub fn get(&self, key: LinkKey) -> Option<&LinkInfo> {
        self.keys
            .get(&key)
            .and_then(|at| self.entries.get(at))
            .map(|e| &e.info)
    }

    pub fn at(&self, ns: usize, ifindex: u32) -> Option<&LinkInfo> {
        self.entries.get(&(ns, ifindex)).map(|e| &e.info)
    }

    pub fn selected_key_of(&self, ns: usize, ifindex: u32) -> Option<LinkKey> {
        let entry = self.entries.get(&(ns, ifindex))?;
        entry.selected.then_some(entry.info.key)
    }

    pub fn is_selected(&self, key: LinkKey) -> bool {
        let at = self.keys.get(&key);
        at.and_then(|at| self.entries.get(at))
            .is_some_and(|e| e.selected)
    }

    /// Every link, by namespace index then ifindex.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &LinkInfo)> {
        self.entries.iter().map(|(&(ns, _), e)| (ns, &e.info))
    }

    /// The ifindexes to capture in namespace `ns`, ascending.
    pub fn selected_ifindexes(&self, ns: usize) -> Vec<u32> {
        let in_ns = self.entries.range((ns, 0)..=(ns, u32::MAX));
        in_ns
            .filter(|(_, e)| e.selected)
            .map(|(&(_, ifindex), _)| ifindex)
            .collect()
    }

    /// The ifindexes known in namespace `ns`.
    pub fn ifindexes(&self, ns: usize) -> Vec<u32> {
        self.entries
            .range((ns, 0)..=(ns, u32::MAX))
            .map(|(&(_, i), _)| i)
            .collect()
    }

    /// Adds or updates a link from its announcement. `peer`: `None` keeps what is known (a veth
    /// announced before its other end exists has no peer yet). `addrs`: `Some` replaces the
    /// addresses (a dump), `None` keeps them (link messages carry none).
    pub fn upsert(
        &mut self,
        ns: usize,
        label: &str,
        msg: &LinkMsg,
        peer: Option<ResolvedPeer>,
        addrs: Option<&[LinkAddr]>,
        opts: &Options,
    ) -> Vec<Change> {
        let at = (ns, msg.ifindex);
        let known = self.entries.get(&at).map(|e| e.info.key);
        let key = match known.or_else(|| self.new_key()) {
            Some(key) => key,
            None => return Vec::new(),
        };
        let old = self.entries.get(&at);
        let kind = msg.link_kind();
        let mut info = LinkInfo {
            key,
            netns: label.try_into().unwrap_or_default(),
            name: msg.name.clone(),
            ifindex: msg.ifindex,
            kind,
            mac: msg.mac.unwrap_or_default(),
            mtu: msg.mtu,
            addrs: old.map(|e| e.info.addrs.clone()).unwrap_or_default(),
            master: msg.master,
            peer: None,
            up: msg.up(),
        };
        if let Some(addrs) = addrs {
            info.addrs = addrs.iter().copied().take(info.addrs.capacity()).collect();
        }
        let mut back = None;
        if kind == LinkKind::Veth {
            info.peer = match peer {
                Some(p) => {
                    back = p.at;
                    Some(p.peer)
                }
                None => old.and_then(|e| e.info.peer.clone()),
            };
            if info.peer.is_none() {
                // Announced after its other end, whose announcement named it.
                info.peer = self
                    .facing(label, Some(msg.ifindex))
                    .next()
                    .map(|(_, e)| Peer {
                        ifindex: e.info.ifindex,
                        netns: e.info.netns.clone(),
                    });
            }
        }
        let selected = opts.selects(label, &info.name, info.up, msg.loopback());
        let mut changes = Vec::new();
        changes.extend(self.put(
            at,
            Entry {
                info,
                selected,
                loopback: msg.loopback(),
            },
        ));
        if let Some(back) = back {
            changes.extend(self.fill_peer(back, ns, label, msg.ifindex, opts));
        }
        changes
    }

    /// A veth's other end names this one as its peer (veth pairs are symmetric).
    fn fill_peer(
        &mut self,
        at: (usize, u32),
        ns: usize,
        label: &str,
        ifindex: u32,
        opts: &Options,
    ) -> Option<Change> {
        let entry = self.entries.get(&at)?;
        let peer = Peer {
            ifindex,
            netns: label.try_into().unwrap_or_default(),
        };
        if entry.info.kind != LinkKind::Veth
            || entry.info.peer.as_ref() == Some(&peer)
            || at == (ns, ifindex)
        {
            return None;
        }
        let mut entry = entry.clone();
        entry.info.peer = Some(peer);
        entry.selected = opts.selects(
            &entry.info.netns,
            &entry.info.name,
            entry.info.up,
            entry.loopback,
        );
        self.put(at, entry)
    }

    /// Stores `entry`; says `Added` for a new link, `Updated` when anything differs.
    fn put(&mut self, at: (usize, u32), entry: Entry) -> Option<Change> {
        let change = match self.entries.get(&at) {
            None => Some(Change::Added(entry.info.clone())),
            Some(old) if old.info != entry.info || old.selected != entry.selected => {
                Some(Change::Updated(entry.info.clone()))
            }
            Some(_) => None,
        };
        if let Some(old) = self.entries.get(&at) {
            if old.info.key != entry.info.key {
                self.keys.remove(&old.info.key);
            }
        }
        self.keys.insert(entry.info.key, at);
        self.entries.insert(at, entry);
        change
    }

    fn new_key(&mut self) -> Option<LinkKey> {
        let key = LinkKey::try_from(self.next_key).ok();
        match key {
            Some(_) => self.next_key += 1,
            None => log::warn!("link keys exhausted: a new link is not tracked"),
        }
        key
    }

    /// Removes a link; `None` if it was not known.
    pub fn remove(&mut self, ns: usize, ifindex: u32) -> Option<Change> {
        let entry = self.entries.remove(&(ns, ifindex))?;
        self.keys.remove(&entry.info.key);
        Some(Change::Removed(entry.info.key))
    }

    /// Veths (anywhere in the table) whose peer is the link `ifindex` of namespace `label`:
    /// after that link vanished, they may have a new peer (it moved to another namespace).
    /// `ifindex` `None`: every link of that namespace.
    pub fn veths_facing(&self, label: &str, ifindex: Option<u32>) -> Vec<(usize, u32)> {
        self.facing(label, ifindex).map(|(&at, _)| at).collect()
    }

    fn facing<'a>(
        &'a self,
        label: &'a str,
        ifindex: Option<u32>,
    ) -> impl Iterator<Item = (&'a (usize, u32), &'a Entry)> + 'a {
        self.entries.iter().filter(move |(_, e)| {
            let peer = e.info.peer.as_ref();
            e.info.kind == LinkKind::Veth
                && peer.is_some_and(|p| ifindex.is_none_or(|i| p.ifindex == i) && p.netns == label)
        })
    }

    /// A namespace's label became `new` (from `old`): the links of namespace index `ns` (when it
    /// is captured) carry it, and so do veths anywhere whose peer is in it. `Updated` for each.
    pub fn relabel(
        &mut self,
        ns: Option<usize>,
        old: &str,
        new: &str,
        opts: &Options,
    ) -> Vec<Change> {
        let Ok(label) = heapless::String::<MAX_NAME>::try_from(new) else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (&at, entry) in &self.entries {
            let here = Some(at.0) == ns && entry.info.netns != label;
            let facing = entry.info.peer.as_ref().is_some_and(|p| p.netns == old);
            if !here && !facing {
                continue;
            }
            let mut entry = entry.clone();
            if here {
                entry.info.netns = label.clone();
                // `netns:name` globs of -i/--exclude may match differently now.
                entry.selected = opts.selects(new, &entry.info.name, entry.info.up, entry.loopback);
            }
            if let Some(peer) = entry.info.peer.as_mut().filter(|p| p.netns == old) {
                peer.netns = label.clone();
            }
            changed.push((at, entry));
        }
        changed
            .into_iter()
            .filter_map(|(at, entry)| self.put(at, entry))
            .collect()
    }

    /// Adds an address to a link; `Updated` if it was new to it.
    pub fn add_addr(&mut self, ns: usize, msg: &AddrMsg) -> Option<Change> {
        let entry = self.entries.get_mut(&(ns, msg.ifindex))?;
        if entry.info.addrs.contains(&msg.addr) || entry.info.addrs.push(msg.addr).is_err() {
            return None;
        }
        Some(Change::Updated(entry.info.clone()))
    }

    /// Removes an address from a link; `Updated` if it had it.
    pub fn del_addr(&mut self, ns: usize, msg: &AddrMsg) -> Option<Change> {
        let entry = self.entries.get_mut(&(ns, msg.ifindex))?;
        let pos = entry.info.addrs.iter().position(|a| *a == msg.addr)?;
        entry.info.addrs.remove(pos);
        Some(Change::Updated(entry.info.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::rtnl::IFF_UP;
    use hopcap_proto::types::Addr;

    fn veth(ifindex: u32, name: &str, link: Option<u32>) -> LinkMsg {
        let kind = Some("veth".try_into().unwrap());
        LinkMsg {
            ifindex,
            flags: IFF_UP,
            name: name.try_into().unwrap(),
            mtu: 1500,
            kind,
            link,
            ..LinkMsg::default()
        }
    }

    fn peer(ifindex: u32, netns: &str, at: Option<(usize, u32)>) -> Option<ResolvedPeer> {
        Some(ResolvedPeer {
            peer: Peer {
                ifindex,
                netns: netns.try_into().unwrap(),
            },
            at,
        })
    }

    fn info(c: &Change) -> &LinkInfo {
        match c {
            Change::Added(i) | Change::Updated(i) => i,
            other => panic!("no link info in {other:?}"),
        }
    }

    #[test]
    fn keys_are_new_for_every_link_and_never_reused() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        let a = store.upsert(0, "", &veth(5, "a", None), None, None, &opts);
        let key_a = info(&a[0]).key;
        assert!(matches!(a[0], Change::Added(_)));
        assert_eq!(store.remove(0, 5), Some(Change::Removed(key_a)));
        assert_eq!(store.remove(0, 5), None);
        let b = store.upsert(0, "", &veth(5, "b", None), None, None, &opts);
        assert_ne!(info(&b[0]).key, key_a);
        assert_eq!(store.get(key_a), None);
        assert_eq!(
            store.get(info(&b[0]).key).map(|i| i.name.as_str()),
            Some("b")
        );
    }

    #[test]
    fn same_announcement_twice_changes_nothing() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        store.upsert(0, "", &veth(5, "a", None), None, None, &opts);
        assert!(store
            .upsert(0, "", &veth(5, "a", None), None, None, &opts)
            .is_empty());
        let mut renamed = veth(5, "eth0", None);
        renamed.mtu = 1400;
        let changes = store.upsert(0, "", &renamed, None, None, &opts);
        assert!(matches!(&changes[..], [Change::Updated(i)] if i.name == "eth0" && i.mtu == 1400));
    }

    #[test]
    fn a_veth_announced_without_peer_gets_it_from_the_other_end() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        // As the kernel does: hp1 first (no IFLA_LINK yet), then hp0 naming hp1.
        store.upsert(0, "", &veth(8, "hp1", None), None, None, &opts);
        let changes = store.upsert(
            0,
            "",
            &veth(9, "hp0", Some(8)),
            peer(8, "", Some((0, 8))),
            None,
            &opts,
        );
        assert_eq!(changes.len(), 2, "{changes:#?}");
        assert_eq!(
            info(&changes[0]).peer,
            Some(Peer {
                ifindex: 8,
                netns: "".try_into().unwrap()
            })
        );
        assert_eq!(info(&changes[1]).name, "hp1");
        assert_eq!(
            info(&changes[1]).peer,
            Some(Peer {
                ifindex: 9,
                netns: "".try_into().unwrap()
            })
        );
        // A later announcement of hp1 without a peer keeps the filled one.
        assert!(store
            .upsert(0, "", &veth(8, "hp1", None), None, None, &opts)
            .is_empty());
    }

    #[test]
    fn a_veth_without_peer_announced_after_the_end_naming_it_gets_that_end() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        // hp0 in the own namespace names hp1 in ctr before ctr's hp1 (announced without a
        // peer) is known: the order in which two namespaces' events are read.
        store.upsert(
            0,
            "",
            &veth(9, "hp0", Some(8)),
            peer(8, "ctr", Some((1, 8))),
            None,
            &opts,
        );
        let changes = store.upsert(1, "ctr", &veth(8, "hp1", None), None, None, &opts);
        let own = Peer {
            ifindex: 9,
            netns: "".try_into().unwrap(),
        };
        assert!(matches!(&changes[..], [Change::Added(i)] if i.peer == Some(own.clone())));
        // Another link in ctr with the same ifindex as a link elsewhere is not taken for it.
        let other = store.upsert(2, "rtr", &veth(8, "x", None), None, None, &opts);
        assert!(matches!(&other[..], [Change::Added(i)] if i.peer.is_none()));
    }

    #[test]
    fn peer_across_namespaces_is_filled_both_ways_and_found_after_a_move() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        store.upsert(
            0,
            "",
            &veth(5, "vc0", Some(2)),
            peer(2, "ctr", Some((1, 2))),
            None,
            &opts,
        );
        store.upsert(
            1,
            "ctr",
            &veth(2, "eth0", Some(5)),
            peer(5, "", Some((0, 5))),
            None,
            &opts,
        );
        assert_eq!(
            store.at(1, 2).unwrap().peer,
            Some(Peer {
                ifindex: 5,
                netns: "".try_into().unwrap()
            })
        );
        assert_eq!(
            store
                .at(0, 5)
                .unwrap()
                .peer
                .as_ref()
                .map(|p| p.netns.as_str()),
            Some("ctr")
        );
        assert_eq!(store.veths_facing("ctr", Some(2)), vec![(0, 5)]);
        assert_eq!(store.veths_facing("ctr", None), vec![(0, 5)]);
        assert!(store.veths_facing("", Some(2)).is_empty());
    }

    #[test]
    fn a_relabelled_namespace_renames_its_links_and_the_veths_facing_it() {
        let mut opts = Options::default();
        opts.exclude("web:lo");
        let mut store = LinkStore::default();
        let own = peer(2, "pid:42", Some((1, 2)));
        store.upsert(0, "", &veth(5, "vethab", Some(2)), own, None, &opts);
        let back = peer(5, "", Some((0, 5)));
        store.upsert(1, "pid:42", &veth(2, "eth0", Some(5)), back, None, &opts);
        store.upsert(1, "pid:42", &veth(1, "lo", None), None, None, &opts);
        store.upsert(0, "", &veth(6, "other", None), None, None, &opts);
        assert_eq!(store.selected_ifindexes(1), vec![1, 2]);
        let changes = store.relabel(Some(1), "pid:42", "web", &opts);
        assert_eq!(changes.len(), 3, "{changes:#?}");
        assert!(changes.iter().all(|c| matches!(c, Change::Updated(_))));
        assert_eq!(store.at(1, 2).unwrap().netns, "web");
        assert_eq!(store.at(1, 1).unwrap().netns, "web");
        assert_eq!(store.at(0, 5).unwrap().peer.as_ref().unwrap().netns, "web");
        assert_eq!(store.at(0, 5).unwrap().netns, "");
        // `--exclude web:lo` applies under the new name.
        assert_eq!(store.selected_ifindexes(1), vec![2]);
        // An uncaptured namespace: only the veths facing it change. Nothing twice.
        assert!(store.relabel(Some(1), "pid:42", "web", &opts).is_empty());
        let facing = store.relabel(None, "web", "web2", &opts);
        assert!(matches!(&facing[..], [Change::Updated(i)] if i.name == "vethab"));
    }

    #[test]
    fn addresses_are_added_once_and_removed() {
        let (mut store, opts) = (LinkStore::default(), Options::default());
        store.upsert(0, "", &veth(5, "a", None), None, None, &opts);
        let addr = AddrMsg {
            ifindex: 5,
            addr: LinkAddr {
                addr: Addr::V4([10, 0, 0, 1]),
                prefix: 24,
            },
        };
        assert!(matches!(store.add_addr(0, &addr), Some(Change::Updated(i)) if i.addrs.len() == 1));
        assert_eq!(store.add_addr(0, &addr), None);
        assert_eq!(store.add_addr(1, &addr), None);
        // A link announcement keeps the addresses.
        store.upsert(0, "", &veth(5, "a", None), None, None, &opts);
        assert_eq!(store.at(0, 5).unwrap().addrs.len(), 1);
        assert!(matches!(store.del_addr(0, &addr), Some(Change::Updated(i)) if i.addrs.is_empty()));
        assert_eq!(store.del_addr(0, &addr), None);
    }

    #[test]
    fn selection_follows_up_state_and_globs() {
        let mut opts = Options::default();
        opts.exclude("b*");
        let mut store = LinkStore::default();
        let mut down = veth(5, "a", None);
        down.flags = 0;
        let key = info(&store.upsert(0, "", &down, None, None, &opts)[0]).key;
        store.upsert(0, "", &veth(6, "b", None), None, None, &opts);
        assert!(store.selected_ifindexes(0).is_empty() && !store.is_selected(key));
        let changes = store.upsert(0, "", &veth(5, "a", None), None, None, &opts);
        assert!(matches!(&changes[..], [Change::Updated(i)] if i.up));
        assert_eq!(store.selected_ifindexes(0), vec![5]);
        assert!(store.is_selected(key));
        assert_eq!(store.ifindexes(0), vec![5, 6]);
    }
}
