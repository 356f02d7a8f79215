//! Why live capture could not start, or stopped early.

use super::filter::AttachError;
use crate::privileges::DropError;
use hopcap_proto::filter::ParseError;
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum RunError {
    /// `--filter` does not parse.
    Filter { expr: String, error: ParseError },
    /// No kernel program (allow-list of `links` ifindexes, exclusions, the user's filter)
    /// could be built and attached in a namespace ("" is the agent's own): not even the
    /// smallest, so nothing can be captured there.
    KernelFilter {
        netns: String,
        links: usize,
        error: AttachError,
    },
    /// `--collector` does not resolve ...
    Resolve { addr: String, source: io::Error },
    /// ... or resolves to nothing.
    NoAddress { addr: String },
    /// The exporter's thread could not be started.
    Exporter(io::Error),
    /// The link table could not be read (rtnetlink).
    Links(io::Error),
    /// `--netns` names (without a glob) a namespace that was not found, or could not be
    /// opened (then logged).
    NoSuchNetns { name: String },
    /// No capture socket in a namespace ("" is the agent's own).
    Capture { netns: String, source: io::Error },
    /// stdout could not be written.
    Output(io::Error),
    /// `-w`: the pcapng file could not be created or written.
    Pcapng(io::Error),
    /// `--key` / `--collector-pub` cannot be read, or the collector's key is missing.
    Key { what: String, source: io::Error },
    /// Capabilities could not be dropped after set-up.
    Privileges(DropError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Filter { expr, error } => write!(f, "--filter {expr:?}: {error}"),
            RunError::KernelFilter {
                netns,
                links,
                error,
            } => {
                write!(
                    f,
                    "kernel filter for {links} links of netns {netns:?}: {error}"
                )
            }
            RunError::Resolve { addr, source } => {
                write!(f, "--collector {addr}: {source} (expected HOST:PORT)")
            }
            RunError::NoAddress { addr } => write!(f, "--collector {addr}: resolves to no address"),
            RunError::Exporter(e) => write!(f, "cannot start the exporter thread: {e}"),
            RunError::Links(e) => write!(f, "cannot list links (rtnetlink): {e}"),
            RunError::Capture { netns, source } => {
                let ns = if netns.is_empty() {
                    "the agent's namespace"
                } else {
                    netns
                };
                write!(f, "cannot capture in {ns}: {source}")?;
                match source.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => f.write_str(" (needs root or CAP_NET_RAW)"),
                    Some(libc::ENOMEM) => {
                        f.write_str(" (not even a one-instruction filter fits net.core.optmem_max)")
                    }
                    _ => Ok(()),
                }
            }
            RunError::Output(e) => write!(f, "cannot write output: {e}"),
            RunError::Pcapng(e) => write!(f, "-w: {e}"),
            RunError::Key { what, source } => write!(f, "{what}: {source}"),
            RunError::Privileges(e) => e.fmt(f),
            RunError::NoSuchNetns { name } => write!(
                f,
                "--netns {name}: no such network namespace (neither /run/netns/{name} nor a \
                 process's namespace with that label)"
            ),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Resolve { source, .. }
            | RunError::Capture { source, .. }
            | RunError::Key { source, .. } => Some(source),
            RunError::Exporter(e)
            | RunError::Links(e)
            | RunError::Output(e)
            | RunError::Pcapng(e) => Some(e),
            RunError::KernelFilter { error, .. } => Some(error),
            RunError::Privileges(e) => Some(e),
            // proto's ParseError is shown in the message, not chained.
            RunError::Filter { .. } | RunError::NoAddress { .. } | RunError::NoSuchNetns { .. } => {
                None
            }
        }
    }
}
