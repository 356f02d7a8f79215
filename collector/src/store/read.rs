//! The read side of a store, as the commands see it: observations in timeline or arrival
//! order, the boards, their links and their loss reports. Everything a query command needs,
//! and nothing of how it is stored.

use super::ids::{BoardId, Cursor, LinkId};
use hopcap_proto::record::{LinkInfo, Observation};

/// Which observations to read. `None` means no bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineQuery {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// A board name.
    pub board: Option<String>,
    /// A link name (`eth0`), or a label as printed (`board:eth0`, `board:netns:veth1`).
    pub link: Option<String>,
    /// Only rows that arrived after this position.
    pub after: Option<Cursor>,
    pub limit: Option<i64>,
}

/// One observation with the names of where it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub cursor: Cursor,
    pub board_id: BoardId,
    pub link_id: LinkId,
    pub board: String,
    /// '' for the board's own namespace.
    pub netns: String,
    pub link: String,
    pub obs: Observation,
}

impl TimelineRow {
    /// `board:link`, or `board:netns:link` for a link inside another namespace.
    pub fn label(&self) -> String {
        link_label(&self.board, &self.netns, &self.link)
    }
}

/// The one spelling of a hop's place: `board:link`, or `board:netns:link`.
pub fn link_label(board: &str, netns: &str, link: &str) -> String {
    if netns.is_empty() {
        format!("{board}:{link}")
    } else {
        format!("{board}:{netns}:{link}")
    }
}

/// A board as `boards` shows it. The delivery figures are the store's reconciliation of what
/// the agents said (their tallies) with what was stored, summed over the board's agent runs:
/// `seen = stored + queue_drops + lost_in_transit` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    pub id: BoardId,
    pub name: String,
    pub boot_id: Option<String>,
    pub agent_version: Option<String>,
    /// How the agent captures (`ring, snaplen 192, sample 1/1, protocol 6`).
    pub capture: Option<String>,
    pub remote: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub state: String,
    pub clock_offset_ns: Option<i64>,
    /// Batches and observations stored.
    pub batches: i64,
    pub observations: i64,
    /// Batches the agents made that are not stored (given up or lost in transit).
    pub lost_batches: i64,
    /// Frames the kernel dropped before the agent saw them (the agents' own count).
    pub kernel_drops: i64,
    /// Observations in batches the agents gave up on (queue over budget, or unacknowledged
    /// at exit) that were not stored.
    pub queue_drops: i64,
    pub links_present: i64,
    /// Observations the agents kept (after sampling and filtering) and put in batches.
    pub seen: i64,
    /// Of `seen`, those stored (a given-up batch that was stored after all counts here).
    pub stored: i64,
    /// Of `seen`, those in batches neither stored nor given up by the agent: sequence gaps
    /// and tails the agent never explained (a connection lost with batches in it, an agent
    /// killed), or a batch that did not decode.
    pub lost_in_transit: i64,
    /// The agents' own count of observations dropped from their queues unsent.
    pub reported_queue_drops: i64,
    /// The board's clock as its agent last reported it (adjtimex): synchronised or not
    /// (`None` before a report), and the kernel's error bound.
    pub clock_synced: Option<bool>,
    pub clock_max_error_us: Option<i64>,
    /// Real-time clock steps its agents saw (their observations are on the clock after
    /// them), and the latest step (new minus old clock).
    pub clock_steps: i64,
    pub last_clock_step_ns: Option<i64>,
}

/// A link as its board last reported it. `info.key` is meaningless here (keys are per
/// agent run); the reader of a topology gives out its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    pub id: LinkId,
    pub board: String,
    pub info: LinkInfo,
    /// In the board's latest report (a link that went, or was renamed, is kept, not present).
    pub present: bool,
}

/// One stats report of a board: its cumulative capture drops (kernel and queue) at `ts_ns`,
/// on the board's clock as sampled at hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSample {
    pub board: String,
    pub ts_ns: i64,
    pub total_drops: i64,
}

#[derive(Debug)]
pub enum QueryError {
    /// The backend failed (its own error).
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A stored observation that does not read back.
    BadRow {
        at: Cursor,
        err: Box<dyn std::error::Error + Send + Sync>,
    },
    /// --board or --link named nothing in the store.
    NoMatch(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Backend(e) => write!(f, "database: {e}"),
            QueryError::BadRow { at, err } => write!(f, "observation {}: {err}", at.raw()),
            QueryError::NoMatch(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueryError::Backend(e) | QueryError::BadRow { err: e, .. } => Some(e.as_ref()),
            QueryError::NoMatch(_) => None,
        }
    }
}

/// The read side of a store.
pub trait StoreReader {
    /// Calls `each` for every matching row in timeline order (capture time, then board,
    /// then the agent's capture order); stops early when it returns false. Returns the
    /// latest arrival position seen.
    fn timeline(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError>;

    /// Like [`timeline`](Self::timeline), in arrival order: what `--follow` polls.
    fn arrived(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError>;

    /// The latest arrival position (the default cursor when nothing is stored).
    fn last_cursor(&self) -> Result<Cursor, QueryError>;

    /// Every board, by name.
    fn boards(&self) -> Result<Vec<BoardRow>, QueryError>;

    /// Every link ever reported, by board and then by first report.
    fn links(&self) -> Result<Vec<StoredLink>, QueryError>;

    /// Every stats report, by board and then by time.
    fn drop_samples(&self) -> Result<Vec<DropSample>, QueryError>;

    /// The stored frame bytes (`agent --snap-bytes`) of the rows `q` selects that have any,
    /// by row cursor, in no particular order; stops early when `each` returns false.
    fn frames(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(Cursor, &[u8]) -> bool,
    ) -> Result<(), QueryError>;

    /// The journeys the scaled mode's correlators built and stored whose first hop lies in
    /// `[from_ns, to_ns)`; `None` from a store that keeps none (the embedded one: its queries
    /// correlate what they read).
    fn built_journeys(
        &self,
        _from_ns: u64,
        _to_ns: u64,
    ) -> Result<Option<Vec<super::StoredJourney>>, QueryError> {
        Ok(None)
    }
}
