//! Text and JSON output of what the store holds; the diagram and the HTML report.

pub mod boards;
pub mod diagram;
pub mod flows;
pub mod graph;
pub mod links;
pub mod paths;
pub mod pcapng;
pub mod report;
pub mod term;
pub mod timeline;
pub mod xml;
