//! Why a capture file could not be read further. Every variant carries numbers (byte offsets,
//! lengths, field values), never prose, so tests can match on them and messages stay exact.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum OfflineError {
    /// The file could not be opened or read.
    Io { path: PathBuf, source: io::Error },
    /// The output (when printing a file) could not be written.
    Output { source: io::Error },
    /// The first four bytes are neither a pcap nor a pcapng magic (shown as they appear in the file).
    BadMagic { magic: u32 },
    /// A pcap file header or pcapng section header of a version this reader does not know.
    UnsupportedVersion { major: u16, minor: u16 },
    /// The pcap link type field has bits set in its reserved part (0x03FF0000), as libpcap rejects.
    ReservedLinkTypeBits { field: u32 },
    /// The file ends inside the record or block that starts at `offset`: it is `needed` bytes
    /// long (or at least that long, when its header was cut), the file had `had` of them.
    CutShort { offset: u64, needed: u64, had: u64 },
    /// The record or block at `offset` claims `len` bytes, more than the `max` this reader accepts.
    BlockTooLong { offset: u64, len: u64, max: u64 },
    /// A pcapng block length that cannot be right: below the minimum for its type, not a
    /// multiple of 4, or different in the block's header and trailer.
    BadBlockLength { offset: u64, len: u32, trailer: u32 },
    /// The pcapng block at `offset` (of type `block_type`) could not be parsed.
    BadBlock { offset: u64, block_type: u32 },
    /// An option at `offset` claims `len` bytes, but only `room` remain in its block.
    BadOption { offset: u64, len: u16, room: u64 },
    /// An interface's if_tsresol option names a resolution that does not fit in 64 bits.
    BadTsResol { offset: u64, value: u8 },
    /// A packet at `offset` names interface `id`, but its section described only `count`.
    UnknownInterface { offset: u64, id: u32, count: u32 },
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineError::Io { path, source } => {
                write!(f, "cannot read {}: {}", path.display(), source)
            }
            OfflineError::Output { source } => write!(f, "cannot write output: {source}"),
            OfflineError::BadMagic { magic } => {
                write!(f, "not a pcap or pcapng file (magic 0x{magic:08x})")
            }
            OfflineError::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported file format version {major}.{minor}")
            }
            OfflineError::ReservedLinkTypeBits { field } => {
                write!(f, "link type field 0x{field:08x} has reserved bits set")
            }
            OfflineError::CutShort { offset, needed, had } => write!(
                f,
                "record cut short at byte offset {offset}: needed {needed} bytes, file had {had}"
            ),
            OfflineError::BlockTooLong { offset, len, max } => write!(
                f,
                "record at byte offset {offset} is too long: {len} bytes (at most {max})"
            ),
            OfflineError::BadBlockLength { offset, len, trailer } => write!(
                f,
                "bad block length at byte offset {offset}: {len} (trailer says {trailer})"
            ),
            OfflineError::BadBlock { offset, block_type } => write!(
                f,
                "malformed block of type 0x{block_type:08x} at byte offset {offset}"
            ),
            OfflineError::BadOption { offset, len, room } => write!(
                f,
                "option at byte offset {offset} is {len} bytes long, only {room} left in its block"
            ),
            OfflineError::BadTsResol { offset, value } => write!(
                f,
                "unsupported timestamp resolution 0x{value:02x} in interface at byte offset {offset}"
            ),
            OfflineError::UnknownInterface { offset, id, count } => write!(
                f,
                "packet at byte offset {offset} names interface {id}, but its section has {count}"
            ),
        }
    }
}

impl OfflineError {
    pub fn output(source: io::Error) -> OfflineError {
        OfflineError::Output { source }
    }
}

impl std::error::Error for OfflineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OfflineError::Io { source, .. } | OfflineError::Output { source } => Some(source),
            _ => None,
        }
    }
}
