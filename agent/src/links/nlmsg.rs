//! Netlink framing: the 16-byte message header, the 4-byte attribute header, and requests.
//! Numbers are in host byte order (netlink never leaves the machine). Parsing never panics:
//! every read goes through `.get()` and a short or lying length is an [`Error`].

use core::ops::Range;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
/// Set on a dump message when the table changed while it was dumped: the dump is inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;

/// Why a buffer could not be read as netlink. Numbers, no strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A header or a body claims more bytes than the buffer has.
    Truncated {
        offset: usize,
        needed: usize,
        had: usize,
    },
    /// A length field smaller than its own header.
    BadLength { offset: usize, len: usize },
}

pub(crate) fn ne_u16(b: &[u8], r: Range<usize>) -> Option<u16> {
    b.get(r)?.try_into().ok().map(u16::from_ne_bytes)
}

pub(crate) fn ne_u32(b: &[u8], r: Range<usize>) -> Option<u32> {
    b.get(r)?.try_into().ok().map(u32::from_ne_bytes)
}

mod field {
    use core::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const PID: Range<usize> = 12..16;
    pub const HEADER_LEN: usize = 16;
    /// nlattr: length (header included), then type.
    pub const ATTR_LEN: Range<usize> = 0..2;
    pub const ATTR_TYPE: Range<usize> = 2..4;
    pub const ATTR_HEADER_LEN: usize = 4;
}

/// Netlink aligns every message and attribute to 4 bytes.
pub fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// One netlink message, its header read, its payload borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    pub payload: &'a [u8],
    /// The whole message, header included, padding not.
    pub raw: &'a [u8],
}

impl Message<'_> {
    /// The errno of an NLMSG_ERROR message (0 is an ACK), `None` for other types.
    pub fn error_code(&self) -> Option<i32> {
        if self.ty != NLMSG_ERROR {
            return None;
        }
        // struct nlmsgerr starts with a negative errno.
        let code = ne_u32(self.payload, 0..4).map_or(-libc::EBADMSG, |v| v as i32);
        Some(-code)
    }
}

/// The messages of one received datagram, in order. Stops after the first error.
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let len_of = |h: &[u8]| ne_u32(h, field::LEN).map_or(0, |v| v as usize);
        let raw = match next_record(self.buf, &mut self.offset, field::HEADER_LEN, len_of)? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Message {
            ty: ne_u16(raw, field::TYPE).unwrap_or(0),
            flags: ne_u16(raw, field::FLAGS).unwrap_or(0),
            seq: ne_u32(raw, field::SEQ).unwrap_or(0),
            pid: ne_u32(raw, field::PID).unwrap_or(0),
            payload: raw.get(field::HEADER_LEN..).unwrap_or(&[]),
            raw,
        }))
    }
}

/// The record (header included) at `*offset` of `buf`, in the framing messages and
/// attributes share: a `header_len`-byte header whose length field (`len_of`) counts the
/// header too, and records padded to 4 bytes. `*offset` moves past it; after an error it
/// moves to the end, so iteration stops.
fn next_record<'a>(
    buf: &'a [u8],
    offset: &mut usize,
    header_len: usize,
    len_of: impl Fn(&[u8]) -> usize,
) -> Option<Result<&'a [u8], Error>> {
    let rest = buf.get(*offset..).filter(|r| !r.is_empty())?;
    let at = *offset;
    *offset = buf.len();
    if rest.len() < header_len {
        return Some(Err(Error::Truncated {
            offset: at,
            needed: header_len,
            had: rest.len(),
        }));
    }
    let len = len_of(rest);
    if len < header_len {
        return Some(Err(Error::BadLength { offset: at, len }));
    }
    let Some(record) = rest.get(..len) else {
        return Some(Err(Error::Truncated {
            offset: at,
            needed: len,
            had: rest.len(),
        }));
    };
    *offset = at.saturating_add(align4(len)).min(buf.len());
    Some(Ok(record))
}

/// One attribute: its type (the NESTED / NET_BYTEORDER flag bits removed) and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ty: u16,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u8(&self) -> Option<u8> {
        self.payload.first().copied()
    }
    pub fn u32(&self) -> Option<u32> {
        ne_u32(self.payload, 0..4)
    }
    pub fn i32(&self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    /// A NUL-terminated string attribute, without its NUL.
    pub fn bytes_z(&self) -> &'a [u8] {
        let end = self.payload.iter().position(|&b| b == 0);
        self.payload
            .get(..end.unwrap_or(self.payload.len()))
            .unwrap_or(&[])
    }
    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }
}

/// The attributes in a message body after its fixed part. Stops after the first error.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let len_of = |h: &[u8]| ne_u16(h, field::ATTR_LEN).map_or(0, usize::from);
        let raw = match next_record(self.buf, &mut self.offset, field::ATTR_HEADER_LEN, len_of)? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Attr {
            ty: ne_u16(raw, field::ATTR_TYPE).unwrap_or(0) & 0x3fff,
            payload: raw.get(field::ATTR_HEADER_LEN..).unwrap_or(&[]),
        }))
    }
}

/// Builds one request: header, the fixed body (`ifinfomsg`, `ifaddrmsg`, `rtgenmsg`...), then
/// attributes, each padded to 4 bytes.
pub fn request(ty: u16, flags: u16, seq: u32, body: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; field::HEADER_LEN];
    out.extend_from_slice(body);
    out.resize(align4(out.len()), 0);
    for (attr_ty, payload) in attrs {
        let len = field::ATTR_HEADER_LEN + payload.len();
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&attr_ty.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(align4(out.len()), 0);
    }
    let total = out.len() as u32;
    out[field::LEN].copy_from_slice(&total.to_ne_bytes());
    out[field::TYPE].copy_from_slice(&ty.to_ne_bytes());
    out[field::FLAGS].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    out[field::SEQ].copy_from_slice(&seq.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_through_the_parser() {
        let req = request(
            18,
            NLM_F_DUMP,
            7,
            &[0u8; 16],
            &[(29, &1u32.to_ne_bytes()), (3, b"ab\0")],
        );
        assert_eq!(req.len() % 4, 0);
        let msgs: Vec<_> = Messages::new(&req).collect();
        assert_eq!(msgs.len(), 1);
        let msg = msgs[0].unwrap();
        assert_eq!(
            (msg.ty, msg.flags, msg.seq),
            (18, NLM_F_DUMP | NLM_F_REQUEST, 7)
        );
        let attrs: Vec<_> = Attrs::new(&msg.payload[16..]).map(Result::unwrap).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!((attrs[0].ty, attrs[0].u32()), (29, Some(1)));
        assert_eq!((attrs[1].ty, attrs[1].bytes_z()), (3, &b"ab"[..]));
    }

    #[test]
    fn short_and_lying_lengths_are_errors_not_panics() {
        let req = request(16, 0, 1, &[0u8; 16], &[(3, b"eth0\0")]);
        for cut in 0..req.len() {
            let got: Vec<_> = Messages::new(&req[..cut]).collect();
            if cut == 0 {
                assert!(got.is_empty());
            } else {
                assert!(matches!(
                    got.as_slice(),
                    [Err(Error::Truncated { offset: 0, .. })]
                ));
            }
        }
        let mut lying = req.clone();
        lying[0..4].copy_from_slice(&3u32.to_ne_bytes());
        let got: Vec<_> = Messages::new(&lying).collect();
        assert_eq!(got, vec![Err(Error::BadLength { offset: 0, len: 3 })]);
        // An attribute longer than its message.
        let attrs = [8u8, 0, 3, 0, b'a'];
        let got: Vec<_> = Attrs::new(&attrs).collect();
        assert_eq!(
            got,
            vec![Err(Error::Truncated {
                offset: 0,
                needed: 8,
                had: 5
            })]
        );
    }

    #[test]
    fn error_message_carries_errno() {
        let mut body = (-libc::ENOENT).to_ne_bytes().to_vec();
        body.extend_from_slice(&[0u8; 16]);
        let req = request(NLMSG_ERROR, 0, 1, &body, &[]);
        let msg = Messages::new(&req).next().unwrap().unwrap();
        assert_eq!(msg.error_code(), Some(libc::ENOENT));
    }
}
