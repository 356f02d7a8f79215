//! The kernel filter of one namespace's socket: only selected links, never the agent's own
//! collector traffic, the user's expression, and the snap length as the accept value.

use hopcap_proto::decode::TunnelPorts;
use hopcap_proto::filter::bpf::{compile, CompileError, CompileOptions, Endpoint};
use hopcap_proto::filter::Filter;
use hopcap_proto::types::Addr;
use std::net::{IpAddr, SocketAddr};

/// `ret #0`: keeps no frame.
pub const DROP_ALL: [libc::sock_filter; 1] = [libc::sock_filter {
    code: (libc::BPF_RET | libc::BPF_K) as u16,
    jt: 0,
    jf: 0,
    k: 0,
}];

#[derive(Debug)]
pub struct KernelFilter {
    pub user: Option<Filter>,
    /// Endpoints never captured (the collector connection).
    pub exclude: Vec<Endpoint>,
    pub snaplen: u32,
}

impl KernelFilter {
    /// The program for a namespace whose selected links are `ifindexes`.
    pub fn program(&self, ifindexes: &[u32]) -> Result<Vec<libc::sock_filter>, CompileError> {
        if ifindexes.is_empty() {
            // An empty allow-list means "any link" to the compiler; here it means none.
            return Ok(DROP_ALL.to_vec());
        }
        let program = compile(&CompileOptions {
            filter: self.user.as_ref(),
            exclude: &self.exclude,
            ifindexes,
            snaplen: self.snaplen,
            tunnel_ports: TunnelPorts::default(),
        })?;
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
