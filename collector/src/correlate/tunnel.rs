//! Tunnels a journey went through: the hops where its packet was seen encapsulated (the
//! fingerprint ignores outer headers, so the underlay sightings joined the inner packet's
//! journey) grouped per tunnel, with the endpoints.

use hopcap_proto::summary::{Summary, Tunnel};
use serde::{Deserialize, Serialize};

/// One tunnel and the first and last hop (positions) that saw the packet inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSpan {
    pub tunnel: Tunnel,
    pub first: usize,
    pub last: usize,
}

/// `VXLAN vni 1 10.0.0.1→10.0.0.2`.
pub fn label(t: &Tunnel) -> String {
    format!("{} {}→{}", t.kind, t.src, t.dst)
}

/// Same tunnel: kind and ids and endpoints (the outer IP id and UDP source port are per packet).
fn same(a: &Tunnel, b: &Tunnel) -> bool {
    a.kind == b.kind && a.src == b.src && a.dst == b.dst && a.dst_port == b.dst_port
}

/// The tunnels of ordered hops, in the order first seen.
pub(super) fn spans(summaries: &[&Summary]) -> Vec<TunnelSpan> {
    let mut out: Vec<TunnelSpan> = Vec::new();
    for (p, s) in summaries.iter().enumerate() {
        for t in &s.tunnels {
            match out.iter_mut().find(|x| same(&x.tunnel, t)) {
                Some(x) => x.last = p,
                None => out.push(TunnelSpan {
                    tunnel: *t,
                    first: p,
                    last: p,
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{icmp_echo, vxlan};

    #[test]
    fn underlay_hops_form_one_span() {
        let inner = icmp_echo([10, 244, 0, 2], [10, 244, 1, 3], true, 9, 1, 5);
        let outer = vxlan(&inner, 1, ([10, 0, 0, 1], [10, 0, 0, 2]), 77);
        let path = [&inner, &inner, &outer, &outer, &inner];
        let s = spans(&path);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].first, s[0].last), (2, 3));
        assert_eq!(label(&s[0].tunnel), "VXLAN vni 1 10.0.0.1→10.0.0.2");
    }
}
