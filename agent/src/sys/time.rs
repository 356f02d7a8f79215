//! The kernel's clock discipline state (adjtimex with no change requested).

use hopcap_proto::message::ClockSync;

/// Reads the real-time clock's synchronisation state; `synced: None` if adjtimex fails
/// (a seccomp profile, an emulator).
pub fn clock_sync() -> ClockSync {
    // SAFETY: an all-zero `timex` is valid (modes = 0 asks for no change).
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: adjtimex reads and fills the `timex` it is given, which lives across the call;
    // with modes = 0 it changes nothing, so it needs no privilege.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return ClockSync::default();
    }
    ClockSync {
        synced: Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0),
        max_error_us: u64::try_from(tx.maxerror).unwrap_or(0),
    }
}
