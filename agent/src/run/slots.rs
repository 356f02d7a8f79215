//! Which capture socket serves which namespace of the link table: sockets open as namespaces
//! appear and close as they go, each with the kernel filter of its namespace's links.

use super::filter::{Attached, KernelFilter, Tier};
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
    /// Capture slot → whether its frames must pass the filter in user space too.
    user_check: Vec<bool>,
    /// Link-table namespace index → the tier of its program (to log a fallback once).
    tier_of: HashMap<usize, Tier>,
}

impl NamespaceSlots {
    /// The link-table namespace whose socket is `slot`.
    pub fn ns_of(&self, slot: usize) -> Option<usize> {
        self.ns_of_slot.get(slot).copied().flatten()
    }

    /// Whether the kernel program of `slot` leaves frames to user space, which must then
    /// keep only those `KernelFilter::accepts`.
    pub fn user_check(&self, slot: usize) -> bool {
        self.user_check.get(slot).copied().unwrap_or(false)
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
        self.tier_of.retain(|ns, _| live.contains(ns));
        self.slot_of.retain(|ns, slot| {
            let keep = live.contains(ns);
            if !keep {
                capture.remove_namespace(*slot);
            }
            keep
        });
        for (ns, netns) in links.namespaces() {
            if let Some(&slot) = self.slot_of.get(&ns) {
                // A namespace relabelled by the link table (see links::namespaces).
                capture.set_label(slot, netns.label.as_str());
                continue;
            }
            let path = if ns == 0 {
                PathBuf::new()
            } else {
                netns.path()
            };
            match capture.add_namespace_from(netns.label.as_str(), &path, &netns.origin) {
                Ok(slot) => {
                    self.slot_of.insert(ns, slot);
                }
                // The agent's own namespace, or one with links the user asked for: the
                // capture cannot do what it was asked.
                Err(source) if ns == 0 || !links.selected_ifindexes(ns).is_empty() => {
                    return Err(RunError::Capture {
                        netns: netns.label.as_str().to_owned(),
                        source,
                    })
                }
                Err(e) => log::warn!("cannot capture namespace {}: {e}", netns.label.as_str()),
            }
        }
        let mut user_check = HashMap::new();
        for (&ns, &slot) in &self.slot_of {
            let ifindexes = links.selected_ifindexes(ns);
            let label = links.netns(ns).map_or("?", |n| n.label.as_str());
            let attached =
                kf.attach(capture, slot, &ifindexes)
                    .map_err(|error| RunError::KernelFilter {
                        netns: label.to_owned(),
                        links: ifindexes.len(),
                        error,
                    })?;
            // Once a namespace's socket passed frames up for user space to judge, its frames
            // stay judged there: the ring may still hold frames the earlier program passed.
            let before = self.tier_of.insert(ns, attached.tier);
            if before != Some(attached.tier) {
                log_tier(label, &attached, capture.optmem_max(slot));
            }
            let sticky = before.is_some_and(Tier::user_check);
            user_check.insert(slot, sticky || attached.tier.user_check());
        }
        let len = self.slot_of.values().max().map_or(0, |m| m + 1);
        self.ns_of_slot = vec![None; len];
        self.user_check = vec![false; len];
        for (&ns, &slot) in &self.slot_of {
            self.ns_of_slot[slot] = Some(ns);
            self.user_check[slot] = user_check.get(&slot).copied().unwrap_or(false);
        }
        Ok(())
    }
}

/// A namespace's program, when it is a new tier: a fallback is a warning with its reason.
fn log_tier(label: &str, attached: &Attached, optmem_max: Option<u32>) {
    let optmem = optmem_max.map_or_else(|| "unknown".to_owned(), |m| m.to_string());
    if attached.tried.is_empty() {
        log::debug!(
            "netns {label:?}: {} of {} instructions attached (optmem_max {optmem})",
            attached.tier,
            attached.len
        );
        return;
    }
    let why: Vec<String> = attached
        .tried
        .iter()
        .map(|t| format!("{} of {} instructions: {}", t.tier, t.len, t.refusal))
        .collect();
    log::warn!(
        "netns {label:?}: kernel filter fallback to the {} of {} instructions (at least {} \
         bytes, net.core.optmem_max {optmem}); {}; the frames it passes are filtered in user \
         space",
        attached.tier,
        attached.len,
        super::filter::optmem_estimate(attached.len),
        why.join("; ")
    );
}
