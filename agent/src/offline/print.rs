//! `--read FILE --print | --json`: the packets of a capture file that `--filter`, `-i`,
//! `--exclude` and `--sample` keep (as live capture would), up to `-c`, decoded and printed.

use super::{CaptureFile, OfflineError, PacketRecord};
use crate::links::Options as LinkOptions;
use hopcap_proto::decode::{decode, DecodeOptions};
use hopcap_proto::filter::Filter;
use hopcap_proto::layer::{Decoded, Layer};
use hopcap_proto::print::{write_json_decoded, write_line};
use hopcap_proto::sample::SampleKeys;
use hopcap_proto::summary::Summary;
use hopcap_proto::types::PacketType;
use std::io::Write;
use std::path::Path;

/// How packets are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// One tcpdump-like line per packet.
    #[default]
    Print,
    /// One JSON object per line.
    Json,
}

/// Which packets of a file are printed, and how.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub mode: OutputMode,
    pub filter: Option<Filter>,
    /// Keep 1 packet in `sample`, chosen by a key that a packet keeps when it is segmented,
    /// merged or fragmented (same on every board), as live capture does (0 or 1: all).
    pub sample: u32,
    /// Stop after this many printed packets.
    pub count: Option<u64>,
    /// `-i` / `--exclude` globs, matched on the interface names a pcapng file gives
    /// (`netns:link` as hopcap writes them); a packet without a name matches no `-i`.
    pub links: LinkOptions,
}

impl ReadOptions {
    /// Whether `p` is printed. `keys` are the file's sample keys so far (its first
    /// fragments' keys serve their later fragments).
    fn keeps(
        &self,
        file: &CaptureFile,
        p: &PacketRecord,
        opts: &DecodeOptions,
        keys: &mut SampleKeys,
    ) -> bool {
        if !self.links.include.is_empty() || !self.links.exclude.is_empty() {
            let name = file.interface_name(p.interface_id).unwrap_or("");
            let (netns, link) = name.rsplit_once(':').unwrap_or(("", name));
            if name.is_empty() || !self.links.selects(netns, link, true, false) {
                return false;
            }
        }
        if self.filter.is_none() && self.sample <= 1 {
            return true;
        }
        let decoded = decode(p.link_type, &p.data, opts);
        let summary = Summary::from_decoded(&decoded);
        // Filtered first, as live capture does: a first fragment the filter refuses does
        // not key its later ones.
        self.filter.as_ref().is_none_or(|f| f.matches(&summary))
            && (self.sample <= 1
                || keys.key(&decoded, &p.data, &summary, p.ts_ns) % u64::from(self.sample) == 0)
    }
}

/// Prints the packets of the file that `read` keeps, one line each, and returns how many.
/// A damaged file prints its readable packets, then returns the error. `path` `-` is
/// standard input.
pub fn print_file(
    path: &Path,
    read: &ReadOptions,
    out: &mut impl Write,
) -> Result<u64, OfflineError> {
    print_capture(CaptureFile::open(path)?, read, out)
}

/// [`print_file`] of a file already open.
pub fn print_capture(
    mut file: CaptureFile,
    read: &ReadOptions,
    out: &mut impl Write,
) -> Result<u64, OfflineError> {
    let opts = DecodeOptions::default();
    let mut line = String::new();
    let mut keys = SampleKeys::new();
    let mut count = 0;
    while let Some(packet) = file.next_packet() {
        if read.count.is_some_and(|c| count >= c) {
            break;
        }
        let packet = packet?;
        if !read.keeps(&file, &packet, &opts, &mut keys) {
            continue;
        }
        line.clear();
        format_packet(&mut line, &packet, read.mode, &opts);
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(OfflineError::output)?;
        count += 1;
    }
    Ok(count)
}

/// Appends one packet's line (without the newline).
pub fn format_packet(line: &mut String, p: &PacketRecord, mode: OutputMode, opts: &DecodeOptions) {
    let decoded = decode(p.link_type, &p.data, opts);
    let cap_len = u32::try_from(p.data.len()).unwrap_or(u32::MAX);
    // Writing into a String cannot fail.
    let _ = match mode {
        OutputMode::Print => {
            let summary = Summary::from_decoded(&decoded);
            write_line(line, p.ts_ns, "", direction(&decoded), &summary, p.wire_len)
        }
        OutputMode::Json => write_json_decoded(
            line,
            p.ts_ns,
            p.wire_len,
            cap_len,
            p.interface_id,
            p.link_type,
            &decoded,
        ),
    };
}

/// The direction a Linux cooked header recorded; other link types do not say.
fn direction(decoded: &Decoded) -> Option<PacketType> {
    match decoded.layers.first() {
        Some(Layer::Sll { pkttype, .. }) | Some(Layer::Sll2 { pkttype, .. }) => Some(*pkttype),
        _ => None,
    }
}
