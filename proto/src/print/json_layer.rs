//! One decoded layer as a JSON object: `proto` (tcpdump's name, see [`LayerKind::name`]) and
//! every field the decoder copied out, under its field name.

use super::json::Obj;
use crate::layer::Layer;
use crate::types::Addr;
use core::fmt::{self, Write};

pub(crate) fn write_layer<W: Write + ?Sized>(w: &mut W, layer: &Layer) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("proto", layer.kind().name())?;
    match *layer {
        Layer::Ethernet {
            src,
            dst,
            ethertype,
        } => {
            o.str("src", src)?;
            o.str("dst", dst)?;
            o.num("ethertype", ethertype.0)?;
        }
        Layer::Vlan {
            tpid,
            pcp,
            dei,
            id,
            ethertype,
            stripped,
        } => {
            o.num("tpid", tpid)?;
            o.num("pcp", pcp)?;
            o.num("dei", dei)?;
            o.num("id", id)?;
            o.num("ethertype", ethertype.0)?;
            o.num("stripped", stripped)?;
        }
        Layer::Sll {
            pkttype,
            hatype,
            addr,
            addr_len,
            protocol,
        } => {
            o.num("pkttype", pkttype.0)?;
            o.num("hatype", hatype)?;
            o.str("addr", addr)?;
            o.num("addr_len", addr_len)?;
            o.num("protocol", protocol.0)?;
        }
        Layer::Sll2 {
            protocol,
            ifindex,
            hatype,
            pkttype,
            addr,
            addr_len,
        } => {
            o.num("protocol", protocol.0)?;
            o.num("ifindex", ifindex)?;
            o.num("hatype", hatype)?;
            o.num("pkttype", pkttype.0)?;
            o.str("addr", addr)?;
            o.num("addr_len", addr_len)?;
        }
        Layer::Loopback { family } => o.num("family", family)?,
        Layer::Mpls {
            label,
            tc,
            bottom,
            ttl,
        } => {
            o.num("label", label)?;
            o.num("tc", tc)?;
            o.num("bottom", bottom)?;
            o.num("ttl", ttl)?;
        }
        Layer::Pppoe {
            code,
            session_id,
            length,
            ppp_proto,
        } => {
            o.num("code", code)?;
            o.num("session_id", session_id)?;
            o.num("length", length)?;
            o.num("ppp_proto", ppp_proto)?;
        }
        Layer::Arp {
            htype,
            ptype,
            op,
            sha,
            spa,
            tha,
            tpa,
        } => {
            o.num("htype", htype)?;
            o.num("ptype", ptype)?;
            o.num("op", op)?;
            o.str("sha", sha)?;
            o.str("spa", Addr::V4(spa))?;
            o.str("tha", tha)?;
            o.str("tpa", Addr::V4(tpa))?;
        }
        Layer::Ipv4 {
            src,
            dst,
            hdr_len,
            tos,
            total_len,
            id,
            df,
            mf,
            frag_offset,
            ttl,
            proto,
            checksum,
        } => {
            o.str("src", Addr::V4(src))?;
            o.str("dst", Addr::V4(dst))?;
            o.num("hdr_len", hdr_len)?;
            o.num("tos", tos)?;
            o.num("total_len", total_len)?;
            o.num("id", id)?;
            o.num("df", df)?;
            o.num("mf", mf)?;
            o.num("frag_offset", frag_offset)?;
            o.num("ttl", ttl)?;
            // "proto" names the layer; the header's protocol field goes by its long name.
            o.num("protocol", proto.0)?;
            o.num("checksum", checksum)?;
        }
        Layer::Ipv6 {
            src,
            dst,
            traffic_class,
            flow_label,
            payload_len,
            next_header,
            hop_limit,
        } => {
            o.str("src", Addr::V6(src))?;
            o.str("dst", Addr::V6(dst))?;
            o.num("traffic_class", traffic_class)?;
            o.num("flow_label", flow_label)?;
            o.num("payload_len", payload_len)?;
            o.num("next_header", next_header.0)?;
            o.num("hop_limit", hop_limit)?;
        }
        Layer::Ipv6Ext {
            kind,
            next_header,
            len,
            frag,
        } => {
            o.num("kind", kind.0)?;
            o.num("next_header", next_header.0)?;
            o.num("len", len)?;
            match frag {
                Some(frag) => o.raw("frag", |w| {
                    let mut f = Obj::open(w)?;
                    f.num("offset", frag.offset)?;
                    f.num("more", frag.more)?;
                    f.num("ident", frag.ident)?;
                    f.close()
                })?,
                None => o.null("frag")?,
            }
        }
        Layer::Icmp {
            ty,
            code,
            checksum,
            id,
            seq,
        } => {
            o.num("type", ty)?;
            o.num("code", code)?;
            o.num("checksum", checksum)?;
            o.num("id", id)?;
            o.num("seq", seq)?;
        }
        Layer::Icmpv6 {
            ty,
            code,
            checksum,
            id,
            seq,
            nd_target,
        } => {
            o.num("type", ty)?;
            o.num("code", code)?;
            o.num("checksum", checksum)?;
            o.num("id", id)?;
            o.num("seq", seq)?;
            match nd_target {
                Some(t) => o.str("nd_target", Addr::V6(t))?,
                None => o.null("nd_target")?,
            }
        }
        Layer::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            hdr_len,
            flags,
            window,
            checksum,
        } => {
            o.num("src_port", src_port)?;
            o.num("dst_port", dst_port)?;
            o.num("seq", seq)?;
            o.num("ack", ack)?;
            o.num("hdr_len", hdr_len)?;
            o.num("flags", flags)?;
            o.num("window", window)?;
            o.num("checksum", checksum)?;
        }
        Layer::Udp {
            src_port,
            dst_port,
            length,
            checksum,
        } => {
            o.num("src_port", src_port)?;
            o.num("dst_port", dst_port)?;
            o.num("length", length)?;
            o.num("checksum", checksum)?;
        }
        Layer::Vxlan { flags, vni } => {
            o.num("flags", flags)?;
            o.num("vni", vni)?;
        }
        Layer::Geneve {
            version,
            opt_len,
            oam,
            critical,
            protocol,
            vni,
        } => {
            o.num("version", version)?;
            o.num("opt_len", opt_len)?;
            o.num("oam", oam)?;
            o.num("critical", critical)?;
            o.num("protocol", protocol.0)?;
            o.num("vni", vni)?;
        }
        Layer::Gre {
            version,
            protocol,
            checksum_present,
            key,
            seq,
        } => {
            o.num("version", version)?;
            o.num("protocol", protocol.0)?;
            o.num("checksum_present", checksum_present)?;
            o.opt_num("key", key)?;
            o.opt_num("seq", seq)?;
        }
        Layer::Gtpu { msg_type, teid } => {
            o.num("msg_type", msg_type)?;
            o.num("teid", teid)?;
        }
    }
    o.close()
}
