//! One MPLS label stack entry (RFC 3032): label, traffic class, bottom-of-stack, TTL.

use super::{check_len, read_u32, Result};
use crate::layer::Layer;

mod field {
    use crate::wire::Field;
    pub const ENTRY: Field = 0..4;
}

pub const HEADER_LEN: usize = field::ENTRY.end;

/// A view of a label stack entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Entry<T> {
    pub const fn new_unchecked(buffer: T) -> Entry<T> {
        Entry { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Entry<T>> {
        let entry = Entry::new_unchecked(buffer);
        check_len(entry.buffer.as_ref(), HEADER_LEN)?;
        Ok(entry)
    }

    fn word(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ENTRY)
    }

    pub fn label(&self) -> u32 {
        self.word() >> 12
    }

    pub fn tc(&self) -> u8 {
        ((self.word() >> 9) & 0x7) as u8
    }

    pub fn bottom(&self) -> bool {
        self.word() & 0x100 != 0
    }

    pub fn ttl(&self) -> u8 {
        self.word() as u8
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn layer(&self) -> Layer {
        Layer::Mpls {
            label: self.label(),
            tc: self.tc(),
            bottom: self.bottom(),
            ttl: self.ttl(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn splits_entry() {
        // Label 16106, TC 5, bottom of stack, TTL 63.
        let e = [0x03, 0xee, 0xab, 0x3f];
        assert_eq!(
            Entry::new_checked(&e[..]).unwrap().layer(),
            Layer::Mpls {
                label: 16106,
                tc: 5,
                bottom: true,
                ttl: 63
            }
        );
        assert_eq!(
            Entry::new_checked(&e[..3]).unwrap_err(),
            Error::Truncated { needed: 4, had: 3 }
        );
    }
}
