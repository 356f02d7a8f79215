//! IPv4 and IPv6 headers, the extension chain, and where the transport header starts.

use super::{slot_et, slot_net, slot_proto, Entries, Walker, SLOT_T0, SLOT_T2, UNVERIFIED};
use crate::filter::asm::Label;
use crate::filter::op::*;

impl Walker<'_> {
    /// The three ways into IP; all pick the version by nibble, as the decoder does.
    pub(super) fn ip_entries(&mut self, l: usize, e: Entries, v4: Label, v6: Label) {
        let exit = self.section();
        let record = self.a.label();
        self.a.place(e.ip4_et);
        self.ld_imm(0x0800 | UNVERIFIED);
        self.a.ja(record);
        self.a.place(e.ip6_et);
        self.ld_imm(0x86dd | UNVERIFIED);
        self.a.place(record);
        self.st(slot_et(l));
        self.a.place(e.ipv);
        self.need(1, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0xf0);
        self.jeq_to(0x40, v4);
        self.a.jump(JMP | JEQ | K, 0x60, v6, exit);
        self.end_section(exit);
    }

    /// X = IPv4 header with version 4. Valid as the decoder's: 20 bytes, IHL >= 5, total
    /// length 0 (offload) or >= IHL. Then ports only if the header with options is there
    /// and this is not a later fragment; AH is walked like an IPv6 extension.
    pub(super) fn ipv4(&mut self, l: usize, entry: Label, ext: Label, transport: Label) {
        let exit = self.section();
        let [hl_ok, total_ok, offload, first, ah] = self.a.labels();
        self.a.place(entry);
        self.a.stmt(STX, slot_net(l));
        self.need(20, exit);
        self.ld_ind(B, 0);
        self.alu(AND, 0x0f);
        self.alu(LSH, 2);
        self.a.jump(JMP | JGE | K, 20, hl_ok, exit);
        self.a.place(hl_ok);
        self.st(SLOT_T0);
        self.ld_ind(H, 2);
        self.a.stmt(LDX | MEM, SLOT_T0);
        self.jeq_to(0, offload);
        self.a.jump(JMP | JGE | X, 0, total_ok, exit);
        self.a.place(total_ok);
        // The total length ends the packet (0, left by segmentation offload, does not).
        self.a.stmt(LDX | MEM, slot_net(l));
        self.ld_ind(H, 2);
        self.limit(slot_net(l));
        self.a.place(offload);
        self.a.stmt(LDX | MEM, slot_net(l));
        self.ld_imm(0x0800);
        self.st(slot_et(l));
        self.ld_ind(B, 9);
        self.st(slot_proto(l));
        self.ld_ind(H, 6);
        self.alu(AND, 0x1fff);
        self.a.jump(JMP | JEQ | K, 0, first, exit);
        self.a.place(first);
        self.ld_mem(SLOT_T0);
        self.a.stmt(ALU | ADD | X, 0);
        self.a.stmt(MISC | TAX, 0);
        self.need(0, exit);
        self.ld_mem(slot_proto(l));
        self.a.jump(JMP | JEQ | K, 51, ah, transport);
        self.a.place(ah);
        self.ld_imm(51);
        self.st(SLOT_T0);
        self.a.ja(ext);
        self.end_section(exit);
    }

    /// X = IPv6 header with version 6; then up to `max_ext` extension headers (`ext` enters
    /// the chain with the pending next header in T0 and X at it).
    pub(super) fn ipv6(
        &mut self,
        l: usize,
        entry: Label,
        ext: Label,
        transport: Label,
        max_ext: usize,
    ) {
        let exit = self.section();
        let (stop, fin) = (self.a.label(), self.a.label());
        self.a.place(entry);
        self.a.stmt(STX, slot_net(l));
        self.need(40, exit);
        self.ld_imm(0x86dd);
        self.st(slot_et(l));
        // The payload length ends the packet, except 0 before hop-by-hop (a jumbogram).
        let (zero, jumbo, cut) = (self.a.label(), self.a.label(), self.a.label());
        self.ld_ind(H, 4);
        self.a.jump(JMP | JEQ | K, 0, zero, cut);
        self.a.place(zero);
        self.ld_ind(B, 6);
        self.a.jump(JMP | JEQ | K, 0, jumbo, cut);
        self.a.place(cut);
        self.ld_ind(H, 4); // 0 again on the zero path
        self.alu(ADD, 40);
        self.limit(slot_net(l));
        self.a.place(jumbo);
        self.ld_ind(B, 6);
        self.st(SLOT_T0);
        self.advance(40);
        self.a.place(ext);
        for _ in 0..max_ext {
            let [is_ext, frag, ah, later, first, sized] = self.a.labels();
            self.ld_mem(SLOT_T0);
            for t in [0, 43, 60, 135, 51] {
                self.jeq_to(t, is_ext);
            }
            self.a.jump(JMP | JEQ | K, 44, is_ext, fin);
            self.a.place(is_ext);
            self.need(8, stop);
            self.ld_ind(B, 0);
            self.st(SLOT_T2); // this header's next header
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
            // Fragment: 8 bytes; a later fragment ends the walk with its next header.
            self.a.place(frag);
            self.ld_ind(H, 2);
            self.alu(AND, 0xfff8);
            self.a.jump(JMP | JEQ | K, 0, first, later);
            self.a.place(later);
            self.ld_mem(SLOT_T2);
            self.st(slot_proto(l));
            self.a.ja(exit);
            self.a.place(first);
            self.ld_imm(8);
            // A = the header's length.
            self.a.place(sized);
            self.a.stmt(ALU | ADD | X, 0);
            self.a.stmt(MISC | TAX, 0);
            self.need(0, stop); // the decoder wants the whole header
            self.ld_mem(SLOT_T2);
            self.st(SLOT_T0);
        }
        // After the last header followed: the transport, unless yet another extension
        // (which a lean walk leaves to user space).
        let longer = self.lean_exit().unwrap_or(stop);
        self.ld_mem(SLOT_T0);
        for t in [0, 43, 60, 135, 51] {
            self.jeq_to(t, longer);
        }
        self.a.jump(JMP | JEQ | K, 44, longer, fin);
        // Chain longer than followed, or cut short: the pending header is the protocol.
        self.a.place(stop);
        self.ld_mem(SLOT_T0);
        self.st(slot_proto(l));
        self.a.ja(exit);
        self.a.place(fin);
        self.ld_mem(SLOT_T0);
        self.st(slot_proto(l));
        self.a.ja(transport);
        self.end_section(exit);
    }
}
