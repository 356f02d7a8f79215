//! Running code inside another network namespace on the calling thread. Sockets created there
//! stay in that namespace after the thread returns (a socket belongs to the namespace it was
//! created in), which is how one agent captures every container's links.

use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The calling thread's own network namespace.
pub const OWN_NETNS: &str = "/proc/thread-self/ns/net";

/// A network namespace's identity: its nsfs inode (the same namespace reached through
/// /run/netns/X and /proc/PID/ns/net has the same one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

/// The identity of the namespace at `ns_path` (a /run/netns/NAME or /proc/PID/ns/net).
pub fn netns_id(ns_path: &Path) -> io::Result<NsId> {
    let meta = std::fs::metadata(ns_path)?;
    Ok(NsId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The identity of the calling thread's network namespace.
pub fn current_netns_id() -> io::Result<NsId> {
    netns_id(Path::new(OWN_NETNS))
}

/// Moves the thread back to its namespace when dropped (also while unwinding from a panic).
struct Return {
    home: File,
}

impl Drop for Return {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.home, CloneFlags::CLONE_NEWNET) {
            // Going on would attribute every later socket and link of this thread to the
            // wrong namespace; with the home namespace's fd in hand this cannot normally fail.
            log::error!("cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Runs `f` on this thread inside the network namespace at `ns_path`, then returns to the
/// current one, also if `f` panics (the panic then continues).
pub fn in_netns<R>(ns_path: &Path, f: impl FnOnce() -> R) -> io::Result<R> {
    let target = File::open(ns_path)?;
    let home = File::open(OWN_NETNS)?;
    setns(&target, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    let _return = Return { home };
    Ok(f())
}

/// net.core.optmem_max of the calling thread's network namespace (the sysctl is per
/// namespace on recent kernels, global on older ones): the most socket option memory, the
/// attached BPF filter included, that one socket may hold.
pub fn optmem_max() -> io::Result<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/core/optmem_max")?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
