//! Zero-copy header views, one file per header, in the manner of smoltcp's `wire` module.
//!
//! Each view wraps a byte buffer that starts at its header (`Packet<T: AsRef<[u8]>>`), keeps a
//! private `mod field` of byte ranges, and offers `new_unchecked` / `new_checked` plus
//! accessors. `new_checked` proves the fixed part of the header is present; accessors read
//! through [`read_u16`] and friends, which never index out of bounds (a short buffer reads as
//! zeros), so no accessor can panic even after `new_unchecked`.

use crate::layer::Invalid;

pub mod arp;
pub mod cisco;
pub mod erspan;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod gtpu;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod loopback;
pub mod mpls;
pub mod ppp;
pub mod pppoe;
pub mod sll;
pub mod sll2;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

/// A byte range of a header field.
pub type Field = core::ops::Range<usize>;

/// Why a view could not be made over a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends inside the header: `needed` bytes are required, `had` are there.
    Truncated { needed: usize, had: usize },
    /// The bytes are there but a field is inconsistent.
    Invalid(Invalid),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated { needed, had } => {
                write!(f, "header cut short: {needed} bytes needed, {had} there")
            }
            Error::Invalid(invalid) => write!(f, "invalid header: {invalid}"),
        }
    }
}

impl core::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// `Ok` when `buf` holds at least `needed` bytes.
pub fn check_len(buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        Err(Error::Truncated {
            needed,
            had: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// The byte at `at`, or 0 past the end.
#[inline]
pub fn read_u8(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

/// A fixed-size array starting at `at`, or zeros when the buffer is too short.
#[inline]
pub fn read_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

/// A big-endian u16 at `field.start`, or 0 when the buffer is too short.
#[inline]
pub fn read_u16(buf: &[u8], field: Field) -> u16 {
    u16::from_be_bytes(read_array(buf, field.start))
}

/// A big-endian u24 (VNI) at `field.start`, or 0 when the buffer is too short.
#[inline]
pub fn read_u24(buf: &[u8], field: Field) -> u32 {
    let [a, b, c] = read_array(buf, field.start);
    u32::from_be_bytes([0, a, b, c])
}

/// A big-endian u32 at `field.start`, or 0 when the buffer is too short.
#[inline]
pub fn read_u32(buf: &[u8], field: Field) -> u32 {
    u32::from_be_bytes(read_array(buf, field.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_never_go_out_of_bounds() {
        let buf = [1u8, 2, 3];
        assert_eq!(read_u8(&buf, 2), 3);
        assert_eq!(read_u8(&buf, 3), 0);
        assert_eq!(read_u16(&buf, 1..3), 0x0203);
        assert_eq!(read_u16(&buf, 2..4), 0);
        assert_eq!(read_u24(&buf, 0..3), 0x010203);
        assert_eq!(read_u32(&buf, 0..4), 0);
        assert_eq!(read_array::<2>(&buf, usize::MAX), [0, 0]);
    }

    #[test]
    fn check_len_reports_needed_and_had() {
        assert_eq!(check_len(&[0; 3], 3), Ok(()));
        assert_eq!(
            check_len(&[0; 3], 4),
            Err(Error::Truncated { needed: 4, had: 3 })
        );
    }
}
