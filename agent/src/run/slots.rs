//! Which capture socket serves which namespace of the link table: sockets open as namespaces
//! appear and close as they go, each with the kernel filter of its namespace's links.

use super::filter::KernelFilter;
use super::RunError;
use crate::capture::Capture;
use crate::links::LinkTable;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct NamespaceSlots {
    /// Link-table namespace index → capture slot.
    slot_of: HashMap<usize, usize>,
    /// Capture slot → link-table namespace index: the per-frame lookup, rebuilt on changes.
    ns_of_slot: Vec<Option<usize>>,
}

impl NamespaceSlots {
    /// The link-table namespace whose socket is `slot`.
    pub fn ns_of(&self, slot: usize) -> Option<usize> {
        self.ns_of_slot.get(slot).copied().flatten()
    }

    /// Opens sockets for namespaces that appeared, closes those that went, and gives each
    /// socket the filter for its namespace's selected links. Only the agent's own namespace
    /// must open; another that cannot is logged and left out.
    pub fn sync(
        &mut self,
        links: &LinkTable,
        capture: &mut Capture,
        kf: &KernelFilter,
    ) -> Result<(), RunError> {
        let live: Vec<usize> = links.namespaces().map(|(i, _)| i).collect();
        self.slot_of.retain(|ns, slot| {
            let keep = live.contains(ns);
            if !keep {
                capture.remove_namespace(*slot);
            }
            keep
        });
        for (ns, netns) in links.namespaces() {
            if self.slot_of.contains_key(&ns) {
                continue;
            }
            let path = if ns == 0 {
                PathBuf::new()
            } else {
                netns.path()
            };
            match capture.add_namespace(netns.label.as_str(), &path) {
                Ok(slot) => {
                    self.slot_of.insert(ns, slot);
                }
                Err(source) if ns == 0 => {
                    return Err(RunError::Capture {
                        netns: String::new(),
                        source,
                    })
                }
                Err(e) => log::warn!("cannot capture namespace {}: {e}", netns.label.as_str()),
            }
        }
        for (ns, slot) in &self.slot_of {
            let ifindexes = links.selected_ifindexes(*ns);
            let program = kf
                .program(&ifindexes)
                .map_err(|error| RunError::KernelFilter {
                    links: ifindexes.len(),
                    error,
                })?;
            if let Err(e) = capture.set_filter_of(*slot, &program) {
                log::warn!("cannot set the kernel filter of namespace slot {slot}: {e}");
            }
        }
        let len = self.slot_of.values().max().map_or(0, |m| m + 1);
        self.ns_of_slot = vec![None; len];
        for (&ns, &slot) in &self.slot_of {
            self.ns_of_slot[slot] = Some(ns);
        }
        Ok(())
    }
}
