//! The calling thread's capabilities (capget/capset, linux/capability.h) and the prctl bits
//! that make a drop stick: the bounding set, the ambient set and no_new_privs.
//!
//! Every one of these is per thread. A thread made later inherits its maker's sets, so the
//! caller drops before it starts any thread that should not keep the old ones.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set (capabilities 0..=63).
const VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-bit word of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// A set of capabilities, bit N = capability N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    pub const fn of(caps: &[u32]) -> CapSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < caps.len() {
            bits |= 1 << caps[i];
            i += 1;
        }
        CapSet(bits)
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// Capability numbers in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&c| self.contains(c))
    }
}

/// The calling thread's effective, permitted and inheritable sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCaps {
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
}

fn join(low: u32, high: u32) -> CapSet {
    CapSet(u64::from(low) | u64::from(high) << 32)
}

/// The calling thread's capability sets.
pub fn current() -> io::Result<ThreadCaps> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `__user_cap_data_struct`s (version 3) into `data`, which has
    // room for exactly that, and reads `header`; both live across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ThreadCaps {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// Sets the calling thread's effective and permitted sets to `keep` (which must be within
/// the permitted set) and clears the inheritable set.
pub fn set(keep: CapSet) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let word = |half: u32| (keep.0 >> (32 * half)) as u32;
    let data = [
        Data {
            effective: word(0),
            permitted: word(0),
            inheritable: 0,
        },
        Data {
            effective: word(1),
            permitted: word(1),
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads `header` and two `__user_cap_data_struct`s (version 3) from `data`,
    // both valid for the call; it may write the kernel's preferred version into `header`.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the options used here (bounding set, ambient set, no_new_privs) take integer
    // arguments only; unused arguments must be zero.
    let rc = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Removes `cap` from the bounding set, so no later execve can regain it (needs
/// CAP_SETPCAP in the effective set: EPERM otherwise).
pub fn bounding_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)).map(drop)
}

/// Whether `cap` is in the bounding set (EINVAL past the kernel's last capability).
pub fn bounding_has(cap: u32) -> io::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)).map(|rc| rc == 1)
}

/// Empties the ambient set (EINVAL on kernels before 4.3, which have none).
pub fn ambient_clear() -> io::Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    )
    .map(drop)
}

/// Sets no_new_privs: no execve from here on grants privileges (setuid bits, file
/// capabilities). It cannot be unset.
pub fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
}

/// Whether no_new_privs is set.
pub fn no_new_privs() -> io::Result<bool> {
    prctl(libc::PR_GET_NO_NEW_PRIVS, 0).map(|rc| rc == 1)
}

/// Whether the process runs with effective uid 0.
pub fn euid_is_root() -> bool {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}
