//! A small cache of open finished files: a download reads every chunk of one file in a row,
//! and each read should not reopen `data` and decode `index` again.

use std::sync::Arc;

use teleportal_storage::FileId;

use super::file::OpenFile;

/// How many files stay open. Each holds one file descriptor.
const CAPACITY: usize = 64;

/// Recently read files, least recently used first.
#[derive(Debug, Default)]
pub(super) struct FileCache {
    entries: Vec<Arc<OpenFile>>,
    /// Bumped by every invalidation, so a file loaded before one is not cached after it.
    generation: u64,
}

impl FileCache {
    /// The cached file `id`, now the most recently used.
    pub(super) fn get(&mut self, id: &FileId) -> Option<Arc<OpenFile>> {
        let at = self.entries.iter().position(|f| f.metadata().id == *id)?;
        let file = self.entries.remove(at);
        self.entries.push(Arc::clone(&file));
        Some(file)
    }

    /// The generation to pass to [`FileCache::insert`] for a load starting now.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Caches `file`, loaded when the cache was at `generation`, unless a file was deleted
    /// since (it may be this one, loaded just before it went).
    pub(super) fn insert(&mut self, file: Arc<OpenFile>, generation: u64) {
        if generation != self.generation || self.get(&file.metadata().id).is_some() {
            return;
        }
        if self.entries.len() >= CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push(file);
    }

    /// Drops file `id`, which is being deleted.
    pub(super) fn invalidate(&mut self, id: &FileId) {
        self.entries.retain(|f| f.metadata().id != *id);
        self.generation += 1;
    }
}
