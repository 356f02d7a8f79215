//! What the batch codec reports: a full batch when encoding, and when decoding which
//! record failed, where, and why.

/// `push` found no room for one more record: `finish` the batch and push again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFull;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// The batch header did not parse.
    Header(postcard::Error),
    UnsupportedVersion {
        got: u16,
        supported: u16,
    },
    /// The header says records carry more frame bytes than [`super::MAX_SNAP_BYTES`].
    SnapBytes {
        got: u16,
        max: u16,
    },
    /// The header says the batch needs codec state from batches before it (`reset` false),
    /// which no encoder of this version writes.
    NotSelfContained {
        seq: u64,
    },
    /// Record `index` (starting at byte `start`) failed at byte `offset` of the batch.
    Record {
        index: u32,
        start: usize,
        offset: usize,
        error: RecordError,
    },
    /// All records decoded but `len` bytes remain at `offset`.
    TrailingBytes {
        offset: usize,
        len: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    UnexpectedEnd,
    BadVarint,
    /// A value out of its field's range.
    BadValue {
        field: Field,
        value: u64,
    },
    /// A flow slot that holds no flow.
    BadFlow {
        index: u64,
    },
    /// A back-reference further than the records kept.
    BadBackref {
        distance: u64,
        available: u64,
    },
    /// A nested postcard value (stop, tunnels, address) did not parse.
    Postcard,
}

/// Names the field of a [`RecordError::BadValue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Link,
    Vlan,
    Port,
    EtherType,
    NetKind,
    TransportKind,
    IpId,
    Seq,
    Ack,
    PayloadLen,
    Flags,
    Window,
    UdpLen,
    IcmpSeq,
    Frag,
    ArpOp,
    HopMask,
    OuterId,
    WireLen,
    CapLen,
    /// The length of a record's frame bytes.
    SnapLen,
}

impl core::fmt::Display for BatchFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("batch full")
    }
}

impl core::error::Error for BatchFull {}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BatchError::Header(e) => write!(f, "batch header: {e}"),
            BatchError::UnsupportedVersion { got, supported } => {
                write!(f, "batch version {got} (this side speaks {supported})")
            }
            BatchError::SnapBytes { got, max } => {
                write!(f, "batch records carry {got} frame bytes (at most {max})")
            }
            BatchError::NotSelfContained { seq } => {
                write!(f, "batch {seq} needs codec state of earlier batches")
            }
            BatchError::Record {
                index,
                start,
                offset,
                error,
            } => write!(
                f,
                "record {index} (from byte {start}) failed at byte {offset}: {error}"
            ),
            BatchError::TrailingBytes { offset, len } => {
                write!(
                    f,
                    "{len} bytes left over at byte {offset} after the last record"
                )
            }
        }
    }
}

impl core::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            BatchError::Header(e) => Some(e),
            BatchError::Record { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::UnexpectedEnd => f.write_str("batch ends inside the record"),
            RecordError::BadVarint => f.write_str("malformed varint"),
            RecordError::BadValue { field, value } => {
                write!(f, "{field:?} value {value} out of range")
            }
            RecordError::BadFlow { index } => write!(f, "flow slot {index} holds no flow"),
            RecordError::BadBackref {
                distance,
                available,
            } => write!(
                f,
                "back-reference {distance} records back, only {available} kept"
            ),
            RecordError::Postcard => f.write_str("malformed nested value"),
        }
    }
}

impl core::error::Error for RecordError {}
