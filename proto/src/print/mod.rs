//! Text for people: a tcpdump-like line per packet ([`write_line`]), a short description of
//! a packet or a flow ([`write_description`], [`write_flow_label`]), and JSON objects for
//! tools ([`write_json_decoded`], [`write_json_observation`]).
//!
//! Everything writes into a `core::fmt::Write` and allocates nothing, so the agent can
//! print straight into a stack buffer or a locked stdout, and the collector into a String.

mod json;
mod json_layer;
mod line;
mod names;
mod short;

pub use json::{write_json_decoded, write_json_observation, Epoch};
pub use line::{write_line, write_summary, write_time};
pub use short::{write_description, write_flow_label, Endpoint};
