//! Helpers of the end-to-end tests (tests/e2e_*.rs): the real hopcap-agent in private
//! network namespaces (scripts/testbed.sh beds) streaming to the real hopcap-collector, with
//! traffic that stays inside the bed. Root only.

#![allow(dead_code)]

pub mod agent;
pub mod bed;
pub mod bins;
pub mod check;
pub mod collector;
pub mod flows;
pub mod pi;
pub mod proc;
pub mod traffic;

use flows::Sighting;
use hopcap_testkit::ScratchDir;

/// A scratch directory for one test's databases and process logs.
pub fn scratch(tag: &str) -> ScratchDir {
    ScratchDir::new(&format!("e2e-{tag}")).expect("scratch directory")
}

/// IP observations of JSON lines (`timeline --json`, the agent's `--json`).
pub fn sightings<'a>(lines: impl IntoIterator<Item = &'a serde_json::Value>) -> Vec<Sighting> {
    lines
        .into_iter()
        .filter_map(Sighting::from_observation)
        .collect()
}

/// JSON lines of a text (an agent's `--json` stdout).
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
