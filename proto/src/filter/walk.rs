//! The BPF prologue that walks a frame's headers once and leaves, for each level (every
//! tunnel's outer IP header, then the innermost network layer), what the primitives need in
//! scratch memory. Every field a primitive later loads has been bounds-checked here, so a
//! primitive never reads past the packet (which would make the kernel drop the frame and
//! turn `not port 80` false on a short frame).
//!
//! Entry: Ethernet framing for ARPHRD_ETHER and ARPHRD_LOOPBACK devices; every other device
//! type is taken as raw IP (tun, WireGuard, ipip, sit, PPP: the frame starts at the IP header,
//! its version nibble says which), matching a decode with LinkType::RAW.
//! Looked through: up to 2 in-frame VLAN tags (0x8100, 0x88a8, 0x9100), MPLS (up to 4 labels,
//! then IP by version nibble), PPPoE session, IPv6 extension headers (up to 4), and as tunnels
//! VXLAN (UDP dst 4789), Geneve (UDP dst 6081), GTP-U G-PDUs (UDP dst 2152, up to 2 extension
//! headers), GRE version 0 without routing (IPv4, IPv6, transparent Ethernet), IP-in-IP (4, 41).

use super::asm::{Asm, Label};
use super::op::*;

/// Levels tracked: the summary keeps 2 tunnels plus the inner packet.
pub(crate) const MAX_LEVELS: usize = crate::summary::MAX_TUNNELS + 1;
const MAX_VLAN_TAGS: usize = 2;
const MAX_MPLS_LABELS: usize = 3;
const MAX_IPV6_EXT: usize = 4;
const MAX_IPV6_EXT_INNER: usize = 2;
const MAX_GTP_EXT: usize = 1;

/// Scratch words of level `l`: EtherType (0 = level absent; `| UNVERIFIED` when the header
/// could not be checked), network header offset, protocol after extension headers, and
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
/// Outermost VLAN id, or VLAN_NONE.
pub(crate) const SLOT_VLAN: u32 = 12;
const SLOT_T0: u32 = 13;
const SLOT_T1: u32 = 14;
const SLOT_T2: u32 = 15;

pub(crate) const UNVERIFIED: u32 = 0x1_0000;
pub(crate) const VLAN_NONE: u32 = 0x1_0000;
const PROTO_NONE: u32 = 0x100;

const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// Entry points of one level; each expects X = offset of that header.
#[derive(Clone, Copy)]
struct Entries {
    eth: Label,
    /// IP of unknown version (by nibble).
    ipv: Label,
    ip4: Label,
    ip6: Label,
}

pub(crate) struct Walker<'a> {
    a: &'a mut Asm,
    done: Label,
}

/// Emits the walker; execution continues after it with the scratch slots filled.
pub(crate) fn emit(a: &mut Asm) {
    let done = a.label();
    let mut w = Walker { a, done };
    w.init();
    let entries: [Entries; MAX_LEVELS] = core::array::from_fn(|_| w.entries());
    w.start(entries[0]);
    for l in 0..MAX_LEVELS {
        w.level(l, entries[l], entries.get(l + 1).copied());
    }
    let done = w.done;
    w.a.place(done);
}

impl Walker<'_> {
    fn entries(&mut self) -> Entries {
        Entries {
            eth: self.a.label(),
            ipv: self.a.label(),
            ip4: self.a.label(),
            ip6: self.a.label(),
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
    /// A = len - X - n, negative (top bit set) exactly when the bytes are missing (offsets
    /// stay far below 2^31).
    fn need(&mut self, n: u32, fail: Label) {
        let ok = self.a.label();
        self.a.stmt(LD | W | LEN, 0);
        self.a.stmt(ALU | SUB | X, 0);
        self.alu(SUB, n);
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

    /// Every slot gets a value first: the kernel rejects reads of unwritten scratch words.
    fn init(&mut self) {
        self.ld_imm(0);
        for l in 0..MAX_LEVELS {
            for slot in [slot_et(l), slot_net(l), slot_transport(l)] {
                self.st(slot);
            }
        }
        for slot in [SLOT_T0, SLOT_T1, SLOT_T2] {
            self.st(slot);
        }
        self.ld_imm(PROTO_NONE);
        for l in 0..MAX_LEVELS {
            self.st(slot_proto(l));
        }
        self.ld_imm(VLAN_NONE);
        self.st(SLOT_VLAN);
    }

    /// A stripped VLAN tag, then the link type's framing.
    fn start(&mut self, e: Entries) {
        let (tagged, untagged) = (self.a.label(), self.a.label());
        self.a
            .stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT);
        self.a.jump(JMP | JEQ | K, 0, untagged, tagged);
        self.a.place(tagged);
        self.a.stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG);
        self.alu(AND, 0xfff);
        self.st(SLOT_VLAN);
        self.a.place(untagged);
        self.a.stmt(LDX | IMM, 0);
        self.a.stmt(LD | W | ABS, SKF_AD_OFF + SKF_AD_HATYPE);
        self.jeq_to(ARPHRD_ETHER, e.eth);
        self.jeq_to(ARPHRD_LOOPBACK, e.eth);
        self.a.ja(e.ipv);
    }

    fn level(&mut self, l: usize, e: Entries, inner: Option<Entries>) {
        let (arp, mpls, pppoe, transport) = (
            self.a.label(),
            self.a.label(),
            self.a.label(),
            self.a.label(),
        );
        // MPLS and PPPoE only on the wire, not inside tunnels.
        let outer = l == 0;
        self.ethernet(l, e, arp, outer.then_some((mpls, pppoe)));
        if outer {
            self.mpls_pppoe(l, e, mpls, pppoe);
        }

        // IP of either version (raw links, MPLS, GTP-U).
        let exit = self.section();
        self.a.place(e.ipv);
        self.need(1, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        self.jeq_to(0x40, e.ip4);
        self.a.jump(JMP | JEQ | K, 0x60, e.ip6, exit);
        self.end_section(exit);

        self.ipv4(l, e.ip4, transport);
        self.arp(l, arp);
        self.ipv6(
            l,
            e.ip6,
            transport,
            if outer {
                MAX_IPV6_EXT
            } else {
                MAX_IPV6_EXT_INNER
            },
        );
        self.transport(l, transport, inner);
    }

    /// Ethernet (X = header start): tags, then dispatch on the EtherType.
    fn ethernet(&mut self, l: usize, e: Entries, arp: Label, mpls_pppoe: Option<(Label, Label)>) {
        let exit = self.section();
        self.a.place(e.eth);
        self.need(14, exit);
        self.ld_ind(H, 12);
        for tag in 0..MAX_VLAN_TAGS {
            let (is_tag, not_tag) = (self.a.label(), self.a.label());
            self.jeq_to(0x8100, is_tag);
            self.jeq_to(0x88a8, is_tag);
            self.a.jump(JMP | JEQ | K, 0x9100, is_tag, not_tag);
            self.a.place(is_tag);
            self.need(18, exit);
            if l == 0 && tag == 0 {
                // The outermost tag, unless the NIC already stripped one.
                let (keep, record) = (self.a.label(), self.a.label());
                self.ld_mem(SLOT_VLAN);
                self.a.jump(JMP | JEQ | K, VLAN_NONE, record, keep);
                self.a.place(record);
                self.ld_ind(H, 14);
                self.alu(AND, 0xfff);
                self.st(SLOT_VLAN);
                self.a.place(keep);
            }
            self.advance(4);
            self.ld_ind(H, 12);
            self.a.place(not_tag);
        }
        self.st(SLOT_T0);
        self.advance(14);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x0800, e.ip4);
        self.jeq_to(0x86dd, e.ip6);
        self.jeq_to(0x0806, arp);
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

    fn mpls_pppoe(&mut self, l: usize, e: Entries, mpls: Label, pppoe: Label) {
        // MPLS label stack, then IP by version nibble.
        let exit = self.section();
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
            self.a.jump(JMP | JSET | K, 1, e.ipv, more); // bottom of stack
            self.a.place(more);
        }
        self.a.ja(exit);
        // PPPoE session: 6-byte header, then the PPP protocol.
        self.a.place(pppoe);
        self.ld_imm(0x8864 | UNVERIFIED);
        self.st(slot_et(l));
        self.need(8, exit);
        self.ld_ind(H, 6);
        self.st(SLOT_T0);
        self.advance(8);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x0021, e.ip4);
        self.a.jump(JMP | JEQ | K, 0x0057, e.ip6, exit);
        self.end_section(exit);
    }

    /// ARP: only Ethernet/IPv4 ARP has addresses a filter can test.
    fn arp(&mut self, l: usize, entry: Label) {
        let exit = self.section();
        self.a.place(entry);
        self.ld_imm(0x0806 | UNVERIFIED);
        self.st(slot_et(l));
        self.a.stmt(STX, slot_net(l));
        self.need(28, exit);
        for (at, want) in [(0, 1), (2, 0x0800), (4, 0x0604)] {
            let ok = self.a.label();
            self.ld_ind(H, at);
            self.a.jump(JMP | JEQ | K, want, ok, exit);
            self.a.place(ok);
        }
        self.ld_imm(0x0806);
        self.st(slot_et(l));
        self.end_section(exit);
    }

    fn ipv4(&mut self, l: usize, entry: Label, transport: Label) {
        let exit = self.section();
        let (v4, hl_ok, fits, first) = (
            self.a.label(),
            self.a.label(),
            self.a.label(),
            self.a.label(),
        );
        self.a.place(entry);
        self.ld_imm(0x0800 | UNVERIFIED);
        self.st(slot_et(l));
        self.a.stmt(STX, slot_net(l));
        self.need(20, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        self.a.jump(JMP | JEQ | K, 0x40, v4, exit);
        self.a.place(v4);
        self.ld_ind(B, 0);
        self.alu(AND, 0x0f);
        self.alu(LSH, 2);
        self.a.jump(JMP | JGE | K, 20, hl_ok, exit);
        self.a.place(hl_ok);
        // The whole header, options included, must be there.
        self.st(SLOT_T0);
        self.a.stmt(ALU | ADD | X, 0);
        self.a.stmt(LDX | W | LEN, 0);
        self.a.jump(JMP | JGT | X, 0, exit, fits);
        self.a.place(fits);
        self.a.stmt(LDX | MEM, slot_net(l));
        self.ld_imm(0x0800);
        self.st(slot_et(l));
        self.ld_ind(B, 9);
        self.st(slot_proto(l));
        // Non-first fragments carry no transport header.
        self.ld_ind(H, 6);
        self.alu(AND, 0x1fff);
        self.a.jump(JMP | JEQ | K, 0, first, exit);
        self.a.place(first);
        self.ld_mem(SLOT_T0);
        self.a.stmt(ALU | ADD | X, 0);
        self.a.stmt(MISC | TAX, 0);
        self.a.ja(transport);
        self.end_section(exit);
    }

    fn ipv6(&mut self, l: usize, entry: Label, transport: Label, max_ext: usize) {
        let exit = self.section();
        let (v6, stop, fin) = (self.a.label(), self.a.label(), self.a.label());
        self.a.place(entry);
        self.ld_imm(0x86dd | UNVERIFIED);
        self.st(slot_et(l));
        self.a.stmt(STX, slot_net(l));
        self.need(40, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        self.a.jump(JMP | JEQ | K, 0x60, v6, exit);
        self.a.place(v6);
        self.ld_imm(0x86dd);
        self.st(slot_et(l));
        self.ld_imm(0);
        self.st(SLOT_T1); // set when a fragment header says "not the first fragment"
        self.ld_ind(B, 6);
        self.st(SLOT_T0); // the pending next header
        self.advance(40);
        for _ in 0..max_ext {
            let (ext, frag, ah, sized) = (
                self.a.label(),
                self.a.label(),
                self.a.label(),
                self.a.label(),
            );
            self.ld_mem(SLOT_T0);
            for t in [0, 43, 60, 135, 51] {
                self.jeq_to(t, ext);
            }
            self.a.jump(JMP | JEQ | K, 44, ext, fin);
            self.a.place(ext);
            self.need(8, stop);
            self.ld_mem(SLOT_T0);
            self.jeq_to(44, frag);
            self.jeq_to(51, ah);
            // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
            self.ld_ind(B, 1);
            self.alu(ADD, 1);
            self.alu(LSH, 3);
            self.a.ja(sized);
            // AH: (len + 2) * 4 bytes.
            self.a.place(ah);
            self.ld_ind(B, 1);
            self.alu(ADD, 2);
            self.alu(LSH, 2);
            self.a.ja(sized);
            // Fragment: 8 bytes; a non-zero offset means no transport header.
            self.a.place(frag);
            let (later, first) = (self.a.label(), self.a.label());
            self.ld_ind(H, 2);
            self.alu(AND, 0xfff8);
            self.a.jump(JMP | JEQ | K, 0, first, later);
            self.a.place(later);
            self.ld_imm(1);
            self.st(SLOT_T1);
            self.a.place(first);
            self.ld_imm(8);
            // A = this header's length: take its next header, move X past it.
            self.a.place(sized);
            self.st(SLOT_T2);
            self.ld_ind(B, 0);
            self.st(SLOT_T0);
            self.ld_mem(SLOT_T2);
            self.a.stmt(ALU | ADD | X, 0);
            self.a.stmt(MISC | TAX, 0);
        }
        // Chain longer than followed, or truncated: the pending header is the protocol.
        self.a.place(stop);
        self.ld_mem(SLOT_T0);
        self.st(slot_proto(l));
        self.a.ja(exit);
        self.a.place(fin);
        self.ld_mem(SLOT_T0);
        self.st(slot_proto(l));
        self.ld_mem(SLOT_T1);
        self.a.jump(JMP | JEQ | K, 0, transport, exit);
        self.end_section(exit);
    }

    /// X = transport header offset, protocol in slot_proto(l).
    fn transport(&mut self, l: usize, entry: Label, inner: Option<Entries>) {
        let exit = self.section();
        let (tcp, udp, gre) = (self.a.label(), self.a.label(), self.a.label());
        self.a.place(entry);
        self.ld_mem(slot_proto(l));
        self.jeq_to(6, tcp);
        if let Some(inner) = inner {
            self.jeq_to(4, inner.ip4);
            self.jeq_to(41, inner.ip6);
            self.jeq_to(47, gre);
        }
        self.a.jump(JMP | JEQ | K, 17, udp, exit);

        self.a.place(tcp);
        self.need(20, exit);
        self.a.stmt(STX, slot_transport(l));
        self.a.ja(exit);

        self.a.place(udp);
        self.need(8, exit);
        self.a.stmt(STX, slot_transport(l));
        let Some(inner) = inner else {
            self.end_section(exit);
            return;
        };
        let (vxlan, geneve, gtp) = (self.a.label(), self.a.label(), self.a.label());
        self.ld_ind(H, 2);
        self.jeq_to(4789, vxlan);
        self.jeq_to(6081, geneve);
        self.a.jump(JMP | JEQ | K, 2152, gtp, exit);

        // VXLAN: 8-byte header, then Ethernet.
        self.a.place(vxlan);
        self.advance(8);
        self.need(8, exit);
        self.advance(8);
        self.a.ja(inner.eth);

        // Geneve: 8 bytes + options, protocol type like GRE's.
        self.a.place(geneve);
        let version0 = self.a.label();
        self.advance(8);
        self.need(8, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xc0);
        self.a.jump(JMP | JEQ | K, 0, version0, exit);
        self.a.place(version0);
        self.ld_ind(H, 2);
        self.st(SLOT_T0);
        self.ld_ind(B, 0);
        self.alu(AND, 0x3f);
        self.alu(LSH, 2);
        self.alu(ADD, 8);
        self.a.stmt(ALU | ADD | X, 0);
        self.a.stmt(MISC | TAX, 0);
        self.by_protocol(inner, exit);

        // GRE version 0 without routing: 4 bytes + 4 per checksum, key, sequence flag.
        self.a.place(gre);
        let plain = self.a.label();
        self.need(4, exit);
        self.ld_ind(H, 0);
        self.st(SLOT_T1);
        self.alu(AND, 0x4007);
        self.a.jump(JMP | JEQ | K, 0, plain, exit);
        self.a.place(plain);
        self.ld_ind(H, 2);
        self.st(SLOT_T0);
        self.advance(4);
        for flag in [0x8000, 0x2000, 0x1000] {
            let (set, clear) = (self.a.label(), self.a.label());
            self.ld_mem(SLOT_T1);
            self.a.jump(JMP | JSET | K, flag, set, clear);
            self.a.place(set);
            self.advance(4);
            self.a.place(clear);
        }
        self.by_protocol(inner, exit);
        self.end_section(exit);

        self.gtp(gtp, inner);
    }

    /// Dispatches on the EtherType in T0 (Geneve, GRE) to the inner level.
    fn by_protocol(&mut self, inner: Entries, exit: Label) {
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x6558, inner.eth);
        self.jeq_to(0x0800, inner.ip4);
        self.a.jump(JMP | JEQ | K, 0x86dd, inner.ip6, exit);
    }

    /// GTP-U (X = UDP header): only G-PDUs (type 255) of version 1 carry user IP packets.
    fn gtp(&mut self, entry: Label, inner: Entries) {
        let exit = self.section();
        let (v1, gpdu, plain, opt, ext, no_ext) = (
            self.a.label(),
            self.a.label(),
            self.a.label(),
            self.a.label(),
            self.a.label(),
            self.a.label(),
        );
        self.a.place(entry);
        self.advance(8);
        self.need(8, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        self.a.jump(JMP | JEQ | K, 0x30, v1, exit);
        self.a.place(v1);
        self.ld_ind(B, 1);
        self.a.jump(JMP | JEQ | K, 0xff, gpdu, exit);
        self.a.place(gpdu);
        self.ld_ind(B, 0);
        self.a.jump(JMP | JSET | K, 0x07, opt, plain);
        self.a.place(plain);
        self.advance(8);
        self.a.ja(inner.ipv);
        // Sequence number, N-PDU number and next-extension type: 4 more bytes.
        self.a.place(opt);
        self.need(12, exit);
        self.ld_ind(B, 0);
        self.a.jump(JMP | JSET | K, 0x04, ext, no_ext);
        self.a.place(no_ext);
        self.advance(12);
        self.a.ja(inner.ipv);
        self.a.place(ext);
        self.ld_ind(B, 11);
        self.st(SLOT_T0);
        self.advance(12);
        for _ in 0..MAX_GTP_EXT {
            // Each extension is [length in 4-byte units] ... [next type] (its last byte).
            let (more, sized) = (self.a.label(), self.a.label());
            self.ld_mem(SLOT_T0);
            self.a.jump(JMP | JEQ | K, 0, inner.ipv, more);
            self.a.place(more);
            self.need(1, exit);
            self.ld_ind(B, 0);
            self.alu(LSH, 2);
            self.a.jump(JMP | JEQ | K, 0, exit, sized);
            self.a.place(sized);
            self.a.stmt(ALU | ADD | X, 0);
            self.alu(SUB, 1);
            self.a.stmt(MISC | TAX, 0); // X = the extension's last byte
            self.need(1, exit);
            self.ld_ind(B, 0);
            self.st(SLOT_T0);
            self.advance(1);
        }
        self.ld_mem(SLOT_T0);
        self.a.jump(JMP | JEQ | K, 0, inner.ipv, exit);
        self.end_section(exit);
    }
}
