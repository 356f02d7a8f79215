//! Flows: journeys that belong to one conversation. A request and its reply are separate
//! journeys, and NAT gives each several address tuples, so journeys are joined through every
//! tuple they were seen with, direction-free (a union-find over tuples): the masqueraded
//! request and the reply to the masquerade address meet on the outside tuple.

use super::nat::Endpoints;
use hopcap_proto::summary::{Net, Summary};
use hopcap_proto::types::{Addr, IpProto};
use std::collections::HashMap;

/// Direction-free: the two ends sorted. ICMP echo uses its id as both "ports".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpProto, (Addr, u16), (Addr, u16)),
    Arp([u8; 4], [u8; 4]),
}

fn key(s: &Summary) -> Option<Key> {
    if let Net::Arp { spa, tpa, .. } = s.net {
        return Some(Key::Arp(spa.min(tpa), spa.max(tpa)));
    }
    let e = Endpoints::of(s)?;
    let a = (e.src, e.sport.or(e.icmp_id).unwrap_or(0));
    let b = (e.dst, e.dport.or(e.icmp_id).unwrap_or(0));
    Some(Key::Ip(e.proto, a.min(b), a.max(b)))
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Flow number per journey (numbered in order of each flow's first journey), given every
/// journey's hop summaries in path order, journeys in time order.
pub(super) fn assign<'a>(journeys: impl Iterator<Item = Vec<&'a Summary>>) -> Vec<usize> {
    let mut nodes: HashMap<Key, usize> = HashMap::new();
    let mut uf = UnionFind(Vec::new());
    let mut node_of_journey = Vec::new();
    for hops in journeys {
        // A journey with no tuple is a flow of its own.
        let mut first: Option<usize> = None;
        let mut last: Option<Key> = None;
        for k in hops.iter().filter_map(|s| key(s)) {
            // Most hops repeat the tuple before them: look up only changes.
            if last.replace(k) == Some(k) {
                continue;
            }
            let next = uf.0.len();
            let n = *nodes.entry(k).or_insert(next);
            if n == next {
                uf.0.push(n);
            }
            match first {
                Some(f) => uf.union(f, n),
                None => first = Some(n),
            }
        }
        let n = first.unwrap_or_else(|| {
            uf.0.push(uf.0.len());
            uf.0.len() - 1
        });
        node_of_journey.push(n);
    }
    let mut number: HashMap<usize, usize> = HashMap::new();
    node_of_journey
        .into_iter()
        .map(|n| {
            let root = uf.find(n);
            let next = number.len();
            *number.entry(root).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{icmp_echo, with_dst, with_src};

    #[test]
    fn masqueraded_request_and_its_reply_are_one_flow() {
        let (ctr, nat, ext) = ([172, 17, 0, 2], [192, 168, 43, 116], [198, 51, 100, 101]);
        let req = icmp_echo(ctr, ext, true, 16384, 0, 1);
        let req_out = with_src(&req, nat, None);
        let rep_in = icmp_echo(ext, nat, false, 16384, 0, 2);
        let rep_ctr = with_dst(&rep_in, ctr);
        let other = icmp_echo(ctr, [198, 51, 100, 7], true, 16384, 0, 3);
        let flows =
            assign([vec![&req, &req_out], vec![&rep_in, &rep_ctr], vec![&other]].into_iter());
        assert_eq!(flows, vec![0, 0, 1]);
    }
}
