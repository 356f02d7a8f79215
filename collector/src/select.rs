//! What a query command asks for: a time window, a board, a link and a filter expression.
//! The command line builds a [`Selection`]; the store answers its window, board and link
//! part ([`Selection::query`]); the filter runs on each observation after that.

use crate::store::{link_label, TimelineQuery};
use hopcap_proto::filter::Filter;
use hopcap_proto::record::Observation;

#[derive(Debug, Default)]
pub struct Selection {
    /// Start (inclusive), ns since the epoch.
    pub since_ns: Option<i64>,
    /// End (exclusive).
    pub until_ns: Option<i64>,
    /// A board name.
    pub board: Option<String>,
    /// A link name (`eth0`), or a label as printed (`pi1:eth0`, `pi1:netns:veth0`).
    pub link: Option<String>,
    pub filter: Option<Filter>,
}

impl Selection {
    /// The store's part: window, board and link.
    pub fn query(&self) -> TimelineQuery {
        TimelineQuery {
            since_ns: self.since_ns,
            until_ns: self.until_ns,
            board: self.board.clone(),
            link: self.link.clone(),
            ..TimelineQuery::default()
        }
    }

    /// Only the time window (the correlator needs every hop of a journey, wherever seen).
    pub fn window(&self) -> TimelineQuery {
        TimelineQuery {
            since_ns: self.since_ns,
            until_ns: self.until_ns,
            ..TimelineQuery::default()
        }
    }

    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// The filter expression's verdict (true without one).
    pub fn keeps(&self, obs: &Observation) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(&obs.summary))
    }

    /// Whether an observation seen at `board:netns:link` is on the board and link asked for.
    pub fn names(&self, board: &str, netns: &str, link: &str) -> bool {
        let board_ok = self.board.as_ref().is_none_or(|b| b == board);
        let link_ok = self
            .link
            .as_ref()
            .is_none_or(|l| l == link || *l == link_label(board, netns, link));
        board_ok && link_ok
    }
}
