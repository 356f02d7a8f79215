//! Where observations live. Ingest writes through [`StoreWriter`], the query commands read
//! through [`StoreReader`]; both speak in [`ids`] the backend hands out. [`sqlite`] is the
//! embedded default; [`clickhouse`] stores into ClickHouse shards, for fleets past one
//! collector. Nothing above this module knows which one runs. All SQL lives under the two.

pub mod clickhouse;
pub mod ids;
pub mod journeys;
pub mod name_ids;
pub mod read;
pub mod sqlite;
pub mod status;
pub mod write;

pub use ids::{BoardId, Cursor, LinkId, RunId};
pub use journeys::{JourneyStore, RowKey, StoredJourney};
pub use read::{
    link_label, BoardRow, DropSample, QueryError, StoreReader, StoredLink, TimelineQuery,
    TimelineRow,
};
pub use status::WriterStatus;
pub use write::{
    BatchPart, BoardHello, BoardSession, BoardStats, FrameBytes, ObservationBatch, RunTally,
    StoreError, StoreWriter, COMMIT_FAILED,
};
