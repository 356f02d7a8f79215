//! The values a primitive takes: addresses, partial IPv4 networks, numbers.

use crate::types::Addr;
use core::net::{Ipv4Addr, Ipv6Addr};

/// Keywords never start with a digit; IPv6 addresses may start with a letter but hold ':'.
pub(super) fn looks_like_id(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_digit()) || w.contains(':')
}

pub(super) fn parse_addr(w: &str) -> Option<Addr> {
    if w.contains(':') {
        w.parse::<Ipv6Addr>().ok().map(|a| Addr::V6(a.octets()))
    } else {
        w.parse::<Ipv4Addr>().ok().map(|a| Addr::V4(a.octets()))
    }
}

/// Decimal or `0x` hex, as u32 (None if not a number or too large).
pub(super) fn parse_number(w: &str) -> Option<u32> {
    match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None if w.bytes().all(|b| b.is_ascii_digit()) => w.parse().ok(),
        None => None,
    }
}

/// `10`, `10.1`, `10.1.2`, `10.1.2.3` and the number of bits they give (8 per part).
pub(super) fn parse_partial_v4(w: &str) -> Option<([u8; 4], u8)> {
    let mut addr = [0u8; 4];
    let mut parts = 0u8;
    for part in w.split('.') {
        let slot = addr.get_mut(usize::from(parts))?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
        parts += 1;
    }
    Some((addr, parts * 8))
}

pub(super) fn prefix_mask_v4(len: u8) -> [u8; 4] {
    let m = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    m.to_be_bytes()
}
