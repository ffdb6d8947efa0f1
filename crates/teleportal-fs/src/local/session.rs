//! One upload in progress: its `data` append log, the in-memory index of received chunks,
//! and the checkpoints that make that index durable.
//!
//! A chunk is visible once its bytes are written (no fsync). A checkpoint syncs `data` and
//! then atomically replaces `index` with a snapshot taken before the sync, so the durable
//! index never names bytes that were not synced; after a crash the session lists exactly the
//! chunks of its last checkpoint, and bytes appended after it are unreferenced garbage.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use teleportal_storage::{FileId, FileMetadata, StorageError, UploadProgress};

use super::codec::{self, Extent};
use super::disk::{self, io_error};
use super::layout::{DATA, INDEX, INDEX_TMP, Layout, META};

/// An upload session, shared by the requests that touch it.
#[derive(Debug)]
pub(super) struct Session {
    metadata: FileMetadata,
    started_at: SystemTime,
    dir: PathBuf,
    data: File,
    state: Mutex<State>,
    /// Held by whoever checkpoints, and by whoever ends the session (after which no
    /// checkpoint may write into a directory that a new session of the same id could own).
    checkpoint: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct State {
    index: BTreeMap<u32, Extent>,
    /// Where the next chunk goes: the end of `data`.
    end: u64,
    /// Bytes recorded since the last checkpoint's snapshot.
    unsynced: u64,
    /// Bumped by every recorded chunk.
    version: u64,
    /// The version the on-disk index holds.
    durable: u64,
    /// Set once the session was taken, finished, aborted or expired.
    retired: bool,
    /// Set when syncing `data` or writing `index` failed. Sticky: Linux reports a writeback
    /// error once, so a later sync of the same file could succeed over lost bytes.
    failed: Option<String>,
}

impl Session {
    /// Creates the session on disk and returns it. The directory is built in `tmp` and
    /// renamed into `uploads`, so a crash never leaves a session without its `meta`.
    ///
    /// Blocking. The caller holds the store's structure lock and has checked that no session
    /// of this id exists.
    pub(super) fn create(layout: &Layout, metadata: FileMetadata) -> Result<Self, StorageError> {
        let staging = layout.scratch("begin");
        let result = Self::create_in(layout, &staging, metadata);
        if result.is_err() {
            // Best effort: `tmp` is emptied on the next open anyway.
            let _ = disk::remove_any(&staging);
        }
        result
    }

    fn create_in(
        layout: &Layout,
        staging: &Path,
        metadata: FileMetadata,
    ) -> Result<Self, StorageError> {
        let started_at = SystemTime::now();
        fs::create_dir(staging).map_err(io_error("create", staging))?;
        disk::write_new(
            &staging.join(META),
            &codec::encode_meta_checked(&metadata, Some(started_at))?,
        )?;
        disk::write_new(
            &staging.join(INDEX),
            &codec::encode_index(std::iter::empty()),
        )?;
        let data_path = staging.join(DATA);
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&data_path)
            .map_err(io_error("create", &data_path))?;
        disk::sync_dir(staging)?;
        let dir = layout.upload_dir(&metadata.id);
        // The open `data` handle follows the rename.
        fs::rename(staging, &dir).map_err(io_error("rename", staging))?;
        disk::sync_dir(layout.uploads())?;
        Ok(Session::new(
            metadata,
            started_at,
            dir,
            data,
            BTreeMap::new(),
            0,
        ))
    }

    /// Loads the session `id` from disk as of its last checkpoint; `None` if there is none.
    /// New chunks go after the end of `data`, past anything written after that checkpoint.
    ///
    /// Blocking. The caller holds the store's structure lock.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when a file of the session is missing or malformed, or the
    /// index names bytes `data` does not hold.
    pub(super) fn load(layout: &Layout, id: &FileId) -> Result<Option<Self>, StorageError> {
        let dir = layout.upload_dir(id);
        let Some((metadata, started_at)) = read_meta(&dir, id)? else {
            return Ok(None);
        };
        let index_path = dir.join(INDEX);
        let index = disk::read_bounded(&index_path, codec::max_index_len(metadata.chunk_count))?
            .ok_or_else(|| StorageError::corrupt("upload session has no index file"))?;
        let index = codec::decode_index(&index)?;
        let data_path = dir.join(DATA);
        let data = disk::open_data(&data_path, true)?;
        let end = data.metadata().map_err(io_error("stat", &data_path))?.len();
        for (index, extent) in &index {
            metadata.check_chunk_index(*index).map_err(|_| {
                StorageError::corrupt("upload index names a chunk past the declared count")
            })?;
            if extent.end().is_none_or(|e| e > end) {
                return Err(StorageError::corrupt(
                    "upload index points past the end of data",
                ));
            }
        }
        Ok(Some(Session::new(
            metadata,
            started_at,
            dir,
            data,
            index.into_iter().collect(),
            end,
        )))
    }

    fn new(
        metadata: FileMetadata,
        started_at: SystemTime,
        dir: PathBuf,
        data: File,
        index: BTreeMap<u32, Extent>,
        end: u64,
    ) -> Self {
        Session {
            metadata,
            started_at,
            dir,
            data,
            state: Mutex::new(State {
                index,
                end,
                unsynced: 0,
                version: 0,
                durable: 0,
                retired: false,
                failed: None,
            }),
            checkpoint: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The declared metadata.
    pub(super) fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    /// When the session began.
    pub(super) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// The lock checkpoints hold; see [`Session::retire`].
    pub(super) fn checkpoint_lock(&self) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(&self.checkpoint)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the state consistent before it could panic (they do
        // no I/O and only insert or add), so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's progress; `None` once it has ended.
    pub(super) fn progress(&self) -> Option<UploadProgress> {
        let state = self.state();
        (!state.retired).then(|| {
            UploadProgress::new(
                self.metadata.clone(),
                state.index.keys().copied().collect(),
                self.started_at,
            )
        })
    }

    /// Whether the session has ended.
    pub(super) fn is_retired(&self) -> bool {
        self.state().retired
    }

    /// Ends the session: no chunk is recorded and no checkpoint runs after this. The caller
    /// holds the checkpoint lock, so none is running either.
    pub(super) fn retire(&self) {
        self.state().retired = true;
    }

    /// Reserves `len` bytes at the end of `data` for a chunk.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] once the session has ended.
    pub(super) fn reserve(&self, len: u32) -> Result<u64, StorageError> {
        let mut state = self.state();
        if state.retired {
            return Err(self.gone());
        }
        let offset = state.end;
        let end = offset
            .checked_add(u64::from(len))
            .ok_or_else(|| StorageError::corrupt("upload data file is at its size limit"))?;
        if end > self.data_limit() {
            return Err(StorageError::InvalidRequest {
                reason: format!(
                    "upload {} was sent more than twice its size in chunks; abort it and start again",
                    self.metadata.id
                ),
            });
        }
        state.end = end;
        Ok(offset)
    }

    /// How far `data` may grow: chunks sent again are appended, so a client re-sending one
    /// chunk forever would fill the disk. Twice the declared file (with room for a wrapping
    /// layer's per-chunk overhead, such as sealed records) plus 16 MiB.
    fn data_limit(&self) -> u64 {
        const PER_CHUNK_OVERHEAD: u64 = 1024;
        let chunks = u64::from(self.metadata.chunk_count);
        self.metadata
            .size
            .saturating_add(chunks.saturating_mul(PER_CHUNK_OVERHEAD))
            .saturating_mul(2)
            .saturating_add(16 << 20)
    }

    /// Writes a chunk's bytes where [`Session::reserve`] said. Blocking; no sync.
    pub(super) fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
        self.data
            .write_all_at(bytes, offset)
            .map_err(io_error("write", &self.dir.join(DATA)))
    }

    /// Records chunk `index` as written at `extent`, and says whether a checkpoint is due
    /// (`threshold` bytes recorded since the last one). Of two copies of one index, the one
    /// reserved later wins, whichever write finished first.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] once the session has ended.
    pub(super) fn record(
        &self,
        index: u32,
        extent: Extent,
        threshold: u64,
    ) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.retired {
            return Err(self.gone());
        }
        if state
            .index
            .get(&index)
            .is_none_or(|old| old.offset < extent.offset)
        {
            state.index.insert(index, extent);
        }
        state.version += 1;
        state.unsynced = state.unsynced.saturating_add(u64::from(extent.len));
        Ok(state.unsynced >= threshold)
    }

    /// Where chunk `index` lies, if it was received.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] once the session has ended.
    pub(super) fn extent(&self, index: u32) -> Result<Option<Extent>, StorageError> {
        let state = self.state();
        if state.retired {
            return Err(self.gone());
        }
        Ok(state.index.get(&index).copied())
    }

    /// Every chunk's extent in index order, if all have arrived.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] when a chunk is missing; [`StorageError::NotFound`]
    /// once the session has ended.
    pub(super) fn complete_extents(&self) -> Result<Vec<Extent>, StorageError> {
        let state = self.state();
        if state.retired {
            return Err(self.gone());
        }
        // Indexes are below `chunk_count` and unique, so the count says it all.
        if u32::try_from(state.index.len()).ok() != Some(self.metadata.chunk_count) {
            return Err(StorageError::InvalidRequest {
                reason: format!("upload {} is missing chunks", self.metadata.id),
            });
        }
        Ok(state.index.values().copied().collect())
    }

    /// Reads a chunk. Blocking.
    pub(super) fn read(&self, extent: Extent) -> Result<Bytes, StorageError> {
        disk::read_extent(&self.data, extent, &self.dir.join(DATA))
    }

    /// Makes every chunk recorded so far durable: syncs `data`, then replaces `index` with a
    /// snapshot taken before that sync. Does nothing when the on-disk index is current or
    /// the session has ended.
    ///
    /// Blocking. The caller holds the checkpoint lock.
    ///
    /// # Errors
    /// The sync's or the write's error, and from then on for every checkpoint of this
    /// session (see `State::failed`): the upload must be aborted and sent again.
    pub(super) fn checkpoint(&self) -> Result<(), StorageError> {
        let (bytes, version) = {
            let mut state = self.state();
            if state.retired {
                return Ok(());
            }
            check_failed(&state)?;
            state.unsynced = 0;
            if state.version == state.durable {
                return Ok(());
            }
            (snapshot(&state), state.version)
        };
        self.persist(&bytes)?;
        let mut state = self.state();
        state.durable = state.durable.max(version);
        Ok(())
    }

    /// The last checkpoint, which also ends the session in the same step: a chunk recorded
    /// after the snapshot would be missing from the file, so none can be.
    ///
    /// Blocking. The caller holds the checkpoint lock.
    ///
    /// # Errors
    /// As [`Session::checkpoint`]; the session is then not ended.
    pub(super) fn final_checkpoint(&self) -> Result<(), StorageError> {
        let bytes = {
            let mut state = self.state();
            if state.retired {
                return Err(self.gone());
            }
            check_failed(&state)?;
            state.retired = true;
            snapshot(&state)
        };
        if let Err(error) = self.persist(&bytes) {
            self.state().retired = false;
            return Err(error);
        }
        Ok(())
    }

    /// Syncs `data`, then replaces `index` with `bytes`; a failure is remembered.
    fn persist(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let result = self
            .data
            .sync_data()
            .map_err(io_error("sync", &self.dir.join(DATA)))
            .and_then(|()| disk::replace(&self.dir, INDEX, INDEX_TMP, bytes));
        if let Err(error) = &result {
            self.state().failed = Some(error.to_string());
        }
        result
    }

    /// Starts a checkpoint on the blocking pool unless one is running (that one goes on
    /// while `threshold` bytes keep arriving). Not awaited: uploads never wait for a sync.
    pub(super) fn checkpoint_in_background(self: &Arc<Self>, threshold: u64) {
        let Ok(guard) = Arc::clone(&self.checkpoint).try_lock_owned() else {
            return;
        };
        let session = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            while session.wants_checkpoint(threshold) {
                if let Err(error) = session.checkpoint() {
                    // The next checkpoint, `take` or `finish_upload` tries again and reports.
                    tracing::warn!(upload = %session.metadata.id, error = %teleportal_storage::ErrorChain::new(&error), "upload checkpoint failed");
                    break;
                }
            }
        });
    }

    fn wants_checkpoint(&self, threshold: u64) -> bool {
        let state = self.state();
        !state.retired && state.unsynced >= threshold
    }

    fn gone(&self) -> StorageError {
        StorageError::NotFound {
            kind: "upload",
            id: self.metadata.id.to_string(),
        }
    }
}

fn snapshot(state: &State) -> Vec<u8> {
    codec::encode_index(state.index.iter().map(|(i, e)| (*i, *e)))
}

fn check_failed(state: &State) -> Result<(), StorageError> {
    match &state.failed {
        None => Ok(()),
        Some(error) => Err(StorageError::backend(
            "local",
            format!("an earlier sync of this upload failed ({error}); abort it and start again"),
        )),
    }
}

/// When the stored session `id` began, read from its `meta` alone; `None` if there is none.
/// Blocking.
///
/// # Errors
/// [`StorageError::Corrupt`] when `meta` is missing or malformed.
pub(super) fn stored_start(
    layout: &Layout,
    id: &FileId,
) -> Result<Option<SystemTime>, StorageError> {
    Ok(read_meta(&layout.upload_dir(id), id)?.map(|(_, started_at)| started_at))
}

/// The declared metadata and start time in `dir/meta`, for upload `id`; `None` if `dir` does
/// not exist. Blocking.
fn read_meta(dir: &Path, id: &FileId) -> Result<Option<(FileMetadata, SystemTime)>, StorageError> {
    let Some(meta) = disk::read_bounded(&dir.join(META), codec::MAX_META_LEN)? else {
        return if disk::exists(dir) {
            Err(StorageError::corrupt("upload session has no meta file"))
        } else {
            Ok(None)
        };
    };
    let (metadata, started_at) = codec::decode_meta(&meta)?;
    let started_at =
        started_at.ok_or_else(|| StorageError::corrupt("upload session has no start time"))?;
    if metadata.id != *id {
        return Err(StorageError::corrupt(
            "upload session is stored under another id",
        ));
    }
    Ok(Some((metadata, started_at)))
}
