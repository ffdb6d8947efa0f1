//! Catching updates another node stored but never published.
//!
//! Nodes publish an update after its durable append, so a node that dies (or loses its bus)
//! between the two leaves an update in shared storage that the other nodes' clients never
//! receive; its writer holds an ACK and will not send it again. Each session with a bus
//! therefore counts the updates it saw (its own appends and other nodes' publications, one
//! per append either way) and compares the count with the storage's sequence numbers, which
//! grow by one per append. Publications in flight make the storage run ahead for a moment;
//! a deficit that lasts [`PATIENCE`] checks in a row is a lost publication, and the session
//! sends its clients the whole stored document (idempotent, and it needs no knowledge of what
//! each client holds).

use std::sync::atomic::{AtomicU64, Ordering};

/// Consecutive checks a deficit must last before the session resyncs its clients.
pub(crate) const PATIENCE: u32 = 3;

/// Updates a session saw: its own appends and other nodes' publications.
#[derive(Debug, Default)]
pub(crate) struct SeenUpdates(AtomicU64);

impl SeenUpdates {
    pub(crate) fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The audit's memory between checks.
#[derive(Debug, Default)]
pub(crate) struct Audit {
    /// The storage's last sequence number and the seen count when counting started.
    base: Option<(u64, u64)>,
    /// Checks in a row that found updates stored but not seen.
    short: u32,
}

impl Audit {
    /// One check: `last_seq` read from storage, then `seen` read after it. True when the
    /// session should resync (and the audit restarted from here).
    pub(crate) fn check(&mut self, last_seq: u64, seen: u64) -> bool {
        let Some((base_seq, base_seen)) = self.base else {
            self.restart(last_seq, seen);
            return false;
        };
        let stored = last_seq.saturating_sub(base_seq);
        let observed = seen.saturating_sub(base_seen);
        if observed >= stored {
            // All caught up: count from here, so a surplus (a publication of an append the
            // base already held) cannot hide a later loss.
            self.restart(last_seq, seen);
            return false;
        }
        self.short += 1;
        if self.short < PATIENCE {
            return false;
        }
        self.restart(last_seq, seen);
        true
    }

    /// Counts from here on (after a resync every stored update reached the clients).
    pub(crate) fn restart(&mut self, last_seq: u64, seen: u64) {
        self.base = Some((last_seq, seen));
        self.short = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_in_flight_are_not_a_loss() {
        let mut audit = Audit::default();
        assert!(!audit.check(10, 0));
        // 5 appends, 3 publications arrived so far, then the rest.
        assert!(!audit.check(15, 3));
        assert!(!audit.check(15, 5));
        // Under steady load the count lags now and then but catches up.
        for round in 1..=10u64 {
            let lagging = round % 2 == 0;
            let seen = 5 + round * 4 - u64::from(lagging);
            assert!(!audit.check(15 + round * 4, seen), "round {round}");
        }
    }

    #[test]
    fn an_update_never_published_triggers_one_resync() {
        let mut audit = Audit::default();
        assert!(!audit.check(0, 0));
        // Seq 1 was stored by a node that died before publishing it; 2 and 3 arrived.
        for _ in 1..PATIENCE {
            assert!(!audit.check(3, 2));
        }
        assert!(audit.check(3, 2));
        // Counting restarts after the resync: the old loss is not reported again.
        assert!(!audit.check(3, 2));
        assert!(!audit.check(4, 3));
    }

    #[test]
    fn a_surplus_does_not_hide_a_later_loss() {
        let mut audit = Audit::default();
        // The base already held seq 5, whose publication then arrives: one too many seen.
        assert!(!audit.check(5, 0));
        assert!(!audit.check(5, 1));
        // Seq 6 is lost.
        for _ in 1..PATIENCE {
            assert!(!audit.check(6, 1));
        }
        assert!(audit.check(6, 1));
    }
}
