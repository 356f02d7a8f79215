//! Live tests of link discovery (root): a Pi+Docker-like bed in private namespaces.
//!
//!   rtr ns: eth0 ──veth── board ns: up0        (the board's uplink)
//!   ctr ns: eth0 ──veth── board ns: vc0 ─ br0  (a container on the board's bridge)
//!
//! Every namespace name starts with a prefix unique to this process; a guard deletes them by
//! exact name, also when a test panics. No traffic is sent at all.

use hopcap_agent::links::kernel;
use hopcap_agent::sys::netlink::{groups, NetlinkSocket};
use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::process::Command;

/// Namespaces made by one test, deleted (by exact name) when dropped.
struct Bed {
    names: Vec<String>,
}

impl Bed {
    fn new(tag: &str, roles: &[&str]) -> Bed {
        let prefix = format!("hclk{}{tag}", std::process::id());
        let mut bed = Bed { names: Vec::new() };
        for role in roles {
            let name = format!("{prefix}{role}");
            ip(&["netns", "add", &name]);
            bed.names.push(name);
        }
        bed
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
            let _ = Command::new("ip").args(["netns", "del", name]).status();
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
        let mut raw = Vec::new();
        let mut buf = vec![0u8; kernel::RECV_BUF];
        loop {
            match events.recv(&mut buf) {
                Ok(len) => raw.extend_from_slice(&buf[..len]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        std::fs::write(dir.join("board_events.bin"), raw).unwrap();
    });
}
