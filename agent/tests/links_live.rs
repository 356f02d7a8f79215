//! Live tests of link discovery (root): a Pi+Docker-like bed in private namespaces.
//!
//!   rtr ns: eth0 ──veth── board ns: up0        (the board's uplink)
//!   ctr ns: eth0 ──veth── board ns: vc0 ─ br0  (a container on the board's bridge)
//!
//! Every namespace name starts with a prefix unique to this process; a guard deletes them by
//! exact name, also when a test panics. No traffic is sent at all.

use hopcap_agent::links::{kernel, Change, LinkTable, NetnsSpec, Options};
use hopcap_agent::sys::netlink::{groups, NetlinkSocket};
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKind, Peer};
use hopcap_proto::types::{Addr, Mac};
use nix::poll::{poll, PollFd, PollFlags};
use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether RTM_GETNSID works here. Under qemu-user it does not: qemu's netlink translation
/// refuses the request with EOPNOTSUPP, so a veth peer in another namespace cannot be named
/// and keeps the documented unknown label "?" (IFLA_LINK_NETNSID itself does arrive).
fn nsid_queries_work() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let mut query = NetlinkSocket::open_query().expect("netlink socket");
        let own = File::open("/proc/self/ns/net").expect("own netns");
        match kernel::nsid(&mut query, own.as_fd()) {
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => false,
            Err(e) => panic!("RTM_GETNSID: {e}"),
        }
    })
}

/// The label of a veth peer that sits in namespace `netns`, across a namespace boundary from
/// its link: the namespace's label ("" for the agent's own), or "?" where nsids cannot be
/// asked (qemu-user). A peer in its link's own namespace needs no nsid.
fn label_across(netns: &str) -> &str {
    if nsid_queries_work() {
        netns
    } else {
        "?"
    }
}

/// Namespaces made by one test, deleted (by exact name) when dropped.
struct Bed {
    prefix: String,
    names: Vec<String>,
}

impl Bed {
    fn new(tag: &str, roles: &[&str]) -> Bed {
        let prefix = format!("hclk{}{tag}", std::process::id());
        let mut bed = Bed {
            prefix,
            names: Vec::new(),
        };
        for role in roles {
            bed.add(role);
        }
        bed
    }

    /// Adds a namespace `<prefix><role>` (deleted with the bed).
    fn add(&mut self, role: &str) {
        let name = self.reserve(role);
        ip(&["netns", "add", &name]);
    }

    /// A name for a namespace the test makes later: deleted with the bed if it exists then.
    fn reserve(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.prefix);
        self.names.push(name.clone());
        name
    }

    fn ns(&self, role: &str) -> &str {
        let found = self.names.iter().find(|n| n.ends_with(role));
        found.map(String::as_str).expect("role of this bed")
    }

    /// `ip -n <role's ns> args...`
    fn ip(&self, role: &str, args: &[&str]) {
        let mut all = vec!["-n", self.ns(role)];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for name in &self.names {
            let mut del = Command::new("ip");
            let _ = del
                .args(["netns", "del", name])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` on a fresh thread inside the namespace /run/netns/`name` (the thread then ends, so
/// nothing needs restoring).
fn in_ns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let file = File::open(format!("/run/netns/{name}")).expect("open netns");
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in netns")
    })
}

/// Every datagram pending on an event socket, concatenated.
fn drain_raw(events: &NetlinkSocket, buf: &mut [u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    loop {
        match events.recv(buf) {
            Ok(len) => raw.extend_from_slice(&buf[..len]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return raw,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The board: br0 with vc0 (peer: eth0 in ctr), uplink up0 (peer: eth0 in rtr).
fn board_bed(tag: &str) -> Bed {
    let bed = Bed::new(tag, &["board", "ctr", "rtr"]);
    let (ctr, rtr) = (bed.ns("ctr").to_owned(), bed.ns("rtr").to_owned());
    bed.ip("board", &["link", "add", "br0", "type", "bridge"]);
    bed.ip(
        "board",
        &[
            "link", "add", "vc0", "type", "veth", "peer", "name", "eth0", "netns", &ctr,
        ],
    );
    bed.ip(
        "board",
        &[
            "link",
            "set",
            "vc0",
            "address",
            "02:00:00:00:0c:00",
            "master",
            "br0",
        ],
    );
    bed.ip(
        "board",
        &[
            "link", "add", "up0", "mtu", "1400", "type", "veth", "peer", "name", "eth0",
        ],
    );
    bed.ip("board", &["link", "set", "eth0", "netns", &rtr]);
    bed.ip("board", &["addr", "add", "10.77.0.1/24", "dev", "br0"]);
    bed.ip(
        "board",
        &["addr", "add", "fd77::1/64", "dev", "br0", "nodad"],
    );
    bed.ip("board", &["addr", "add", "10.78.0.2/24", "dev", "up0"]);
    for dev in ["br0", "vc0", "up0", "lo"] {
        bed.ip("board", &["link", "set", dev, "up"]);
    }
    bed.ip("ctr", &["addr", "add", "10.77.0.2/24", "dev", "eth0"]);
    bed.ip(
        "ctr",
        &["link", "set", "eth0", "address", "02:00:00:00:0c:01", "up"],
    );
    bed.ip("rtr", &["addr", "add", "10.78.0.1/24", "dev", "eth0"]);
    bed.ip("rtr", &["link", "set", "eth0", "up"]);
    bed
}

/// Writes the fixtures of `links::rtnl`'s unit tests: real kernel answers and events from a
/// board bed (plus a vxlan and a macvlan). Run by hand:
/// `HOPCAP_FIXTURES=agent/src/links/fixtures cargo test -p hopcap-agent --test links_live -- --ignored`
#[test]
#[ignore]
fn write_fixtures() {
    let Ok(dir) = std::env::var("HOPCAP_FIXTURES") else {
        return;
    };
    let bed = board_bed("fx");
    bed.ip(
        "board",
        &[
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "42",
            "dstport",
            "4789",
            "local",
            "10.78.0.2",
            "dev",
            "up0",
        ],
    );
    bed.ip(
        "board",
        &["link", "add", "mv0", "link", "up0", "type", "macvlan"],
    );
    let ctr = File::open(format!("/run/netns/{}", bed.ns("ctr"))).unwrap();
    let dir = std::path::PathBuf::from(dir);
    in_ns(bed.ns("board"), || {
        let mut query = NetlinkSocket::open_query().unwrap();
        let links = kernel::ask_raw(&mut query, hopcap_agent::links::rtnl::getlink_dump).unwrap();
        std::fs::write(dir.join("board_links.bin"), links).unwrap();
        let addrs = kernel::ask_raw(&mut query, hopcap_agent::links::rtnl::getaddr_dump).unwrap();
        std::fs::write(dir.join("board_addrs.bin"), addrs).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&ctr) as u32;
        let nsid = kernel::ask_raw(&mut query, |seq| {
            hopcap_agent::links::rtnl::getnsid(seq, fd)
        });
        std::fs::write(dir.join("board_nsid_of_ctr.bin"), nsid.unwrap()).unwrap();

        let mask = groups::LINK | groups::IPV4_IFADDR | groups::IPV6_IFADDR;
        let events = NetlinkSocket::open_events(mask).unwrap();
        ip(&["link", "add", "hp0", "type", "veth", "peer", "name", "hp1"]);
        ip(&["addr", "add", "10.79.0.1/24", "dev", "hp0"]);
        ip(&["link", "del", "hp0"]);
        let mut buf = vec![0u8; kernel::RECV_BUF];
        let raw = drain_raw(&events, &mut buf);
        std::fs::write(dir.join("board_events.bin"), raw).unwrap();

        // A port joining and leaving a bridge: the kernel adds AF_BRIDGE link messages.
        ip(&["link", "add", "bp0", "type", "veth", "peer", "name", "bp1"]);
        drain_raw(&events, &mut buf);
        ip(&["link", "set", "bp0", "master", "br0"]);
        ip(&["link", "set", "bp0", "nomaster"]);
        std::fs::write(
            dir.join("bridge_port_events.bin"),
            drain_raw(&events, &mut buf),
        )
        .unwrap();
    });
}

/// ifindex and peer ifindex of `dev` in namespace `ns`, as `ip -o link` prints them
/// ("7: eth0@if5: <...>"): an oracle independent of the code under test.
fn ip_ifindex(ns: &str, dev: &str) -> (u32, Option<u32>) {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", dev])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split(": ");
    let ifindex = parts.next().unwrap().trim().parse().unwrap();
    let name = parts.next().unwrap();
    let peer = name.split_once("@if").map(|(_, p)| p.parse().unwrap());
    (ifindex, peer)
}

fn find<'a>(table: &'a LinkTable, netns: &str, name: &str) -> &'a LinkInfo {
    let mut links = table.links();
    links
        .find(|l| l.netns == netns && l.name == name)
        .unwrap_or_else(|| panic!("{netns}:{name}"))
}

/// Polls the table's event sockets until `done` holds for the changes seen, or 2 s pass.
fn wait_for(table: &mut LinkTable, done: impl Fn(&LinkTable, &[Change]) -> bool) -> Vec<Change> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    while !done(table, &seen) {
        assert!(
            Instant::now() < deadline,
            "no such change in 2 s; seen: {seen:#?}"
        );
        let ready: Vec<usize> = {
            let fds = table.event_fds();
            let mut polled: Vec<PollFd> = fds
                .iter()
                .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
                .collect();
            poll(&mut polled, 100u16).unwrap();
            let readable = polled
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()));
            fds.iter()
                .zip(readable)
                .filter(|(_, r)| *r)
                .map(|((i, _), _)| *i)
                .collect()
        };
        for ns in ready {
            seen.extend(table.read_events(ns).unwrap());
        }
    }
    seen
}

fn added<'a>(changes: &'a [Change], netns: &str, name: &str) -> Option<&'a LinkInfo> {
    changes.iter().find_map(|c| match c {
        Change::Added(l) if l.netns == netns && l.name == name => Some(l),
        _ => None,
    })
}

fn v4(a: [u8; 4], prefix: u8) -> LinkAddr {
    LinkAddr {
        addr: Addr::V4(a),
        prefix,
    }
}

#[test]
fn board_topology_is_discovered_and_follows_hot_plug() {
    let mut bed = board_bed("t");
    let (board, ctr, rtr) = (
        bed.ns("board").to_owned(),
        bed.ns("ctr").to_owned(),
        bed.ns("rtr").to_owned(),
    );
    let (vc0, vc0_peer) = ip_ifindex(&board, "vc0");
    let (ctr_eth0, ctr_eth0_peer) = ip_ifindex(&ctr, "eth0");
    let (up0, up0_peer) = ip_ifindex(&board, "up0");
    let (rtr_eth0, _) = ip_ifindex(&rtr, "eth0");
    let (br0, _) = ip_ifindex(&board, "br0");
    assert_eq!(
        (vc0_peer, ctr_eth0_peer, up0_peer),
        (Some(ctr_eth0), Some(vc0), Some(rtr_eth0))
    );

    let opts = Options {
        netns: NetnsSpec::Named(vec![format!("{}*", bed.prefix)]),
        ..Options::default()
    };
    let new_ns = bed.reserve("new");
    let peer = |ifindex, netns: &str| {
        Some(Peer {
            ifindex,
            netns: label_across(netns).try_into().unwrap(),
        })
    };
    in_ns(&board, || {
        let mut table = LinkTable::discover(opts).unwrap();
        let labels: Vec<&str> = table.namespaces().map(|(_, n)| n.label.as_str()).collect();
        assert_eq!(labels, ["", ctr.as_str(), rtr.as_str()]);
        for (_, netns) in table.namespaces() {
            assert_eq!(
                hopcap_agent::sys::netns::netns_id(&netns.path()).unwrap(),
                netns.id
            );
        }
        let ctr_id = hopcap_agent::sys::netns::netns_id(format!("/run/netns/{ctr}").as_ref());
        assert_eq!(table.netns(1).unwrap().id, ctr_id.unwrap());

        let l_br0 = find(&table, "", "br0");
        assert_eq!(
            (l_br0.kind, l_br0.ifindex, l_br0.mtu, l_br0.up),
            (LinkKind::Bridge, br0, 1500, true)
        );
        assert!(l_br0.addrs.contains(&v4([10, 77, 0, 1], 24)));
        let fd77_1 = Addr::V6([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(l_br0.addrs.contains(&LinkAddr {
            addr: fd77_1,
            prefix: 64
        }));
        let l_vc0 = find(&table, "", "vc0");
        assert_eq!(
            (l_vc0.kind, l_vc0.ifindex, l_vc0.master),
            (LinkKind::Veth, vc0, Some(br0))
        );
        assert_eq!(l_vc0.mac, Mac([2, 0, 0, 0, 0x0c, 0]));
        assert_eq!(l_vc0.peer, peer(ctr_eth0, &ctr));
        let l_up0 = find(&table, "", "up0");
        assert_eq!(
            (l_up0.mtu, l_up0.master, l_up0.peer.clone()),
            (1400, None, peer(rtr_eth0, &rtr))
        );
        assert!(l_up0.addrs.contains(&v4([10, 78, 0, 2], 24)));
        let l_ctr = find(&table, &ctr, "eth0");
        assert_eq!(
            (l_ctr.kind, l_ctr.ifindex, l_ctr.peer.clone()),
            (LinkKind::Veth, ctr_eth0, peer(vc0, ""))
        );
        assert_eq!(l_ctr.mac, Mac([2, 0, 0, 0, 0x0c, 1]));
        assert!(l_ctr.addrs.contains(&v4([10, 77, 0, 2], 24)));
        assert_eq!(find(&table, "", "lo").kind, LinkKind::Loopback);

        let mut own = vec![br0, vc0, up0];
        own.sort();
        assert_eq!(table.selected_ifindexes(0), own);
        let keys: std::collections::HashSet<_> = table.links().map(|l| l.key).collect();
        assert_eq!(keys.len(), table.links().count());
        assert_eq!(table.key_of(0, vc0), Some(l_vc0.key));

        // Hot-plug: a new container veth, its end created straight in ctr.
        ip(&[
            "link", "add", "hp0", "type", "veth", "peer", "name", "hp1", "netns", &ctr,
        ]);
        let changes = wait_for(&mut table, |_, c| {
            added(c, "", "hp0").is_some() && added(c, &ctr, "hp1").is_some()
        });
        let (hp0, hp1) = (
            added(&changes, "", "hp0").unwrap().clone(),
            added(&changes, &ctr, "hp1").unwrap().clone(),
        );
        assert_eq!(hp0.kind, LinkKind::Veth);
        assert!(!table.is_selected(hp0.key), "a down link is not captured");
        assert_eq!(table.link(hp0.key).unwrap().peer, peer(hp1.ifindex, &ctr));
        // hp1's own news names no peer; natively hp0's resolved peer places it. Without nsids
        // (qemu-user) hp0's peer is "?", placed nowhere, so hp1's peer stays unknown.
        let hp1_peer = if nsid_queries_work() {
            peer(hp0.ifindex, "")
        } else {
            None
        };
        assert_eq!(table.link(hp1.key).unwrap().peer, hp1_peer);

        ip(&["link", "set", "hp0", "up", "master", "br0"]);
        ip(&["addr", "add", "10.77.0.9/24", "dev", "hp0"]);
        wait_for(&mut table, |table, _| {
            table_link_has(table, hp0.key, |l| {
                l.up && l.master == Some(br0) && l.addrs.contains(&v4([10, 77, 0, 9], 24))
            })
        });
        assert!(table.is_selected(hp0.key));
        assert!(table.selected_ifindexes(0).contains(&hp0.ifindex));
        // Joining and leaving a bridge also makes the kernel send bridge-family link messages
        // (without a kind, and a DELLINK for the port): the link stays, a veth. Events of one
        // socket come in order, so once the MTU change is seen the bridge news were read.
        assert_eq!(table.link(hp0.key).unwrap().kind, LinkKind::Veth);
        ip(&["link", "set", "hp0", "nomaster"]);
        ip(&["link", "set", "hp0", "mtu", "1300"]);
        wait_for(&mut table, |table, _| {
            table_link_has(table, hp0.key, |l| l.mtu == 1300)
        });
        let l_hp0 = table.link(hp0.key).unwrap();
        assert_eq!((l_hp0.kind, l_hp0.master), (LinkKind::Veth, None));

        ip(&["link", "del", "hp0"]);
        let changes = wait_for(&mut table, |_, c| {
            c.contains(&Change::Removed(hp0.key)) && c.contains(&Change::Removed(hp1.key))
        });
        assert!(
            changes.iter().all(|c| !matches!(c, Change::Added(_))),
            "{changes:#?}"
        );
        assert!(
            table.link(hp0.key).is_none() && !table.selected_ifindexes(0).contains(&hp0.ifindex)
        );

        // A new namespace (a container starting) is found by a rescan; when it goes, so do its links.
        assert!(table.rescan().is_empty());
        ip(&["netns", "add", &new_ns]);
        ip(&[
            "link", "add", "vn0", "type", "veth", "peer", "name", "eth0", "netns", &new_ns,
        ]);
        let changes = table.rescan();
        let index = changes.iter().find_map(|c| match c {
            Change::NetnsAdded(i) => Some(*i),
            _ => None,
        });
        let index = index.expect("new namespace captured");
        assert_eq!(table.netns(index).unwrap().label, new_ns.as_str());
        let new_eth0 = added(&changes, &new_ns, "eth0").expect("its link").clone();
        let vn0 = wait_for(&mut table, |_, c| added(c, "", "vn0").is_some());
        let vn0 = added(&vn0, "", "vn0").unwrap().clone();
        assert_eq!(
            table.link(vn0.key).unwrap().peer,
            peer(new_eth0.ifindex, &new_ns)
        );
        assert_eq!(
            table.link(new_eth0.key).unwrap().peer,
            peer(vn0.ifindex, "")
        );
        ip(&["netns", "del", &new_ns]);
        let changes = table.rescan();
        assert!(changes.contains(&Change::Removed(new_eth0.key)));
        assert_eq!(changes.last(), Some(&Change::NetnsRemoved(index)));
        assert!(table.netns(index).is_none());
        // With the namespace closed, the kernel destroys it and vn0 with it.
        wait_for(&mut table, |_, c| c.contains(&Change::Removed(vn0.key)));
    });
    drop(bed);
}

fn table_link_has(table: &LinkTable, key: u16, pred: impl Fn(&LinkInfo) -> bool) -> bool {
    table.link(key).is_some_and(pred)
}

#[test]
fn a_veth_end_moved_and_renamed_as_docker_does_keeps_its_peer() {
    let bed = Bed::new("d", &["board", "ctr"]);
    let (board, ctr) = (bed.ns("board").to_owned(), bed.ns("ctr").to_owned());
    let opts = Options {
        netns: NetnsSpec::Named(vec![ctr.clone()]),
        ..Options::default()
    };
    in_ns(&board, || {
        let mut table = LinkTable::discover(opts).unwrap();
        ip(&["link", "add", "dk0", "type", "veth", "peer", "name", "dk1"]);
        let changes = wait_for(&mut table, |_, c| {
            added(c, "", "dk0").is_some() && added(c, "", "dk1").is_some()
        });
        let dk0 = added(&changes, "", "dk0").unwrap().clone();
        let dk1 = added(&changes, "", "dk1").unwrap().clone();
        assert_eq!(
            dk0.peer,
            Some(Peer {
                ifindex: dk1.ifindex,
                netns: "".try_into().unwrap()
            })
        );
        ip(&["link", "set", "dk1", "netns", &ctr]);
        ip(&["-n", &ctr, "link", "set", "dk1", "name", "eth1"]);
        let (eth1, eth1_peer) = ip_ifindex(&ctr, "eth1");
        assert_eq!(eth1_peer, Some(dk0.ifindex));
        let want_dk0 = Some(Peer {
            ifindex: eth1,
            netns: label_across(&ctr).try_into().unwrap(),
        });
        let want_eth1 = Some(Peer {
            ifindex: dk0.ifindex,
            netns: label_across("").try_into().unwrap(),
        });
        let changes = wait_for(&mut table, |t, _| {
            let ctr_eth1 = t
                .links()
                .find(|l| l.netns == ctr.as_str() && l.name == "eth1");
            t.link(dk0.key).is_some_and(|l| l.peer == want_dk0)
                && ctr_eth1.is_some_and(|l| l.peer == want_eth1)
        });
        assert!(table.link(dk1.key).is_none(), "{changes:#?}");
    });
}

/// Kills (by PID) and reaps a child when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_process_namespace_is_found_by_rescan_and_named_by_its_hostname() {
    let bed = Bed::new("p", &["board"]);
    let host = format!("{}h", bed.prefix);
    let script = format!("echo {host} > /proc/sys/kernel/hostname && exec sleep 60");
    let mut child = Child(
        Command::new("unshare")
            .args(["--net", "--uts", "sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // Wait until the hostname is set (the shell then became `sleep`): a label is chosen once.
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "child did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let opts = Options {
        netns: NetnsSpec::Named(vec![host.clone()]),
        ..Options::default()
    };
    in_ns(bed.ns("board"), || {
        let mut table = LinkTable::discover(opts).unwrap();
        let (index, netns) = table
            .namespaces()
            .find(|(_, n)| n.label == host.as_str())
            .unwrap();
        assert_ne!(index, 0);
        let id = netns.id;
        let lo = find(&table, &host, "lo").clone();
        assert_eq!((lo.kind, lo.up), (LinkKind::Loopback, false));
        assert!(table.selected_ifindexes(index).is_empty());
        let meta = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((id.dev, id.ino), (meta.dev(), meta.ino()));
        assert!(table.rescan().is_empty());

        let _ = child.0.kill();
        let _ = child.0.wait();
        let changes = table.rescan();
        assert!(changes.contains(&Change::Removed(lo.key)), "{changes:#?}");
        assert_eq!(changes.last(), Some(&Change::NetnsRemoved(index)));
    });
}

#[test]
fn a_new_uts_namespace_still_named_as_the_host_is_not_labelled_so() {
    use hopcap_agent::links::namespaces::Registry;
    use hopcap_agent::sys::netns::{current_netns_id, netns_id};
    // As runc leaves it for a moment: a new UTS namespace with a copy of the host's name.
    let mut child = Child(
        Command::new("unshare")
            .args(["--net", "--uts", "sleep", "60"])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "child did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let id = netns_id(&path).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut registry = Registry::new(current_netns_id().unwrap());
    let found = registry.scan();
    let label = &found.iter().find(|f| f.id == id).expect("found").label;
    assert_ne!(label.as_str(), host.trim());
    let _ = child.0.kill();
    let _ = child.0.wait();
}

#[test]
fn a_process_namespace_given_a_run_netns_name_is_relabelled_everywhere() {
    let mut bed = Bed::new("r", &["board"]);
    let host = format!("{}h", bed.prefix);
    let named = bed.reserve("n");
    let script = format!("echo {host} > /proc/sys/kernel/hostname && exec sleep 60");
    let mut child = Child(
        Command::new("unshare")
            .args(["--net", "--uts", "sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "child did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    bed.ip(
        "board",
        &[
            "link", "add", "hv0", "type", "veth", "peer", "name", "eth0", "netns", &pid,
        ],
    );
    let opts = Options {
        netns: NetnsSpec::Named(vec![format!("{}*", bed.prefix)]),
        ..Options::default()
    };
    in_ns(bed.ns("board"), || {
        let mut table = LinkTable::discover(opts).unwrap();
        let eth0 = find(&table, &host, "eth0").clone();
        let hv0 = find(&table, "", "hv0").clone();
        let peer_of = |netns: &str| Peer {
            ifindex: eth0.ifindex,
            netns: label_across(netns).try_into().unwrap(),
        };
        assert_eq!(hv0.peer, Some(peer_of(&host)));

        // `ip netns attach`: the administrator's name wins over the hostname.
        ip(&["netns", "attach", &named, &pid]);
        let changes = table.rescan();
        let updated = |netns: &str, name: &str| {
            changes.iter().find_map(|c| match c {
                Change::Updated(l) if l.netns == netns && l.name == name => Some(l.clone()),
                _ => None,
            })
        };
        let renamed = updated(&named, "eth0").unwrap_or_else(|| panic!("{changes:#?}"));
        assert_eq!(renamed.key, eth0.key, "the same link, the same key");
        assert!(updated(&named, "lo").is_some(), "{changes:#?}");
        if nsid_queries_work() {
            let facing = updated("", "hv0").unwrap_or_else(|| panic!("{changes:#?}"));
            assert_eq!(facing.peer, Some(peer_of(&named)));
        }
        assert!(table.namespaces().any(|(_, n)| n.label == named.as_str()));
        assert!(!table.links().any(|l| l.netns == host.as_str()));
        assert!(table.rescan().is_empty(), "a final label stays");
    });
    let _ = child.0.kill();
    let _ = child.0.wait();
}

#[test]
fn a_peer_in_a_namespace_found_later_is_named_by_the_next_rescan() {
    let mut bed = Bed::new("u", &["board"]);
    let late = bed.reserve("late");
    // Nothing captured besides the board itself (the default `--netns none`).
    in_ns(bed.ns("board"), || {
        let mut table = LinkTable::discover(Options::default()).unwrap();
        ip(&["netns", "add", &late]);
        ip(&[
            "link", "add", "vl0", "type", "veth", "peer", "name", "eth0", "netns", &late,
        ]);
        let (_, vl0_peer) = ip_ifindex(bed.ns("board"), "vl0");
        let changes = wait_for(&mut table, |_, c| added(c, "", "vl0").is_some());
        let vl0 = added(&changes, "", "vl0").unwrap().clone();
        let unknown = Peer {
            ifindex: vl0_peer.unwrap(),
            netns: "?".try_into().unwrap(),
        };
        assert_eq!(vl0.peer, Some(unknown), "the namespace was not scanned yet");
        let changes = table.rescan();
        let named = Peer {
            ifindex: vl0_peer.unwrap(),
            netns: label_across(&late).try_into().unwrap(),
        };
        // Without nsids (qemu-user) the rescan finds the namespace but cannot tie the peer to
        // it: nothing changes, and the peer stays unknown.
        let updated = changes
            .iter()
            .any(|c| matches!(c, Change::Updated(l) if l.key == vl0.key));
        assert_eq!(updated, nsid_queries_work(), "{changes:#?}");
        assert_eq!(table.link(vl0.key).unwrap().peer, Some(named));
        assert_eq!(table.namespaces().count(), 1, "found, named, not captured");
    });
}

#[test]
fn resync_after_lost_events_reports_the_difference_once() {
    let bed = Bed::new("r", &["board"]);
    in_ns(bed.ns("board"), || {
        ip(&[
            "link", "add", "old0", "type", "veth", "peer", "name", "old1",
        ]);
        let mut table = LinkTable::discover(Options::default()).unwrap();
        let old0 = find(&table, "", "old0").key;
        let old1 = find(&table, "", "old1").key;
        // Changes the table does not read as events, as when the kernel drops them (ENOBUFS).
        ip(&["link", "del", "old0"]);
        ip(&[
            "link", "add", "new0", "type", "veth", "peer", "name", "new1",
        ]);
        ip(&["link", "set", "lo", "mtu", "1400"]);
        let changes = table.resync(0).unwrap();
        assert!(
            changes.contains(&Change::Removed(old0)) && changes.contains(&Change::Removed(old1))
        );
        assert!(added(&changes, "", "new0").is_some() && added(&changes, "", "new1").is_some());
        let lo = find(&table, "", "lo").clone();
        assert_eq!(lo.mtu, 1400);
        assert!(changes.contains(&Change::Updated(lo)));
        assert_eq!(changes.len(), 5, "{changes:#?}");
        // The events of those changes predate the dump: dropped, not applied again.
        assert_eq!(table.read_events(0).unwrap(), Vec::new());
        assert!(table.resync(0).unwrap().is_empty());
    });
}
