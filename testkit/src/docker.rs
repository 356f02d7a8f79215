//! A real Docker engine on a board made of two private network namespaces (root only):
//!
//! ```text
//!   PREFIX-board                                        PREFIX-out (the outside host)
//!   dockerd, docker0 172.17.0.1/16, its containers
//!   wlan0 192.168.43.116/24 ─────── veth ─────────────  eth0 192.168.43.1/24
//! ```
//!
//! dockerd runs inside PREFIX-board (entered with `nsenter --net`, not `ip netns exec`, which
//! remounts /sys and breaks dockerd's cgroup set-up), with its data and exec roots in a
//! scratch folder, so docker0, its veths, and its MASQUERADE and DNAT rules stay there. The
//! image `hcbox` is imported from the machine's static busybox: no registry is needed.
//! Dropping the bed removes the containers, stops that dockerd by its PID (containerd, its
//! child, goes with it) and deletes both namespaces by exact name, also after a panic.

use crate::ScratchDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The board's uplink address (what a container is masqueraded to).
pub const UPLINK: &str = "192.168.43.116";
/// The outside host's address.
pub const OUTSIDE: &str = "192.168.43.1";
/// The image made from busybox.
pub const IMAGE: &str = "hcbox";
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: [&str; 8] = ["sh", "sleep", "nc", "ping", "ip", "echo", "cat", "true"];
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct DockerBed {
    pub prefix: String,
    dir: ScratchDir,
    dockerd: Option<Child>,
    /// Namespaces made so far, deleted by exact name.
    made: Vec<String>,
}

/// Why the engine tests cannot run here (`None`: they can): dockerd or busybox missing.
pub fn missing() -> Option<String> {
    let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !dockerd {
        return Some("dockerd is not installed (Debian: apt-get install docker.io)".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!(
            "{BUSYBOX} is missing (Debian: apt-get install busybox-static)"
        ));
    }
    None
}

/// Debian's client when present (it matches Debian's dockerd), else the one on PATH.
fn client() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

impl DockerBed {
    /// Makes the namespaces, starts dockerd in the board's and imports the image. `tag` tells
    /// this bed from others of the same test run.
    pub fn up(tag: &str) -> DockerBed {
        let mut bed = DockerBed {
            prefix: format!("hcdk{}{tag}", std::process::id()),
            dir: ScratchDir::new(&format!("docker-{tag}")).expect("scratch directory"),
            dockerd: None,
            made: Vec::new(),
        };
        for role in ["board", "out"] {
            let ns = bed.ns(role);
            bed.made.push(ns.clone());
            run(Command::new("ip").args(["netns", "add", &ns]));
            bed.ip(role, &["link", "set", "lo", "up"]);
        }
        let out = bed.ns("out");
        bed.ip(
            "board",
            &[
                "link", "add", "wlan0", "type", "veth", "peer", "name", "eth0", "netns", &out,
            ],
        );
        bed.ip(
            "board",
            &["addr", "add", &format!("{UPLINK}/24"), "dev", "wlan0"],
        );
        bed.ip("board", &["link", "set", "wlan0", "up"]);
        bed.ip("board", &["route", "add", "default", "via", OUTSIDE]);
        bed.ip(
            "out",
            &["addr", "add", &format!("{OUTSIDE}/24"), "dev", "eth0"],
        );
        bed.ip("out", &["link", "set", "eth0", "up"]);
        bed.start_dockerd();
        bed.import_image();
        bed
    }

    /// The full namespace name of a role: `board` or `out`.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// `ip -n <role> args...`; panics unless it succeeds.
    pub fn ip(&self, role: &str, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.ns(role)]).args(args));
    }

    /// Runs a command inside a role's namespace (`ip netns exec`); returns what it did.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// The bed's dockerd's PID.
    pub fn dockerd_pid(&self) -> Option<u32> {
        self.dockerd.as_ref().map(Child::id)
    }

    /// The docker client, pointed at this bed's dockerd.
    pub fn docker_cmd(&self) -> Command {
        let mut cmd = Command::new(client());
        cmd.env("DOCKER_HOST", format!("unix://{}", self.sock().display()));
        cmd
    }

    /// `docker args...`; panics unless it succeeds. Returns its stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = run(self.docker_cmd().args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// dockerd's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn start_dockerd(&mut self) {
        let log = std::fs::File::create(self.dir.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns("board")))
            .arg("dockerd")
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dockerd log"))
            .stderr(log)
            .spawn()
            .expect("spawn nsenter dockerd");
        // nsenter --net execs dockerd in place (no fork): the child's PID is dockerd's.
        self.dockerd = Some(child);
        let give_up = Instant::now() + PATIENCE;
        loop {
            let ready = self.docker_cmd().arg("version").output();
            if ready.is_ok_and(|o| o.status.success()) {
                return;
            }
            if let Some(status) = self.dockerd.as_mut().and_then(|c| c.try_wait().ok()?) {
                panic!("dockerd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < give_up,
                "dockerd not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn import_image(&self) {
        let rootfs = self.dir.join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).expect("rootfs");
        std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let stdin = tar.stdout.take().expect("tar stdout");
        run(self
            .docker_cmd()
            .args(["import", "-", IMAGE])
            .stdin(Stdio::from(stdin)));
        assert!(tar.wait().is_ok_and(|s| s.success()), "tar of the rootfs");
    }

    fn stop_dockerd(&mut self) {
        let Some(mut child) = self.dockerd.take() else {
            return;
        };
        // SIGTERM: dockerd stops its containers and unmounts their layers, then exits.
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let give_up = Instant::now() + PATIENCE;
        while Instant::now() < give_up {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DockerBed {
    fn drop(&mut self) {
        if self.dockerd.is_some() {
            let ids = self
                .docker_cmd()
                .args(["ps", "-aq"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self
                    .docker_cmd()
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        self.stop_dockerd();
        for ns in &self.made {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
