//! Transport headers, and the tunnels whose inner packet becomes the next level.

use super::{slot_proto, slot_transport, Entries, Walker, SLOT_T0, SLOT_T2};
use crate::filter::asm::Label;
use crate::filter::op::*;

impl Walker<'_> {
    /// X = transport header offset, protocol in slot_proto(l).
    pub(super) fn transport(&mut self, l: usize, entry: Label, inner: Option<Entries>) {
        let exit = self.section();
        let [tcp, udp, gre, tcp_ok, udp_ok] = self.a.labels();
        self.a.place(entry);
        self.ld_mem(slot_proto(l));
        self.jeq_to(6, tcp);
        if let Some(inner) = inner {
            self.jeq_to(4, inner.ipv);
            self.jeq_to(41, inner.ipv);
            self.jeq_to(47, gre);
        }
        self.a.jump(JMP | JEQ | K, 17, udp, exit);

        // TCP: 20 bytes and a data offset of at least 5 words.
        self.a.place(tcp);
        self.need(20, exit);
        self.ld_ind(B, 12);
        self.a.jump(JMP | JGE | K, 0x50, tcp_ok, exit);
        self.a.place(tcp_ok);
        self.a.stmt(STX, slot_transport(l));
        self.a.ja(exit);

        // UDP: 8 bytes, length 0 (offload) or at least 8; a non-zero length ends the packet.
        self.a.place(udp);
        let cut = self.a.label();
        self.need(8, exit);
        self.a.stmt(STX, SLOT_T2);
        self.ld_ind(H, 4);
        self.jeq_to(0, udp_ok);
        self.a.jump(JMP | JGE | K, 8, cut, exit);
        self.a.place(cut);
        self.limit(SLOT_T2);
        self.a.place(udp_ok);
        self.a.stmt(STX, slot_transport(l));
        let Some(inner) = inner else {
            self.end_section(exit);
            return;
        };
        let (vxlan, geneve, gtp) = (self.a.label(), self.a.label(), self.a.label());
        // The destination port names the tunnel, else the source port (as the decoder);
        // a port of 0 is unused.
        let ports = self.ports;
        let used = |port: u16| (port != 0).then_some(u32::from(port));
        for (port_at, last) in [(2, false), (0, true)] {
            let other = self.a.label();
            let miss = if last { exit } else { other };
            self.ld_ind(H, port_at);
            for port in ports.vxlan.into_iter().filter_map(used) {
                self.jeq_to(port, vxlan);
            }
            if let Some(port) = used(ports.geneve) {
                self.jeq_to(port, geneve);
            }
            match used(ports.gtpu) {
                Some(port) => {
                    let gtp_port = self.a.label();
                    self.a.jump(JMP | JEQ | K, port, gtp_port, miss);
                    // Only a GTPv1 header counts (an empty payload counts too: it then stops).
                    self.a.place(gtp_port);
                    self.need(9, exit);
                    self.ld_ind(B, 8);
                    self.alu(AND, 0xf0);
                    self.a.jump(JMP | JEQ | K, 0x30, gtp, miss);
                }
                None => self.a.ja(miss),
            }
            self.a.place(other);
        }

        if let Some(deeper) = self.deeper.filter(|_| l + 1 == self.levels) {
            // The inner level is not walked: a tunnel on a tunnel port is all that counts.
            for label in [vxlan, geneve, gre, gtp] {
                self.a.place(label);
            }
            self.a.ja(deeper);
            self.end_section(exit);
            return;
        }

        // VXLAN: 8-byte header, then Ethernet.
        self.a.place(vxlan);
        self.advance(8);
        self.need(8, exit);
        self.advance(8);
        self.a.ja(inner.eth);

        // Geneve version 0: 8 bytes + options, then a protocol type like GRE's.
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
        self.need(0, exit);
        self.by_protocol(inner, exit, None);
        self.end_section(exit);

        self.gre(gre, inner);
        self.gtp(gtp, inner);
    }

    /// GRE version 0 (without routing entries) or 1 (PPTP): 4 bytes + 4 for checksum or
    /// routing, key, sequence number, and (version 1) acknowledgment.
    fn gre(&mut self, entry: Label, inner: Entries) {
        let exit = self.section();
        let [version_ok, no_route, erspan2, erspan3, cmd, ppp] = self.a.labels();
        self.a.place(entry);
        self.need(4, exit);
        self.ld_ind(H, 0);
        self.st(SLOT_T2);
        self.a.jump(JMP | JSET | K, 0x0006, exit, version_ok);
        self.a.place(version_ok);
        self.alu(AND, 0x4001);
        self.a.jump(JMP | JEQ | K, 0x4000, exit, no_route);
        self.a.place(no_route);
        self.ld_ind(H, 2);
        self.st(SLOT_T0);
        self.advance(4);
        for (mask, want) in [(0xc000, 0), (0x2000, 0), (0x1000, 0), (0x0081, 0x0081)] {
            // Present when any bit of `mask` is set (want 0), or all of them (want = mask).
            let (set, clear) = (self.a.label(), self.a.label());
            self.ld_mem(SLOT_T2);
            if want == 0 {
                self.a.jump(JMP | JSET | K, mask, set, clear);
            } else {
                self.alu(AND, mask);
                self.a.jump(JMP | JEQ | K, want, set, clear);
            }
            self.a.place(set);
            self.advance(4);
            self.a.place(clear);
        }
        self.need(0, exit);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x880b, ppp);
        self.by_protocol(inner, exit, Some((erspan2, erspan3, cmd)));
        // Cisco MetaData inside GRE: 8 bytes, starting with the EtherType that follows.
        self.a.place(cmd);
        self.need(8, exit);
        self.ld_ind(H, 0);
        self.st(SLOT_T0);
        self.advance(8);
        self.by_protocol(inner, exit, None);
        // ERSPAN type II has an 8-byte header only when GRE carries a sequence number
        // (type I has none); type III has 12 bytes, 20 with the platform subheader.
        let (seq, o_flag, no_o) = (self.a.label(), self.a.label(), self.a.label());
        self.a.place(erspan2);
        self.ld_mem(SLOT_T2);
        self.a.jump(JMP | JSET | K, 0x1000, seq, inner.eth);
        self.a.place(seq);
        self.need(8, exit);
        self.advance(8);
        self.a.ja(inner.eth);
        self.a.place(erspan3);
        self.need(12, exit);
        self.ld_ind(B, 11);
        self.a.jump(JMP | JSET | K, 1, o_flag, no_o);
        self.a.place(o_flag);
        self.advance(8);
        self.a.place(no_o);
        self.advance(12);
        self.need(0, exit);
        self.a.ja(inner.eth);
        // PPP (PPTP): optional ff 03, then a 1-byte (odd) or 2-byte protocol.
        let [framed, unframed, short, long, dispatch] = self.a.labels();
        self.a.place(ppp);
        self.need(2, exit);
        self.ld_ind(H, 0);
        self.a.jump(JMP | JEQ | K, 0xff03, framed, unframed);
        self.a.place(framed);
        self.advance(2);
        self.a.place(unframed);
        self.need(1, exit);
        self.ld_ind(B, 0);
        self.a.jump(JMP | JSET | K, 1, short, long);
        self.a.place(short);
        self.st(SLOT_T0);
        self.advance(1);
        self.a.ja(dispatch);
        self.a.place(long);
        self.need(2, exit);
        self.ld_ind(H, 0);
        self.st(SLOT_T0);
        self.advance(2);
        self.a.place(dispatch);
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x0021, inner.ipv);
        self.a.jump(JMP | JEQ | K, 0x0057, inner.ipv, exit);
        self.end_section(exit);
    }

    /// Dispatches on the EtherType in T0 (Geneve, GRE) to the inner level.
    /// `gre`: the ERSPAN II, ERSPAN III and Cisco MetaData entries, which only GRE names.
    fn by_protocol(&mut self, inner: Entries, exit: Label, gre: Option<(Label, Label, Label)>) {
        self.ld_mem(SLOT_T0);
        self.jeq_to(0x6558, inner.eth);
        self.jeq_to(0x0800, inner.ip4_et);
        self.jeq_to(0x86dd, inner.ip6_et);
        self.jeq_to(0x0806, inner.arp);
        self.jeq_to(0x8035, inner.arp);
        if let Some((type2, type3, cmd)) = gre {
            self.jeq_to(0x88be, type2);
            self.jeq_to(0x22eb, type3);
            self.jeq_to(0x8909, cmd);
        }
        self.a.ja(exit);
    }

    /// GTP-U (X = UDP header): only G-PDUs (type 255) of version 1 carry user IP packets.
    fn gtp(&mut self, entry: Label, inner: Entries) {
        let exit = self.section();
        let [gpdu, plain, opt, ext, no_ext, more, sized] = self.a.labels();
        self.a.place(entry);
        self.advance(8);
        self.need(8, exit);
        // 8 bytes + the length field end the packet (never before the header's end:
        // the decoder then stops on the header itself).
        self.a.stmt(STX, SLOT_T2);
        self.ld_ind(H, 2);
        self.alu(ADD, 8);
        self.limit(SLOT_T2);
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
        // One extension header: [length in 4-byte units] ... [next type] (its last byte).
        self.a.place(ext);
        self.ld_ind(B, 11);
        self.st(SLOT_T0);
        self.advance(12);
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
        let last = self.a.label();
        self.a.jump(JMP | JEQ | K, 0, last, exit);
        self.a.place(last);
        self.advance(1);
        self.a.ja(inner.ipv);
        self.end_section(exit);
    }
}
