//! The embedded default store: one SQLite file (WAL mode), written by a single writer
//! thread ([`SqliteWriter`] feeds it), read by the query commands ([`SqliteReader`]) and by
//! anyone with an SQLite client. The layout is documented in [`schema`]. Every SQL
//! statement of the collector lives in this folder.

pub mod boards;
pub mod clock;
pub mod codes;
pub mod command;
mod handle;
pub mod links;
mod open;
pub mod query;
mod reader;
pub mod retention;
pub mod row;
pub mod schema;
pub mod writer;

pub use handle::{SqliteWriter, WriterHandle};
pub use open::{open_for_reading, open_for_writing, open_for_writing_with, OpenError};
pub use reader::SqliteReader;
