//! hopcap-agent as a library, so integration tests and benches reach its parts.
//! Data flow: sys (sockets, rings, netns, netlink) → links (what to capture) → capture
//! (frames from all rings, decoded in place) → export (batches to the collector) or print.

pub mod capture;
pub mod cli;
pub mod clock;
pub mod clock_watch;
pub mod config_file;
pub mod docs;
pub mod doctor;
pub mod export;
pub mod links;
pub mod list;
pub mod logger;
pub mod offline;
pub mod pipeline;
pub mod privileges;
pub mod run;
pub mod sys;
