//! `--doctor`: a self-check to run on a new board before trusting its capture. Each finding
//! says what was found and, when something stands in the way, how to fix it. It opens what
//! a run opens (a capture socket with its ring, a kernel filter, the link table, the
//! collector connection) and closes it again; it captures nothing.

use crate::capture::{Capture, CaptureConfig, CaptureMode};
use crate::links::{LinkTable, Options as LinkOptions};
use crate::run::filter::{KernelFilter, Tier};
use hopcap_proto::filter::Filter;
use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// How a finding bears on the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Capture works, but not as well as it could.
    Warn,
    /// Capture (or delivery) will not work as asked.
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    /// How to fix it (for Warn and Fail).
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag} {}", self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

fn ok(what: impl Into<String>) -> Finding {
    Finding {
        level: Level::Ok,
        what: what.into(),
        fix: None,
    }
}

fn warn(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        level: Level::Warn,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

fn fail(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        level: Level::Fail,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

/// What the doctor is told about the run it checks for.
#[derive(Clone, Debug, Default)]
pub struct DoctorConfig {
    pub links: LinkOptions,
    pub capture: CaptureConfig,
    /// `--collector HOST:PORT`, if the board is to stream.
    pub collector: Option<String>,
}

/// Every check, in order.
pub fn examine(cfg: &DoctorConfig) -> Vec<Finding> {
    let mut out = vec![kernel()];
    out.extend(capabilities());
    out.extend(capture(&cfg.capture));
    out.extend(runtimes());
    out.extend(links(&cfg.links));
    if let Some(addr) = &cfg.collector {
        collectors(addr, &mut out);
    }
    out
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn kernel() -> Finding {
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into());
    let arch = std::env::consts::ARCH;
    ok(format!("kernel {release} ({arch} agent)"))
}

/// What a run needs (see `privileges`): CAP_NET_RAW 13, CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21.
const CAPS: [(u32, &str, &str); 3] = [
    (13, "CAP_NET_RAW", "packet sockets"),
    (
        21,
        "CAP_SYS_ADMIN",
        "entering other network namespaces (--netns)",
    ),
    (
        19,
        "CAP_SYS_PTRACE",
        "finding the namespaces of other users' processes (--netns)",
    ),
];

fn capabilities() -> Vec<Finding> {
    let status = read("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let Some(eff) = eff else {
        return vec![warn(
            "capabilities unreadable (/proc/self/status)",
            "run on Linux with /proc mounted",
        )];
    };
    let missing: Vec<String> = CAPS
        .iter()
        .filter(|(bit, _, _)| eff & (1 << bit) == 0)
        .map(|(_, name, why)| format!("{name} ({why})"))
        .collect();
    if missing.is_empty() {
        vec![ok(
            "capabilities CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYS_PTRACE \
             (a run keeps only these, and the last two only with --netns)",
        )]
    } else {
        vec![fail(
            format!("missing {}", missing.join(", ")),
            "run as root, or give the agent these capabilities (systemd: \
             AmbientCapabilities=CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_PTRACE; \
             or setcap cap_net_raw,cap_sys_admin,cap_sys_ptrace+ep hopcap-agent)",
        )]
    }
}

/// A capture socket in the agent's own namespace: is the ring there, and which kernel
/// filter does `icmp` get under this namespace's optmem_max.
fn capture(cfg: &CaptureConfig) -> Vec<Finding> {
    let mut capture = Capture::new(cfg.clone());
    let slot = match capture.add_namespace("", Path::new("")) {
        Ok(slot) => slot,
        Err(e) => {
            return vec![fail(
                format!("cannot open a packet socket: {e}"),
                "run as root or with CAP_NET_RAW (see capabilities)",
            )]
        }
    };
    let mut out = Vec::new();
    out.push(match capture.mode(slot) {
        Some(CaptureMode::Ring) => ok("TPACKET_V3 ring works"),
        mode => warn(
            format!("no packet ring ({mode:?}): capture falls back to recvmsg(), slower"),
            "use a kernel with CONFIG_PACKET_MMAP (every Raspberry Pi OS kernel has it); \
             under qemu-user there is none",
        ),
    });
    let optmem = capture.optmem_max(slot);
    let shown = optmem.map_or("unknown".into(), |m| m.to_string());
    let filter = KernelFilter {
        user: Filter::parse("icmp").ok(),
        exclude: Vec::new(),
        snaplen: cfg.snaplen,
    };
    // Any ifindex: the program is only attached to a socket that captures nothing yet.
    out.push(match filter.attach(&mut capture, slot, &[1]) {
        Ok(a) if a.tier == Tier::Exact => ok(format!(
            "net.core.optmem_max {shown}: a full --filter program ({} instructions) attaches",
            a.len
        )),
        Ok(a) => warn(
            format!(
                "net.core.optmem_max {shown} is too small for a full --filter program ({}): \
                 the agent attaches the {} ({} instructions) and filters the rest in user \
                 space (more CPU under load)",
                a.tried.first().map_or(String::new(), |t| format!(
                    "{} instructions, {}",
                    t.len, t.refusal
                )),
                a.tier,
                a.len
            ),
            "sysctl -w net.core.optmem_max=65536, and keep it in /etc/sysctl.d/90-hopcap.conf",
        ),
        Err(e) => fail(
            format!("no kernel filter attaches: {e}"),
            "raise net.core.optmem_max (sysctl -w net.core.optmem_max=65536)",
        ),
    });
    out
}

fn runtimes() -> Vec<Finding> {
    let named = std::fs::read_dir("/run/netns").map_or(0, |d| d.count());
    let mut found = vec![format!("{named} named network namespaces (/run/netns)")];
    for (sock, runtime) in [
        ("/run/docker.sock", "Docker"),
        ("/run/containerd/containerd.sock", "containerd"),
        ("/run/k3s/containerd/containerd.sock", "k3s containerd"),
        ("/run/crio/crio.sock", "CRI-O"),
        ("/run/podman/podman.sock", "Podman"),
    ] {
        if Path::new(sock).exists() {
            found.push(format!("{runtime} ({sock})"));
        }
    }
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let state = crate::links::runtime::Runtimes::find(Path::new("/proc"), &pids);
    let mut out = Vec::new();
    for root in &state.docker {
        let readable = std::fs::read_dir(root.join("containers")).is_ok();
        let line = format!("Docker state {}: containers named from it", root.display());
        out.push(if readable {
            ok(line)
        } else {
            warn(
                format!(
                    "Docker state {} unreadable: containers get hostnames, not their names",
                    root.display()
                ),
                "run the agent as root, or grant CAP_DAC_READ_SEARCH (the systemd unit does)",
            )
        });
    }
    for s in &state.containerd {
        found.push(format!("containerd state {} (pod names)", s.display()));
    }
    out.insert(0, ok(found.join(", ")));
    out
}

fn links(opts: &LinkOptions) -> Vec<Finding> {
    let table = match LinkTable::discover(opts.clone()) {
        Ok(t) => t,
        Err(e) => {
            return vec![fail(
                format!("cannot list links (rtnetlink): {e}"),
                "listing links needs no privilege: check that /proc is mounted and that \
                 no seccomp profile or sandbox forbids netlink sockets",
            )]
        }
    };
    let selected: Vec<_> = table.links().filter(|l| table.is_selected(l.key)).collect();
    let mut out = Vec::new();
    if selected.is_empty() {
        out.push(fail(
            "no link would be captured",
            "check -i/--exclude/--netns; `hopcap-agent -D` lists the links",
        ));
    } else {
        let names: Vec<String> = selected
            .iter()
            .map(|l| {
                if l.netns.is_empty() {
                    l.name.to_string()
                } else {
                    format!("{}:{}", l.netns, l.name)
                }
            })
            .collect();
        out.push(ok(format!(
            "{} links would be captured: {}",
            names.len(),
            names.join(", ")
        )));
    }
    // Details of the physical links in the agent's own namespace (sysfs shows only those).
    for l in selected.iter().filter(|l| l.netns.is_empty()) {
        let sys = format!("/sys/class/net/{}", l.name);
        if !Path::new(&format!("{sys}/device")).exists() {
            continue;
        }
        let speed = read(&format!("{sys}/speed"))
            .filter(|s| !s.starts_with('-'))
            .map_or("speed unknown".into(), |s| format!("{s} Mb/s"));
        let promisc = read(&format!("{sys}/flags"))
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
            .is_some_and(|f| f & 0x100 != 0);
        out.push(ok(format!(
            "{}: {speed}, promiscuous {}, softirqs on {}",
            l.name,
            if promisc { "on" } else { "off" },
            irq_cpus(&l.name)
        )));
        if vlan_filter_on(&l.name) {
            out.push(warn(
                format!(
                    "{}: rx-vlan-filter is on: the NIC may drop or strip VLAN tags before the capture sees them",
                    l.name
                ),
                format!("ethtool -K {} rx-vlan-filter off", l.name),
            ));
        }
    }
    out
}

/// The CPUs that took this NIC's interrupts (from /proc/interrupts), or what RPS spreads
/// its receive work to.
fn irq_cpus(link: &str) -> String {
    let Some(text) = read("/proc/interrupts") else {
        return "unknown".into();
    };
    let mut lines = text.lines();
    let cpus: Vec<&str> = lines
        .next()
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    let mut busiest: Vec<String> = Vec::new();
    for line in lines.filter(|l| l.contains(link)) {
        let counts: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(cpus.len())
            .filter_map(|c| c.parse().ok())
            .collect();
        if let Some((i, _)) = counts.iter().enumerate().max_by_key(|(_, c)| **c) {
            if let Some(cpu) = cpus.get(i) {
                busiest.push(cpu.to_lowercase());
            }
        }
    }
    busiest.sort();
    busiest.dedup();
    if busiest.is_empty() {
        "unknown (no interrupt line names it)".into()
    } else {
        busiest.join(" ")
    }
}

/// `ethtool -k LINK` says rx-vlan-filter is on (false when ethtool is not installed).
fn vlan_filter_on(link: &str) -> bool {
    std::process::Command::new("ethtool")
        .args(["-k", link])
        .output()
        .ok()
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim_start().starts_with("rx-vlan-filter: on"))
        })
}

/// Each ingest node of a `--collector` list (the agent moves between them).
fn collectors(list: &str, out: &mut Vec<Finding>) {
    for a in crate::run::collector_addrs(list) {
        out.push(collector(a));
    }
}

fn collector(addr: &str) -> Finding {
    let resolved = match addr.to_socket_addrs() {
        Ok(mut a) => a.next(),
        Err(e) => {
            return fail(
                format!("collector {addr}: {e}"),
                "give --collector as HOST:PORT that resolves on this board",
            )
        }
    };
    let Some(sock) = resolved else {
        return fail(
            format!("collector {addr} resolves to no address"),
            "fix the name or use an IP address",
        );
    };
    match TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
        Ok(_) => ok(format!("collector {addr} ({sock}) accepts connections")),
        Err(e) => fail(
            format!("collector {addr} ({sock}) unreachable: {e}"),
            "start `hopcap-collector serve` there, and open the port in its firewall",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_print_with_their_fix() {
        let f = warn(
            "optmem_max 10240 is small",
            "sysctl -w net.core.optmem_max=65536",
        );
        assert_eq!(
            f.to_string(),
            "WARN optmem_max 10240 is small\n     fix: sysctl -w net.core.optmem_max=65536"
        );
        assert_eq!(ok("ring works").to_string(), "ok   ring works");
    }

    #[test]
    fn an_unreachable_collector_fails() {
        // Port 1 on loopback: nothing listens there in a test run.
        let f = collector("127.0.0.1:1");
        assert_eq!(f.level, Level::Fail, "{f}");
        assert!(collector("no-such-host.invalid:7878").level == Level::Fail);
    }

    #[test]
    fn each_ingest_node_of_a_list_is_checked() {
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up = live.local_addr().unwrap().to_string();
        let list = format!("{up}, 127.0.0.1:1");
        let mut found = Vec::new();
        collectors(&list, &mut found);
        let found: Vec<Level> = found.into_iter().map(|f| f.level).collect();
        assert_eq!(found, vec![Level::Ok, Level::Fail]);
    }
}
