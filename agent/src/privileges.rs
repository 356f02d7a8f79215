//! After set-up the agent keeps only the capabilities the rest of its run needs, sets
//! no_new_privs, and says what it kept.
//!
//! What a run needs once its sockets are open:
//! - CAP_NET_RAW: a packet socket for every namespace that appears later (and the one job
//!   the agent is for);
//! - with `--netns` other than `none`: CAP_SYS_ADMIN to enter namespaces found later (setns,
//!   for their socket and their UTS hostname) and CAP_SYS_PTRACE to find them through
//!   /proc/PID/ns/net of processes of other users (ptrace access mode read). A named
//!   `--netns` keeps them too: `ip netns del a; ip netns add a` or a container restarted
//!   under its name is a new namespace to enter;
//! - with `--netns` and not running as root: CAP_DAC_READ_SEARCH, to read the container
//!   runtimes' state for container names (`/var/lib/docker` is 0710 root; root reads it as
//!   its owner).
//!
//! Everything else goes from the effective, permitted and inheritable sets, and (when the
//! agent holds CAP_SETPCAP, as root does) from the bounding set, so that no execve can
//! regain it; the ambient set is emptied. These are per-thread: the caller drops before it
//! starts its other threads (see `main`), and the test checks every thread of the process.

use crate::links::NetnsSpec;
use crate::sys::caps::{self, CapSet};
use std::fmt;
use std::io;

pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;

/// Names of the capabilities the agent talks about (linux/capability.h).
const NAMES: [(u32, &str); 8] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"),
    (CAP_SETPCAP, "CAP_SETPCAP"),
    (12, "CAP_NET_ADMIN"),
    (CAP_NET_RAW, "CAP_NET_RAW"),
    (CAP_SYS_PTRACE, "CAP_SYS_PTRACE"),
    (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
];

/// The highest capability number any kernel defines today is 40 (CAP_CHECKPOINT_RESTORE);
/// the bounding set is walked until the kernel says EINVAL, up to this.
const LAST_CAP_BOUND: u32 = 63;

/// What a run needs after set-up; `root`: the agent runs as uid 0.
pub fn needed(netns: &NetnsSpec, root: bool) -> CapSet {
    match netns {
        NetnsSpec::None => CapSet::of(&[CAP_NET_RAW]),
        NetnsSpec::All | NetnsSpec::Named(_) if root => {
            CapSet::of(&[CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYS_PTRACE])
        }
        NetnsSpec::All | NetnsSpec::Named(_) => CapSet::of(&[
            CAP_NET_RAW,
            CAP_SYS_ADMIN,
            CAP_SYS_PTRACE,
            CAP_DAC_READ_SEARCH,
        ]),
    }
}

/// The outcome of [`drop_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The effective set afterwards.
    pub kept: CapSet,
    /// Needed but not held when the drop began (an unprivileged run without them).
    pub missing: CapSet,
    /// Capabilities removed from the bounding set.
    pub bounding_dropped: u32,
}

/// Why the drop failed. The agent does not go on with more than it said it keeps.
#[derive(Debug)]
pub struct DropError {
    pub step: &'static str,
    pub source: io::Error,
}

impl fmt::Display for DropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot drop capabilities ({}): {}",
            self.step, self.source
        )
    }
}

impl std::error::Error for DropError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn step(step: &'static str) -> impl FnOnce(io::Error) -> DropError {
    move |source| DropError { step, source }
}

/// Keeps `needed` (where held) and drops every other capability of the calling thread,
/// then sets no_new_privs.
pub fn drop_to(needed: CapSet) -> Result<Dropped, DropError> {
    let before = caps::current().map_err(step("capget"))?;
    let mut bounding_dropped = 0;
    if before.effective.contains(CAP_SETPCAP) {
        for cap in 0..=LAST_CAP_BOUND {
            match caps::bounding_has(cap) {
                Ok(true) if !needed.contains(cap) => {
                    caps::bounding_drop(cap).map_err(step("bounding set"))?;
                    bounding_dropped += 1;
                }
                Ok(_) => {}
                // Past the kernel's last capability.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(step("bounding set")(e)),
            }
        }
    }
    match caps::ambient_clear() {
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(step("ambient set")(e)),
        _ => {}
    }
    caps::set_no_new_privs().map_err(step("no_new_privs"))?;
    caps::set(needed.intersect(before.permitted)).map_err(step("capset"))?;
    let after = caps::current().map_err(step("capget"))?;
    Ok(Dropped {
        kept: after.effective,
        missing: CapSet(needed.0 & !before.permitted.0),
        bounding_dropped,
    })
}

/// `CAP_NET_RAW, CAP_SYS_ADMIN`, or `none`.
pub fn names(set: CapSet) -> String {
    let mut out = String::new();
    for cap in set.iter() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        match NAMES.iter().find(|(n, _)| *n == cap) {
            Some((_, name)) => out.push_str(name),
            None => out.push_str(&format!("capability {cap}")),
        }
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_in_its_own_namespace_keeps_only_net_raw() {
        assert_eq!(needed(&NetnsSpec::None, true), CapSet(1 << 13));
        assert_eq!(needed(&NetnsSpec::None, false), CapSet(1 << 13));
        let all = needed(&NetnsSpec::All, true);
        assert_eq!(all, needed(&NetnsSpec::Named(vec!["web".into()]), true));
        assert_eq!(all.iter().collect::<Vec<_>>(), [13, 19, 21]);
        let unprivileged = needed(&NetnsSpec::All, false);
        assert_eq!(unprivileged.iter().collect::<Vec<_>>(), [2, 13, 19, 21]);
    }

    #[test]
    fn names_are_the_kernel_header_names() {
        assert_eq!(names(CapSet(0)), "none");
        assert_eq!(
            names(CapSet::of(&[21, 13, 40])),
            "CAP_NET_RAW, CAP_SYS_ADMIN, capability 40"
        );
    }

    /// Runs in a thread of its own: capabilities are per thread, and this one is dropped for
    /// good. As root the drop must leave exactly NET_RAW, an empty bounding set but for it,
    /// and no_new_privs; unprivileged it must keep nothing and still succeed.
    #[test]
    fn dropping_leaves_exactly_what_was_kept() {
        let got = std::thread::spawn(|| {
            let before = caps::current().unwrap();
            let dropped = drop_to(CapSet::of(&[CAP_NET_RAW])).unwrap();
            let after = caps::current().unwrap();
            let bounding: Vec<u32> = (0..=LAST_CAP_BOUND)
                .take_while(|&c| caps::bounding_has(c).is_ok())
                .filter(|&c| matches!(caps::bounding_has(c), Ok(true)))
                .collect();
            (
                before,
                dropped,
                after,
                bounding,
                caps::no_new_privs().unwrap(),
            )
        })
        .join()
        .unwrap();
        let (before, dropped, after, bounding, nnp) = got;
        assert!(nnp);
        assert_eq!(after.inheritable, CapSet(0));
        assert_eq!(after.effective, after.permitted);
        assert_eq!(dropped.kept, after.effective);
        if before.permitted.contains(CAP_NET_RAW) {
            assert_eq!(after.effective, CapSet::of(&[CAP_NET_RAW]));
            assert_eq!(dropped.missing, CapSet(0));
        } else {
            assert_eq!(after.effective, CapSet(0));
            assert_eq!(dropped.missing, CapSet::of(&[CAP_NET_RAW]));
        }
        if before.effective.contains(CAP_SETPCAP) {
            assert_eq!(bounding, [CAP_NET_RAW]);
            assert!(dropped.bounding_dropped > 30);
        }
        // This thread (the test harness's) was not touched.
        assert_eq!(caps::current().unwrap().permitted, before.permitted);
    }
}
