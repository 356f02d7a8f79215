//! Why an agent connection ended: every reason a connection closes, each logged once.

use crate::store::StoreError;
use hopcap_proto::frame::FrameError;
use hopcap_proto::message::MessageType;
use std::time::Duration;

/// Why a connection ended.
#[derive(Debug)]
pub enum Close {
    /// The agent closed the stream after its last frame.
    Eof,
    /// The agent said goodbye.
    Bye,
    Frame(FrameError),
    Protocol(ProtocolError),
    /// The store refused a request of this connection.
    Store(String),
    Io(std::io::Error),
    Idle(Duration),
    /// A frame (or the hello) did not arrive whole in time (a peer trickling bytes).
    Deadline {
        what: &'static str,
        limit: Duration,
    },
    /// The collector is shutting down.
    Shutdown,
    /// The store's writer is gone.
    Writer,
}

impl From<StoreError> for Close {
    fn from(e: StoreError) -> Close {
        match e {
            StoreError::Gone => Close::Writer,
            StoreError::Refused(why) => Close::Store(why),
        }
    }
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Eof => write!(f, "closed by the agent"),
            Close::Bye => write!(f, "agent said bye"),
            Close::Frame(e) => write!(f, "bad frame: {e}"),
            Close::Protocol(e) => write!(f, "protocol error: {e}"),
            Close::Store(why) => write!(f, "store refused: {why}"),
            Close::Io(e) => write!(f, "I/O error: {e}"),
            Close::Idle(d) => write!(f, "nothing received for {}s", d.as_secs()),
            Close::Deadline { what, limit } => {
                write!(
                    f,
                    "{what} not received whole within {}s",
                    limit.as_secs_f64()
                )
            }
            Close::Shutdown => write!(f, "collector shutting down"),
            Close::Writer => write!(f, "the store is gone"),
        }
    }
}

/// A frame that parsed but breaks the conversation's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Anything but a hello first.
    BeforeHello(MessageType),
    /// A message that needs the hello's session, without one (the first check is
    /// [`ProtocolError::BeforeHello`]; this one backs it up).
    NoSession,
    SecondHello,
    EmptyAgentId,
    /// A links chunk numbered past its count.
    LinksChunk {
        chunk: u16,
        count: u16,
    },
    /// More links than any board has (a table that would only grow memory).
    TooManyLinks {
        limit: usize,
    },
    /// Acks go from the collector to agents only.
    AckFromAgent,
    /// A hello claiming another board than the one the connection's key is trusted as.
    NotItsName {
        claimed: String,
        key_of: String,
    },
    /// A hello speaking a protocol version this collector does not.
    Version(u16),
    /// A batch sequence number too far ahead of the run's last one (forged or broken).
    SeqJump {
        seq: u64,
        last: Option<u64>,
    },
    /// A batch decoding to more records than an agent ever puts in one.
    BatchTooLarge {
        records: usize,
        limit: usize,
    },
    /// Too many link keys used without being described.
    UndescribedLinks {
        limit: usize,
    },
    /// A clock step larger than any real clock makes (it would overflow the stored times).
    ClockStep {
        delta_ns: i64,
    },
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::BeforeHello(t) => write!(f, "a {t} message before hello"),
            ProtocolError::NoSession => write!(f, "a message before hello"),
            ProtocolError::SecondHello => write!(f, "a second hello"),
            ProtocolError::EmptyAgentId => write!(f, "hello with an empty agent id"),
            ProtocolError::LinksChunk { chunk, count } => {
                write!(f, "links chunk {chunk} of {count}")
            }
            ProtocolError::TooManyLinks { limit } => write!(f, "over {limit} links"),
            ProtocolError::AckFromAgent => write!(f, "an ack from an agent"),
            ProtocolError::NotItsName { claimed, key_of } => write!(
                f,
                "refused: hello claims board {claimed:?}, but the connection's key is {key_of:?}'s"
            ),
            ProtocolError::Version(v) => write!(f, "hello for protocol version {v}"),
            ProtocolError::SeqJump { seq, last } => {
                write!(f, "batch #{seq} too far ahead of the last one ({last:?})")
            }
            ProtocolError::BatchTooLarge { records, limit } => {
                write!(f, "a batch of {records} records (at most {limit})")
            }
            ProtocolError::UndescribedLinks { limit } => {
                write!(f, "over {limit} link keys used before being described")
            }
            ProtocolError::ClockStep { delta_ns } => {
                write!(
                    f,
                    "a clock step of {delta_ns} ns (at most 100 years either way)"
                )
            }
        }
    }
}

impl std::error::Error for ProtocolError {}
