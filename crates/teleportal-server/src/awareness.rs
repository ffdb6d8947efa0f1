//! The awareness states of one document, kept as y-protocols keeps them, so a newcomer (or an
//! awareness-request) gets the current states and a departing connection's states can be
//! removed for everyone.
//!
//! States from other nodes have no local connection whose end removes them: when a node dies,
//! its clients' states would be handed to newcomers forever. Like y-protocols clients, which
//! drop a remote state not renewed for 30 s (clients renew every 15 s), the session forgets a
//! remote state after [`REMOTE_TIMEOUT`] without an update.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use teleportal_core::y_protocols::{AwarenessEntry, AwarenessUpdate};

/// How long a state from another node lives without an update (y-protocols' `outdatedTimeout`).
pub(crate) const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// One client's state.
#[derive(Debug)]
struct State {
    clock: u64,
    json: String,
    /// When an update from another node last set it; `None` for a local connection's.
    remote_since: Option<Instant>,
}

/// Awareness client id → state, plus which connection controls which ids.
#[derive(Debug, Default)]
pub(crate) struct AwarenessStates {
    states: HashMap<u64, State>,
    owners: HashMap<u64, HashSet<u64>>,
}

impl AwarenessStates {
    /// Applies an update with y-protocols' rule: an entry wins if its clock is newer, or if it
    /// removes a present state at the same clock. `owner` is the local connection that sent
    /// it (its ids are removed when it leaves); `None` for updates from other nodes.
    pub(crate) fn apply(&mut self, update: &AwarenessUpdate, owner: Option<u64>) {
        self.apply_at(update, owner, Instant::now());
    }

    fn apply_at(&mut self, update: &AwarenessUpdate, owner: Option<u64>, now: Instant) {
        for entry in &update.entries {
            let removal = is_null(&entry.state);
            let current = self.states.get(&entry.client_id).map(|s| s.clock);
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
                let state = State {
                    clock: entry.clock,
                    json: entry.state.clone(),
                    remote_since: owner.is_none().then_some(now),
                };
                self.states.insert(entry.client_id, state);
                if let Some(owner) = owner {
                    self.owners
                        .entry(owner)
                        .or_default()
                        .insert(entry.client_id);
                }
            }
        }
    }

    /// Every current state, or `None` when there is none; remote states past their timeout
    /// are forgotten first.
    pub(crate) fn snapshot(&mut self) -> Option<AwarenessUpdate> {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&mut self, now: Instant) -> Option<AwarenessUpdate> {
        self.states.retain(|_, state| {
            state
                .remote_since
                .is_none_or(|since| now.saturating_duration_since(since) < REMOTE_TIMEOUT)
        });
        if self.states.is_empty() {
            return None;
        }
        let mut entries: Vec<AwarenessEntry> = self
            .states
            .iter()
            .map(|(&client_id, state)| AwarenessEntry {
                client_id,
                clock: state.clock,
                state: state.json.clone(),
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
                let state = self.states.remove(&client_id)?;
                Some(AwarenessEntry {
                    client_id,
                    clock: state.clock + 1,
                    state: "null".into(),
                })
            })
            .collect();
        entries.sort_by_key(|e| e.client_id);
        (!entries.is_empty()).then_some(AwarenessUpdate { entries })
    }
}

/// Whether a state (JSON text; the decoder checked that it is JSON) is `null`, which removes
/// its client. yjs compares `JSON.parse(state)` with `null`, and JSON allows whitespace around
/// a value, so `" null\n"` removes as `"null"` does; kept as a state, it would be handed to
/// every newcomer.
fn is_null(state: &str) -> bool {
    state.trim_matches([' ', '\t', '\n', '\r']) == "null"
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
    fn null_state_removes_the_client_however_the_json_is_spaced() {
        let mut states = AwarenessStates::default();
        for (client_id, null) in [(1, "null"), (2, " null"), (3, "\tnull\r\n")] {
            states.apply(&update(client_id, 1, r#"{"a":1}"#), Some(9));
            states.apply(&update(client_id, 2, null), Some(9));
        }
        assert_eq!(states.snapshot(), None);
        assert_eq!(states.remove_owner(9), None, "nothing left to remove");
        // A string that merely contains null is a state like any other.
        states.apply(&update(4, 1, r#""null""#), Some(9));
        assert_eq!(states.snapshot(), Some(update(4, 1, r#""null""#)));
    }

    #[test]
    fn leaving_owner_gets_removal_with_next_clock() {
        let mut states = AwarenessStates::default();
        states.apply(&update(1, 4, r#"{"a":1}"#), Some(9));
        assert_eq!(states.remove_owner(9), Some(update(1, 5, "null")));
        assert_eq!(states.snapshot(), None);
        assert_eq!(states.remove_owner(9), None);
    }

    #[test]
    fn remote_state_expires_without_renewal_but_local_state_does_not() {
        let mut states = AwarenessStates::default();
        let start = Instant::now();
        states.apply_at(&update(1, 1, r#"{"local":1}"#), Some(9), start);
        states.apply_at(&update(2, 1, r#"{"remote":1}"#), None, start);
        let later = start + REMOTE_TIMEOUT - Duration::from_secs(1);
        // Renewed just before the timeout: it lives on from the renewal.
        states.apply_at(&update(2, 2, r#"{"remote":2}"#), None, later);
        let both = states.snapshot_at(start + REMOTE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(both.map(|u| u.entries.len()), Some(2));
        let after = later + REMOTE_TIMEOUT;
        assert_eq!(
            states.snapshot_at(after),
            Some(update(1, 1, r#"{"local":1}"#))
        );
        // Forgotten, so an older clock from the dead node's last words is accepted afresh.
        states.apply_at(&update(2, 1, r#"{"remote":1}"#), None, after);
        assert_eq!(states.snapshot_at(after).map(|u| u.entries.len()), Some(2));
    }
}
