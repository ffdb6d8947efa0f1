//! [`MemoryStorage`]: every trait in process memory, for tests and single-node servers that
//! can lose their data on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, FileId,
    FileMetadata, FileStorage, FinishUpload, Milestone, MilestoneMeta, MilestoneStorage, Seq,
    StorageError, StoredDocument, StoredUpdate, TemporaryUploadStorage, UploadProgress,
};

#[derive(Debug, Default)]
struct Document {
    snapshot: Option<Bytes>,
    snapshot_seq: Seq,
    tail: Vec<StoredUpdate>,
    last_seq: Seq,
}

impl Document {
    fn tail_bytes(&self) -> u64 {
        self.tail.iter().map(|u| u.update.len() as u64).sum()
    }

    fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.tail.is_empty()
    }

    fn size(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.len() as u64) + self.tail_bytes()
    }
}

#[derive(Debug)]
struct Upload {
    metadata: FileMetadata,
    chunks: BTreeMap<u32, Bytes>,
    started_at: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    documents: HashMap<DocumentId, Document>,
    files: HashMap<FileId, (FileMetadata, Vec<Bytes>)>,
    milestones: HashMap<(String, String), Milestone>,
    uploads: HashMap<FileId, Upload>,
}

/// All four storage traits in memory. "Durable" here means "in this process": an append is
/// visible to every later read, and gone when the process exits.
///
/// ```
/// use teleportal_storage::{DocumentId, DocumentStorage, AppendOptions, MemoryStorage};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let storage = MemoryStorage::new();
/// let doc = DocumentId::from("a");
/// let receipt = storage.append(&doc, bytes::Bytes::from_static(&[0, 0]), AppendOptions::default()).await?;
/// assert_eq!(receipt.seq, 1);
/// assert_eq!(storage.load(&doc).await?.tail.len(), 1);
/// # Ok::<(), teleportal_storage::StorageError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryStorage {
    state: Mutex<State>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation below completes before the guard drops; a panic elsewhere cannot leave
        // a half-written record, so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for MemoryStorage {
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let mut state = self.state();
        let document = state.documents.entry(doc.clone()).or_default();
        let size = document.size() + update.len() as u64;
        if let Some(limit) = options.max_size
            && size > limit
        {
            return Err(StorageError::DocumentTooLarge {
                doc: doc.clone(),
                size,
                limit,
            });
        }
        document.last_seq += 1;
        let seq = document.last_seq;
        document.tail.push(StoredUpdate { seq, update });
        Ok(AppendReceipt::new(
            seq,
            size,
            document.tail.len() as u64,
            document.tail_bytes(),
        ))
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        Ok(self
            .state()
            .documents
            .get(doc)
            .map(|d| StoredDocument {
                snapshot: d.snapshot.clone(),
                snapshot_seq: d.snapshot_seq,
                tail: d.tail.clone(),
            })
            .unwrap_or_default())
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        let state = self.state();
        let document = state.documents.get(doc).filter(|d| !d.is_empty());
        Ok(document.map(|d| {
            DocumentMetadata::new(
                d.size(),
                d.last_seq,
                d.snapshot_seq,
                d.tail.len() as u64,
                d.tail_bytes(),
            )
        }))
    }

    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let mut state = self.state();
        let Some(document) = state.documents.get_mut(doc) else {
            return Ok(()); // Deleted while the caller merged: nothing to fold.
        };
        if upto <= document.snapshot_seq || upto > document.last_seq {
            return Ok(());
        }
        document.tail.retain(|u| u.seq > upto);
        document.snapshot = Some(snapshot);
        document.snapshot_seq = upto;
        Ok(())
    }

    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        if let Some(document) = self.state().documents.get_mut(doc) {
            // Keep the sequence: a compaction that loaded before the delete must not apply.
            document.snapshot = None;
            document.tail.clear();
            document.snapshot_seq = document.last_seq;
        }
        Ok(())
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

// `put_file_stream` is the default (collect, then `put_file`): this store holds files whole
// anyway.
#[async_trait]
impl FileStorage for MemoryStorage {
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        metadata.check_chunk_count(chunks.len())?;
        self.state()
            .files
            .entry(metadata.id)
            .or_insert((metadata, chunks));
        Ok(())
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        Ok(self.state().files.get(id).map(|(m, _)| m.clone()))
    }

    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let state = self.state();
        let (_, chunks) = state.files.get(id).ok_or_else(|| not_found("file", id))?;
        usize::try_from(index)
            .ok()
            .and_then(|i| chunks.get(i))
            .cloned()
            .ok_or_else(|| not_found("chunk", format!("{id}/{index}")))
    }

    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let mut files: Vec<FileMetadata> = self
            .state()
            .files
            .values()
            .filter(|(m, _)| m.document.as_ref() == Some(doc))
            .map(|(m, _)| m.clone())
            .collect();
        files.sort_by_key(|m| m.id);
        Ok(files)
    }

    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        self.state().files.remove(id);
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl MilestoneStorage for MemoryStorage {
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError> {
        let key = (
            milestone.meta.document_id.clone(),
            milestone.meta.id.clone(),
        );
        let mut state = self.state();
        if state.milestones.contains_key(&key) {
            return Err(StorageError::InvalidRequest {
                reason: format!("milestone {} already exists", key.1),
            });
        }
        state.milestones.insert(key, milestone);
        Ok(())
    }

    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError> {
        let mut metas: Vec<MilestoneMeta> = self
            .state()
            .milestones
            .values()
            .map(|m| &m.meta)
            .filter(|m| m.document_id == doc.as_str())
            .filter(|m| include_deleted || m.deleted_at.is_none())
            .cloned()
            .collect();
        crate::milestone::sort_in_creation_order(&mut metas);
        Ok(metas)
    }

    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError> {
        let key = (doc.as_str().to_owned(), id.to_owned());
        Ok(self.state().milestones.get(&key).cloned())
    }

    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError> {
        let key = (meta.document_id.clone(), meta.id.clone());
        let mut state = self.state();
        let milestone = state
            .milestones
            .get_mut(&key)
            .ok_or_else(|| not_found("milestone", &meta.id))?;
        milestone.meta = meta;
        Ok(())
    }

    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError> {
        let key = (doc.as_str().to_owned(), id.to_owned());
        self.state().milestones.remove(&key);
        Ok(())
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl TemporaryUploadStorage for MemoryStorage {
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        let mut state = self.state();
        let upload = state.uploads.entry(metadata.id).or_insert_with(|| Upload {
            metadata: metadata.clone(),
            chunks: BTreeMap::new(),
            started_at: SystemTime::now(),
        });
        if upload.metadata != metadata {
            return Err(StorageError::InvalidRequest {
                reason: format!("upload {} exists with different metadata", metadata.id),
            });
        }
        Ok(progress(upload))
    }

    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        let mut state = self.state();
        let upload = state
            .uploads
            .get_mut(id)
            .ok_or_else(|| not_found("upload", id))?;
        upload.metadata.check_chunk_index(index)?;
        upload.chunks.insert(index, chunk);
        Ok(())
    }

    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let state = self.state();
        let upload = state
            .uploads
            .get(id)
            .ok_or_else(|| not_found("upload", id))?;
        upload
            .chunks
            .get(&index)
            .cloned()
            .ok_or_else(|| not_found("upload chunk", format!("{id}/{index}")))
    }

    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        Ok(self.state().uploads.get(id).map(progress))
    }

    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        let upload = remove_complete(&mut self.state(), id)?;
        Ok((upload.metadata, upload.chunks.into_values().collect()))
    }

    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        self.state().uploads.remove(id);
        Ok(())
    }

    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        let mut state = self.state();
        let count = state.uploads.len();
        state.uploads.retain(|_, u| u.started_at >= before);
        Ok(count - state.uploads.len())
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl FinishUpload for MemoryStorage {
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        let mut state = self.state();
        let upload = remove_complete(&mut state, id)?;
        let metadata = upload.metadata.clone();
        state
            .files
            .entry(upload.metadata.id)
            .or_insert_with(|| (upload.metadata, upload.chunks.into_values().collect()));
        Ok(metadata)
    }
}

/// Removes and returns upload `id` if every chunk arrived; otherwise it stays.
fn remove_complete(state: &mut State, id: &FileId) -> Result<Upload, StorageError> {
    let upload = state
        .uploads
        .get(id)
        .ok_or_else(|| not_found("upload", id))?;
    if !progress(upload).is_complete() {
        return Err(incomplete(id));
    }
    state
        .uploads
        .remove(id)
        .ok_or_else(|| not_found("upload", id))
}

fn progress(upload: &Upload) -> UploadProgress {
    UploadProgress::new(
        upload.metadata.clone(),
        upload.chunks.keys().copied().collect(),
        upload.started_at,
    )
}

fn not_found(kind: &'static str, id: impl std::fmt::Display) -> StorageError {
    StorageError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn incomplete(id: &FileId) -> StorageError {
    StorageError::InvalidRequest {
        reason: format!("upload {id} is missing chunks"),
    }
}
