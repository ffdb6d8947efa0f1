//! What the file handler remembers between messages, all of it optional: leaf hashes of
//! uploads in progress (so finishing does not read a file back to hash it) and the Merkle
//! trees of recently stored files (so a download starts without reading the file twice).
//! Anything missing is recomputed from storage, one chunk at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use teleportal_core::merkle::{Hash, MerkleTree};
use teleportal_storage::FileId;

/// Uploads (and trees) remembered at once; past it, an arbitrary one is forgotten. 32 bytes per
/// chunk each: 1,024 uploads of 1 GiB in 1 MiB chunks take 32 MiB.
const MAX_ENTRIES: usize = 1024;

fn evict_one<V>(map: &mut HashMap<FileId, V>) {
    if let Some(key) = map.keys().next().copied() {
        map.remove(&key);
    }
}

#[derive(Debug, Default)]
pub(super) struct Cache {
    leaves: Mutex<HashMap<FileId, Vec<Option<Hash>>>>,
    trees: Mutex<HashMap<FileId, Arc<MerkleTree>>>,
    /// Uploads being finished, so two last chunks handled at once finish it once.
    finishing: Arc<Mutex<HashSet<FileId>>>,
}

/// Marks an upload as being finished until dropped.
pub(super) struct Finishing {
    set: Arc<Mutex<HashSet<FileId>>>,
    id: FileId,
}

impl Drop for Finishing {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.id);
    }
}

impl Cache {
    /// Claims the finishing of upload `id`; `None` while someone else holds it.
    pub(super) fn start_finishing(&self, id: &FileId) -> Option<Finishing> {
        lock(&self.finishing).insert(*id).then(|| Finishing {
            set: Arc::clone(&self.finishing),
            id: *id,
        })
    }

    /// Records chunk `index`'s leaf hash for an upload of `count` chunks.
    pub(super) fn record_leaf(&self, id: &FileId, count: u32, index: u32, leaf: Hash) {
        let mut leaves = lock(&self.leaves);
        if !leaves.contains_key(id) && leaves.len() >= MAX_ENTRIES {
            // Any one will do (abandoned uploads linger here): its finish re-reads chunks.
            evict_one(&mut leaves);
        }
        let hashes = leaves
            .entry(*id)
            .or_insert_with(|| vec![None; count as usize]);
        if let Some(slot) = hashes.get_mut(index as usize) {
            // Two different copies of one chunk: which one storage kept is its business, so
            // forget both and let the finish hash what is stored.
            *slot = match *slot {
                Some(known) if known != leaf => None,
                _ => Some(leaf),
            };
        }
    }

    /// The upload's leaf hashes as known (all `None` if nothing is cached), and forgets them.
    pub(super) fn take_leaves(&self, id: &FileId, count: u32) -> Vec<Option<Hash>> {
        lock(&self.leaves)
            .remove(id)
            .filter(|hashes| hashes.len() == count as usize)
            .unwrap_or_else(|| vec![None; count as usize])
    }

    pub(super) fn tree(&self, id: &FileId) -> Option<Arc<MerkleTree>> {
        lock(&self.trees).get(id).cloned()
    }

    pub(super) fn keep_tree(&self, id: FileId, tree: Arc<MerkleTree>) {
        let mut trees = lock(&self.trees);
        if trees.len() >= MAX_ENTRIES {
            // Any one will do: a dropped tree is rebuilt by its next download.
            evict_one(&mut trees);
        }
        trees.insert(id, tree);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the maps whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
