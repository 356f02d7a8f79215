//! The names container runtimes give containers, read from their state on disk: no daemon is
//! asked, no client library linked.
//!
//! From a process's cgroup the container id (64 hex digits) is known; then, in this order:
//! 1. **Docker**: `<data-root>/containers/<id>/config.v2.json`, key `"Name"` (`"/web"` → `web`).
//!    The data roots are those of the running `dockerd` processes: `--data-root` (or the old
//!    `-g`/`--graph`) on its command line, else `"data-root"` in its `--config-file` (default
//!    `/etc/docker/daemon.json`), else `/var/lib/docker`. Each is read through
//!    `/proc/<dockerd>/root`, so it means what it means to that dockerd.
//! 2. **containerd** (Kubernetes through CRI, k3s): the OCI bundle
//!    `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`, annotations
//!    `io.kubernetes.cri.sandbox-name` (the pod: a network namespace is a pod's), else
//!    `io.kubernetes.cri.container-name`, for state folders `/run/containerd` and
//!    `/run/k3s/containerd`.
//!
//! Trust: a container cannot be trusted, so every file read is capped ([`read_capped`]), opened
//! without following a last-component symlink and only if it is a regular file; path parts
//! that come from the cgroup (the id) must be 64 hex digits; a process counts as a dockerd only
//! when its cgroup names no container (a container's process can call itself `dockerd`).
//! Nothing under a container's own root is read.

use super::json;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Largest state file read (bytes); a bigger one is read this far: its key may come before.
const MAX_STATE: u64 = 256 * 1024;
/// Largest /proc/PID/cmdline, daemon.json or comm read.
const MAX_SMALL: u64 = 64 * 1024;
/// containerd namespaces looked at per state folder.
const MAX_CONTAINERD_NAMESPACES: usize = 32;
const DOCKER_DEFAULT_ROOT: &str = "/var/lib/docker";
const DOCKER_DEFAULT_CONFIG: &str = "/etc/docker/daemon.json";
const CONTAINERD_STATES: [&str; 2] = ["/run/containerd", "/run/k3s/containerd"];
const CRI_POD: &str = "io.kubernetes.cri.sandbox-name";
const CRI_CONTAINER: &str = "io.kubernetes.cri.container-name";

/// Where the runtimes running now keep their state (found once per namespace scan).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Runtimes {
    /// Docker data roots, as paths the agent can open (through /proc/PID/root).
    pub docker: Vec<PathBuf>,
    /// containerd state folders that exist.
    pub containerd: Vec<PathBuf>,
}

impl Runtimes {
    /// Looks through `pids` (under `proc`) for dockerd processes, and for containerd's state.
    pub fn find(proc: &Path, pids: &[u32]) -> Runtimes {
        let mut docker = Vec::new();
        for &pid in pids {
            let dir = proc.join(pid.to_string());
            let comm = read_capped(&dir.join("comm"), MAX_SMALL).unwrap_or_default();
            if comm.strip_suffix(b"\n").unwrap_or(&comm) != b"dockerd" {
                continue;
            }
            let cgroup = read_capped(&dir.join("cgroup"), MAX_SMALL).unwrap_or_default();
            if container_id(&String::from_utf8_lossy(&cgroup)).is_some() {
                continue;
            }
            let Some(cmdline) = read_capped(&dir.join("cmdline"), MAX_SMALL) else {
                continue;
            };
            let root = dir.join("root");
            let data_root = docker_data_root(&cmdline, |config| {
                read_capped(&under(&root, config), MAX_SMALL)
            });
            let path = under(&root, &data_root);
            if !docker.contains(&path) {
                docker.push(path);
            }
        }
        let containerd = CONTAINERD_STATES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        Runtimes { docker, containerd }
    }

    /// The runtime's name for the container `id` (64 hex digits), as its state has it.
    pub fn name(&self, id: &str) -> Option<String> {
        if !is_container_id(id) {
            return None;
        }
        for root in &self.docker {
            let path = root.join("containers").join(id).join("config.v2.json");
            if let Some(name) = read_capped(&path, MAX_STATE).and_then(|b| docker_name(&b)) {
                return Some(name);
            }
        }
        for state in &self.containerd {
            let tasks = state.join("io.containerd.runtime.v2.task");
            let Ok(entries) = fs::read_dir(&tasks) else {
                continue;
            };
            for ns in entries.flatten().take(MAX_CONTAINERD_NAMESPACES) {
                let path = ns.path().join(id).join("config.json");
                if let Some(name) = read_capped(&path, MAX_STATE).and_then(|b| cri_name(&b)) {
                    return Some(name);
                }
            }
        }
        None
    }
}

/// The container id in /proc/PID/cgroup text: a last path component of 64 hex digits, bare
/// (cgroupfs: `/docker/ID`, `/kubepods/.../ID`) or in a systemd scope (`docker-ID.scope`,
/// `libpod-`, `cri-containerd-`, `crio-`).
pub fn container_id(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| {
        // "hierarchy:controllers:path"
        let path = line.splitn(3, ':').nth(2)?;
        let last = path.rsplit('/').next()?;
        let scope = last.strip_suffix(".scope").unwrap_or(last);
        let id = ["docker-", "libpod-", "cri-containerd-", "crio-"]
            .iter()
            .find_map(|prefix| scope.strip_prefix(prefix))
            .unwrap_or(scope);
        is_container_id(id).then_some(id)
    })
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Docker's data root from dockerd's command line (NUL-separated), else from its config file
/// (`read` gets the config's path), else the default.
pub fn docker_data_root(cmdline: &[u8], read: impl Fn(&Path) -> Option<Vec<u8>>) -> PathBuf {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let value = |names: &[&str]| {
        args.iter().enumerate().find_map(|(i, arg)| {
            names.iter().find_map(|name| {
                let rest = arg.strip_prefix(name.as_bytes())?;
                match rest.first() {
                    None => args.get(i + 1).copied(),
                    Some(b'=') => rest.get(1..),
                    Some(_) => None,
                }
            })
        })
    };
    let absolute = |v: &[u8]| {
        let s = std::str::from_utf8(v).ok()?;
        // A relative path would be relative to dockerd's working folder: not followed.
        s.starts_with('/').then(|| PathBuf::from(s))
    };
    if let Some(root) = value(&["--data-root", "--graph", "-g"]).and_then(absolute) {
        return root;
    }
    let config = value(&["--config-file"])
        .and_then(absolute)
        .unwrap_or_else(|| PathBuf::from(DOCKER_DEFAULT_CONFIG));
    let from_config = read(&config).and_then(|json| {
        let v = json::member(&json, "data-root").or_else(|| json::member(&json, "graph"))?;
        absolute(json::string(v)?.as_bytes())
    });
    from_config.unwrap_or_else(|| PathBuf::from(DOCKER_DEFAULT_ROOT))
}

/// `"Name":"/web"` of a config.v2.json → `web`.
pub fn docker_name(config: &[u8]) -> Option<String> {
    let name = json::string(json::member(config, "Name")?)?;
    let name = name.strip_prefix('/').unwrap_or(&name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// The pod's name, else the container's, from an OCI bundle config.json's CRI annotations.
pub fn cri_name(config: &[u8]) -> Option<String> {
    let annotations = json::member(config, "annotations")?;
    [CRI_POD, CRI_CONTAINER]
        .iter()
        .find_map(|key| json::string(json::member(annotations, key)?))
        .filter(|n| !n.is_empty())
}

/// `path` (absolute) as seen from the root folder `root` (e.g. /proc/PID/root).
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// At most `cap` bytes of a regular file; `None` if it cannot be opened, is not a regular file
/// or its last component is a symlink. Non-blocking open: a FIFO cannot stall the agent.
pub fn read_capped(path: &Path, cap: u64) -> Option<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    // /proc files have size 0 but are regular; a FIFO or device is not read.
    if !meta.file_type().is_file() {
        return None;
    }
    let mut out = Vec::with_capacity(meta.len().min(cap) as usize);
    file.take(cap).read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_testkit::ScratchDir;

    const ID: &str = "fbfd37bae5b610a446be38ec75e47e9c25ba6491f4222c4027ccdb2c59cd816b";

    #[test]
    fn container_ids_from_every_cgroup_layout() {
        for text in [
            format!("9:name=systemd:/docker/{ID}\n8:pids:/docker/{ID}\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-{ID}.scope"),
            format!("0::/kubepods/besteffort/pod1234/{ID}"),
            format!("0::/machine.slice/libpod-{ID}.scope/container"),
        ] {
            let got = container_id(&text);
            // libpod's scope is not the last component: not a container id there.
            if text.contains("libpod") {
                assert_eq!(got, None, "{text}");
            } else {
                assert_eq!(got, Some(ID), "{text}");
            }
        }
        assert_eq!(container_id("0::/system.slice/chronyd.service"), None);
        assert_eq!(container_id(&format!("0::/docker/{}", &ID[..63])), None);
        assert_eq!(container_id(&format!("0::/docker/{}g", &ID[..63])), None);
        assert_eq!(container_id("garbage"), None);
    }

    #[test]
    fn docker_data_root_from_flags_then_config_then_default() {
        let none = |_: &Path| None;
        let cmd = |args: &[&str]| args.join("\0").into_bytes();
        let root = |args: &[&str]| docker_data_root(&cmd(args), none);
        assert_eq!(root(&["dockerd", "--data-root", "/d"]), Path::new("/d"));
        assert_eq!(
            root(&["dockerd", "--data-root=/d", "-H", "x"]),
            Path::new("/d")
        );
        assert_eq!(root(&["dockerd", "-g", "/old"]), Path::new("/old"));
        assert_eq!(
            root(&["dockerd", "--data-rootx=/d"]),
            Path::new("/var/lib/docker")
        );
        assert_eq!(
            root(&["dockerd", "--data-root", "rel"]),
            Path::new("/var/lib/docker")
        );
        assert_eq!(
            root(&["dockerd", "--data-root"]),
            Path::new("/var/lib/docker")
        );
        let config = |path: &Path| {
            (path == Path::new("/etc/docker/daemon.json"))
                .then(|| br#"{"log-level":"info","data-root":"/srv/docker"}"#.to_vec())
        };
        assert_eq!(
            docker_data_root(&cmd(&["dockerd"]), config),
            Path::new("/srv/docker")
        );
        let other =
            |path: &Path| (path == Path::new("/c.json")).then(|| br#"{"graph":"/g"}"#.to_vec());
        assert_eq!(
            docker_data_root(&cmd(&["dockerd", "--config-file=/c.json"]), other),
            Path::new("/g")
        );
        let hostile = |_: &Path| Some(br#"{"data-root":"\"/x"#.to_vec());
        assert_eq!(
            docker_data_root(&cmd(&["dockerd"]), hostile),
            Path::new("/var/lib/docker")
        );
    }

    #[test]
    fn names_from_docker_and_cri_state() {
        let v2 = br#"{"StreamConfig":{},"Config":{"Labels":{"Name":"evil"}},"Name":"/web"}"#;
        assert_eq!(docker_name(v2).as_deref(), Some("web"));
        assert_eq!(docker_name(br#"{"Name":"/"}"#), None);
        assert_eq!(docker_name(br#"{"Config":{"Name":"/evil"}}"#), None);
        let pod = br#"{"ociVersion":"1.0.2","hostname":"web-7d9","annotations":{
            "io.kubernetes.cri.container-type":"sandbox",
            "io.kubernetes.cri.sandbox-name":"web-7d9","io.kubernetes.cri.sandbox-namespace":"default"}}"#;
        assert_eq!(cri_name(pod).as_deref(), Some("web-7d9"));
        let ctr = br#"{"annotations":{"io.kubernetes.cri.container-name":"nginx"}}"#;
        assert_eq!(cri_name(ctr).as_deref(), Some("nginx"));
        assert_eq!(cri_name(br#"{"annotations":{}}"#), None);
        assert_eq!(cri_name(br#"{"hostname":"x"}"#), None);
    }

    #[test]
    fn state_files_are_found_by_id_and_read_capped() {
        let dir = ScratchDir::new("runtime").unwrap();
        let data = dir.join("data");
        let ctr = data.join("containers").join(ID);
        fs::create_dir_all(&ctr).unwrap();
        fs::write(ctr.join("config.v2.json"), br#"{"ID":"x","Name":"/web"}"#).unwrap();
        let state = dir.join("state");
        let bundle = state.join("io.containerd.runtime.v2.task/k8s.io").join(ID);
        fs::create_dir_all(&bundle).unwrap();
        let pod = br#"{"annotations":{"io.kubernetes.cri.sandbox-name":"pod-1"}}"#;
        fs::write(bundle.join("config.json"), pod).unwrap();
        let docker = Runtimes {
            docker: vec![data.clone()],
            containerd: vec![],
        };
        assert_eq!(docker.name(ID).as_deref(), Some("web"));
        assert_eq!(docker.name("../../etc"), None);
        assert_eq!(docker.name(&ID.replace('f', "0")), None);
        let cri = Runtimes {
            docker: vec![dir.join("nowhere")],
            containerd: vec![state],
        };
        assert_eq!(cri.name(ID).as_deref(), Some("pod-1"));

        // A symlink as the last component is not followed; a big file is read only so far.
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(ctr.join("config.v2.json"), &link).unwrap();
        assert_eq!(read_capped(&link, 1024), None);
        let big = dir.join("big.json");
        fs::write(&big, vec![b'x'; 10_000]).unwrap();
        assert_eq!(read_capped(&big, 100).map(|b| b.len()), Some(100));
        assert_eq!(read_capped(dir.path(), 100), None);
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read_capped(&fifo, 100), None);
    }

    #[test]
    fn a_process_calling_itself_dockerd_in_a_container_is_not_a_dockerd() {
        let dir = ScratchDir::new("runtime-proc").unwrap();
        let fake = |pid: u32, cgroup: &str, root: &str| {
            let p = dir.join(&pid.to_string());
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("comm"), "dockerd\n").unwrap();
            fs::write(p.join("cgroup"), cgroup).unwrap();
            fs::write(p.join("cmdline"), format!("dockerd\0--data-root\0{root}\0")).unwrap();
            std::os::unix::fs::symlink("/", p.join("root")).unwrap();
        };
        fake(10, "0::/system.slice/docker.service\n", "/real");
        fake(20, &format!("0::/docker/{ID}\n"), "/evil");
        let found = Runtimes::find(dir.path(), &[10, 20, 30]);
        assert_eq!(found.docker, vec![dir.join("10/root/real")]);
    }
}
