//! Address translation: the same packet seen with different addresses, ports or ICMP id on
//! consecutive hops. The fingerprint leaves these fields out, so the hops still match; here
//! the differences become rewrites (source → SNAT/masquerade, destination → DNAT/port
//! forward or the reverse translation of a reply, ICMP echo id).

use hopcap_proto::print::Endpoint;
pub use hopcap_proto::summary::Endpoints;
use hopcap_proto::types::Addr;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NatKind {
    /// The source address or port changed (SNAT, masquerade).
    Snat,
    /// The destination address or port changed (DNAT, port forward, un-NAT of a reply).
    Dnat,
    /// The ICMP echo identifier changed (masquerade of ICMP).
    IcmpId,
}

impl NatKind {
    pub fn label(self) -> &'static str {
        match self {
            NatKind::Snat => "SNAT",
            NatKind::Dnat => "DNAT",
            NatKind::IcmpId => "ICMP id",
        }
    }
}

/// One rewrite: what the field read before and after, and the hop (position in the
/// journey's ordered hops) where the new value was first seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRewrite {
    pub kind: NatKind,
    pub before: String,
    pub after: String,
    pub at: usize,
}

/// Compares every hop with the hop before it (`prev[i]`) and lists the rewrites, each once.
pub(super) fn rewrites(eps: &[Option<Endpoints>], prev: &[Option<usize>]) -> Vec<NatRewrite> {
    let mut out: Vec<NatRewrite> = Vec::new();
    for (at, (cur, p)) in eps.iter().zip(prev).enumerate() {
        let (Some(cur), Some(Some(before))) = (cur, p.map(|p| eps.get(p).copied().flatten()))
        else {
            continue;
        };
        let sides = [
            (
                NatKind::Snat,
                (before.src, before.sport),
                (cur.src, cur.sport),
            ),
            (
                NatKind::Dnat,
                (before.dst, before.dport),
                (cur.dst, cur.dport),
            ),
        ];
        for (kind, b, a) in sides {
            if b != a {
                let show_port = b.1 != a.1;
                push(
                    &mut out,
                    kind,
                    endpoint(b, show_port),
                    endpoint(a, show_port),
                    at,
                );
            }
        }
        if let (Some(b), Some(a)) = (before.icmp_id, cur.icmp_id) {
            if b != a {
                push(&mut out, NatKind::IcmpId, b.to_string(), a.to_string(), at);
            }
        }
    }
    out
}

fn push(out: &mut Vec<NatRewrite>, kind: NatKind, before: String, after: String, at: usize) {
    if !out
        .iter()
        .any(|r| r.kind == kind && r.before == before && r.after == after)
    {
        out.push(NatRewrite {
            kind,
            before,
            after,
            at,
        });
    }
}

/// `10.0.0.1`, `10.0.0.1:80` or `[fd00::1]:80`.
fn endpoint((addr, port): (Addr, Option<u16>), show_port: bool) -> String {
    let port = port.filter(|_| show_port);
    Endpoint { addr, port }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{icmp_echo, tcp4, with_dst, with_src};
    use hopcap_proto::summary::{Summary, Transport};

    fn eps(list: &[Summary]) -> Vec<Option<Endpoints>> {
        list.iter().map(Endpoints::of).collect()
    }

    #[test]
    fn masquerade_of_a_ping_is_snat_plus_id() {
        let req = icmp_echo([172, 17, 0, 2], [198, 51, 100, 101], true, 16384, 0, 7);
        let out = with_src(&req, [192, 168, 43, 116], Some(20001));
        let hops = [req.clone(), req, out];
        let r = rewrites(&eps(&hops), &[None, Some(0), Some(1)]);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].kind,
                r[0].before.as_str(),
                r[0].after.as_str(),
                r[0].at
            ),
            (NatKind::Snat, "172.17.0.2", "192.168.43.116", 2)
        );
        assert_eq!(
            (r[1].kind, r[1].before.as_str(), r[1].after.as_str()),
            (NatKind::IcmpId, "16384", "20001")
        );
    }

    #[test]
    fn port_forward_shows_ports_when_they_change() {
        let inbound = tcp4(
            ([203, 0, 113, 9], 51000),
            ([192, 168, 43, 116], 8080),
            1,
            2,
            3,
            0,
        );
        let mut fwd = with_dst(&inbound, [172, 17, 0, 2]);
        if let Transport::Tcp { dst_port, .. } = &mut fwd.transport {
            *dst_port = 80;
        }
        let r = rewrites(&eps(&[inbound, fwd]), &[None, Some(0)]);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].kind, r[0].before.as_str(), r[0].after.as_str()),
            (NatKind::Dnat, "192.168.43.116:8080", "172.17.0.2:80")
        );
    }

    #[test]
    fn unchanged_hops_have_no_rewrite() {
        let s = icmp_echo([10, 0, 0, 1], [10, 0, 0, 2], true, 1, 1, 1);
        assert!(rewrites(&eps(&[s.clone(), s]), &[None, Some(0)]).is_empty());
    }
}
