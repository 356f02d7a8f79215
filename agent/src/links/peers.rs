//! Finding a veth's other end: which namespace an IFLA_LINK_NETNSID means (learnt with
//! RTM_GETNSID), that namespace's label, and the peer's place in the table.

use super::rtnl::LinkMsg;
use super::store::{Change, ResolvedPeer};
use super::{kernel, same_ns, LinkTable, NsId, UNKNOWN_NETNS};
use hopcap_proto::record::{LinkKind, Peer};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

impl LinkTable {
    /// Asks the kernel about one link again (its peer may have changed).
    pub(super) fn refresh(&mut self, ns: usize, ifindex: u32) -> Vec<Change> {
        let Some(netns) = self.namespaces.get_mut(ns).and_then(Option::as_mut) else {
            return Vec::new();
        };
        let label = netns.label.clone();
        match kernel::link(&mut netns.query, ifindex) {
            Ok(Some(msg)) => {
                let peer = self.resolve_peer(ns, &msg);
                self.store.upsert(ns, &label, &msg, peer, None, &self.opts)
            }
            Ok(None) => self.store.remove(ns, ifindex).into_iter().collect(),
            Err(e) => {
                log::debug!("netns {ns}: link {ifindex} not refreshed: {e}");
                Vec::new()
            }
        }
    }

    /// Where a veth's other end is: its namespace's label, and its place in the table when that
    /// namespace is captured. `None` for other kinds and for a veth that names no peer yet.
    pub(super) fn resolve_peer(&mut self, ns: usize, msg: &LinkMsg) -> Option<ResolvedPeer> {
        let ifindex = msg.link.filter(|_| msg.link_kind() == LinkKind::Veth)?;
        let here = self.netns(ns)?.id;
        let there = match msg.link_netnsid {
            None => Some(here),
            Some(nsid) => self.nsid_target(ns, nsid),
        };
        let label = there
            .and_then(|id| self.registry.label(id))
            .unwrap_or(UNKNOWN_NETNS);
        let peer = Peer {
            ifindex,
            netns: label.try_into().unwrap_or_default(),
        };
        let at = there
            .and_then(|id| self.namespaces().find(|(_, n)| n.id == id))
            .map(|(i, _)| (i, ifindex));
        Some(ResolvedPeer { peer, at })
    }

    /// Which namespace `nsid` means in namespace `ns`: learnt by asking, for each namespace the
    /// agent knows, which id `ns` gives it (RTM_GETNSID with its fd).
    fn nsid_target(&mut self, ns: usize, nsid: i32) -> Option<NsId> {
        let netns = self.namespaces.get(ns)?.as_ref()?;
        if let Some(&id) = netns.nsids.get(&nsid) {
            return Some(id);
        }
        if netns.unresolved.contains(&nsid) {
            return None;
        }
        let here = netns.id;
        let mut candidates: Vec<(NsId, Option<PathBuf>)> = self.registry_ids();
        candidates.retain(|(id, _)| *id != here && !netns.nsids.values().any(|v| v == id));
        let mut learnt = Vec::new();
        for (id, path) in candidates {
            let opened = match &path {
                // A /proc/PID path may have gone to another process (and namespace) since.
                Some(p) => File::open(p).ok().filter(|f| same_ns(f, id)),
                None => self
                    .namespaces()
                    .find(|(_, n)| n.id == id)
                    .and_then(|(_, n)| n.file.try_clone().ok()),
            };
            let Some(file) = opened else { continue };
            let netns = self.namespaces.get_mut(ns)?.as_mut()?;
            if let Ok(Some(got)) = kernel::nsid(&mut netns.query, file.as_fd()) {
                learnt.push((got, id));
                if got == nsid {
                    break;
                }
            }
        }
        let netns = self.namespaces.get_mut(ns)?.as_mut()?;
        netns.nsids.extend(learnt);
        let found = netns.nsids.get(&nsid).copied();
        if found.is_none() {
            netns.unresolved.insert(nsid);
        }
        found
    }

    /// Every namespace the agent knows: captured ones (no path needed) and found ones.
    fn registry_ids(&self) -> Vec<(NsId, Option<PathBuf>)> {
        let mut out: Vec<_> = self.namespaces().map(|(_, n)| (n.id, None)).collect();
        for f in self.registry.known() {
            if !out.iter().any(|(id, _)| *id == f.id) {
                out.push((f.id, Some(f.path.clone())));
            }
        }
        out
    }
}
