//! Recently applied message ids, so a retransmitted message is acknowledged but applied once.

use std::collections::{HashSet, VecDeque};

use teleportal_core::MessageId;

/// A bounded set of ids: the oldest id is forgotten when a new one would exceed the bound.
#[derive(Debug)]
pub(crate) struct RecentIds {
    ids: HashSet<MessageId>,
    order: VecDeque<MessageId>,
    capacity: usize,
}

impl RecentIds {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentIds {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn contains(&self, id: &MessageId) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`; false if it was already known.
    pub(crate) fn insert(&mut self, id: MessageId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_id_is_forgotten_past_the_bound() {
        let mut recent = RecentIds::new(2);
        let [a, b, c] = [b"a", b"b", b"c"].map(|s| MessageId::of(s));
        recent.insert(a);
        recent.insert(b);
        recent.insert(c);
        assert!(!recent.contains(&a));
        assert!(recent.contains(&b) && recent.contains(&c));
    }
}
