//! Where observations live. Ingest writes through [`StoreWriter`], the query commands read
//! through [`StoreReader`]; both speak in [`ids`] the backend hands out. [`sqlite`], the
//! embedded default, is today's one backend: a second one goes beside it and nothing above
//! this module changes. All SQL lives under [`sqlite`].

pub mod ids;
pub mod read;
pub mod sqlite;
pub mod status;
pub mod write;

pub use ids::{BoardId, Cursor, LinkId, RunId};
pub use read::{
    link_label, BoardRow, DropSample, QueryError, StoreReader, StoredLink, TimelineQuery,
    TimelineRow,
};
pub use status::WriterStatus;
pub use write::{
    BatchPart, BoardHello, BoardSession, BoardStats, FrameBytes, ObservationBatch, RunTally,
    StoreError, StoreWriter, COMMIT_FAILED,
};
