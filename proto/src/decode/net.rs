//! Steps for IP and what it carries: IPv4, IPv6 and its extension chain, TCP, UDP (and the
//! tunnels named by its ports), ICMP and ICMPv6 (and the packets their errors quote).

use super::{halt, Halt, Next, Step, Walk};
use crate::layer::LayerKind;
use crate::types::IpProto;
use crate::wire::{check_len, gtpu, icmp, icmpv6, ipv4, ipv6, ipv6ext, tcp, udp};

impl Walk<'_, '_, '_> {
    /// IPv4 or IPv6 by the version nibble, whatever the enclosing header announced (as
    /// tshark does); an empty or other version is reported against the announced one.
    pub(super) fn ip(&mut self, announced_v6: bool) -> Step {
        match self.bytes().first().map(|b| b >> 4) {
            Some(4) => self.ipv4(),
            Some(6) => self.ipv6(),
            _ if announced_v6 => self.ipv6(),
            _ => self.ipv4(),
        }
    }

    fn ipv4(&mut self) -> Step {
        let start = self.off;
        let bytes = self.bytes();
        let ip = ipv4::Packet::new_checked(bytes).map_err(halt(LayerKind::Ipv4))?;
        self.push(ip.layer())?;
        let header_len = ip.header_len();
        check_len(bytes, header_len).map_err(halt(LayerKind::Ipv4))?;
        // A zero total length is left by segmentation offload: the capture is the packet.
        if ip.total_len() != 0 {
            self.limit(start, usize::from(ip.total_len()), start + header_len);
        }
        self.advance(header_len);
        if ip.frag_offset() != 0 {
            // A later fragment: its bytes are the middle of some payload, not a header.
            return Ok(Next::Done);
        }
        Ok(Next::IpPayload {
            proto: ip.protocol(),
            v6: false,
        })
    }

    fn ipv6(&mut self) -> Step {
        let start = self.off;
        let ip = ipv6::Packet::new_checked(self.bytes()).map_err(halt(LayerKind::Ipv6))?;
        self.push(ip.layer())?;
        let header_len = ip.header_len();
        // Payload length 0 before a hop-by-hop header is a jumbogram (BIG TCP): the
        // capture is the packet. Anywhere else 0 means 0.
        let jumbo = ip.payload_len() == 0 && ip.next_header() == IpProto::HOPOPT;
        if !jumbo {
            self.limit(
                start,
                header_len + usize::from(ip.payload_len()),
                start + header_len,
            );
        }
        self.advance(header_len);
        Ok(Next::IpPayload {
            proto: ip.next_header(),
            v6: true,
        })
    }

    pub(super) fn ip_payload(&mut self, proto: IpProto, v6: bool) -> Step {
        match proto {
            IpProto::TCP => Ok(Next::Tcp),
            IpProto::UDP => Ok(Next::Udp),
            IpProto::ICMP => Ok(Next::Icmp),
            IpProto::ICMPV6 => Ok(Next::Icmpv6),
            IpProto::GRE => Ok(Next::Gre),
            IpProto::IPIP => Ok(Next::Ip { v6: false }),
            IpProto::IPV6 => Ok(Next::Ip { v6: true }),
            IpProto::NO_NEXT => Ok(Next::Done),
            // AH has the same shape after IPv4; the other extension numbers mean
            // something else there (0 is not hop-by-hop in IPv4).
            p if p == IpProto::AH || (v6 && ipv6ext::is_extension(p)) => self.ipv6_ext(p, v6),
            other => Err(Halt::unsupported(u16::from(other.0))),
        }
    }

    fn ipv6_ext(&mut self, kind: IpProto, v6: bool) -> Step {
        let ext =
            ipv6ext::Header::new_checked(self.bytes(), kind).map_err(halt(LayerKind::Ipv6Ext))?;
        self.push(ext.layer())?;
        self.advance(ext.header_len());
        if ext.frag().is_some_and(|frag| frag.offset != 0) {
            return Ok(Next::Done);
        }
        Ok(Next::IpPayload {
            proto: ext.next_header(),
            v6,
        })
    }

    pub(super) fn tcp(&mut self) -> Step {
        let bytes = self.bytes();
        let tcp = tcp::Packet::new_checked(bytes).map_err(halt(LayerKind::Tcp))?;
        self.push(tcp.layer())?;
        check_len(bytes, tcp.header_len()).map_err(halt(LayerKind::Tcp))?;
        self.advance(tcp.header_len());
        Ok(Next::Done)
    }

    pub(super) fn udp(&mut self) -> Step {
        let start = self.off;
        let udp = udp::Packet::new_checked(self.bytes()).map_err(halt(LayerKind::Udp))?;
        self.push(udp.layer())?;
        // A zero length is left by segmentation offload and jumbograms.
        if udp.len() != 0 {
            self.limit(start, usize::from(udp.len()), start + udp.header_len());
        }
        self.advance(udp.header_len());
        Ok(self
            .udp_tunnel(udp.dst_port())
            .or_else(|| self.udp_tunnel(udp.src_port()))
            .unwrap_or(Next::Done))
    }

    /// The tunnel a UDP port names, if any.
    fn udp_tunnel(&self, port: u16) -> Option<Next> {
        let ports = &self.opts.tunnel_ports;
        if port == 0 {
            None
        } else if ports.vxlan.contains(&port) {
            Some(Next::Vxlan)
        } else if port == ports.geneve {
            Some(Next::Geneve)
        } else if port == ports.gtpu {
            // Only a GTPv1 header: other traffic on the port (RTP from a phone inside the
            // tunnel, say) is payload.
            let first = self.bytes().first().copied().unwrap_or(0x30);
            gtpu::looks_like_gtpv1(first).then_some(Next::Gtpu)
        } else if port == ports.mpls_udp {
            Some(Next::Mpls)
        } else {
            None
        }
    }

    pub(super) fn icmp(&mut self) -> Step {
        let icmp = icmp::Packet::new_checked(self.bytes()).map_err(halt(LayerKind::Icmp))?;
        self.push(icmp.layer())?;
        self.advance(icmp.header_len());
        if icmp.is_error() {
            // The quoted packet: its own IP header and the start of its payload.
            self.quote_starts();
            return Ok(Next::Ip { v6: false });
        }
        Ok(Next::Done)
    }

    pub(super) fn icmpv6(&mut self) -> Step {
        let bytes = self.bytes();
        let icmp = icmpv6::Packet::new_checked(bytes).map_err(halt(LayerKind::Icmpv6))?;
        self.push(icmp.layer())?;
        check_len(bytes, icmp.header_len()).map_err(halt(LayerKind::Icmpv6))?;
        self.advance(icmp.header_len());
        if icmp.is_error() {
            self.quote_starts();
            return Ok(Next::Ip { v6: true });
        }
        Ok(Next::Done)
    }

    /// Marks the current offset as the start of an ICMP error's quote; the first error
    /// wins, as in the summary (a quote inside a quote is part of the outer quote).
    fn quote_starts(&mut self) {
        self.out.quote_offset.get_or_insert(self.off as u16);
    }
}
