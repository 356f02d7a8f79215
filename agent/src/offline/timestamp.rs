//! pcapng timestamps: ticks of a per-interface resolution, plus a per-interface offset.

/// if_tsresol to timestamp units per second: 10^n, or 2^n when the top bit is set (binary
/// resolutions are rare but valid; some parsers reject them).
pub(super) fn units_per_sec(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n)
    }
}

/// Timestamp ticks to ns since the epoch: exact for decimal resolutions up to 1 ns, floored
/// for finer or binary ones, clamped to the u64 range (a negative if_tsoffset can go below 0).
pub(super) fn ticks_to_ns(ticks: u64, units_per_sec: u64, offset_secs: i64) -> u64 {
    let ns = i128::from(ticks) * 1_000_000_000 / i128::from(units_per_sec.max(1))
        + i128::from(offset_secs) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}
