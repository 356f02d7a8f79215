//! JSON, one object per packet, written field by field (no serde_json: proto is no_std and
//! allocates nothing). Addresses are strings; numbers that can pass 2^53 (ns timestamps,
//! fingerprints) are also given as strings so that JavaScript-like readers keep every digit.

use crate::layer::{Decoded, Stop, StopReason};
use crate::record::Observation;
use crate::summary::{Net, Summary, Transport};
use crate::types::{Addr, LinkType};
use core::fmt::{self, Display, Write};

/// Writes `{"key":value,...}` with the commas in the right places.
pub(crate) struct Obj<'w, W: Write + ?Sized> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write + ?Sized> Obj<'w, W> {
    pub(crate) fn open(w: &'w mut W) -> Result<Self, fmt::Error> {
        w.write_char('{')?;
        Ok(Obj { w, first: true })
    }

    fn key(&mut self, key: &str) -> fmt::Result {
        if !self.first {
            self.w.write_char(',')?;
        }
        self.first = false;
        write_str_escaped(self.w, key)?;
        self.w.write_char(':')
    }

    /// A number (or `true`/`false`): written as its Display.
    pub(crate) fn num(&mut self, key: &str, v: impl Display) -> fmt::Result {
        self.key(key)?;
        write!(self.w, "{v}")
    }

    /// A string: its Display, quoted and escaped.
    pub(crate) fn str(&mut self, key: &str, v: impl Display) -> fmt::Result {
        self.key(key)?;
        self.w.write_char('"')?;
        write!(Escaper(self.w), "{v}")?;
        self.w.write_char('"')
    }

    pub(crate) fn opt_num(&mut self, key: &str, v: Option<impl Display>) -> fmt::Result {
        match v {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn null(&mut self, key: &str) -> fmt::Result {
        self.key(key)?;
        self.w.write_str("null")
    }

    /// A nested value written by `f` straight into the output.
    pub(crate) fn raw(&mut self, key: &str, f: impl FnOnce(&mut W) -> fmt::Result) -> fmt::Result {
        self.key(key)?;
        f(self.w)
    }

    pub(crate) fn close(self) -> fmt::Result {
        self.w.write_char('}')
    }
}

/// Escapes what passes through it for the inside of a JSON string (RFC 8259 section 7).
struct Escaper<'w, W: Write + ?Sized>(&'w mut W);

impl<W: Write + ?Sized> Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

fn write_str_escaped<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaper(w).write_str(s)?;
    w.write_char('"')
}

/// `SECONDS.NANOSECONDS`, tshark's frame.time_epoch form.
/// A time in ns since the Unix epoch as every JSON output writes it: decimal seconds with
/// nine digits (`"1795694400.123456789"`), a string, since a count of ns does not fit a
/// JSON number exactly (2^53).
#[derive(Clone, Copy, Debug)]
pub struct Epoch(pub u64);

impl Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// One decoded frame: capture metadata, every layer outermost first (each with a `proto`
/// key), and where decoding stopped (`null` if it did not).
pub fn write_json_decoded<W: Write + ?Sized>(
    w: &mut W,
    ts_ns: u64,
    wire_len: u32,
    cap_len: u32,
    interface_id: u32,
    link_type: LinkType,
    decoded: &Decoded,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("ts", Epoch(ts_ns))?;
    o.num("wire_len", wire_len)?;
    o.num("cap_len", cap_len)?;
    o.num("interface_id", interface_id)?;
    o.num("link_type", link_type.0)?;
    o.raw("layers", |w| {
        w.write_char('[')?;
        for (i, layer) in decoded.layers.iter().enumerate() {
            if i > 0 {
                w.write_char(',')?;
            }
            super::json_layer::write_layer(w, layer)?;
        }
        w.write_char(']')
    })?;
    o.num("payload_offset", decoded.payload_offset)?;
    o.num("payload_len", decoded.payload_len)?;
    match decoded.stop {
        Some(stop) => o.raw("stop", |w| write_stop(w, &stop))?,
        None => o.null("stop")?,
    }
    o.close()
}

fn write_stop<W: Write + ?Sized>(w: &mut W, stop: &Stop) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.num("offset", stop.offset)?;
    o.str("proto", stop.kind.name())?;
    match stop.reason {
        StopReason::Truncated { needed, had } => {
            o.str("reason", "truncated")?;
            o.num("needed", needed)?;
            o.num("had", had)?;
        }
        StopReason::Invalid(invalid) => {
            o.str("reason", "invalid")?;
            o.str("check", format_args!("{invalid:?}"))?;
        }
        StopReason::Unsupported(number) => {
            o.str("reason", "unsupported")?;
            o.num("number", number)?;
        }
        StopReason::TooDeep => o.str("reason", "too_deep")?,
    }
    o.close()
}

/// One observation record: where it was seen (board, namespace, link) and its summary.
pub fn write_json_observation<W: Write + ?Sized>(
    w: &mut W,
    board: &str,
    netns: &str,
    link: &str,
    obs: &Observation,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("board", board)?;
    o.str("netns", netns)?;
    o.str("link", link)?;
    o.str("ts", Epoch(obs.ts_ns))?;
    o.num("order", obs.order)?;
    o.str("dir", obs.pkttype.direction())?;
    o.num("pkttype", obs.pkttype.0)?;
    o.num("wire_len", obs.wire_len)?;
    o.num("cap_len", obs.cap_len)?;
    o.str("fingerprint", format_args!("{:016x}", obs.fingerprint))?;
    o.raw("summary", |w| write_summary(w, &obs.summary))?;
    o.close()
}

fn write_summary<W: Write + ?Sized>(w: &mut W, s: &Summary) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.opt_num("vlan", s.vlan)?;
    o.num("ethertype", s.ethertype.0)?;
    o.raw("tunnels", |w| {
        w.write_char('[')?;
        for (i, t) in s.tunnels.iter().enumerate() {
            if i > 0 {
                w.write_char(',')?;
            }
            let mut o = Obj::open(w)?;
            o.str("kind", t.kind.key())?;
            if let Some(id_name) = t.kind.id_name() {
                // A GRE header without a key says so: `"key":null`.
                o.opt_num(id_name, t.kind.id())?;
            }
            o.str("src", t.src)?;
            o.str("dst", t.dst)?;
            o.num("outer_id", t.outer_id)?;
            o.num("src_port", t.src_port)?;
            o.num("dst_port", t.dst_port)?;
            o.close()?;
        }
        w.write_char(']')
    })?;
    o.raw("net", |w| match s.net {
        Net::None => w.write_str("null"),
        Net::Arp { op, spa, tpa } => {
            let mut o = Obj::open(w)?;
            o.str("kind", "arp")?;
            o.num("op", op)?;
            o.str("spa", Addr::V4(spa))?;
            o.str("tpa", Addr::V4(tpa))?;
            o.close()
        }
        Net::Ip(ip) => {
            let mut o = Obj::open(w)?;
            o.str(
                "kind",
                if matches!(ip.src, Addr::V4(_)) {
                    "ipv4"
                } else {
                    "ipv6"
                },
            )?;
            o.str("src", ip.src)?;
            o.str("dst", ip.dst)?;
            o.num("proto", ip.proto.0)?;
            o.num("ttl", ip.ttl)?;
            o.num("id", ip.id)?;
            o.num("frag_offset", ip.frag_offset)?;
            o.num("more_fragments", ip.more_fragments)?;
            o.num("payload_len", ip.payload_len)?;
            o.close()
        }
    })?;
    o.raw("transport", |w| match s.transport {
        Transport::None => w.write_str("null"),
        Transport::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
            hdr_len,
        } => {
            let mut o = Obj::open(w)?;
            o.str("kind", "tcp")?;
            o.num("src_port", src_port)?;
            o.num("dst_port", dst_port)?;
            o.num("seq", seq)?;
            o.num("ack", ack)?;
            o.num("flags", flags)?;
            o.num("window", window)?;
            o.num("hdr_len", hdr_len)?;
            o.close()
        }
        Transport::Udp {
            src_port,
            dst_port,
            length,
        } => {
            let mut o = Obj::open(w)?;
            o.str("kind", "udp")?;
            o.num("src_port", src_port)?;
            o.num("dst_port", dst_port)?;
            o.num("length", length)?;
            o.close()
        }
        Transport::Icmp { ty, code, id, seq } => {
            let mut o = Obj::open(w)?;
            o.str("kind", "icmp")?;
            o.num("type", ty)?;
            o.num("code", code)?;
            o.num("id", id)?;
            o.num("seq", seq)?;
            o.close()
        }
    })?;
    match &s.stop {
        Some(stop) => o.raw("stop", |w| write_stop(w, stop))?,
        None => o.null("stop")?,
    }
    o.close()
}

#[cfg(test)]
mod tests;
