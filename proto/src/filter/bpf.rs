//! Compiling a capture program for an AF_PACKET socket (attach with SO_ATTACH_FILTER):
//! ifindex allow-list, then the header walk (`walk`), then the exclude list, then the
//! user filter with the same every-level semantics as [`Filter::matches`]. An accepted frame
//! returns `snaplen` (the kernel truncates the copy to it), a refused one returns 0.

use super::asm::{Asm, Label};
use super::op::*;
use super::walk::{
    self, slot_deeper, slot_et, slot_net, slot_proto, slot_transport, ARP_ZERO, DEEPER, MAX_LEVELS,
    SLOT_VLAN, VLAN_NONE,
};
use super::{AddrQual, Dir, Family, Filter, NetAddr, Node, PortQual, Primitive};
use crate::decode::TunnelPorts;
use crate::types::{Addr, EtherType, IpProto};
use heapless::Vec;

/// The kernel's limit on classic BPF program length.
pub const BPF_MAXINSNS: usize = 4096;

/// One classic BPF instruction, laid out as Linux's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub type Program = Vec<BpfInsn, BPF_MAXINSNS>;

/// A TCP/UDP endpoint whose traffic (to or from it) is never captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: Addr,
    pub port: u16,
}

/// What to build. `snaplen` must be non-zero (0 would drop everything).
#[derive(Clone, Copy, Debug)]
pub struct CompileOptions<'a> {
    /// The user's filter; None accepts every frame that the other rules let through.
    pub filter: Option<&'a Filter>,
    /// Endpoints to drop in both directions, at any level (e.g. the agent's collector link).
    pub exclude: &'a [Endpoint],
    /// Accept only frames of these interfaces; empty accepts every interface.
    pub ifindexes: &'a [u32],
    pub snaplen: u32,
    /// The decoder's tunnel ports (`DecodeOptions::tunnel_ports`): the walk follows the
    /// same tunnels.
    pub tunnel_ports: TunnelPorts,
    /// How deep the program looks: [`Depth::Outer`] gives a much shorter program that
    /// leaves tunnelled frames to user space.
    pub depth: Depth,
}

/// How many levels the program walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Depth {
    /// Every level, tunnels followed: the program's verdict is the filter's (exact).
    #[default]
    Full,
    /// The outer level only (about a third of the instructions). Exact on frames without a
    /// tunnel; a frame that carries a tunnel the full walk would follow (or an MPLS
    /// pseudowire) is accepted unless the exclude list drops it at the outer level, so the
    /// program is a superset: check every frame with [`CompileOptions::accepts`] too.
    Outer,
}

impl CompileOptions<'_> {
    /// The user-space twin of the program's exclude list and filter (the ifindex
    /// allow-list aside): whether a frame whose decoded summary is `summary` is kept.
    /// Decode it as the program reads it (Ethernet on ARPHRD_ETHER/LOOPBACK, else raw IP,
    /// with the same tunnel ports). Never allocates.
    pub fn accepts(&self, summary: &crate::summary::Summary) -> bool {
        !self.exclude.iter().any(|e| e.seen_in(summary))
            && self.filter.is_none_or(|f| f.matches(summary))
    }
}

impl Endpoint {
    /// Whether this endpoint is the source or destination of a TCP/UDP header at any level
    /// of the frame (what the exclude list drops).
    pub fn seen_in(&self, summary: &crate::summary::Summary) -> bool {
        super::eval::endpoint_at_any_level(summary, self.addr, self.port)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// The program would exceed BPF_MAXINSNS instructions.
    TooLong,
    ZeroSnaplen,
    /// A malformed AST or a compiler bug; never expected.
    Internal,
}

impl core::fmt::Display for CompileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CompileError::TooLong => "filter program longer than 4096 BPF instructions",
            CompileError::ZeroSnaplen => "snaplen must be non-zero",
            CompileError::Internal => "internal error compiling the filter",
        })
    }
}

impl core::error::Error for CompileError {}

/// Builds the whole socket filter program. Everything is in bounded buffers on the stack
/// (about 150 KB at the peak: call it from a thread with a normal-sized stack).
pub fn compile(opts: &CompileOptions<'_>) -> Result<Program, CompileError> {
    if opts.snaplen == 0 {
        return Err(CompileError::ZeroSnaplen);
    }
    let mut a = Asm::new();
    let (accept, drop) = (a.label(), a.label());
    if !opts.ifindexes.is_empty() {
        let ok = a.label();
        a.stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_IFINDEX);
        for &index in opts.ifindexes {
            let next = a.label();
            a.jump(JMP | JEQ | K, index, ok, next);
            a.place(next);
        }
        a.ja(drop);
        a.place(ok);
    }
    let levels = match opts.depth {
        Depth::Full => MAX_LEVELS,
        Depth::Outer => 1,
    };
    if opts.filter.is_some() || !opts.exclude.is_empty() {
        walk::emit(&mut a, opts.tunnel_ports, levels);
    }
    let mut g = Gen { a: &mut a, levels };
    for e in opts.exclude {
        let next = g.a.label();
        g.per_level(drop, next, |g, l, t, f| g.endpoint_at(l, e, t, f));
        g.a.place(next);
    }
    // Without a filter, control falls through to accept.
    if let Some(filter) = opts.filter {
        if levels < MAX_LEVELS {
            // Levels not walked: user space decides.
            let walked = g.a.label();
            g.a.stmt(LD | MEM, slot_deeper(levels));
            g.jeq(DEEPER, accept, walked);
            g.a.place(walked);
        }
        g.node(filter, filter.root(), accept, drop)?;
    }
    a.place(accept);
    a.stmt(RET | K, opts.snaplen);
    a.place(drop);
    a.stmt(RET | K, 0);
    a.finish()
}

struct Gen<'a> {
    a: &'a mut Asm,
    /// Levels walked.
    levels: usize,
}

impl Gen<'_> {
    /// Code jumping to `t` when node `i` holds, else to `f`.
    fn node(&mut self, filter: &Filter, i: u8, t: Label, f: Label) -> Result<(), CompileError> {
        // Children precede their parent, which bounds the recursion by MAX_NODES.
        let child = |c: u8| {
            if c < i {
                Ok(c)
            } else {
                Err(CompileError::Internal)
            }
        };
        match *filter.node(i).ok_or(CompileError::Internal)? {
            Node::Prim(p) => self.prim(&p, t, f),
            Node::Not(a) => self.node(filter, child(a)?, f, t)?,
            Node::And(a, b) => {
                let mid = self.a.label();
                self.node(filter, child(a)?, mid, f)?;
                self.a.place(mid);
                self.node(filter, child(b)?, t, f)?;
            }
            Node::Or(a, b) => {
                let mid = self.a.label();
                self.node(filter, child(a)?, t, mid)?;
                self.a.place(mid);
                self.node(filter, child(b)?, t, f)?;
            }
        }
        Ok(())
    }

    fn jeq(&mut self, k: u32, t: Label, f: Label) {
        self.a.jump(JMP | JEQ | K, k, t, f);
    }

    /// `then` runs when A == k; otherwise goes to `f`.
    fn if_eq(&mut self, k: u32, f: Label) {
        let then = self.a.label();
        self.jeq(k, then, f);
        self.a.place(then);
    }

    /// Tries `at_level` on each level in turn: `t` on the first success, `f` after all fail.
    fn per_level(
        &mut self,
        t: Label,
        f: Label,
        mut at_level: impl FnMut(&mut Self, usize, Label, Label),
    ) {
        let levels = self.levels;
        for l in 0..levels {
            let next = if l + 1 == levels { f } else { self.a.label() };
            at_level(self, l, t, next);
            if l + 1 < levels {
                self.a.place(next);
            }
        }
    }

    fn prim(&mut self, p: &Primitive, t: Label, f: Label) {
        match *p {
            Primitive::Vlan(id) => {
                self.a.stmt(LD | MEM, SLOT_VLAN);
                match id {
                    None => self.jeq(VLAN_NONE, f, t),
                    Some(id) => self.jeq(u32::from(id), t, f),
                }
            }
            _ => self.per_level(t, f, |g, l, t, f| g.prim_at(p, l, t, f)),
        }
    }

    fn prim_at(&mut self, p: &Primitive, l: usize, t: Label, f: Label) {
        match *p {
            Primitive::EtherType(EtherType(e)) => {
                self.a.stmt(LD | MEM, slot_et(l));
                self.a.stmt(ALU | AND | K, 0xffff);
                self.jeq(u32::from(e), t, f);
            }
            Primitive::Proto {
                family,
                proto: IpProto(proto),
            } => {
                let check = self.a.label();
                self.a.stmt(LD | MEM, slot_et(l));
                match family {
                    Family::V4 => self.jeq(0x0800, check, f),
                    Family::V6 => self.jeq(0x86dd, check, f),
                    Family::Any => {
                        let v6 = self.a.label();
                        self.jeq(0x0800, check, v6);
                        self.a.place(v6);
                        self.jeq(0x86dd, check, f);
                    }
                }
                self.a.place(check);
                self.a.stmt(LD | MEM, slot_proto(l));
                self.jeq(u32::from(proto), t, f);
            }
            Primitive::Addr { dir, qual, net } => self.addr_at(l, dir, qual, &net, t, f),
            Primitive::Port { dir, qual, lo, hi } => {
                self.a.stmt(LD | MEM, slot_transport(l));
                let has_ports = self.a.label();
                self.jeq(0, f, has_ports);
                self.a.place(has_ports);
                if qual != PortQual::Any {
                    self.a.stmt(LD | MEM, slot_proto(l));
                    self.if_eq(if qual == PortQual::Tcp { 6 } else { 17 }, f);
                }
                self.a.stmt(LDX | MEM, slot_transport(l));
                self.by_dir(dir, 0, 2, t, f, |g, off, t, f| {
                    g.port_test(off, lo, hi, t, f)
                });
            }
            Primitive::Vlan(_) => self.a.ja(f),
        }
    }

    fn addr_at(&mut self, l: usize, dir: Dir, qual: AddrQual, net: &NetAddr, t: Label, f: Label) {
        self.a.stmt(LD | MEM, slot_et(l));
        let v4 = net.is_v4();
        // The EtherType slot values whose header holds such an address, and the offsets of
        // the source and destination address (None: ARP that the decoder reports as
        // 0.0.0.0 to 0.0.0.0).
        let mut cases: Vec<(u32, Option<(u32, u32)>), 5> = Vec::new();
        if matches!(qual, AddrQual::Any | AddrQual::Ip | AddrQual::Ip6) {
            let _ = cases.push(if v4 {
                (0x0800, Some((12, 16)))
            } else {
                (0x86dd, Some((8, 24)))
            });
        }
        if v4 && matches!(qual, AddrQual::Any | AddrQual::Arp) {
            for et in [0x0806, 0x8035] {
                let _ = cases.push((et, Some((14, 24))));
                let _ = cases.push((et | ARP_ZERO, None));
            }
        }
        let bodies: [Label; 5] = core::array::from_fn(|_| self.a.label());
        for (i, &(et, _)) in cases.iter().enumerate() {
            let next = if i + 1 == cases.len() {
                f
            } else {
                self.a.label()
            };
            self.jeq(et, bodies[i], next);
            if i + 1 < cases.len() {
                self.a.place(next);
            }
        }
        if cases.is_empty() {
            self.a.ja(f);
        }
        let zero_inside = net.contains(&Addr::V4([0; 4]));
        for (i, &(_, offsets)) in cases.iter().enumerate() {
            self.a.place(bodies[i]);
            match offsets {
                Some((src, dst)) => {
                    self.a.stmt(LDX | MEM, slot_net(l));
                    self.by_dir(dir, src, dst, t, f, |g, off, t, f| {
                        g.net_test(off, net, t, f)
                    });
                }
                // Source and destination are both 0.0.0.0: every direction agrees.
                None => self.a.ja(if zero_inside { t } else { f }),
            }
        }
    }

    /// Combines a test of the source field (at `src`) and the destination field per `dir`.
    fn by_dir(
        &mut self,
        dir: Dir,
        src: u32,
        dst: u32,
        t: Label,
        f: Label,
        mut test: impl FnMut(&mut Self, u32, Label, Label),
    ) {
        match dir {
            Dir::Src => test(self, src, t, f),
            Dir::Dst => test(self, dst, t, f),
            Dir::SrcOrDst | Dir::SrcAndDst => {
                let mid = self.a.label();
                if dir == Dir::SrcOrDst {
                    test(self, src, t, mid);
                } else {
                    test(self, src, mid, f);
                }
                self.a.place(mid);
                test(self, dst, t, f);
            }
        }
    }

    /// X = header offset; compares the address at X + off under the net's mask.
    fn net_test(&mut self, off: u32, net: &NetAddr, t: Label, f: Label) {
        let mut words: Vec<(u32, u32), 4> = Vec::new();
        let mut push_word = |addr: &[u8], mask: &[u8]| {
            let m = u32::from_be_bytes([mask[0], mask[1], mask[2], mask[3]]);
            let v = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
            let _ = words.push((v & m, m));
        };
        match net {
            NetAddr::V4 { addr, mask } => push_word(addr, mask),
            NetAddr::V6 { addr, prefix } => {
                let mask = super::v6_mask(*prefix);
                for (a, m) in addr.chunks_exact(4).zip(mask.chunks_exact(4)) {
                    push_word(a, m);
                }
            }
        }
        let significant = words.iter().filter(|(_, m)| *m != 0).count();
        if significant == 0 {
            self.a.ja(t); // net 0/0 holds for every address of the family
            return;
        }
        let mut seen = 0;
        for (i, &(value, mask)) in words.iter().enumerate() {
            if mask == 0 {
                continue;
            }
            seen += 1;
            self.a.stmt(LD | W | IND, off + 4 * i as u32);
            if mask != u32::MAX {
                self.a.stmt(ALU | AND | K, mask);
            }
            if seen == significant {
                self.jeq(value, t, f);
            } else {
                self.if_eq(value, f);
            }
        }
    }

    /// X = transport offset; the 16-bit port at X + off within lo..=hi.
    fn port_test(&mut self, off: u32, lo: u16, hi: u16, t: Label, f: Label) {
        self.a.stmt(LD | H | IND, off);
        if lo == hi {
            self.jeq(u32::from(lo), t, f);
        } else {
            let above_lo = self.a.label();
            self.a.jump(JMP | JGE | K, u32::from(lo), above_lo, f);
            self.a.place(above_lo);
            self.a.jump(JMP | JGT | K, u32::from(hi), f, t);
        }
    }

    /// An exclude entry at one level: TCP/UDP with (addr, port) as source or destination.
    fn endpoint_at(&mut self, l: usize, e: &Endpoint, t: Label, f: Label) {
        let net = NetAddr::host(e.addr);
        let et = if net.is_v4() { 0x0800 } else { 0x86dd };
        let (src, dst) = if net.is_v4() { (12, 16) } else { (8, 24) };
        self.a.stmt(LD | MEM, slot_transport(l));
        let has_ports = self.a.label();
        self.jeq(0, f, has_ports);
        self.a.place(has_ports);
        self.a.stmt(LD | MEM, slot_et(l));
        self.if_eq(et, f);
        let (src_port, try_dst, dst_port) = (self.a.label(), self.a.label(), self.a.label());
        self.a.stmt(LDX | MEM, slot_net(l));
        self.net_test(src, &net, src_port, try_dst);
        self.a.place(src_port);
        self.a.stmt(LDX | MEM, slot_transport(l));
        self.port_test(0, e.port, e.port, t, try_dst);
        self.a.place(try_dst);
        self.a.stmt(LDX | MEM, slot_net(l));
        self.net_test(dst, &net, dst_port, f);
        self.a.place(dst_port);
        self.a.stmt(LDX | MEM, slot_transport(l));
        self.port_test(2, e.port, e.port, t, f);
    }
}
