//! The awareness states of one document, kept as y-protocols keeps them, so a newcomer (or an
//! awareness-request) gets the current states and a departing connection's states can be
//! removed for everyone.

use std::collections::{HashMap, HashSet};

use teleportal_core::y_protocols::{AwarenessEntry, AwarenessUpdate};

/// Awareness client id → (clock, JSON state), plus which connection controls which ids.
#[derive(Debug, Default)]
pub(crate) struct AwarenessStates {
    states: HashMap<u64, (u64, String)>,
    owners: HashMap<u64, HashSet<u64>>,
}

impl AwarenessStates {
    /// Applies an update with y-protocols' rule: an entry wins if its clock is newer, or if it
    /// removes a present state at the same clock. `owner` is the local connection that sent
    /// it (its ids are removed when it leaves); `None` for updates from other nodes.
    pub(crate) fn apply(&mut self, update: &AwarenessUpdate, owner: Option<u64>) {
        for entry in &update.entries {
            let removal = entry.state == "null";
            let current = self.states.get(&entry.client_id).map(|(clock, _)| *clock);
            let newer = current.is_none_or(|clock| clock < entry.clock);
            let removes_present = current == Some(entry.clock) && removal;
            if !(newer || removes_present) {
                continue;
            }
            if removal {
                // Removed clients are forgotten entirely, so memory follows the live clients.
                self.states.remove(&entry.client_id);
                for ids in self.owners.values_mut() {
                    ids.remove(&entry.client_id);
                }
            } else {
                self.states
                    .insert(entry.client_id, (entry.clock, entry.state.clone()));
                if let Some(owner) = owner {
                    self.owners
                        .entry(owner)
                        .or_default()
                        .insert(entry.client_id);
                }
            }
        }
    }

    /// Every current state, or `None` when there is none.
    pub(crate) fn snapshot(&self) -> Option<AwarenessUpdate> {
        if self.states.is_empty() {
            return None;
        }
        let mut entries: Vec<AwarenessEntry> = self
            .states
            .iter()
            .map(|(&client_id, (clock, state))| AwarenessEntry {
                client_id,
                clock: *clock,
                state: state.clone(),
            })
            .collect();
        entries.sort_by_key(|e| e.client_id);
        Some(AwarenessUpdate { entries })
    }

    /// Removes the states `owner` controls and returns the removal update to broadcast
    /// (state `null`, clock + 1, as y-protocols' `removeAwarenessStates` sends), if any.
    pub(crate) fn remove_owner(&mut self, owner: u64) -> Option<AwarenessUpdate> {
        let ids = self.owners.remove(&owner)?;
        let mut entries: Vec<AwarenessEntry> = ids
            .into_iter()
            .filter_map(|client_id| {
                let (clock, _) = self.states.remove(&client_id)?;
                Some(AwarenessEntry {
                    client_id,
                    clock: clock + 1,
                    state: "null".into(),
                })
            })
            .collect();
        entries.sort_by_key(|e| e.client_id);
        (!entries.is_empty()).then_some(AwarenessUpdate { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(client_id: u64, clock: u64, state: &str) -> AwarenessUpdate {
        AwarenessUpdate {
            entries: vec![AwarenessEntry {
                client_id,
                clock,
                state: state.into(),
            }],
        }
    }

    #[test]
    fn older_clock_does_not_overwrite_newer_state() {
        let mut states = AwarenessStates::default();
        states.apply(&update(1, 2, r#"{"a":2}"#), Some(9));
        states.apply(&update(1, 1, r#"{"a":1}"#), Some(9));
        assert_eq!(states.snapshot(), Some(update(1, 2, r#"{"a":2}"#)));
    }

    #[test]
    fn leaving_owner_gets_removal_with_next_clock() {
        let mut states = AwarenessStates::default();
        states.apply(&update(1, 4, r#"{"a":1}"#), Some(9));
        assert_eq!(states.remove_owner(9), Some(update(1, 5, "null")));
        assert_eq!(states.snapshot(), None);
        assert_eq!(states.remove_owner(9), None);
    }
}
