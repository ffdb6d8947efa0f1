//! Delete sets: per client, the clock ranges an update deletes.

use std::collections::HashMap;

use super::UpdateError;
use super::coder::{Decoder, Encoder};

/// Ranges per client, clients in the order they were first read (yjs's `Map`), ranges in
/// the order read; a client listed twice has its ranges appended, as `readDeleteSet` does.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteSet {
    pub(crate) clients: Vec<(u64, Vec<Range>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) clock: u64,
    pub(crate) len: u64,
}

impl DeleteSet {
    /// `readDeleteSet`.
    pub(crate) fn read<'a, D: Decoder<'a>>(d: &mut D) -> Result<Self, UpdateError> {
        let mut ds = DeleteSet::default();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let clients = d.rest().read_var_uint("delete set clients")?;
        for _ in 0..clients {
            d.reset_ds();
            let client = d.rest().read_var_uint("delete set client")?;
            let n = d.rest().read_var_uint("delete set ranges")?;
            if n == 0 {
                continue;
            }
            // yjs keeps a delete set as a map, so it never lists a client twice; V2 restarts
            // each list's clocks, and two lists of one client cannot be written back as one.
            if index.insert(client, ds.clients.len()).is_some() {
                return Err(UpdateError::Unsupported(
                    "a delete set lists a client twice",
                ));
            }
            ds.clients.push((client, Vec::new()));
            let at = ds.clients.len() - 1;
            for _ in 0..n {
                let clock = d.read_ds_clock()?;
                let len = d.read_ds_len()?;
                // Ranges ending past 2^53 − 1 read, but joined or written as V1 they give
                // numbers no reader accepts.
                if clock
                    .checked_add(len)
                    .is_none_or(|end| end > super::cursor::MAX_SAFE_INTEGER)
                {
                    return Err(UpdateError::IntegerOutOfRange("delete set range end"));
                }
                ds.clients[at].1.push(Range { clock, len });
            }
        }
        Ok(ds)
    }

    /// `writeDeleteSet`: clients from the highest id down, ranges as they are.
    pub(crate) fn write<E: Encoder>(&self, e: &mut E) -> Result<(), UpdateError> {
        super::cursor::write_var_uint(e.rest(), self.clients.len() as u64);
        let mut order: Vec<&(u64, Vec<Range>)> = self.clients.iter().collect();
        order.sort_by_key(|(client, _)| std::cmp::Reverse(*client));
        for (client, ranges) in order {
            e.reset_ds();
            super::cursor::write_var_uint(e.rest(), *client);
            super::cursor::write_var_uint(e.rest(), ranges.len() as u64);
            for r in ranges {
                e.write_ds_clock(r.clock)?;
                e.write_ds_len(r.len)?;
            }
        }
        Ok(())
    }

    /// `mergeDeleteSets`: every client's ranges from all sets, sorted by clock and joined
    /// where they touch or overlap.
    pub(crate) fn merge(sets: Vec<DeleteSet>) -> DeleteSet {
        let mut merged = DeleteSet::default();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for set in sets {
            for (client, ranges) in set.clients {
                match index.get(&client) {
                    Some(&at) => merged.clients[at].1.extend(ranges),
                    None => {
                        index.insert(client, merged.clients.len());
                        merged.clients.push((client, ranges));
                    }
                }
            }
        }
        for (_, ranges) in &mut merged.clients {
            // A stable sort, as JavaScript's.
            ranges.sort_by_key(|r| r.clock);
            let mut joined: Vec<Range> = Vec::with_capacity(ranges.len());
            for r in ranges.drain(..) {
                match joined.last_mut() {
                    Some(left) if left.clock + left.len >= r.clock => {
                        left.len = left.len.max(r.clock + r.len - left.clock);
                    }
                    _ => joined.push(r),
                }
            }
            *ranges = joined;
        }
        merged
    }
}
