//! [`LocalFileStorage`]: finished files and uploads in progress as plain files under a data
//! directory, so an upload is written to disk once and finishing it is a directory rename.

mod cache;
mod codec;
mod disk;
mod file;
mod layout;
mod session;
mod upload;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use teleportal_storage::{FileId, StorageError};

use cache::FileCache;
use disk::blocking;
use layout::Layout;
use session::Session;

/// [`FileStorage`](teleportal_storage::FileStorage),
/// [`TemporaryUploadStorage`](teleportal_storage::TemporaryUploadStorage) and
/// [`FinishUpload`](teleportal_storage::FinishUpload) as plain files under a root directory:
/// an upload is appended to one file as it arrives, never held in memory, and finishing it
/// renames its directory into place.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_fs::LocalFileStorage;
/// use teleportal_storage::{FileId, FileMetadata, FileStorage, FinishUpload, TemporaryUploadStorage};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = LocalFileStorage::open(dir.path())?;
/// let meta = FileMetadata::new(FileId::new([3; 32]), "a.txt", 5, "text/plain", 4, 2);
/// store.begin(meta.clone()).await?;
/// store.put_chunk(&meta.id, 1, Bytes::from_static(b"o")).await?;
/// store.put_chunk(&meta.id, 0, Bytes::from_static(b"hell")).await?;
/// assert_eq!(store.finish_upload(&meta.id).await?, meta);
/// assert_eq!(store.chunk(&meta.id, 0).await?, Bytes::from_static(b"hell"));
/// drop(store);
///
/// // Finished files are there after a reopen.
/// let store = LocalFileStorage::open(dir.path())?;
/// assert_eq!(store.chunk(&meta.id, 1).await?, Bytes::from_static(b"o"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Layout
/// ```text
/// <root>/uploads/<file id>/{meta,data,index}   an upload in progress
/// <root>/files/<file id>/{meta,data,index}     a finished file
/// <root>/documents/<document>/<file id>         empty markers listing a document's files
/// <root>/tmp/                                   staging and trash, emptied on open
/// ```
/// Ids and document names appear only as lowercase hex. `data` holds the chunks back to
/// back in arrival order (a chunk sent twice is appended twice; the later copy counts), and
/// `index` says where each one lies, so chunks may have any length (the encryption layer's
/// sealed chunks are longer than `chunk_size`). `meta` and `index` are small versioned
/// binary records; a damaged one reads as [`StorageError::Corrupt`].
///
/// **One process per root**: the store keeps upload state in memory and empties `tmp` when
/// it opens, so two processes (or two stores in one process) must not share a root.
///
/// # Durability
/// - `put_file` and `finish_upload` resolve once the file is durable: its files and
///   directories are synced, and it appears under `files` in one rename. A reader never sees
///   part of a file; deleting renames it away first.
/// - `put_chunk` writes the chunk (no fsync) and it is readable at once. Every
///   [`with_checkpoint_bytes`](Self::with_checkpoint_bytes) bytes (64 MiB by default) a
///   background checkpoint syncs `data` and atomically rewrites `index`; after a crash an
///   upload lists the chunks of its last checkpoint and the client sends the rest again, as
///   [`TemporaryUploadStorage`](teleportal_storage::TemporaryUploadStorage) allows.
///   [`sync_upload`](Self::sync_upload) and [`sync_uploads`](Self::sync_uploads) checkpoint
///   at once (before a planned shutdown, say).
/// - `finish_upload` first makes the whole upload durable, then renames it; `take` reads it
///   and removes it.
///
/// Each upload touched since the store opened keeps its `data` file open until it ends;
/// run [`expire`](teleportal_storage::TemporaryUploadStorage::expire) now and then to end
/// abandoned ones.
pub struct LocalFileStorage {
    inner: Arc<Inner>,
    checkpoint_bytes: u64,
}

/// What blocking work shares with the store.
#[derive(Debug)]
struct Inner {
    layout: Layout,
    /// Sessions loaded or begun since the store opened.
    sessions: Mutex<HashMap<FileId, Arc<Session>>>,
    /// Held while sessions are created, loaded or ended, so that those steps (on disk and
    /// in `sessions`) never interleave. Chunks come and go without it.
    structure: Arc<tokio::sync::Mutex<()>>,
    files: Mutex<FileCache>,
}

impl fmt::Debug for LocalFileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFileStorage")
            .field("root", &self.inner.layout.root())
            .field("checkpoint_bytes", &self.checkpoint_bytes)
            .finish_non_exhaustive()
    }
}

impl LocalFileStorage {
    /// How many bytes an upload receives between checkpoints by default: 64 MiB.
    pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 << 20;

    /// Opens (creating if needed) the store under `root`. Blocks while it creates the
    /// directories and empties `tmp`; uploads are loaded lazily, when first touched.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when a directory cannot be created or cleaned.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        Ok(LocalFileStorage {
            inner: Arc::new(Inner {
                layout: Layout::create(root.as_ref())?,
                sessions: Mutex::new(HashMap::new()),
                structure: Arc::new(tokio::sync::Mutex::new(())),
                files: Mutex::new(FileCache::default()),
            }),
            checkpoint_bytes: Self::DEFAULT_CHECKPOINT_BYTES,
        })
    }

    /// Checkpoints each upload after `bytes` more of it arrived (at least 1). Smaller
    /// means fewer chunks to resend after a crash and more syncs.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use teleportal_fs::LocalFileStorage;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = LocalFileStorage::open(dir.path())?.with_checkpoint_bytes(8 << 20);
    /// assert_eq!(store.checkpoint_bytes(), 8 << 20);
    /// # Ok(()) }
    /// ```
    pub fn with_checkpoint_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_bytes = bytes.max(1);
        self
    }

    /// The checkpoint interval in bytes.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.checkpoint_bytes
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.inner.layout.root()
    }

    /// Makes every chunk received so far for upload `id` durable, waiting for a checkpoint
    /// in progress first. Afterwards a restart lists all of them.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] for an unknown upload; a backend error.
    ///
    /// # Cancel safety
    /// Once started, the checkpoint runs to its end even if this future is dropped.
    pub async fn sync_upload(&self, id: &FileId) -> Result<(), StorageError> {
        self.checkpoint_upload(id, false).await
    }

    /// Checkpoints upload `id` under its checkpoint lock, first checking that every chunk
    /// arrived when `complete` is set.
    pub(super) async fn checkpoint_upload(
        &self,
        id: &FileId,
        complete: bool,
    ) -> Result<(), StorageError> {
        let session = self
            .session(id)
            .await?
            .ok_or_else(|| not_found("upload", id))?;
        let guard = session.checkpoint_lock().lock_owned().await;
        blocking(move || {
            let _guard = guard;
            if complete {
                session.complete_extents()?;
            }
            session.checkpoint()
        })
        .await
    }

    /// [`sync_upload`](Self::sync_upload) for every upload touched since the store opened.
    ///
    /// # Errors
    /// The first backend error; the other uploads are synced even so.
    ///
    /// # Cancel safety
    /// As [`sync_upload`](Self::sync_upload).
    pub async fn sync_uploads(&self) -> Result<(), StorageError> {
        let ids: Vec<FileId> = self.inner.sessions().keys().copied().collect();
        let mut first_error = None;
        for id in ids {
            match self.sync_upload(&id).await {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The live session `id`, loading it from disk if it was not touched since the store
    /// opened; `None` if there is none.
    async fn session(&self, id: &FileId) -> Result<Option<Arc<Session>>, StorageError> {
        if let Some(session) = self.inner.live(id) {
            return Ok(Some(session));
        }
        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || {
            let _guard = guard;
            inner.load(&id)
        })
        .await
    }
}

impl Inner {
    fn sessions(&self) -> MutexGuard<'_, HashMap<FileId, Arc<Session>>> {
        // Only inserts and removes happen under this lock; a poisoned map is still whole.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn files(&self) -> MutexGuard<'_, FileCache> {
        // The cache only gains and drops whole entries; a poisoned cache is still whole.
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session `id` if it is loaded and has not ended.
    fn live(&self, id: &FileId) -> Option<Arc<Session>> {
        self.sessions()
            .get(id)
            .filter(|session| !session.is_retired())
            .cloned()
    }

    /// [`Inner::live`], else the session loaded from disk. Blocking; the caller holds the
    /// structure lock.
    fn load(&self, id: &FileId) -> Result<Option<Arc<Session>>, StorageError> {
        if let Some(session) = self.live(id) {
            return Ok(Some(session));
        }
        let Some(session) = Session::load(&self.layout, id)? else {
            return Ok(None);
        };
        let session = Arc::new(session);
        self.sessions().insert(*id, Arc::clone(&session));
        Ok(Some(session))
    }

    /// Inserts a session just created. The caller holds the structure lock.
    fn insert(&self, session: &Arc<Session>) {
        self.sessions()
            .insert(session.metadata().id, Arc::clone(session));
    }

    /// Ends session `id` (waiting for its checkpoint in progress) and removes its directory;
    /// `false` if there was none. Blocking; the caller holds the structure lock.
    fn end_session(&self, id: &FileId) -> Result<bool, StorageError> {
        let live = self.sessions().remove(id);
        if let Some(session) = &live {
            let _checkpoint = session.checkpoint_lock().blocking_lock_owned();
            session.retire();
        }
        let removed = disk::discard(
            &self.layout,
            &self.layout.upload_dir(id),
            self.layout.uploads(),
        )?;
        Ok(removed || live.is_some())
    }

    /// Forgets a session that was retired. The caller holds the structure lock.
    fn forget(&self, id: &FileId) {
        self.sessions().remove(id);
    }
}

fn not_found(kind: &'static str, id: impl fmt::Display) -> StorageError {
    StorageError::NotFound {
        kind,
        id: id.to_string(),
    }
}
