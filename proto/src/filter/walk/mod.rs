//! The BPF prologue that walks a frame's headers once and leaves, for each level (every
//! tunnel's outer IP header, then the innermost network layer), what the primitives need in
//! scratch memory. Every field a primitive later loads has been bounds-checked here, so a
//! primitive never reads past the packet (which would make the kernel drop the frame and
//! turn `not port 80` false on a short frame).
//!
//! It follows the decoder's rules (crate::decode) so that the program agrees with
//! `Filter::matches` on the decoded summary: a header counts only once the decoder would
//! have accepted it (IPv4 version, IHL and total length; TCP data offset; UDP length).
//!
//! Entry: Ethernet framing for ARPHRD_ETHER and ARPHRD_LOOPBACK devices; every other device
//! type is taken as raw IP (tun, WireGuard, ipip, sit, PPP: the frame starts at the IP header,
//! its version nibble says which), matching a decode with LinkType::RAW.
//! Looked through: up to 2 VLAN tags per Ethernet header (0x8100, 0x88a8, 0x9100; on the
//! wire 3 tags or Cisco VN-Tag/MetaData shims); on the outer frame MPLS (up to 3 labels,
//! then IP by nibble or a control word and Ethernet) and PPPoE sessions; IPv6 extension
//! headers (4 on the outer level, 2 inside tunnels) and AH after IPv4; as tunnels VXLAN,
//! Geneve and GTP-U G-PDUs (one extension header) on the decoder's ports
//! ([`crate::decode::TunnelPorts`], by default UDP 4789 and 8472, 6081, 2152), each by
//! destination port first, then source port; GRE versions 0 and 1 (IPv4, IPv6, ARP,
//! transparent Ethernet, ERSPAN II/III, Cisco MetaData, PPP); IP-in-IP (4, 41).
//! The packet ends where the frame ends or, as in the decoder, where an IPv4 total length,
//! IPv6 payload length, UDP length, GTP-U length or PPPoE length says (SLOT_END).
//! Not followed (the decoder does): MPLS-in-UDP, GRE version 0 routing entries, VLAN tags
//! or MPLS after a GRE/Geneve protocol field, MPLS inside PPP, longer chains than above.
//! Those frames see only the levels before; the tests list where that shows.

use super::asm::{Asm, Label};
use super::op::*;
use crate::decode::TunnelPorts;

mod ip;
mod tunnel;

/// Levels tracked: the summary keeps 2 tunnels plus the inner packet.
pub(crate) const MAX_LEVELS: usize = crate::summary::MAX_TUNNELS + 1;
const MAX_VLAN_TAGS: usize = 2;
const MAX_MPLS_LABELS: usize = 3;
const MAX_IPV6_EXT: usize = 4;
const MAX_IPV6_EXT_INNER: usize = 2;
/// A lean walk (see [`emit`]) follows fewer: more tags or extension headers, Cisco shims,
/// MPLS and PPPoE end it at the `deeper` exit.
const LEAN_VLAN_TAGS: usize = 2;
const LEAN_IPV6_EXT: usize = 1;

/// Scratch words of level `l`: EtherType (0 = level absent; `| UNVERIFIED` when the header
/// it names was not decoded), network header offset, protocol after extension headers, and
/// transport header offset (0 = no TCP/UDP header with ports).
pub(crate) const fn slot_et(l: usize) -> u32 {
    4 * l as u32
}
pub(crate) const fn slot_net(l: usize) -> u32 {
    4 * l as u32 + 1
}
pub(crate) const fn slot_proto(l: usize) -> u32 {
    4 * l as u32 + 2
}
pub(crate) const fn slot_transport(l: usize) -> u32 {
    4 * l as u32 + 3
}
/// The first VLAN id met (a stripped tag first), or VLAN_NONE.
pub(crate) const SLOT_VLAN: u32 = 12;
const SLOT_T0: u32 = 13;
/// Where the packet ends: the frame's length, cut by IP, UDP, GTP-U and PPPoE length
/// fields as the decoder cuts it.
const SLOT_END: u32 = 14;
const SLOT_T2: u32 = 15;

pub(crate) const UNVERIFIED: u32 = 0x1_0000;
/// On an ARP/RARP EtherType: a decoded header without Ethernet/IPv4 addresses, which the
/// decoder reports as 0.0.0.0.
pub(crate) const ARP_ZERO: u32 = 0x2_0000;
pub(crate) const VLAN_NONE: u32 = 0x1_0000;
const PROTO_NONE: u32 = 0x100;

const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// Entry points of one level; each expects X = offset of that header.
#[derive(Clone, Copy)]
struct Entries {
    eth: Label,
    /// IP by version nibble, the EtherType slot left as it is (IP-in-IP, PPP, MPLS, GTP-U).
    ipv: Label,
    /// IP announced by an EtherType field (Ethernet, GRE, Geneve): the slot records it.
    ip4_et: Label,
    ip6_et: Label,
    /// ARP or RARP, with the EtherType in T0.
    arp: Label,
}

pub(crate) struct Walker<'a> {
    a: &'a mut Asm,
    done: Label,
    ports: TunnelPorts,
    /// Set when the walk stops before the last level: where a tunnel would lead to a level
    /// not walked, the walk jumps here instead of parsing the tunnel header.
    deeper: Option<Label>,
    /// How many levels are walked.
    levels: usize,
}

/// The slot a shortened walk (fewer than MAX_LEVELS levels) sets to [`DEEPER`] when the
/// frame carries a tunnel (or MPLS pseudowire) it did not follow: the EtherType slot of
/// the first level not walked, which is free then.
pub(crate) const fn slot_deeper(levels: usize) -> u32 {
    slot_et(levels)
}
pub(crate) const DEEPER: u32 = 1;

/// Emits the walker for the first `levels` levels (1..=MAX_LEVELS); execution continues
/// after it with the scratch slots of those levels filled. With fewer than MAX_LEVELS, the
/// walk is also *lean* and [`slot_deeper`] says whether it stopped short: the frame goes on
/// into a level not walked, or uses a framing the lean walk leaves out (more than 2 VLAN
/// tags or 1 IPv6 extension header, Cisco shims, MPLS, PPPoE). On every other frame the
/// walked levels are exactly those of the full walk.
pub(crate) fn emit(a: &mut Asm, ports: TunnelPorts, levels: usize) {
    let levels = levels.clamp(1, MAX_LEVELS);
    let done = a.label();
    let deeper = (levels < MAX_LEVELS).then(|| a.label());
    let mut w = Walker {
        a,
        done,
        ports,
        deeper,
        levels,
    };
    w.init(levels);
    let entries: [Entries; MAX_LEVELS] = core::array::from_fn(|_| w.entries());
    w.start(entries[0]);
    for l in 0..levels {
        w.level(l, entries[l], entries.get(l + 1).copied());
    }
    if let Some(deeper) = w.deeper {
        // Every way into the first level not walked.
        let e = entries[levels];
        for label in [deeper, e.eth, e.ipv, e.ip4_et, e.ip6_et, e.arp] {
            w.a.place(label);
        }
        w.ld_imm(DEEPER);
        w.st(slot_deeper(levels));
    }
    let done = w.done;
    w.a.place(done);
}

impl Walker<'_> {
    /// In a lean walk, where a framing it does not follow goes.
    fn lean_exit(&self) -> Option<Label> {
        self.deeper
    }

    fn entries(&mut self) -> Entries {
        Entries {
            eth: self.a.label(),
            ipv: self.a.label(),
            ip4_et: self.a.label(),
            ip6_et: self.a.label(),
            arp: self.a.label(),
        }
    }

    fn ld_imm(&mut self, k: u32) {
        self.a.stmt(LD | IMM, k);
    }
    fn st(&mut self, slot: u32) {
        self.a.stmt(ST, slot);
    }
    fn ld_mem(&mut self, slot: u32) {
        self.a.stmt(LD | MEM, slot);
    }
    fn ld_ind(&mut self, size: u16, k: u32) {
        self.a.stmt(LD | size | IND, k);
    }
    fn alu(&mut self, opr: u16, k: u32) {
        self.a.stmt(ALU | opr | K, k);
    }
    /// X += k (A is clobbered).
    fn advance(&mut self, k: u32) {
        self.a.stmt(MISC | TXA, 0);
        self.alu(ADD, k);
        self.a.stmt(MISC | TAX, 0);
    }
    /// Jumps to `t` if A == k, else falls through.
    fn jeq_to(&mut self, k: u32, t: Label) {
        let next = self.a.label();
        self.a.jump(JMP | JEQ | K, k, t, next);
        self.a.place(next);
    }
    /// Continues only if `n` bytes at X are in the packet, else goes to `fail`. Keeps X;
    /// A = end - X - n, negative (top bit set) exactly when the bytes are missing (offsets
    /// stay far below 2^31).
    fn need(&mut self, n: u32, fail: Label) {
        let ok = self.a.label();
        self.ld_mem(SLOT_END);
        self.a.stmt(ALU | SUB | X, 0);
        if n > 0 {
            self.alu(SUB, n);
        }
        self.a.jump(JMP | JSET | K, 0x8000_0000, fail, ok);
        self.a.place(ok);
    }

    /// Starts a stretch of code whose failures jump to a nearby `ja done` (placed by
    /// `end_section`), keeping those jumps short instead of expanded.
    fn section(&mut self) -> Label {
        self.a.label()
    }

    fn end_section(&mut self, exit: Label) {
        self.a.place(exit);
        self.a.ja(self.done);
    }

    /// END = min(END, A + X): a length field (in A, counted from X) cuts the packet.
    /// Afterwards X = the value in `restore`.
    fn limit(&mut self, restore: u32) {
        let (store, keep) = (self.a.label(), self.a.label());
        self.a.stmt(ALU | ADD | X, 0);
        self.a.stmt(LDX | MEM, SLOT_END);
        self.a.jump(JMP | JGT | X, 0, keep, store);
        self.a.place(store);
        self.st(SLOT_END);
        self.a.place(keep);
        self.a.stmt(LDX | MEM, restore);
    }

    /// Every slot gets a value first: the kernel rejects reads of unwritten scratch words.
    fn init(&mut self, levels: usize) {
        self.ld_imm(0);
        for l in 0..levels {
            for slot in [slot_et(l), slot_net(l), slot_transport(l)] {
                self.st(slot);
            }
        }
        if levels < MAX_LEVELS {
            self.st(slot_deeper(levels));
        }
        for slot in [SLOT_T0, SLOT_T2] {
            self.st(slot);
        }
        self.a.stmt(LD | W | LEN, 0);
        self.st(SLOT_END);
        self.ld_imm(PROTO_NONE);
        for l in 0..levels {
            self.st(slot_proto(l));
        }
        self.ld_imm(VLAN_NONE);
        self.st(SLOT_VLAN);
    }

    /// The link type's framing.
    fn start(&mut self, e: Entries) {
        self.a.stmt(LDX | IMM, 0);
        self.a.stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_HATYPE);
        self.jeq_to(ARPHRD_ETHER, e.eth);
        self.jeq_to(ARPHRD_LOOPBACK, e.eth);
        self.a.ja(e.ipv);
    }

    fn level(&mut self, l: usize, e: Entries, inner: Option<Entries>) {
        let (mpls, pppoe) = match self.lean_exit() {
            Some(deeper) => (deeper, deeper),
            None => (self.a.label(), self.a.label()),
        };
        // MPLS and PPPoE only on the wire, not inside tunnels.
        let outer = l == 0;
        self.ethernet(l, e, outer.then_some((mpls, pppoe)));
        if outer && self.lean_exit().is_none() {
            self.mpls_pppoe(l, e, mpls, pppoe, inner);
        }
        let [v4, v6, ext, transport] = self.a.labels();
        self.ip_entries(l, e, v4, v6);
        self.arp(l, e.arp);
        self.ipv4(l, v4, ext, transport);
        self.ipv6(
            l,
            v6,
            ext,
            transport,
            match (self.lean_exit(), outer) {
                (Some(_), _) => LEAN_IPV6_EXT,
                (None, true) => MAX_IPV6_EXT,
                (None, false) => MAX_IPV6_EXT_INNER,
            },
        );
        self.transport(l, transport, inner);
    }

    /// Ethernet (X = header start): tags (and on the wire Cisco shims), then dispatch on
    /// the EtherType.
    fn ethernet(&mut self, l: usize, e: Entries, mpls_pppoe: Option<(Label, Label)>) {
        let exit = self.section();
        self.a.place(e.eth);
        self.need(14, exit);
        let outer = mpls_pppoe.is_some();
        if outer {
            // A tag the NIC stripped counts once the Ethernet header is there (the decoder
            // places it after that header; raw-IP devices never report one).
            let (tagged, untagged) = (self.a.label(), self.a.label());
            self.a
                .stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT);
            self.a.jump(JMP | JEQ | K, 0, untagged, tagged);
            self.a.place(tagged);
            self.a.stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG);
            self.alu(AND, 0xfff);
            self.st(SLOT_VLAN);
            self.a.place(untagged);
        }
        self.ld_ind(H, 12);
        let lean = self.lean_exit();
        let shims = outer && lean.is_none();
        let tags = match (lean, outer) {
            (Some(_), _) => LEAN_VLAN_TAGS,
            (None, true) => MAX_VLAN_TAGS + 1,
            (None, false) => MAX_VLAN_TAGS,
        };
        for _ in 0..tags {
            let [is_tag, not_tag, shim6, shim8, next] = self.a.labels();
            self.jeq_to(0x8100, is_tag);
            self.jeq_to(0x88a8, is_tag);
            if shims {
                // VN-Tag: 6 bytes, EtherType last; MetaData: 8 bytes, EtherType last.
                self.jeq_to(0x8926, shim6);
                self.jeq_to(0x8909, shim8);
            }
            self.a.jump(JMP | JEQ | K, 0x9100, is_tag, not_tag);
            self.a.place(is_tag);
            self.need(18, exit);
            // The first tag met anywhere, unless the NIC already stripped one.
            let (keep, record) = (self.a.label(), self.a.label());
            self.ld_mem(SLOT_VLAN);
            self.a.jump(JMP | JEQ | K, VLAN_NONE, record, keep);
            self.a.place(record);
            self.ld_ind(H, 14);
            self.alu(AND, 0xfff);
            self.st(SLOT_VLAN);
            self.a.place(keep);
            self.advance(4);
            if shims {
                self.a.ja(next);
                self.a.place(shim6);
                self.need(20, exit);
                self.advance(6);
                self.a.ja(next);
                self.a.place(shim8);
                self.need(22, exit);
                self.advance(8);
            }
            self.a.place(next);
            self.ld_ind(H, 12);
            self.a.place(not_tag);
        }
        if let Some(deeper) = lean {
            // Framings the full walk follows and a lean one does not.
            for et in [0x8100, 0x88a8, 0x9100, 0x8926, 0x8909] {
                self.jeq_to(et, deeper);
            }
        }
        self.st(SLOT_T0);
        self.advance(14);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x0800, e.ip4_et);
        self.jeq_to(0x86dd, e.ip6_et);
        self.jeq_to(0x0806, e.arp);
        self.jeq_to(0x8035, e.arp);
        if let Some((mpls, pppoe)) = mpls_pppoe {
            self.jeq_to(0x8847, mpls);
            self.jeq_to(0x8848, mpls);
            self.jeq_to(0x8864, pppoe);
        }
        // An EtherType this walker does not follow: kept, marked unverified.
        self.alu(OR, UNVERIFIED);
        self.st(slot_et(l));
        self.end_section(exit);
    }

    fn mpls_pppoe(
        &mut self,
        l: usize,
        e: Entries,
        mpls: Label,
        pppoe: Label,
        inner: Option<Entries>,
    ) {
        // MPLS label stack; after the bottom entry, IP by version nibble, or (nibble 0) a
        // pseudowire control word and Ethernet, which becomes the next level.
        let exit = self.section();
        let bottom = self.a.label();
        self.a.place(mpls);
        self.ld_imm(0x8847 | UNVERIFIED);
        self.st(slot_et(l));
        for _ in 0..MAX_MPLS_LABELS {
            let more = self.a.label();
            self.need(4, exit);
            self.ld_ind(B, 2);
            self.st(SLOT_T0);
            self.advance(4);
            self.ld_mem(SLOT_T0);
            self.a.jump(JMP | JSET | K, 1, bottom, more);
            self.a.place(more);
        }
        self.a.ja(exit);
        self.a.place(bottom);
        self.need(1, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        match inner {
            Some(inner) => {
                let control_word = self.a.label();
                self.a.jump(JMP | JEQ | K, 0, control_word, e.ipv);
                self.a.place(control_word);
                self.need(4, exit);
                self.advance(4);
                self.a.ja(inner.eth);
            }
            None => self.a.ja(e.ipv),
        }
        // PPPoE session: 6-byte header, then the PPP protocol.
        self.a.place(pppoe);
        self.ld_imm(0x8864 | UNVERIFIED);
        self.st(slot_et(l));
        self.need(8, exit);
        self.a.stmt(STX, SLOT_T2);
        self.ld_ind(H, 4);
        self.alu(ADD, 6);
        self.limit(SLOT_T2);
        self.ld_ind(H, 6);
        self.st(SLOT_T0);
        self.advance(8);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x0021, e.ipv);
        self.a.jump(JMP | JEQ | K, 0x0057, e.ipv, exit);
        self.end_section(exit);
    }

    /// ARP/RARP (EtherType in T0). The decoder takes 8 bytes as a header; its addresses
    /// are those of an ARP with 6-byte hardware and 4-byte protocol addresses that is all
    /// there (28 bytes), else 0.0.0.0.
    fn arp(&mut self, l: usize, entry: Label) {
        let exit = self.section();
        let zero = self.a.label();
        self.a.place(entry);
        self.ld_mem(SLOT_T0);
        self.alu(OR, UNVERIFIED);
        self.st(slot_et(l));
        self.a.stmt(STX, slot_net(l));
        self.need(8, exit);
        self.ld_mem(SLOT_T0);
        self.alu(OR, ARP_ZERO);
        self.st(slot_et(l));
        self.need(28, exit);
        let sizes_ok = self.a.label();
        self.ld_ind(H, 4); // hardware and protocol address lengths
        self.a.jump(JMP | JEQ | K, 0x0604, sizes_ok, zero);
        self.a.place(sizes_ok);
        self.ld_mem(SLOT_T0);
        self.st(slot_et(l));
        self.a.place(zero);
        self.end_section(exit);
    }
}
