//! Identifiers a backend hands out. Each wraps the backend's own value (SQLite: a row id;
//! a distributed store may use a hash of the board and link names), so nothing outside the
//! backend does arithmetic on them or assumes they are dense, small or ordered by time —
//! except [`Cursor`], whose order is arrival order by definition.

use serde::{Deserialize, Serialize};

/// A board, as one backend knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BoardId(i64);

/// A link of one board (name, namespace, ifindex), as one backend knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId(i64);

/// One run of a board's agent (batch sequence numbers count from 0 in each), as one backend
/// knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(i64);

/// A position in arrival order: what `timeline --follow` resumes after.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Cursor(i64);

macro_rules! backend_value {
    ($($t:ident),*) => {$(
        impl $t {
            /// Wraps a backend's value (for backends only).
            pub fn from_raw(raw: i64) -> $t {
                $t(raw)
            }

            /// The backend's value: for the backend, and for display.
            pub fn raw(self) -> i64 {
                self.0
            }
        }
    )*};
}

backend_value!(BoardId, LinkId, RunId, Cursor);
