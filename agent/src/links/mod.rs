//! Which links the agent captures, and their topology: discovered through rtnetlink in the
//! agent's own network namespace and in the namespaces `--netns` names, kept current through
//! link and address events (hot-plug) and a periodic namespace rescan.
//!
//! Use: [`LinkTable::discover`] once (on the thread whose namespace is the agent's own), then
//! poll [`LinkTable::event_fds`] and call [`LinkTable::read_events`] for a readable one, and call
//! [`LinkTable::rescan`] every second or two. Each returns the [`Change`]s to report; after any
//! change, [`LinkTable::selected_ifindexes`] says what each namespace's capture filter must pass.
//!
//! A veth's [`Peer::netns`] is the label of the namespace its other end is in ("" = the agent's
//! own, see [`namespaces`] for the others), also when that namespace is not captured, and `?`
//! when the agent cannot find it.
//!
//! A captured namespace is held open (its file and sockets): when its last process exits, it
//! lives on, links included, until the next rescan lets it go.

pub mod json;
pub mod kernel;
pub mod link_msg;
pub mod namespaces;
pub mod nlmsg;
mod peers;
pub mod rtnl;
pub mod runtime;
pub mod select;
pub mod store;

pub use namespaces::{Label, NsId};
pub use select::{NetnsSpec, Options};
pub use store::Change;

use crate::sys::netlink::{groups, NetlinkSocket};
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKey};
use namespaces::Registry;
use rtnl::Event;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use store::LinkStore;

const EVENT_GROUPS: u32 = groups::LINK | groups::IPV4_IFADDR | groups::IPV6_IFADDR;
/// The label of a veth peer's namespace that the agent cannot find.
pub const UNKNOWN_NETNS: &str = "?";

/// One captured namespace: the open namespace (to create capture sockets in it) and its
/// netlink sockets.
#[derive(Debug)]
pub struct Netns {
    pub id: NsId,
    pub label: Label,
    /// Where it was found (/run/netns/NAME, /proc/PID/ns/net; empty for the agent's own),
    /// for messages: it may lead elsewhere by now, [`Netns::path`] never does.
    pub origin: std::path::PathBuf,
    file: File,
    query: NetlinkSocket,
    events: NetlinkSocket,
    /// The ids this namespace gives other namespaces (IFLA_LINK_NETNSID values), as learnt.
    nsids: HashMap<i32, NsId>,
    /// Ids asked about in vain since the last rescan.
    unresolved: HashSet<i32>,
}

impl Netns {
    /// The open namespace: enter it (setns) to create a socket that belongs to it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A path to this very namespace for `sys::netns::in_netns` (through the fd the table
    /// holds, so it cannot lead to another namespace whatever happened to /proc/PID since).
    pub fn path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        format!("/proc/thread-self/fd/{}", self.file.as_raw_fd()).into()
    }
}

/// Every link of every captured namespace, with stable keys, and what to capture.
#[derive(Debug)]
pub struct LinkTable {
    opts: Options,
    registry: Registry,
    /// Indexed by namespace index (0: the agent's own); a gone namespace leaves `None`, so an
    /// index is never reused.
    namespaces: Vec<Option<Netns>>,
    store: LinkStore,
    buf: Vec<u8>,
}

impl LinkTable {
    /// Finds the links of the calling thread's namespace and of those `opts.netns` names.
    pub fn discover(opts: Options) -> io::Result<LinkTable> {
        let file = File::open("/proc/thread-self/ns/net")?;
        let meta = file.metadata()?;
        let own = NsId {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        let mut table = LinkTable {
            opts,
            registry: Registry::new(own),
            namespaces: Vec::new(),
            store: LinkStore::default(),
            buf: vec![0; kernel::RECV_BUF],
        };
        let found = table.registry.scan();
        let events = NetlinkSocket::open_events(EVENT_GROUPS)?;
        let query = NetlinkSocket::open_query()?;
        table.add_netns(own, Label::new(), Default::default(), file, query, events)?;
        table.capture_new(&found);
        Ok(table)
    }

    /// The captured namespaces with their indexes (0: the agent's own).
    pub fn namespaces(&self) -> impl Iterator<Item = (usize, &Netns)> {
        self.namespaces
            .iter()
            .enumerate()
            .filter_map(|(i, ns)| Some((i, ns.as_ref()?)))
    }

    pub fn netns(&self, index: usize) -> Option<&Netns> {
        self.namespaces.get(index)?.as_ref()
    }

    /// Every known link (selected or not), by namespace index then ifindex.
    pub fn links(&self) -> impl Iterator<Item = &LinkInfo> {
        self.store.iter().map(|(_, info)| info)
    }

    pub fn link(&self, key: LinkKey) -> Option<&LinkInfo> {
        self.store.get(key)
    }

    /// The key of the link `ifindex` of namespace `ns` (what a captured frame is tagged with).
    pub fn key_of(&self, ns: usize, ifindex: u32) -> Option<LinkKey> {
        self.store.at(ns, ifindex).map(|info| info.key)
    }

    /// [`key_of`](Self::key_of) for a selected link only: the per-frame lookup, in one go.
    pub fn selected_key_of(&self, ns: usize, ifindex: u32) -> Option<LinkKey> {
        self.store.selected_key_of(ns, ifindex)
    }

    pub fn is_selected(&self, key: LinkKey) -> bool {
        self.store.is_selected(key)
    }

    /// The ifindexes to capture in namespace `ns` (for its capture filter), ascending.
    pub fn selected_ifindexes(&self, ns: usize) -> Vec<u32> {
        self.store.selected_ifindexes(ns)
    }

    /// The event socket of each captured namespace, to poll for readability.
    pub fn event_fds(&self) -> Vec<(usize, BorrowedFd<'_>)> {
        self.namespaces()
            .map(|(i, ns)| (i, ns.events.as_fd()))
            .collect()
    }

    /// Reads and applies every pending event of namespace `ns`; resyncs if events were lost.
    pub fn read_events(&mut self, ns: usize) -> io::Result<Vec<Change>> {
        let Some(Some(netns)) = self.namespaces.get(ns) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        match kernel::drain(&netns.events, &mut self.buf, &mut events) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                log::warn!("netns {ns}: link events lost, resyncing");
                return self.resync(ns);
            }
            Err(e) => return Err(e),
        }
        Ok(events
            .iter()
            .flat_map(|e| self.apply_event(ns, e))
            .collect())
    }

    /// Applies one link or address event of namespace `ns`.
    pub fn apply_event(&mut self, ns: usize, event: &Event) -> Vec<Change> {
        let Some(label) = self.netns(ns).map(|n| n.label.clone()) else {
            return Vec::new();
        };
        match event {
            Event::NewLink(msg) => {
                let peer = self.resolve_peer(ns, msg);
                self.store.upsert(ns, &label, msg, peer, None, &self.opts)
            }
            Event::DelLink(msg) => {
                let mut changes: Vec<Change> =
                    self.store.remove(ns, msg.ifindex).into_iter().collect();
                // A veth whose peer vanished here may have a new one (the peer moved away).
                for (at_ns, ifindex) in self.store.veths_facing(&label, Some(msg.ifindex)) {
                    changes.extend(self.refresh(at_ns, ifindex));
                }
                changes
            }
            Event::NewAddr(addr) => self.store.add_addr(ns, addr).into_iter().collect(),
            Event::DelAddr(addr) => self.store.del_addr(ns, addr).into_iter().collect(),
        }
    }

    /// Reads namespace `ns` again from the kernel and reports what differs.
    pub fn resync(&mut self, ns: usize) -> io::Result<Vec<Change>> {
        let Some(netns) = self.namespaces.get_mut(ns).and_then(Option::as_mut) else {
            return Ok(Vec::new());
        };
        // Pending events are older than the dump that follows: drop them.
        let _ = kernel::drain(&netns.events, &mut self.buf, &mut Vec::new());
        let links = kernel::links(&mut netns.query)?;
        let mut addrs: HashMap<u32, Vec<LinkAddr>> = HashMap::new();
        for a in kernel::addrs(&mut netns.query)? {
            addrs.entry(a.ifindex).or_default().push(a.addr);
        }
        let label = netns.label.clone();
        let mut changes = Vec::new();
        for msg in &links {
            let peer = self.resolve_peer(ns, msg);
            let link_addrs = addrs.get(&msg.ifindex).map_or(&[][..], Vec::as_slice);
            changes.extend(
                self.store
                    .upsert(ns, &label, msg, peer, Some(link_addrs), &self.opts),
            );
        }
        for ifindex in self.store.ifindexes(ns) {
            if !links.iter().any(|l| l.ifindex == ifindex) {
                changes.extend(self.store.remove(ns, ifindex));
            }
        }
        Ok(changes)
    }

    /// Looks for namespaces that appeared or vanished (call every second or two): captures the
    /// new ones `--netns` wants, drops the gone ones.
    pub fn rescan(&mut self) -> Vec<Change> {
        let before: HashSet<NsId> = self.registry.known().map(|f| f.id).collect();
        let found = self.registry.scan();
        let mut changes = Vec::new();
        for index in 1..self.namespaces.len() {
            let Some(id) = self.netns(index).map(|n| n.id) else {
                continue;
            };
            if found.iter().any(|f| f.id == id) {
                continue;
            }
            for ifindex in self.store.ifindexes(index) {
                changes.extend(self.store.remove(index, ifindex));
            }
            self.namespaces[index] = None;
            changes.push(Change::NetnsRemoved(index));
        }
        let mut alive: HashSet<NsId> = found.iter().map(|f| f.id).collect();
        alive.extend(self.namespaces().map(|(_, n)| n.id));
        for netns in self.namespaces.iter_mut().flatten() {
            netns.nsids.retain(|_, id| alive.contains(id));
            netns.unresolved.clear();
        }
        changes.extend(self.relabel());
        changes.extend(self.capture_new(&found));
        // A veth whose peer's namespace was not found yet may be named now.
        if found.iter().any(|f| !before.contains(&f.id)) {
            for (ns, ifindex) in self.store.veths_facing(UNKNOWN_NETNS, None) {
                changes.extend(self.refresh(ns, ifindex));
            }
        }
        changes
    }

    /// Gives the namespaces the registry found a better name for that name everywhere: their
    /// links, and the veths facing them (a relabelled namespace that `--netns` no longer
    /// matches stays captured: it was wanted under its first name).
    fn relabel(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for r in self.registry.take_relabelled() {
            let index = self
                .namespaces()
                .find(|(_, n)| n.id == r.id)
                .map(|(i, _)| i);
            if let Some(netns) = index.and_then(|i| self.namespaces.get_mut(i)?.as_mut()) {
                netns.label = r.new.clone();
            }
            log::info!("namespace {} is now {}", r.old, r.new);
            changes.extend(self.store.relabel(index, &r.old, &r.new, &self.opts));
        }
        changes
    }

    /// Captures every found namespace `--netns` wants and that is not captured yet.
    fn capture_new(&mut self, found: &[namespaces::Found]) -> Vec<Change> {
        let mut changes = Vec::new();
        for f in found {
            if !self.opts.netns.wants(&f.label) || self.namespaces().any(|(_, n)| n.id == f.id) {
                continue;
            }
            match self.open_netns(f) {
                Ok(added) => changes.extend(added),
                Err(e) => log::warn!("netns {}: not captured: {e}", f.label),
            }
        }
        changes
    }

    fn open_netns(&mut self, f: &namespaces::Found) -> io::Result<Vec<Change>> {
        let file = File::open(&f.path)?;
        if !same_ns(&file, f.id) {
            // The process exited and its PID went to another namespace's process.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let events =
            NetlinkSocket::open_in(file.as_fd(), || NetlinkSocket::open_events(EVENT_GROUPS))?;
        let query = NetlinkSocket::open_in(file.as_fd(), NetlinkSocket::open_query)?;
        self.add_netns(f.id, f.label.clone(), f.path.clone(), file, query, events)
    }

    fn add_netns(
        &mut self,
        id: NsId,
        label: Label,
        origin: std::path::PathBuf,
        file: File,
        query: NetlinkSocket,
        events: NetlinkSocket,
    ) -> io::Result<Vec<Change>> {
        let (nsids, unresolved) = (HashMap::new(), HashSet::new());
        let index = self.namespaces.len();
        self.namespaces.push(Some(Netns {
            id,
            label,
            origin,
            file,
            query,
            events,
            nsids,
            unresolved,
        }));
        match self.resync(index) {
            Ok(links) => Ok([Change::NetnsAdded(index)]
                .into_iter()
                .chain(links)
                .collect()),
            Err(e) => {
                for ifindex in self.store.ifindexes(index) {
                    self.store.remove(index, ifindex);
                }
                self.namespaces[index] = None;
                Err(e)
            }
        }
    }
}

/// Whether the open namespace file `file` is the namespace `id`.
pub(crate) fn same_ns(file: &File, id: NsId) -> bool {
    let meta = file.metadata();
    meta.is_ok_and(|m| {
        NsId {
            dev: m.dev(),
            ino: m.ino(),
        } == id
    })
}
