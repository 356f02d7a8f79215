//! Finding network namespaces and naming them.
//!
//! A namespace is identified by its nsfs inode (st_dev + st_ino of /proc/PID/ns/net or of a
//! /run/netns/NAME bind mount). Found: every /run/netns/NAME, then every namespace some process
//! is in (lowest PID first), each once; the agent's own namespace is left out.
//!
//! Labels (stable for a namespace's lifetime, unique within a run):
//! - own namespace: "" (empty);
//! - /run/netns/NAME: NAME;
//! - a process's namespace: the hostname of the process's UTS namespace when that differs from
//!   the agent's (Docker: the container id's 12 first hex digits or `--hostname`; Kubernetes: the
//!   pod name), else from /proc/PID/cgroup a container id (docker-, libpod-, cri-containerd-,
//!   crio- scopes or /docker/ID: 12 first hex digits) or a systemd service name (a service with
//!   PrivateNetwork=), else `pid:N`;
//! - a name that is taken, too long or not made of [A-Za-z0-9._@-]: `pid:N`, or `ino:N` for a
//!   /run/netns entry.
//!
//! The hostname is read from /proc/sys/kernel/hostname by a short-lived thread that entered the
//! process's UTS namespace, never through the container's files (which it controls).

use crate::sys::netns::netns_id;
pub use crate::sys::netns::NsId;
use hopcap_proto::record::MAX_NAME;
use nix::sched::{setns, CloneFlags};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub type Label = heapless::String<MAX_NAME>;

/// A namespace found by a scan: how to open it, and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub id: NsId,
    pub path: PathBuf,
    pub label: Label,
}

/// Every namespace seen so far, with the label it got when first seen.
#[derive(Debug)]
pub struct Registry {
    own: NsId,
    run_netns: PathBuf,
    proc: PathBuf,
    found: HashMap<NsId, Found>,
}

impl Registry {
    /// `own` is the agent's namespace (labelled "").
    pub fn new(own: NsId) -> Registry {
        let (run_netns, proc) = (PathBuf::from("/run/netns"), PathBuf::from("/proc"));
        Registry {
            own,
            run_netns,
            proc,
            found: HashMap::new(),
        }
    }

    /// The label of a namespace: "" for the agent's own, `None` if not (or no longer) found.
    pub fn label(&self, id: NsId) -> Option<&str> {
        if id == self.own {
            return Some("");
        }
        self.found.get(&id).map(|f| f.label.as_str())
    }

    /// Every namespace found by the last scan (the agent's own is never among them).
    pub fn known(&self) -> impl Iterator<Item = &Found> {
        self.found.values()
    }

    /// Looks again at /run/netns and /proc: returns every namespace present now (sorted by
    /// label), forgets those gone. A namespace keeps the label it got first.
    pub fn scan(&mut self) -> Vec<Found> {
        let mut now: HashMap<NsId, Found> = HashMap::new();
        let mut add = |found: &mut HashMap<NsId, Found>,
                       id: NsId,
                       path: PathBuf,
                       name: &dyn Fn() -> Label| {
            if id == self.own || now.contains_key(&id) {
                return;
            }
            let entry = match found.get(&id) {
                Some(old) => Found {
                    path,
                    ..old.clone()
                },
                None => {
                    let mut label = name();
                    if found.values().any(|f| f.label == label) || label.is_empty() {
                        label = fallback_label(&path, id);
                    }
                    let f = Found { id, path, label };
                    found.insert(id, f.clone());
                    f
                }
            };
            now.insert(id, entry);
        };
        // Named namespaces first: their name wins over a process label.
        for (name, path) in named(&self.run_netns) {
            let Ok(id) = netns_id(&path) else { continue };
            // An entry not (yet) bind-mounted is a plain file on tmpfs, not an nsfs inode.
            if id.dev != self.own.dev {
                continue;
            }
            let label = || valid_label(&name).unwrap_or_else(|| ino_label(id));
            add(&mut self.found, id, path.clone(), &label);
        }
        for pid in pids(&self.proc) {
            let path = self.proc.join(pid.to_string()).join("ns/net");
            let Ok(id) = netns_id(&path) else { continue };
            let proc = self.proc.clone();
            add(&mut self.found, id, path, &|| process_label(&proc, pid));
        }
        self.found.retain(|id, _| now.contains_key(id));
        let mut list: Vec<Found> = now.into_values().collect();
        list.sort_by(|a, b| a.label.cmp(&b.label));
        list
    }
}

/// (name, path) of every /run/netns entry, sorted by name.
fn named(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

/// Every PID in /proc, ascending.
fn pids(proc: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

fn fallback_label(path: &Path, id: NsId) -> Label {
    // /proc/PID/ns/net → pid:PID; anything else → ino:N.
    let pid = path
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name);
    match pid
        .and_then(|p| p.to_str())
        .and_then(|p| p.parse::<u32>().ok())
    {
        Some(pid) => pid_label(pid),
        None => ino_label(id),
    }
}

fn pid_label(pid: u32) -> Label {
    let mut l = Label::new();
    let _ = core::fmt::write(&mut l, format_args!("pid:{pid}"));
    l
}

fn ino_label(id: NsId) -> Label {
    let mut l = Label::new();
    let _ = core::fmt::write(&mut l, format_args!("ino:{}", id.ino));
    l
}

/// A name usable as a label: 1..=32 bytes of [A-Za-z0-9._@-].
pub fn valid_label(name: &str) -> Option<Label> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || !name.chars().all(ok) {
        return None;
    }
    Label::try_from(name).ok()
}

fn process_label(proc: &Path, pid: u32) -> Label {
    let dir = proc.join(pid.to_string());
    let own_uts = netns_id(&proc.join("thread-self/ns/uts")).ok();
    let uts_path = dir.join("ns/uts");
    if netns_id(&uts_path)
        .ok()
        .is_some_and(|uts| Some(uts) != own_uts)
    {
        if let Some(label) = hostname_in(&uts_path).as_deref().and_then(valid_label) {
            return label;
        }
    }
    let cgroup = fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    cgroup_label(&cgroup).unwrap_or_else(|| pid_label(pid))
}

/// The hostname of the UTS namespace at `uts_path`, read by a thread that enters it.
fn hostname_in(uts_path: &Path) -> Option<String> {
    let uts = File::open(uts_path).ok()?;
    let reader = std::thread::spawn(move || {
        setns(&uts, CloneFlags::CLONE_NEWUTS).ok()?;
        fs::read_to_string("/proc/sys/kernel/hostname").ok()
    });
    let name = reader.join().ok()??;
    Some(name.trim().to_owned())
}

/// A container id (12 first hex digits) or a systemd service name from /proc/PID/cgroup text.
pub fn cgroup_label(cgroup: &str) -> Option<Label> {
    for line in cgroup.lines() {
        // "hierarchy:controllers:path"; the path's last component names the unit or container.
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        let last = path.rsplit('/').next().unwrap_or("");
        let scope = last.strip_suffix(".scope").unwrap_or(last);
        let id = ["docker-", "libpod-", "cri-containerd-", "crio-"]
            .iter()
            .find_map(|prefix| scope.strip_prefix(prefix))
            .unwrap_or(scope);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return id.get(..12).and_then(valid_label);
        }
        if last.ends_with(".service") && path.contains("/system.slice/") {
            return valid_label(last);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1d2c5b6a79881726354453627180f9e8d7c6b5a4a3b2c1d0e9f8a7b6c5d4";

    #[test]
    fn cgroup_paths_give_container_ids_and_services() {
        let v2_docker = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(cgroup_label(&v2_docker).as_deref(), Some("3f4e1d2c5b6a"));
        let v1_docker = format!("12:pids:/docker/{ID}\n11:cpu:/docker/{ID}\n");
        assert_eq!(cgroup_label(&v1_docker).as_deref(), Some("3f4e1d2c5b6a"));
        let k8s = format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope");
        assert_eq!(cgroup_label(&k8s).as_deref(), Some("3f4e1d2c5b6a"));
        let podman = format!("0::/user.slice/user-1000.slice/libpod-{ID}.scope");
        assert_eq!(cgroup_label(&podman).as_deref(), Some("3f4e1d2c5b6a"));
        let service = "0::/system.slice/chronyd.service\n";
        assert_eq!(cgroup_label(service).as_deref(), Some("chronyd.service"));
        assert_eq!(
            cgroup_label("0::/user.slice/user-0.slice/session-3.scope"),
            None
        );
        assert_eq!(cgroup_label("0::/"), None);
        assert_eq!(cgroup_label(""), None);
        assert_eq!(cgroup_label("garbage without colons"), None);
    }

    #[test]
    fn labels_are_short_and_plain() {
        assert_eq!(valid_label("web-1.local").as_deref(), Some("web-1.local"));
        assert_eq!(valid_label(""), None);
        assert_eq!(valid_label("has space"), None);
        assert_eq!(valid_label("a:b"), None);
        assert_eq!(valid_label(&"x".repeat(33)), None);
        assert_eq!(valid_label(&"x".repeat(32)).map(|l| l.len()), Some(32));
    }

    #[test]
    fn fallback_labels_name_pid_or_inode() {
        let id = NsId {
            dev: 4,
            ino: 4026532999,
        };
        assert_eq!(
            fallback_label(Path::new("/proc/4242/ns/net"), id),
            "pid:4242"
        );
        assert_eq!(
            fallback_label(Path::new("/run/netns/x"), id),
            "ino:4026532999"
        );
    }

    #[test]
    fn own_namespace_is_labelled_empty_and_never_listed() {
        let own = crate::sys::netns::current_netns_id().unwrap();
        let mut reg = Registry::new(own);
        assert_eq!(reg.label(own), Some(""));
        assert!(reg.scan().iter().all(|f| f.id != own));
    }
}
