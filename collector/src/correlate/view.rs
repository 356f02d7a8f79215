//! Every hop resolved once against the topology into the small facts the passes compare:
//! board and socket numbers, link kind, veth peer, direction, time, addresses.

use super::nat::Endpoints;
use super::topology::{is_wire, Topology};
use super::Hop;
use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind};
use hopcap_proto::summary::Net;
use hopcap_proto::types::PacketType;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

#[derive(Clone, Debug)]
pub(super) struct View<'t> {
    pub board: u32,
    /// (board, netns): one capture socket, whose `order` is meaningful.
    pub socket: u32,
    pub key: LinkKey,
    pub out: bool,
    pub ts: u64,
    /// `ts` on the reference clock (filled in once offsets are known).
    pub t: i64,
    pub order: u64,
    pub info: Option<&'t LinkInfo>,
    pub kind: Option<LinkKind>,
    /// The veth peer's key (same board, the peer's namespace), when captured.
    pub peer: Option<LinkKey>,
    pub wire: bool,
    pub endpoints: Option<Endpoints>,
    pub tuple: u64,
}

#[derive(Debug, Default)]
pub(super) struct Views<'t> {
    pub views: Vec<View<'t>>,
    /// Board names by id, sorted.
    pub boards: Vec<String>,
}

/// A link as looked up once: its info, its socket number and its veth peer's key.
type Resolved<'t> = (Option<&'t LinkInfo>, u32, Option<LinkKey>);

pub(super) fn prepare<'t>(hops: &[Hop], topo: &'t Topology) -> Views<'t> {
    let mut boards: Vec<String> = topo.boards().into_iter().map(String::from).collect();
    boards.extend(hops.iter().map(|h| h.board.clone()));
    boards.sort_unstable();
    boards.dedup();
    let board_id: HashMap<&str, u32> = boards
        .iter()
        .enumerate()
        .map(|(i, b)| (b.as_str(), i as u32))
        .collect();
    let mut sockets: HashMap<(u32, &str), u32> = HashMap::new();
    // Per (board, key): the link, its socket and its veth peer, looked up once.
    let mut links: HashMap<(u32, LinkKey), Resolved<'t>> = HashMap::new();
    let mut last_board: Option<(&str, u32)> = None;
    let mut views = Vec::with_capacity(hops.len());
    for h in hops {
        let board = match last_board {
            Some((name, id)) if name == h.board => id,
            _ => {
                let id = board_id.get(h.board.as_str()).copied().unwrap_or(0);
                last_board = Some((h.board.as_str(), id));
                id
            }
        };
        let (info, socket, peer) = *links.entry((board, h.obs.link)).or_insert_with(|| {
            let info = topo.link(&h.board, h.obs.link);
            let netns = info.map_or("", |l| l.netns.as_str());
            let next = sockets.len() as u32;
            let socket = *sockets.entry((board, netns)).or_insert(next);
            let peer = info
                .and_then(|l| topo.veth_peer(&h.board, l))
                .map(|p| p.key);
            (info, socket, peer)
        });
        let kind = info.map(|l| l.kind);
        let endpoints = Endpoints::of(&h.obs.summary);
        views.push(View {
            board,
            socket,
            key: h.obs.link,
            out: h.obs.pkttype == PacketType::OUTGOING,
            ts: h.obs.ts_ns,
            t: h.obs.ts_ns as i64,
            order: h.obs.order,
            info,
            kind,
            peer,
            wire: is_wire(kind),
            endpoints,
            tuple: hash(&endpoints),
        });
    }
    // Sockets were numbered in input order; only equality matters.
    Views { views, boards }
}

fn hash<T: Hash>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// What must agree besides the fingerprint: the inner packet's protocol and lengths (the
/// wire length differs by tunnel overhead, the inner IP payload length does not).
pub(super) fn bucket_key(h: &Hop) -> (u64, u64) {
    let s = &h.obs.summary;
    let shape = match s.net {
        Net::Ip(ip) => {
            u64::from(ip.proto.0) << 48
                | u64::from(ip.payload_len) << 24
                | u64::from(ip.frag_offset) << 1
                | u64::from(ip.more_fragments)
        }
        Net::Arp { op, .. } => 1 << 63 | u64::from(op),
        Net::None => 1 << 62 | u64::from(s.ethertype.0),
    };
    (h.obs.fingerprint, shape)
}
