//! A sink of the library user's own, as a pcapng writer will be, sees each kept packet's
//! captured bytes beside its observation. A real capture (root): the agent's loop runs in
//! the pi namespace of a private Pi+Docker bed while a container talks UDP to the router
//! through the board's NAT; all traffic stays between the bed's namespaces.

mod common;

use common::bed::{Bed, RTR};
use common::traffic;
use hopcap_agent::links::LinkTable;
use hopcap_agent::run::sink::{Captured, Counts, Sink};
use hopcap_agent::run::{LiveCapture, RunConfig};
use hopcap_proto::decode::{decode, DecodeOptions};
use hopcap_proto::record::{LinkKey, Observation};
use hopcap_proto::summary::Summary;
use hopcap_proto::types::LinkType;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the sink was handed for one packet (copied: the frame lives in the ring).
struct Kept {
    obs: Observation,
    bytes: Vec<u8>,
    link_type: LinkType,
    ifindex: u32,
}

#[derive(Default)]
struct Record {
    kept: Vec<Kept>,
    /// Link names and ifindexes by key, as the link table had them at the end.
    links: BTreeMap<LinkKey, (String, u32)>,
}

struct Recorder(Arc<Mutex<Record>>);

impl Sink for Recorder {
    fn push(&mut self, packet: &Captured<'_>) {
        self.0.lock().unwrap().kept.push(Kept {
            obs: packet.obs.clone(),
            bytes: packet.bytes().to_vec(),
            link_type: packet.link_type(),
            ifindex: packet.frame.ifindex,
        });
    }

    fn finish(&mut self, links: &LinkTable, counts: Counts<'_>) -> io::Result<Vec<String>> {
        let n: u64 = counts.per_link.values().sum();
        let mut record = self.0.lock().unwrap();
        for key in counts.per_link.keys() {
            if let Some(l) = links.link(*key) {
                record.links.insert(*key, (l.name.to_string(), l.ifindex));
            }
        }
        Ok(vec![format!("recorder: {n} packets")])
    }
}

#[test]
fn a_sink_gets_the_bytes_of_every_kept_packet() {
    let bed = Bed::up("snk");
    let record = Arc::new(Mutex::new(Record::default()));
    let cfg = RunConfig {
        filter: Some("udp port 9999".into()),
        outputs: Vec::new(),
        ..RunConfig::default()
    };
    let summary = bed.in_ns("pi", || {
        let mut live = LiveCapture::start(&cfg).expect("start");
        live.add_sink(Box::new(Recorder(Arc::clone(&record))));
        std::thread::scope(|s| {
            let talk = s.spawn(|| traffic::udp(&bed, "rtr", &format!("{RTR}:9999"), "ctr", 5));
            while !talk.is_finished() {
                live.step().expect("step");
            }
            // A ring hands out its block up to 50 ms after the block's first frame.
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                live.step().expect("step");
            }
            talk.join().expect("traffic");
        });
        live.finish().expect("finish")
    });
    let record = record.lock().unwrap();
    let kept = &record.kept;
    // 5 requests and 5 replies, each on vethctr, docker0 and wlan0.
    assert_eq!(kept.len(), 30, "{:?}", summary.lines);
    assert!(summary.lines.contains(&"recorder: 30 packets".to_string()));
    let mut per_link: BTreeMap<&str, usize> = BTreeMap::new();
    for k in kept.iter() {
        assert_eq!(k.bytes.len(), k.obs.cap_len as usize);
        assert!(k.obs.wire_len >= k.obs.cap_len);
        assert_eq!(k.link_type, LinkType::ETHERNET);
        // The bytes are the very frame the observation was made of.
        let decoded = decode(k.link_type, &k.bytes, &DecodeOptions::default());
        assert_eq!(Summary::from_decoded(&decoded), k.obs.summary);
        assert!(
            k.bytes.windows(9).any(|w| w == b"datagram "),
            "payload in the bytes"
        );
        let (name, ifindex) = &record.links[&k.obs.link];
        assert_eq!(*ifindex, k.ifindex, "{name}");
        *per_link.entry(name.as_str()).or_default() += 1;
    }
    let want: BTreeMap<&str, usize> = [("docker0", 10), ("vethctr", 10), ("wlan0", 10)].into();
    assert_eq!(per_link, want);
}
