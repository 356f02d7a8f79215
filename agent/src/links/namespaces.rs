//! Finding network namespaces and naming them.
//!
//! A namespace is identified by its nsfs inode (st_dev + st_ino of /proc/PID/ns/net or of a
//! /run/netns/NAME bind mount). Found: every /run/netns/NAME, then every namespace some process
//! is in (lowest PID first), each once; the agent's own namespace is left out.
//!
//! Labels (unique among the namespaces present, at most 32 bytes of [A-Za-z0-9._@-]), best
//! first ([`Source`]):
//! - own namespace: "" (empty);
//! - /run/netns/NAME: NAME (`ino:N` if NAME is not a usable label);
//! - a process's namespace, from the lowest PID in it:
//!   1. the container runtime's name: Docker's container name, a Kubernetes pod's name
//!      (see [`super::runtime`] for where each is read), cut to 32 bytes;
//!   2. the hostname of the process's UTS namespace, when that namespace differs from the
//!      agent's and the name from the agent's and PID 1's (a new container's UTS namespace
//!      starts with a copy of the host's name, which runc replaces a moment later);
//!   3. from /proc/PID/cgroup a container id (12 first hex digits) or a systemd service name
//!      (a service with PrivateNetwork=);
//!   4. `pid:N`.
//!
//! A label is not final while it is below the runtime's name: a namespace is often first seen
//! half-made (`docker run` between runc's clone and its sethostname, or through a transient
//! process such as `unshare` before the /run/netns bind mount). So for [`REEVALUATE_SCANS`]
//! scans after it was found, and whenever a /run/netns entry appears for it, its label is worked
//! out again, and a better one that is free replaces it: [`Registry::take_relabelled`] says
//! which, for the link table to tell the sinks.
//!
//! The hostname is read from /proc/sys/kernel/hostname by a short-lived thread that entered the
//! process's UTS namespace, never through the container's files (which it controls).

use super::runtime::{self, Runtimes};
use crate::sys::netns::netns_id;
pub use crate::sys::netns::NsId;
use hopcap_proto::record::MAX_NAME;
use nix::sched::{setns, CloneFlags};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub type Label = heapless::String<MAX_NAME>;

/// How many scans (one a second) a namespace's label is worked out again while it is not the
/// runtime's name: a container's name is on disk before its namespace exists, and runc sets the
/// hostname within milliseconds; a minute covers a loaded board without re-reading forever.
pub const REEVALUATE_SCANS: u32 = 60;

/// Where a label came from, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Pid,
    Cgroup,
    Hostname,
    Runtime,
    /// A /run/netns entry: the administrator's name wins over everything.
    Named,
}

/// A namespace found by a scan: how to open it, and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub id: NsId,
    pub path: PathBuf,
    pub label: Label,
}

/// A namespace whose label was replaced by a better one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relabel {
    pub id: NsId,
    pub old: Label,
    pub new: Label,
}

#[derive(Clone, Debug)]
struct Known {
    found: Found,
    source: Source,
    /// Scans since it was found.
    scans: u32,
}

/// Every namespace seen so far, with its label.
#[derive(Debug)]
pub struct Registry {
    own: NsId,
    run_netns: PathBuf,
    proc: PathBuf,
    found: HashMap<NsId, Known>,
    relabelled: Vec<Relabel>,
}

/// What working out a process's label needs, gathered at most once per scan.
struct Context<'a> {
    proc: &'a Path,
    pids: &'a [u32],
    own_uts: Option<NsId>,
    own_hostname: Option<String>,
    /// The hostname of PID 1's UTS namespace when it is not the agent's (an agent in its own
    /// container): the host's name, which a new container's namespace starts with too.
    init_hostname: Option<Option<String>>,
    runtimes: Option<Runtimes>,
}

impl Context<'_> {
    /// Whether `name` is the agent's or the host's hostname (never a container's label).
    fn is_hosts(&mut self, name: &str) -> bool {
        if Some(name) == self.own_hostname.as_deref() {
            return true;
        }
        let (proc, own_uts) = (self.proc, self.own_uts);
        let init = self.init_hostname.get_or_insert_with(|| {
            let uts = proc.join("1/ns/uts");
            let other = netns_id(&uts).ok().is_some_and(|id| Some(id) != own_uts);
            other.then(|| hostname_in(&uts)).flatten()
        });
        init.as_deref() == Some(name)
    }

    fn runtimes(&mut self) -> &Runtimes {
        let (proc, pids) = (self.proc, self.pids);
        self.runtimes
            .get_or_insert_with(|| Runtimes::find(proc, pids))
    }
}

impl Registry {
    /// `own` is the agent's namespace (labelled "").
    pub fn new(own: NsId) -> Registry {
        Registry::with_dirs(own, "/run/netns".into(), "/proc".into())
    }

    fn with_dirs(own: NsId, run_netns: PathBuf, proc: PathBuf) -> Registry {
        Registry {
            own,
            run_netns,
            proc,
            found: HashMap::new(),
            relabelled: Vec::new(),
        }
    }

    /// The label of a namespace: "" for the agent's own, `None` if not (or no longer) found.
    pub fn label(&self, id: NsId) -> Option<&str> {
        if id == self.own {
            return Some("");
        }
        self.found.get(&id).map(|k| k.found.label.as_str())
    }

    /// Every namespace found by the last scan (the agent's own is never among them).
    pub fn known(&self) -> impl Iterator<Item = &Found> {
        self.found.values().map(|k| &k.found)
    }

    /// The labels replaced since the last call, oldest first.
    pub fn take_relabelled(&mut self) -> Vec<Relabel> {
        std::mem::take(&mut self.relabelled)
    }

    /// Looks again at /run/netns and /proc: returns every namespace present now (sorted by
    /// label), forgets those gone, and gives a better label to those that have one now.
    pub fn scan(&mut self) -> Vec<Found> {
        let pids = pids(&self.proc);
        let proc = self.proc.clone();
        let mut ctx = Context {
            proc: &proc,
            pids: &pids,
            own_uts: netns_id(&proc.join("thread-self/ns/uts")).ok(),
            own_hostname: fs::read_to_string(proc.join("sys/kernel/hostname"))
                .ok()
                .map(|h| h.trim().to_owned()),
            init_hostname: None,
            runtimes: None,
        };
        let mut now: HashMap<NsId, Found> = HashMap::new();
        // Named namespaces first: their name wins over a process label.
        for (name, path) in named(&self.run_netns) {
            let Ok(id) = netns_id(&path) else { continue };
            // An entry not (yet) bind-mounted is a plain file on tmpfs, not an nsfs inode.
            if id.dev != self.own.dev {
                continue;
            }
            let label = valid_label(&name).unwrap_or_else(|| ino_label(id));
            self.see(&mut now, id, path, Source::Named, &mut |_| {
                Some((label.clone(), Source::Named))
            });
        }
        for &pid in &pids {
            let path = self.proc.join(pid.to_string()).join("ns/net");
            let Ok(id) = netns_id(&path) else { continue };
            self.see(&mut now, id, path, Source::Runtime, &mut |better| {
                process_label(&mut ctx, pid, better)
            });
        }
        self.found.retain(|id, _| now.contains_key(id));
        let mut list: Vec<Found> = now.into_values().collect();
        list.sort_by(|a, b| a.label.cmp(&b.label));
        list
    }

    /// Records namespace `id`, found at `path`: a new one gets the best label `name` gives, a
    /// known one with a label below `at_most` (and still within its re-evaluation scans, unless
    /// the name is a /run/netns one) gets a better one if `name` finds it.
    ///
    /// `name(better_than)` returns a label whose source is above `better_than`, if any.
    fn see(
        &mut self,
        now: &mut HashMap<NsId, Found>,
        id: NsId,
        path: PathBuf,
        at_most: Source,
        name: &mut dyn FnMut(Option<Source>) -> Option<(Label, Source)>,
    ) {
        if id == self.own || now.contains_key(&id) {
            return;
        }
        let taken = |found: &HashMap<NsId, Known>, label: &Label| {
            label.is_empty()
                || found
                    .iter()
                    .any(|(o, k)| *o != id && k.found.label == *label)
        };
        let known = match self.found.get(&id) {
            Some(old) => {
                let mut known = old.clone();
                known.found.path = path;
                known.scans = known.scans.saturating_add(1);
                let open = known.source < Source::Runtime && known.scans <= REEVALUATE_SCANS;
                if known.source < at_most && (open || at_most == Source::Named) {
                    let better = name(Some(known.source));
                    if let Some((label, source)) = better.filter(|(l, _)| !taken(&self.found, l)) {
                        self.relabelled.push(Relabel {
                            id,
                            old: known.found.label.clone(),
                            new: label.clone(),
                        });
                        known.found.label = label;
                        known.source = source;
                    }
                }
                known
            }
            None => {
                let (mut label, mut source) =
                    name(None).unwrap_or_else(|| (fallback_label(&path, id), Source::Pid));
                if taken(&self.found, &label) {
                    label = fallback_label(&path, id);
                    // Still below the runtime's name: the name may come free.
                    source = source.min(Source::Pid);
                }
                Known {
                    found: Found { id, path, label },
                    source,
                    scans: 0,
                }
            }
        };
        now.insert(id, known.found.clone());
        self.found.insert(id, known);
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

/// The best label of process `pid`'s namespace whose source is above `better_than`.
fn process_label(
    ctx: &mut Context<'_>,
    pid: u32,
    better_than: Option<Source>,
) -> Option<(Label, Source)> {
    let above = |s: Source| better_than.is_none_or(|b| s > b);
    let dir = ctx.proc.join(pid.to_string());
    let cgroup = runtime::read_capped(&dir.join("cgroup"), 64 * 1024).unwrap_or_default();
    let cgroup = String::from_utf8_lossy(&cgroup);
    if above(Source::Runtime) {
        if let Some(id) = runtime::container_id(&cgroup) {
            if let Some(label) = ctx.runtimes().name(id).and_then(|n| cut_label(&n)) {
                return Some((label, Source::Runtime));
            }
        }
    }
    if above(Source::Hostname) {
        let uts_path = dir.join("ns/uts");
        if netns_id(&uts_path)
            .ok()
            .is_some_and(|uts| Some(uts) != ctx.own_uts)
        {
            let name = hostname_in(&uts_path).filter(|n| !ctx.is_hosts(n));
            let label = name.as_deref().and_then(valid_label);
            if let Some(label) = label {
                return Some((label, Source::Hostname));
            }
        }
    }
    if above(Source::Cgroup) {
        if let Some(label) = cgroup_label(&cgroup) {
            return Some((label, Source::Cgroup));
        }
    }
    above(Source::Pid).then(|| (pid_label(pid), Source::Pid))
}

/// A runtime's name as a label: cut to [`MAX_NAME`] bytes (a Kubernetes pod's name is often
/// longer), `None` if it holds a character a label may not.
fn cut_label(name: &str) -> Option<Label> {
    valid_label(name.get(..name.len().min(MAX_NAME))?)
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
    if let Some(id) = runtime::container_id(cgroup) {
        return id.get(..12).and_then(valid_label);
    }
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        let last = path.rsplit('/').next().unwrap_or("");
        (last.ends_with(".service") && path.contains("/system.slice/"))
            .then(|| valid_label(last))
            .flatten()
    })
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

    /// A fake /proc (and /run/netns) in a scratch folder: "namespaces" are plain files, each
    /// its own inode; the UTS namespaces are all the agent's, so no hostname is read.
    struct FakeProc {
        dir: hopcap_testkit::ScratchDir,
    }

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let dir = hopcap_testkit::ScratchDir::new(tag).unwrap();
            for d in [
                "proc/thread-self/ns",
                "proc/sys/kernel",
                "netns",
                "data",
                "ns",
            ] {
                fs::create_dir_all(dir.join(d)).unwrap();
            }
            fs::write(dir.join("proc/thread-self/ns/uts"), "").unwrap();
            fs::write(dir.join("proc/sys/kernel/hostname"), "vm\n").unwrap();
            fs::write(dir.join("ns/own"), "").unwrap();
            // A dockerd with its data root in the scratch folder, as the test engine runs.
            let d = dir.join("proc/7");
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("comm"), "dockerd\n").unwrap();
            fs::write(d.join("cgroup"), "0::/system.slice/docker.service\n").unwrap();
            let cmd = format!("dockerd\0--data-root\0{}\0", dir.join("data").display());
            fs::write(d.join("cmdline"), cmd).unwrap();
            std::os::unix::fs::symlink("/", d.join("root")).unwrap();
            FakeProc { dir }
        }

        fn registry(&self) -> Registry {
            let own = netns_id(&self.dir.join("ns/own")).unwrap();
            Registry::with_dirs(own, self.dir.join("netns"), self.dir.join("proc"))
        }

        /// Process `pid` in namespace `ns` (a file under ns/), in cgroup `cgroup`.
        fn process(&self, pid: u32, ns: &str, cgroup: &str) {
            let d = self.dir.join(&format!("proc/{pid}"));
            fs::create_dir_all(d.join("ns")).unwrap();
            let target = self.dir.join(&format!("ns/{ns}"));
            if !target.exists() {
                fs::write(&target, "").unwrap();
            }
            let _ = fs::remove_file(d.join("ns/net"));
            fs::hard_link(&target, d.join("ns/net")).unwrap();
            let _ = fs::remove_file(d.join("ns/uts"));
            fs::hard_link(self.dir.join("proc/thread-self/ns/uts"), d.join("ns/uts")).unwrap();
            fs::write(d.join("cgroup"), cgroup).unwrap();
        }

        fn container(&self, id: &str, name: &str) {
            let d = self.dir.join(&format!("data/containers/{id}"));
            fs::create_dir_all(&d).unwrap();
            let v2 = format!(r#"{{"Config":{{"Labels":{{"Name":"evil"}}}},"Name":"/{name}"}}"#);
            fs::write(d.join("config.v2.json"), v2).unwrap();
        }
    }

    fn labels(found: &[Found]) -> Vec<&str> {
        found.iter().map(|f| f.label.as_str()).collect()
    }

    #[test]
    fn a_transient_label_gives_way_to_the_runtime_name() {
        let fake = FakeProc::new("ns-relabel");
        let mut reg = fake.registry();
        // runc's child before it joined the container's cgroup: nothing to name it by.
        fake.process(100, "a", "0::/system.slice/containerd.service\n");
        assert_eq!(labels(&reg.scan()), ["containerd.service"]);
        assert!(reg.take_relabelled().is_empty());
        fake.process(100, "a", &format!("0::/docker/{ID}\n"));
        fake.container(ID, "web");
        assert_eq!(labels(&reg.scan()), ["web"]);
        let r = reg.take_relabelled();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].old.as_str(), r[0].new.as_str()),
            ("containerd.service", "web")
        );
        // Final: nothing changes it any more, not even another name on disk.
        fake.container(ID, "other");
        assert_eq!(labels(&reg.scan()), ["web"]);
        assert!(reg.take_relabelled().is_empty());
    }

    #[test]
    fn a_name_already_taken_is_not_given_twice() {
        let fake = FakeProc::new("ns-taken");
        let other = ID.replace('3', "4");
        fake.container(ID, "web");
        fake.container(&other, "web");
        fake.process(100, "a", &format!("0::/docker/{ID}\n"));
        fake.process(200, "b", &format!("0::/docker/{other}\n"));
        let mut reg = fake.registry();
        assert_eq!(labels(&reg.scan()), ["pid:200", "web"]);
        assert_eq!(labels(&reg.scan()), ["pid:200", "web"]);
        assert!(reg.take_relabelled().is_empty());
        // When the first goes, the name is free for the second.
        fs::remove_dir_all(fake.dir.join("proc/100")).unwrap();
        reg.scan();
        assert_eq!(labels(&reg.scan()), ["web"]);
        assert_eq!(reg.take_relabelled()[0].old.as_str(), "pid:200");
    }

    #[test]
    fn a_run_netns_name_replaces_a_process_label_and_reevaluation_stops() {
        let fake = FakeProc::new("ns-named");
        fake.process(100, "a", "0::/user.slice\n");
        let mut reg = fake.registry();
        assert_eq!(labels(&reg.scan()), ["pid:100"]);
        for _ in 0..REEVALUATE_SCANS + 1 {
            reg.scan();
        }
        // Past its re-evaluation scans a process label stays...
        fake.process(100, "a", &format!("0::/docker/{ID}\n"));
        assert_eq!(labels(&reg.scan()), ["pid:100"]);
        // ...but a /run/netns entry for the namespace (ip netns attach) still names it.
        fs::hard_link(fake.dir.join("ns/a"), fake.dir.join("netns/hce")).unwrap();
        assert_eq!(labels(&reg.scan()), ["hce"]);
        assert_eq!(reg.take_relabelled()[0].new.as_str(), "hce");
    }

    #[test]
    fn runtime_names_are_cut_to_a_label() {
        let long = "nginx-deployment-66b6c48dd5-4jw2hx7";
        assert_eq!(cut_label(long).as_deref(), Some(&long[..32]));
        assert_eq!(cut_label("a b"), None);
    }

    #[test]
    fn own_namespace_is_labelled_empty_and_never_listed() {
        let own = crate::sys::netns::current_netns_id().unwrap();
        let mut reg = Registry::new(own);
        assert_eq!(reg.label(own), Some(""));
        assert!(reg.scan().iter().all(|f| f.id != own));
    }
}
