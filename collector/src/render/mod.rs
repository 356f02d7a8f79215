//! (stub: being written)

pub mod flows;
pub mod paths;
