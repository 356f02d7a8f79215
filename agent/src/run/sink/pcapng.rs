//! `-w FILE`: the captured frames as pcapng, for Wireshark. One interface per captured
//! `netns:link`, described before its first packet in each file (its name is what Wireshark
//! shows; the description adds the board); each packet keeps its direction (`epb_flags`).
//! Like tcpdump's `-C`/`-G`, the file can be rotated by size or age: `FILE`, then `FILE1`,
//! `FILE2`... Every file is complete on its own (section header and its interfaces).

use super::{Captured, Counts, Sink};
use crate::links::{Change, LinkTable};
use crate::run::LinkLabel;
use hopcap_proto::pcapng::{self, Out, Packet};
use hopcap_proto::record::{LinkInfo, LinkKey};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where and how to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapngConfig {
    /// The file; `-` is stdout (no rotation).
    pub path: PathBuf,
    /// Start the next file once this many bytes are written (`-C`).
    pub rotate_bytes: Option<u64>,
    /// Start the next file after this long (`-G`).
    pub rotate_every: Option<Duration>,
    /// The snap length the interfaces declare.
    pub snaplen: u32,
}

impl PcapngConfig {
    /// The name of file `index` of the rotation (tcpdump's: the name, then name1, name2...).
    pub fn file_name(&self, index: u32) -> PathBuf {
        if index == 0 {
            return self.path.clone();
        }
        let mut name = self.path.clone().into_os_string();
        name.push(index.to_string());
        PathBuf::from(name)
    }

    fn is_stdout(&self) -> bool {
        self.path == Path::new("-")
    }
}

/// Bytes collected for one block before they are written.
struct Buf(Vec<u8>);

impl Out for Buf {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

pub struct PcapngSink {
    cfg: PcapngConfig,
    board: String,
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    /// Which file of the rotation `out` is.
    index: u32,
    opened: Instant,
    written: u64,
    /// (netns, name) of every link the capture knows.
    names: HashMap<LinkKey, (String, String)>,
    /// Interface ids of the links described in the current file.
    ids: HashMap<LinkKey, u32>,
    /// Reused for every block: no allocation per packet once it has grown.
    block: Buf,
    packets: u64,
    files: u32,
    /// The first write error: the run ends with it at the next tick.
    failed: Option<io::Error>,
}

impl std::fmt::Debug for PcapngSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapngSink")
            .field("cfg", &self.cfg)
            .field("index", &self.index)
            .field("packets", &self.packets)
            .finish_non_exhaustive()
    }
}

impl PcapngSink {
    /// Creates the first file (so that a path that cannot be written fails at start).
    /// `links` are the links known so far; later ones come through [`Sink::topology`].
    pub fn create<'a>(
        cfg: PcapngConfig,
        board: &str,
        links: impl IntoIterator<Item = &'a LinkInfo>,
    ) -> io::Result<PcapngSink> {
        let mut sink = PcapngSink {
            cfg,
            board: board.to_string(),
            out: None,
            index: 0,
            opened: Instant::now(),
            written: 0,
            names: HashMap::new(),
            ids: HashMap::new(),
            block: Buf(Vec::with_capacity(4096)),
            packets: 0,
            files: 0,
            failed: None,
        };
        for l in links {
            sink.names
                .insert(l.key, (l.netns.to_string(), l.name.to_string()));
        }
        sink.open(0)?;
        Ok(sink)
    }

    fn open(&mut self, index: u32) -> io::Result<()> {
        if let Some(mut old) = self.out.take() {
            old.flush()?;
        }
        let target: Box<dyn Write + Send> = if self.cfg.is_stdout() {
            Box::new(io::stdout())
        } else {
            let path = self.cfg.file_name(index);
            Box::new(File::create(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?)
        };
        self.out = Some(BufWriter::with_capacity(64 * 1024, target));
        self.index = index;
        self.opened = Instant::now();
        self.written = 0;
        self.ids.clear();
        self.files += 1;
        self.block.0.clear();
        pcapng::section_header(
            &mut self.block,
            concat!("hopcap-agent ", env!("CARGO_PKG_VERSION")),
        );
        self.write_block()
    }

    fn write_block(&mut self) -> io::Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("no pcapng file open"))?;
        out.write_all(&self.block.0)?;
        self.written += self.block.0.len() as u64;
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        if self.cfg.is_stdout() {
            return false;
        }
        self.cfg.rotate_bytes.is_some_and(|b| self.written >= b)
            || self
                .cfg
                .rotate_every
                .is_some_and(|d| self.opened.elapsed() >= d)
    }

    /// The interface id of `packet`'s link in the current file, describing it first if new.
    fn interface(&mut self, packet: &Captured<'_>) -> io::Result<u32> {
        let key = packet.obs.link;
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let id = self.ids.len() as u32;
        let (netns, name) = self
            .names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| (String::new(), format!("key{key}")));
        let short = LinkLabel {
            netns: &netns,
            name: &name,
        }
        .to_string();
        let long = format!("{}:{short}", self.board);
        self.block.0.clear();
        pcapng::interface(
            &mut self.block,
            packet.link_type(),
            self.cfg.snaplen,
            &short,
            &long,
        );
        self.write_block()?;
        self.ids.insert(key, id);
        Ok(id)
    }

    fn write_packet(&mut self, packet: &Captured<'_>) -> io::Result<()> {
        if self.rotation_due() {
            self.open(self.index + 1)?;
        }
        let interface = self.interface(packet)?;
        let obs = packet.obs;
        self.block.0.clear();
        pcapng::packet(
            &mut self.block,
            &Packet {
                interface,
                ts_ns: obs.ts_ns,
                wire_len: obs.wire_len,
                pkttype: obs.pkttype,
                data: packet.bytes(),
                comment: "",
            },
        );
        self.write_block()?;
        self.packets += 1;
        Ok(())
    }

    fn check(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sink for PcapngSink {
    fn push(&mut self, packet: &Captured<'_>) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.write_packet(packet) {
            self.failed = Some(e);
        }
    }

    fn tick(&mut self, _links: &LinkTable) -> io::Result<()> {
        self.check()?;
        if self.cfg.is_stdout() {
            // A reader such as `wireshark -k -i -` sees packets as they come.
            if let Some(out) = self.out.as_mut() {
                out.flush()?;
            }
        }
        Ok(())
    }

    fn topology(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Added(l) | Change::Updated(l) => {
                    self.names
                        .insert(l.key, (l.netns.to_string(), l.name.to_string()));
                }
                // Keys are not reused; a described interface stays valid in its file.
                Change::Removed(_) | Change::NetnsAdded(_) | Change::NetnsRemoved(_) => {}
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.failed.get_or_insert(e);
            }
        }
    }

    fn finish(&mut self, _links: &LinkTable, _counts: Counts<'_>) -> io::Result<Vec<String>> {
        self.check()?;
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        let what = if self.cfg.is_stdout() {
            "stdout".to_string()
        } else if self.files > 1 {
            format!(
                "{} .. {} ({} files)",
                self.cfg.path.display(),
                self.cfg.file_name(self.index).display(),
                self.files
            )
        } else {
            self.cfg.path.display().to_string()
        };
        Ok(vec![format!("{} packets written to {what}", self.packets)])
    }
}
