//! What ingest nodes publish and correlators take: one version byte, then a postcard
//! message. postcard is not self-describing, so a correlator refuses a version it does not
//! know (and leaves the message for one that does) rather than misreading it.

use crate::store::{
    BatchPart, BoardHello, BoardId, BoardStats, FrameBytes, LinkId, RunId, RunTally,
};
use hopcap_proto::record::{LinkInfo, Observation};
use serde::{Deserialize, Serialize};

/// Bumped on any change to the messages below.
pub const ENVELOPE_VERSION: u8 = 1;

/// One partition's rows of one agent batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartMsg {
    pub board: BoardId,
    pub run: RunId,
    pub seq: u64,
    /// Batches found missing just before this one (sent with part 0 only).
    pub lost_batches: u64,
    pub part: BatchPart,
    /// The partition ingest computed for these rows, and of how many.
    pub partition: u32,
    pub partitions: u32,
    pub rows: Vec<(LinkId, Observation)>,
    pub frames: FrameBytes,
}

/// Board metadata, on the `meta` stream: the store calls of the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaMsg {
    Hello(BoardHello),
    Links {
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
    },
    LinksRemoved {
        board: BoardId,
        links: Vec<LinkId>,
    },
    Stats {
        board: BoardId,
        stats: BoardStats,
    },
    Tally {
        run: RunId,
        tally: RunTally,
    },
    Disconnected {
        board: BoardId,
        remote: String,
    },
}

/// Why a message did not decode.
#[derive(Debug)]
pub enum EnvelopeError {
    Empty,
    Version { got: u8, want: u8 },
    Body(postcard::Error),
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Empty => write!(f, "empty message"),
            EnvelopeError::Version { got, want } => {
                write!(f, "message version {got}, this collector reads {want}")
            }
            EnvelopeError::Body(e) => write!(f, "message body: {e}"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = vec![ENVELOPE_VERSION];
    // A Vec grows as needed: serializing these plain types cannot fail.
    postcard::to_io(msg, &mut out).expect("postcard into a Vec");
    out
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, EnvelopeError> {
    let (&version, body) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::Version {
            got: version,
            want: ENVELOPE_VERSION,
        });
    }
    postcard::from_bytes(body).map_err(EnvelopeError::Body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> PartMsg {
        let mut frames = FrameBytes::default();
        frames.push(&[1, 2, 3]);
        PartMsg {
            board: BoardId::from_raw(7),
            run: RunId::from_raw(9),
            seq: 41,
            lost_batches: 2,
            part: BatchPart {
                index: 1,
                of: 3,
                rows: vec![4],
            },
            partition: 2,
            partitions: 3,
            rows: vec![(LinkId::from_raw(5), Observation::empty())],
            frames,
        }
    }

    #[test]
    fn part_round_trips() {
        let bytes = encode(&part());
        assert_eq!(bytes[0], ENVELOPE_VERSION);
        assert_eq!(decode::<PartMsg>(&bytes).unwrap(), part());
    }

    #[test]
    fn meta_round_trips() {
        let m = MetaMsg::Disconnected {
            board: BoardId::from_raw(1),
            remote: "10.0.0.1:5000".into(),
        };
        assert_eq!(decode::<MetaMsg>(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn bad_input_is_an_error_with_numbers() {
        assert!(matches!(decode::<PartMsg>(&[]), Err(EnvelopeError::Empty)));
        let mut bytes = encode(&part());
        bytes[0] = 9;
        assert!(matches!(
            decode::<PartMsg>(&bytes),
            Err(EnvelopeError::Version { got: 9, want: 1 })
        ));
        let bytes = encode(&part());
        for cut in 1..bytes.len() {
            assert!(decode::<PartMsg>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
