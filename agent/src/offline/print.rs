//! `--read FILE --print | --json`: every packet of a capture file, decoded and printed.

use super::{CaptureFile, OfflineError, PacketRecord};
use hopcap_proto::decode::{decode, DecodeOptions};
use hopcap_proto::layer::{Decoded, Layer};
use hopcap_proto::print::{write_json_decoded, write_line};
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

/// Prints every packet of the file, one line each, and returns how many. A damaged file
/// prints its readable packets, then returns the error.
pub fn print_file(
    path: &Path,
    mode: OutputMode,
    out: &mut impl Write,
) -> Result<u64, OfflineError> {
    let mut file = CaptureFile::open(path)?;
    let opts = DecodeOptions::default();
    let mut line = String::new();
    let mut count = 0;
    while let Some(packet) = file.next_packet() {
        let packet = packet?;
        line.clear();
        format_packet(&mut line, &packet, mode, &opts);
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
