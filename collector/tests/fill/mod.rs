//! Filling a database through the library's writer as ingest would: a board's hello with its
//! link table, then its observations with the store's link ids. Shared by the tests that need
//! a database of a known bed (export, report, paths --follow).

#![allow(dead_code)] // not every test binary uses every helper

use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::WriterHandle;
use hopcap_collector::store::{BoardHello, BoardSession, LinkId};
use hopcap_proto::record::{LinkInfo, Observation};
use std::sync::mpsc::sync_channel;

/// Registers board `name` with `links`, as its agent's hello would; its session (run, link
/// ids) comes back.
pub fn hello(w: &WriterHandle, name: &str, links: &[LinkInfo]) -> BoardSession {
    let (reply, answer) = sync_channel(1);
    let hello = BoardHello {
        name: name.to_owned(),
        boot_id: "0011".into(),
        agent_version: "test".into(),
        capture: String::new(),
        remote: "127.0.0.1:9".into(),
        board_clock_ns: None,
    };
    w.sender()
        .send(WriteCmd::Hello {
            hello,
            links: links.to_vec(),
            reply,
        })
        .unwrap();
    answer.recv().unwrap().unwrap()
}

/// Board `name`'s observations among `hops`, each with the store's id of its link.
pub fn rows_of(
    hops: &[(String, Observation)],
    name: &str,
    session: &BoardSession,
) -> Vec<(LinkId, Observation)> {
    hops.iter()
        .filter(|(b, _)| b == name)
        .filter_map(|(_, o)| {
            let id = session.links.iter().find(|(k, _)| *k == o.link)?.1;
            Some((id, o.clone()))
        })
        .collect()
}
