//! Versioned framing of [`Message`]s on a byte stream (TCP).
//!
//! ```text
//! offset 0  2 bytes  magic "HC"
//!        2  u16 BE   protocol version
//!        4  u8       message type (see MessageType)
//!        5  u32 BE   body length
//!        9  body     postcard (a Batch body is the batch codec's bytes verbatim)
//! ```
//!
//! Decoding follows mini-redis `Connection::parse_frame`: the caller keeps a receive buffer,
//! calls [`FrameDecoder::decode`] on it, and on `Some((frame, consumed))` drops `consumed`
//! bytes after using the frame; on `None` it reads more. The header is checked first, so an
//! oversized, foreign or future frame is rejected before its body is waited for, and a body is
//! parsed only once it is complete. Nothing here allocates.

use crate::message::{
    Ack, Bye, Hello, LinkRemoved, Links, Message, MessageType, Stats, Tally, PROTOCOL_VERSION,
};
use serde::Serialize;

pub const MAGIC: [u8; 2] = *b"HC";
pub const HEADER_LEN: usize = 9;
/// Protocol versions this build decodes.
pub const MIN_VERSION: u16 = PROTOCOL_VERSION;
pub const MAX_VERSION: u16 = PROTOCOL_VERSION;
/// A sensible default bound for [`FrameDecoder::new`]: a full batch with room to spare.
pub const DEFAULT_MAX_FRAME: u32 = 1 << 20;

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub version: u16,
    pub message: Message<'a>,
}

/// The fixed header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: u16,
    pub message_type: MessageType,
    pub body_len: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The stream does not start with [`MAGIC`] (not a hopcap agent, or out of sync).
    BadMagic {
        got: [u8; 2],
    },
    UnsupportedVersion {
        got: u16,
        min: u16,
        max: u16,
    },
    UnknownMessageType {
        got: u8,
    },
    /// The header announces a body larger than the decoder accepts.
    TooLarge {
        body_len: u32,
        max: u32,
    },
    /// The body of a complete frame did not parse as its message type.
    Malformed {
        message_type: MessageType,
        body_len: u32,
        error: postcard::Error,
    },
    /// The body parsed but left `trailing` of its `body_len` bytes unread.
    TrailingBytes {
        message_type: MessageType,
        body_len: u32,
        trailing: u32,
    },
    /// The stream ended inside a frame: `had` bytes of the `needed`.
    TruncatedAtEof {
        needed: u64,
        had: u64,
    },
    /// Encoding: the output buffer holds `had` bytes, the frame needs more (`needed`).
    BufferTooSmall {
        needed: usize,
        had: usize,
    },
    /// Encoding: the body is longer than a u32 length can say.
    BodyTooLong {
        len: usize,
    },
    /// A known message type where only another one may come (an agent reading acks).
    UnexpectedMessage {
        got: MessageType,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::BadMagic { got } => {
                write!(
                    f,
                    "not a hopcap frame (starts {:02x} {:02x})",
                    got[0], got[1]
                )
            }
            FrameError::UnsupportedVersion { got, min, max } => {
                write!(f, "protocol version {got} (this side speaks {min}..={max})")
            }
            FrameError::UnknownMessageType { got } => write!(f, "unknown message type {got}"),
            FrameError::TooLarge { body_len, max } => {
                write!(f, "frame body of {body_len} bytes (at most {max} accepted)")
            }
            FrameError::Malformed {
                message_type,
                body_len,
                error,
            } => write!(
                f,
                "malformed {message_type} body ({body_len} bytes): {error}"
            ),
            FrameError::TrailingBytes {
                message_type,
                body_len,
                trailing,
            } => write!(
                f,
                "{message_type} body of {body_len} bytes has {trailing} bytes left over"
            ),
            FrameError::TruncatedAtEof { needed, had } => {
                write!(f, "stream ended inside a frame: {had} of {needed} bytes")
            }
            FrameError::BufferTooSmall { needed, had } => {
                write!(f, "frame needs {needed} bytes, the buffer holds {had}")
            }
            FrameError::BodyTooLong { len } => {
                write!(f, "body of {len} bytes is too long for a frame")
            }
            FrameError::UnexpectedMessage { got } => write!(f, "unexpected {got} message"),
        }
    }
}

impl core::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            FrameError::Malformed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The largest body an [`Ack`] frame can have (a postcard varint u64).
pub const MAX_ACK_BODY: u32 = 10;

/// Parses one collector acknowledgement at the start of `buf`: `Ok(Some((consumed, seq)))`,
/// or `Ok(None)` if more bytes are needed. Reads the header and at most [`MAX_ACK_BODY`]
/// bytes, with no decoder state: the agent's ack reader runs on a small stack.
pub fn parse_ack(buf: &[u8]) -> Result<Option<(usize, u64)>, FrameError> {
    let Some(header) = parse_header(buf)? else {
        return Ok(None);
    };
    if header.message_type != MessageType::Ack {
        return Err(FrameError::UnexpectedMessage {
            got: header.message_type,
        });
    }
    if header.body_len > MAX_ACK_BODY {
        return Err(FrameError::TooLarge {
            body_len: header.body_len,
            max: MAX_ACK_BODY,
        });
    }
    let total = HEADER_LEN + header.body_len as usize;
    let Some(body) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    match parse_body(header, body)? {
        Message::Ack(a) => Ok(Some((total, a.seq))),
        _ => Err(FrameError::UnexpectedMessage {
            got: header.message_type,
        }),
    }
}

/// Parses the fixed header at the start of `buf`, or `Ok(None)` if fewer than
/// [`HEADER_LEN`] bytes are there. Checks magic, version and type; not the length bound.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        // Reject a wrong magic as soon as its bytes are here: a foreign peer gets a quick error.
        for (i, &b) in buf.iter().take(2).enumerate() {
            if b != MAGIC[i] {
                let mut got = [0; 2];
                got[..buf.len().min(2)].copy_from_slice(&buf[..buf.len().min(2)]);
                return Err(FrameError::BadMagic { got });
            }
        }
        return Ok(None);
    };
    let got = [h[0], h[1]];
    if got != MAGIC {
        return Err(FrameError::BadMagic { got });
    }
    let version = u16::from_be_bytes([h[2], h[3]]);
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(FrameError::UnsupportedVersion {
            got: version,
            min: MIN_VERSION,
            max: MAX_VERSION,
        });
    }
    let message_type =
        MessageType::from_u8(h[4]).ok_or(FrameError::UnknownMessageType { got: h[4] })?;
    let body_len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    Ok(Some(FrameHeader {
        version,
        message_type,
        body_len,
    }))
}

/// A streaming frame decoder with a bound on the body size.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_body: u32,
    frames: u64,
}

impl FrameDecoder {
    /// `max_body`: the largest body accepted; the caller's buffer never needs to hold more
    /// than `HEADER_LEN + max_body` bytes.
    pub fn new(max_body: u32) -> FrameDecoder {
        FrameDecoder {
            max_body,
            frames: 0,
        }
    }

    pub fn max_body(&self) -> u32 {
        self.max_body
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Decodes the frame at the start of `buf`. `Ok(None)`: incomplete, read more.
    /// `Ok(Some((frame, consumed)))`: the caller drops `consumed` bytes once done with `frame`.
    /// An error is final for the connection (the stream cannot be resynchronised).
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<Option<(Frame<'b>, usize)>, FrameError> {
        let Some(header) = parse_header(buf)? else {
            return Ok(None);
        };
        if header.body_len > self.max_body {
            return Err(FrameError::TooLarge {
                body_len: header.body_len,
                max: self.max_body,
            });
        }
        let too_large = FrameError::TooLarge {
            body_len: header.body_len,
            max: self.max_body,
        };
        // (usize may be 32 bits on the boards)
        let total = usize::try_from(header.body_len)
            .ok()
            .and_then(|b| b.checked_add(HEADER_LEN))
            .ok_or(too_large)?;
        let Some(body) = buf.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        let message = parse_body(header, body)?;
        self.frames += 1;
        Ok(Some((
            Frame {
                version: header.version,
                message,
            },
            total,
        )))
    }

    /// Call at end of stream with what is left in the buffer: an error if a frame was cut.
    pub fn finish(&self, rest: &[u8]) -> Result<(), FrameError> {
        if rest.is_empty() {
            return Ok(());
        }
        let needed = match parse_header(rest)? {
            Some(h) => HEADER_LEN as u64 + u64::from(h.body_len),
            None => HEADER_LEN as u64,
        };
        Err(FrameError::TruncatedAtEof {
            needed,
            had: rest.len() as u64,
        })
    }
}

fn parse_body(header: FrameHeader, body: &[u8]) -> Result<Message<'_>, FrameError> {
    fn take<'a, T: serde::Deserialize<'a>>(
        h: FrameHeader,
        body: &'a [u8],
    ) -> Result<T, FrameError> {
        let (value, rest) =
            postcard::take_from_bytes::<T>(body).map_err(|error| FrameError::Malformed {
                message_type: h.message_type,
                body_len: h.body_len,
                error,
            })?;
        if !rest.is_empty() {
            return Err(FrameError::TrailingBytes {
                message_type: h.message_type,
                body_len: h.body_len,
                trailing: rest.len() as u32,
            });
        }
        Ok(value)
    }
    Ok(match header.message_type {
        MessageType::Hello => Message::Hello(take::<Hello>(header, body)?),
        MessageType::Links => Message::Links(take::<Links>(header, body)?),
        MessageType::LinkRemoved => Message::LinkRemoved(take::<LinkRemoved>(header, body)?),
        MessageType::Batch => Message::Batch(body),
        MessageType::Stats => Message::Stats(take::<Stats>(header, body)?),
        MessageType::Bye => Message::Bye(take::<Bye>(header, body)?),
        MessageType::Ack => Message::Ack(take::<Ack>(header, body)?),
        MessageType::Tally => Message::Tally(take::<Tally>(header, body)?),
    })
}

/// Encodes `msg` as one frame at the start of `out`; returns the frame's length.
pub fn encode(msg: &Message<'_>, out: &mut [u8]) -> Result<usize, FrameError> {
    let had = out.len();
    let Some(body_buf) = out.get_mut(HEADER_LEN..) else {
        return Err(FrameError::BufferTooSmall {
            needed: HEADER_LEN,
            had,
        });
    };
    let body_len = match msg {
        Message::Hello(m) => ser(m, body_buf)?,
        Message::Links(m) => ser(m, body_buf)?,
        Message::LinkRemoved(m) => ser(m, body_buf)?,
        Message::Stats(m) => ser(m, body_buf)?,
        Message::Bye(m) => ser(m, body_buf)?,
        Message::Ack(m) => ser(m, body_buf)?,
        Message::Tally(m) => ser(m, body_buf)?,
        Message::Batch(bytes) => {
            let dst = body_buf
                .get_mut(..bytes.len())
                .ok_or(FrameError::BufferTooSmall {
                    needed: HEADER_LEN + bytes.len(),
                    had,
                })?;
            dst.copy_from_slice(bytes);
            bytes.len()
        }
    };
    let len32 = u32::try_from(body_len).map_err(|_| FrameError::BodyTooLong { len: body_len })?;
    write_header(msg.message_type(), len32, out)?;
    Ok(HEADER_LEN + body_len)
}

/// Writes a frame header (for a body the caller places at `out[HEADER_LEN..]` itself).
pub fn write_header(
    message_type: MessageType,
    body_len: u32,
    out: &mut [u8],
) -> Result<(), FrameError> {
    let had = out.len();
    let h = out
        .get_mut(..HEADER_LEN)
        .ok_or(FrameError::BufferTooSmall {
            needed: HEADER_LEN,
            had,
        })?;
    h[..2].copy_from_slice(&MAGIC);
    h[2..4].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    h[4] = message_type as u8;
    h[5..9].copy_from_slice(&body_len.to_be_bytes());
    Ok(())
}

fn ser<T: Serialize>(value: &T, buf: &mut [u8]) -> Result<usize, FrameError> {
    let had = buf.len() + HEADER_LEN;
    match postcard::to_slice(value, buf) {
        Ok(used) => Ok(used.len()),
        Err(_) => {
            let body = postcard::serialize_with_flavor::<T, _, usize>(
                value,
                postcard::ser_flavors::Size::default(),
            )
            .unwrap_or(buf.len() + 1);
            Err(FrameError::BufferTooSmall {
                needed: HEADER_LEN + body,
                had,
            })
        }
    }
}

#[cfg(test)]
mod tests;
