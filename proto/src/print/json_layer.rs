//! One decoded layer as a JSON object: `proto` (tcpdump's name, see [`LayerKind::name`]) and
//! every field the decoder copied out, under its field name.
//!
//! Each variant is one row of the table in [`write_layer`]: its fields in output order, each
//! with how it is written (see [`put`]). The key is the field's name, except where a row
//! says `as "key"`.

use super::json::Obj;
use crate::layer::Layer;
use crate::types::Addr;
use core::fmt::{self, Write};

/// Writes one field: `num` its Display as a number, `str` its Display as a string, `code`
/// the number inside a code newtype, `v4`/`v6` an address, `opt` a number or null, `opt_v6`
/// an address or null.
macro_rules! put {
    ($o:ident, num, $key:expr, $v:expr) => {
        $o.num($key, $v)?
    };
    ($o:ident, str, $key:expr, $v:expr) => {
        $o.str($key, $v)?
    };
    ($o:ident, code, $key:expr, $v:expr) => {
        $o.num($key, $v.0)?
    };
    ($o:ident, v4, $key:expr, $v:expr) => {
        $o.str($key, Addr::V4($v))?
    };
    ($o:ident, v6, $key:expr, $v:expr) => {
        $o.str($key, Addr::V6($v))?
    };
    ($o:ident, opt, $key:expr, $v:expr) => {
        $o.opt_num($key, $v)?
    };
    ($o:ident, opt_v6, $key:expr, $v:expr) => {
        match $v {
            Some(a) => $o.str($key, Addr::V6(a))?,
            None => $o.null($key)?,
        }
    };
}

/// The match over every variant, one row each: `Variant { how field [as "key"], ... }`.
macro_rules! layer_table {
    ($o:ident, $layer:expr, $( $variant:ident { $( $how:ident $field:ident $(as $key:literal)? ),* $(,)? } )* ) => {
        match $layer {
            $( Layer::$variant { $( $field, )* .. } => {
                $( put!($o, $how, layer_table!(@key $field $($key)?), $field); )*
            } )*
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
}

pub(crate) fn write_layer<W: Write + ?Sized>(w: &mut W, layer: &Layer) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("proto", layer.kind().name())?;
    if let Layer::Ipv6Ext {
        kind,
        next_header,
        len,
        frag,
    } = *layer
    {
        // The one nested object: a fragment header's fields.
        put!(o, code, "kind", kind);
        put!(o, code, "next_header", next_header);
        put!(o, num, "len", len);
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
        return o.close();
    }
    layer_table!(o, *layer,
        Ethernet { str src, str dst, code ethertype }
        Vlan { num tpid, num pcp, num dei, num id, code ethertype, num stripped }
        Sll { code pkttype, num hatype, str addr, num addr_len, code protocol }
        Sll2 { code protocol, num ifindex, num hatype, code pkttype, str addr, num addr_len }
        Loopback { num family }
        Mpls { num label, num tc, num bottom, num ttl }
        Pppoe { num code, num session_id, num length, num ppp_proto }
        Arp { num htype, num ptype, num op, str sha, v4 spa, str tha, v4 tpa }
        // "proto" names the layer; the header's protocol field goes by its long name.
        Ipv4 {
            v4 src, v4 dst, num hdr_len, num tos, num total_len, num id, num df, num mf,
            num frag_offset, num ttl, code proto as "protocol", num checksum
        }
        Ipv6 {
            v6 src, v6 dst, num traffic_class, num flow_label, num payload_len,
            code next_header, num hop_limit
        }
        Ipv6Ext {}
        Icmp { num ty as "type", num code, num checksum, num id, num seq }
        Icmpv6 { num ty as "type", num code, num checksum, num id, num seq, opt_v6 nd_target }
        Tcp {
            num src_port, num dst_port, num seq, num ack, num hdr_len, num flags, num window,
            num checksum
        }
        Udp { num src_port, num dst_port, num length, num checksum }
        Vxlan { num flags, num vni }
        Geneve { num version, num opt_len, num oam, num critical, code protocol, num vni }
        Gre { num version, code protocol, num checksum_present, opt key, opt seq }
        Gtpu { num msg_type, num teid }
    );
    o.close()
}
