//! Reading capture files: classic pcap (µs and ns, both byte orders, Kuznetsov's modified
//! format) and pcapng (several sections of either byte order, several interfaces, EPB, SPB and
//! the obsolete PB), one packet at a time.
//!
//! The file is streamed: only the current record is in memory. The framing (how long is the
//! next record, is it all there) is done here so that a file cut in the middle of a record
//! yields every whole packet and then one [`OfflineError::CutShort`] that names the offset;
//! only a whole record is parsed.

mod error;
mod pcap;
mod pcapng;
mod print;
mod timestamp;

pub use error::OfflineError;
pub use print::{format_packet, print_capture, print_file, OutputMode, ReadOptions};

use hopcap_proto::types::LinkType;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest record or block accepted (libpcap allows up to 16 MiB blocks for its largest
/// snap lengths; a larger length field is far more likely damage than a packet).
pub const MAX_RECORD_LEN: u64 = 16 * 1024 * 1024;

/// One packet read from a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    /// How the frame starts (pcap: the file's link type; pcapng: its interface's).
    pub link_type: LinkType,
    /// Capture time in ns since the Unix epoch (0 when the format has none, as in an SPB).
    pub ts_ns: u64,
    /// Length of the frame on the wire; `data` may be shorter (snap length).
    pub wire_len: u32,
    /// pcapng interface number within its section; 0 for pcap.
    pub interface_id: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// An open capture file, read packet by packet.
pub struct CaptureFile {
    src: Source,
    format: Format,
    /// Set after the first error: a damaged file gives one error, then ends.
    done: bool,
}

enum Format {
    Pcap(pcap::PcapReader),
    PcapNg(pcapng::PcapNgReader),
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.src.path)
            .field("pos", &self.src.pos)
            .finish()
    }
}

impl CaptureFile {
    /// Opens a pcap or pcapng file (`-`: standard input) and reads its file (or first
    /// section) header.
    pub fn open(path: &Path) -> Result<CaptureFile, OfflineError> {
        if path == Path::new("-") {
            return CaptureFile::from_reader(Path::new("<stdin>"), Box::new(io::stdin()));
        }
        let file = File::open(path).map_err(|source| OfflineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureFile::from_reader(path, Box::new(file))
    }

    /// Reads a capture from any byte stream; `path` only names it in I/O errors.
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn Read + Send>,
    ) -> Result<CaptureFile, OfflineError> {
        let mut src = Source {
            reader: BufReader::with_capacity(64 * 1024, reader),
            path: path.to_path_buf(),
            pos: 0,
        };
        let mut magic = [0u8; 4];
        let got = src.fill(&mut magic)?;
        if got < magic.len() {
            return Err(OfflineError::CutShort {
                offset: 0,
                needed: magic.len() as u64,
                had: got as u64,
            });
        }
        let format = if magic == pcapng::SHB_TYPE_BYTES {
            Format::PcapNg(pcapng::PcapNgReader::open(&mut src, magic)?)
        } else {
            Format::Pcap(pcap::PcapReader::open(&mut src, magic)?)
        };
        Ok(CaptureFile {
            src,
            format,
            done: false,
        })
    }

    /// The next packet; `None` at the end of the file, or after an error has been returned.
    pub fn next_packet(&mut self) -> Option<Result<PacketRecord, OfflineError>> {
        if self.done {
            return None;
        }
        let next = match &mut self.format {
            Format::Pcap(r) => r.next_packet(&mut self.src),
            Format::PcapNg(r) => r.next_packet(&mut self.src),
        };
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

impl CaptureFile {
    /// The name the file gives interface `id` (pcapng's if_name), if any.
    pub fn interface_name(&self, id: u32) -> Option<&str> {
        match &self.format {
            Format::PcapNg(r) => r.interface_name(id),
            Format::Pcap(_) => None,
        }
    }
}

impl Iterator for CaptureFile {
    type Item = Result<PacketRecord, OfflineError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

/// The byte stream with the offset of the next unread byte, for error messages.
struct Source {
    reader: BufReader<Box<dyn Read + Send>>,
    path: PathBuf,
    pos: u64,
}

impl Source {
    fn io_error(&self, source: io::Error) -> OfflineError {
        OfflineError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Fills as much of `buf` as the stream has; fewer bytes only at its end.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, OfflineError> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    /// Appends the next `n` bytes to `out`; fewer only at the end of the stream.
    fn append(&mut self, n: u64, out: &mut Vec<u8>) -> Result<u64, OfflineError> {
        let got = match (&mut self.reader).take(n).read_to_end(out) {
            Ok(got) => got as u64,
            Err(e) => return Err(self.io_error(e)),
        };
        self.pos += got;
        Ok(got)
    }

    /// Reads the rest of a record that starts at `start` and is `len` bytes long, of which
    /// `out` already holds the first part.
    fn finish_record(
        &mut self,
        start: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), OfflineError> {
        let have = out.len() as u64;
        let rest = len.saturating_sub(have);
        let got = self.append(rest, out)?;
        if got < rest {
            return Err(OfflineError::CutShort {
                offset: start,
                needed: len,
                had: have + got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod fixture_tests;
