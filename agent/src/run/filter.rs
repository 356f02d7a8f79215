//! The kernel filter of one namespace's socket: only selected links, never the agent's own
//! collector traffic, the user's expression, and the snap length as the accept value.
//!
//! The whole program (every tunnel level walked) is ~1 600 instructions, too big for the
//! socket option memory of small kernels (net.core.optmem_max: 10 240 bytes on Debian's
//! 6.1 armmp kernel). [`KernelFilter::attach`] then falls back, tier by tier, to programs
//! that leave more to user space, where [`KernelFilter::accepts`] judges each frame.

use crate::capture::Capture;
use hopcap_proto::decode::TunnelPorts;
use hopcap_proto::filter::bpf::{compile, CompileError, CompileOptions, Depth, Endpoint};
use hopcap_proto::filter::Filter;
use hopcap_proto::summary::Summary;
use hopcap_proto::types::Addr;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// `ret #0`: keeps no frame.
pub const DROP_ALL: [libc::sock_filter; 1] = [libc::sock_filter {
    code: (libc::BPF_RET | libc::BPF_K) as u16,
    jt: 0,
    jf: 0,
    k: 0,
}];

/// Bytes of kernel memory a classic program of `len` instructions is charged at the least:
/// the kernel converts it to eBPF (at least one 8-byte instruction per classic one, often
/// more) and adds its `struct bpf_prog` header, and the attach must stay below optmem_max.
/// A program whose estimate reaches optmem_max is not even tried; one below may still be
/// refused (ENOMEM). Measured on Linux 6.18 x86_64, the hopcap programs need 14–16 bytes
/// per instruction: ~23 KB for the full walk, ~5 KB for the lean one.
pub fn optmem_estimate(len: usize) -> usize {
    const PROG_HEADER: usize = 64;
    PROG_HEADER + 8 * len
}

/// Which program a namespace's socket carries, from the whole filter down to the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Links, exclusion and expression, every tunnel level: the kernel decides alone.
    Exact,
    /// The lean outer-level program (`Depth::Outer`): frames with tunnels or rare framings
    /// are judged again in user space.
    Lean,
    /// Links and the outer-level exclusion only: the expression is judged in user space.
    ExcludeOnly,
    /// Links and snap length only: exclusion and expression in user space.
    LinksOnly,
}

impl Tier {
    /// Whether frames of a socket with this program must pass [`KernelFilter::accepts`].
    pub fn user_check(self) -> bool {
        self != Tier::Exact
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Exact => "full program",
            Tier::Lean => "lean outer-level program",
            Tier::ExcludeOnly => "link and exclusion program",
            Tier::LinksOnly => "link-only program",
        })
    }
}

/// Why a tier's program was not attached.
#[derive(Debug)]
pub enum Refusal {
    Compile(CompileError),
    /// Its estimated kernel size reaches the namespace's optmem_max.
    OverOptmem {
        estimate: usize,
        optmem_max: u32,
    },
    /// SO_ATTACH_FILTER failed (ENOMEM: over optmem_max; EINVAL: refused).
    Kernel(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Compile(e) => write!(f, "{e}"),
            Refusal::OverOptmem {
                estimate,
                optmem_max,
            } => write!(
                f,
                "needs at least {estimate} bytes, net.core.optmem_max is {optmem_max}"
            ),
            Refusal::Kernel(e) => write!(f, "the kernel refused it: {e}"),
        }
    }
}

/// One tier tried: its program's length (0 when it did not compile) and why it failed.
#[derive(Debug)]
pub struct Tried {
    pub tier: Tier,
    pub len: usize,
    pub refusal: Refusal,
}

/// What [`KernelFilter::attach`] did.
#[derive(Debug)]
pub struct Attached {
    pub tier: Tier,
    /// Instructions of the attached program.
    pub len: usize,
    /// The tiers tried before, in order.
    pub tried: Vec<Tried>,
}

/// No program could be attached at all.
#[derive(Debug)]
pub struct AttachError {
    pub tried: Vec<Tried>,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no kernel filter could be attached")?;
        for t in &self.tried {
            write!(f, "; {} ({} instructions): {}", t.tier, t.len, t.refusal)?;
        }
        Ok(())
    }
}

impl std::error::Error for AttachError {}

#[derive(Debug)]
pub struct KernelFilter {
    pub user: Option<Filter>,
    /// Endpoints never captured (the collector connection).
    pub exclude: Vec<Endpoint>,
    pub snaplen: u32,
}

impl KernelFilter {
    fn options<'a>(&'a self, ifindexes: &'a [u32], tier: Tier) -> CompileOptions<'a> {
        let (filter, exclude, depth) = match tier {
            Tier::Exact => (self.user.as_ref(), &self.exclude[..], Depth::Full),
            Tier::Lean => (self.user.as_ref(), &self.exclude[..], Depth::Outer),
            Tier::ExcludeOnly => (None, &self.exclude[..], Depth::Outer),
            Tier::LinksOnly => (None, &[][..], Depth::Outer),
        };
        CompileOptions {
            filter,
            exclude,
            ifindexes,
            snaplen: self.snaplen,
            tunnel_ports: TunnelPorts::default(),
            depth,
        }
    }

    /// The tiers worth trying, in order: a tier that would build the same program as the
    /// one before it is left out.
    fn tiers(&self) -> impl Iterator<Item = Tier> + '_ {
        let walk = self.user.is_some() || !self.exclude.is_empty();
        [
            Some(Tier::Exact),
            walk.then_some(Tier::Lean),
            (self.user.is_some() && !self.exclude.is_empty()).then_some(Tier::ExcludeOnly),
            walk.then_some(Tier::LinksOnly),
        ]
        .into_iter()
        .flatten()
    }

    /// The program of one tier for a namespace whose selected links are `ifindexes`.
    pub fn program(
        &self,
        ifindexes: &[u32],
        tier: Tier,
    ) -> Result<Vec<libc::sock_filter>, CompileError> {
        if ifindexes.is_empty() {
            // An empty allow-list means "any link" to the compiler; here it means none.
            return Ok(DROP_ALL.to_vec());
        }
        let program = compile(&self.options(ifindexes, tier))?;
        Ok(program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect())
    }

    /// Attaches to the socket of capture slot `slot` the most exact program that its
    /// namespace takes: each tier's program is checked against the namespace's optmem_max,
    /// then tried; ENOMEM or EINVAL from the kernel moves on to the next tier. Any other
    /// error, or every tier failing, is an [`AttachError`].
    pub fn attach(
        &self,
        capture: &mut Capture,
        slot: usize,
        ifindexes: &[u32],
    ) -> Result<Attached, AttachError> {
        let optmem_max = capture.optmem_max(slot);
        let mut tried = Vec::new();
        for tier in self.tiers() {
            let program = match self.program(ifindexes, tier) {
                Ok(p) => p,
                Err(e) => {
                    tried.push(Tried {
                        tier,
                        len: 0,
                        refusal: Refusal::Compile(e),
                    });
                    continue;
                }
            };
            let len = program.len();
            let estimate = optmem_estimate(len);
            if let Some(max) = optmem_max.filter(|&m| estimate >= m as usize) {
                tried.push(Tried {
                    tier,
                    len,
                    refusal: Refusal::OverOptmem {
                        estimate,
                        optmem_max: max,
                    },
                });
                continue;
            }
            match capture.set_filter_of(slot, &program) {
                Ok(()) => {
                    // DROP_ALL (no selected link) is exact whatever the tier.
                    let tier = if ifindexes.is_empty() {
                        Tier::Exact
                    } else {
                        tier
                    };
                    return Ok(Attached { tier, len, tried });
                }
                Err(e) => {
                    let next = matches!(e.raw_os_error(), Some(libc::ENOMEM | libc::EINVAL));
                    tried.push(Tried {
                        tier,
                        len,
                        refusal: Refusal::Kernel(e),
                    });
                    if !next {
                        break;
                    }
                }
            }
        }
        Err(AttachError { tried })
    }

    /// The user-space twin of the whole program (links aside, which the caller checks):
    /// whether the frame summarised as `summary` is kept. Does not allocate.
    pub fn accepts(&self, summary: &Summary) -> bool {
        self.options(&[], Tier::Exact).accepts(summary)
    }
}

/// The collector's address as an endpoint the filter drops in both directions.
pub fn endpoint(addr: &SocketAddr) -> Endpoint {
    let addr_bytes = match addr.ip() {
        IpAddr::V4(a) => Addr::V4(a.octets()),
        IpAddr::V6(a) => Addr::V6(a.octets()),
    };
    Endpoint {
        addr: addr_bytes,
        port: addr.port(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf(user: Option<&str>, exclude: bool) -> KernelFilter {
        KernelFilter {
            user: user.map(|e| Filter::parse(e).unwrap()),
            exclude: if exclude {
                vec![endpoint(&"10.0.0.9:7077".parse().unwrap())]
            } else {
                Vec::new()
            },
            snaplen: 192,
        }
    }

    #[test]
    fn tiers_shrink_and_skip_duplicates() {
        let all: Vec<Tier> = kf(Some("icmp"), true).tiers().collect();
        assert_eq!(
            all,
            [Tier::Exact, Tier::Lean, Tier::ExcludeOnly, Tier::LinksOnly]
        );
        assert_eq!(
            kf(Some("icmp"), false).tiers().collect::<Vec<_>>(),
            [Tier::Exact, Tier::Lean, Tier::LinksOnly]
        );
        assert_eq!(kf(None, false).tiers().collect::<Vec<_>>(), [Tier::Exact]);
        let k = kf(Some("tcp and host 10.0.0.1"), true);
        let lens: Vec<usize> = k
            .tiers()
            .map(|t| k.program(&[2, 3], t).unwrap().len())
            .collect();
        assert!(lens.windows(2).all(|w| w[0] > w[1]), "{lens:?}");
        // The lean program fits Debian armmp's optmem_max of 10240 bytes by the estimate.
        assert!(optmem_estimate(lens[1]) < 10240 / 2, "{lens:?}");
        assert!(optmem_estimate(lens[0]) > 10240, "{lens:?}");
        assert_eq!(lens[3], 6, "ifindex allow-list and snaplen only");
    }

    #[test]
    fn user_space_twin_excludes_and_filters() {
        use hopcap_proto::decode::{decode, DecodeOptions};
        use hopcap_proto::types::LinkType;
        let k = kf(Some("udp"), true);
        // Ethernet / IPv4 10.0.0.1 > 10.0.0.9 / UDP 5000 > 7077 (the collector) and > 53.
        let frame = |dport: u16| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&[
                0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 9,
            ]);
            f.extend_from_slice(&5000u16.to_be_bytes());
            f.extend_from_slice(&dport.to_be_bytes());
            f.extend_from_slice(&[0, 8, 0, 0]);
            Summary::from_decoded(&decode(LinkType::ETHERNET, &f, &DecodeOptions::default()))
        };
        assert!(!k.accepts(&frame(7077)));
        assert!(k.accepts(&frame(53)));
        assert!(!kf(Some("tcp"), false).accepts(&frame(53)));
    }
}
