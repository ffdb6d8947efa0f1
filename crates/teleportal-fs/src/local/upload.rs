//! [`TemporaryUploadStorage`] and [`FinishUpload`] for [`LocalFileStorage`]: sessions live
//! in memory over their directories under `uploads`, and finishing one renames its directory
//! into `files`.

use std::fs;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use teleportal_storage::{
    FileId, FileMetadata, FinishUpload, StorageError, TemporaryUploadStorage, UploadProgress,
};

use super::codec::Extent;
use super::disk::{self, blocking, io_error};
use super::layout;
use super::session::{self, Session};
use super::{LocalFileStorage, not_found};

/// The progress of `session` if it is the upload `metadata` declares; `None` if the session
/// ended meanwhile.
fn resume(
    session: &Session,
    metadata: &FileMetadata,
) -> Result<Option<UploadProgress>, StorageError> {
    if session.metadata() != metadata {
        return Err(StorageError::InvalidRequest {
            reason: format!("upload {} exists with different metadata", metadata.id),
        });
    }
    Ok(session.progress())
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl TemporaryUploadStorage for LocalFileStorage {
    /// Creates the session's directory (synced) with its start time in nanoseconds.
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        if let Some(session) = self.inner.live(&metadata.id)
            && let Some(progress) = resume(&session, &metadata)?
        {
            return Ok(progress);
        }
        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _guard = guard;
            if let Some(session) = inner.load(&metadata.id)?
                && let Some(progress) = resume(&session, &metadata)?
            {
                return Ok(progress);
            }
            let session = Arc::new(Session::create(&inner.layout, metadata)?);
            inner.insert(&session);
            session
                .progress()
                .ok_or_else(|| not_found("upload", session.metadata().id))
        })
        .await
    }

    /// Appends the chunk to `data` without a sync; a checkpoint makes it durable later.
    ///
    /// # Cancel safety
    /// If dropped before it resolves, the chunk may not be recorded; send it again.
    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        let session = self
            .session(id)
            .await?
            .ok_or_else(|| not_found("upload", id))?;
        session.metadata().check_chunk_index(index)?;
        let len = u32::try_from(chunk.len()).map_err(|_| StorageError::InvalidRequest {
            reason: format!("chunk {index} of upload {id} is over 4 GiB"),
        })?;
        // Reserved under the session's lock, so concurrent chunks never overlap.
        let offset = session.reserve(len)?;
        let writer = Arc::clone(&session);
        blocking(move || writer.write_at(offset, &chunk)).await?;
        if session.record(index, Extent { offset, len }, self.checkpoint_bytes)? {
            session.checkpoint_in_background(self.checkpoint_bytes);
        }
        Ok(())
    }

    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let session = self
            .session(id)
            .await?
            .ok_or_else(|| not_found("upload", id))?;
        let extent = session
            .extent(index)?
            .ok_or_else(|| not_found("upload chunk", format!("{id}/{index}")))?;
        blocking(move || session.read(extent)).await
    }

    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        Ok(self.session(id).await?.and_then(|s| s.progress()))
    }

    /// Reads every chunk, then removes the session's directory.
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || {
            let _guard = guard;
            let session = inner.load(&id)?.ok_or_else(|| not_found("upload", id))?;
            let checkpoint = session.checkpoint_lock().blocking_lock_owned();
            let chunks = session
                .complete_extents()?
                .into_iter()
                .map(|extent| session.read(extent))
                .collect::<Result<Vec<_>, _>>()?;
            session.retire();
            drop(checkpoint);
            inner.forget(&id);
            disk::discard(
                &inner.layout,
                &inner.layout.upload_dir(&id),
                inner.layout.uploads(),
            )?;
            Ok((session.metadata().clone(), chunks))
        })
        .await
    }

    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || {
            let _guard = guard;
            inner.end_session(&id).map(drop)
        })
        .await
    }

    /// Scans `uploads`; a session whose `meta` cannot be read is left alone (and logged).
    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _guard = guard;
            let uploads = inner.layout.uploads();
            let mut expired = 0;
            for entry in fs::read_dir(uploads).map_err(io_error("list", uploads))? {
                let entry = entry.map_err(io_error("list", uploads))?;
                let Some(id) = layout::parse_file_id(&entry.file_name()) else {
                    continue;
                };
                let started_at = match inner.live(&id) {
                    Some(session) => session.started_at(),
                    None => match session::stored_start(&inner.layout, &id) {
                        Ok(Some(started_at)) => started_at,
                        Ok(None) => continue,
                        // Damaged: its directory's last change stands in for its start, so
                        // it goes in time instead of taking space for good.
                        Err(error) => match entry.metadata().and_then(|m| m.modified()) {
                            Ok(changed) => {
                                tracing::warn!(upload = %id, error = %teleportal_storage::ErrorChain::new(&error), "expiring a damaged upload by its directory's age");
                                changed
                            }
                            Err(_) => {
                                tracing::warn!(upload = %id, error = %teleportal_storage::ErrorChain::new(&error), "cannot read upload to expire it");
                                continue;
                            }
                        },
                    },
                };
                if started_at < before && inner.end_session(&id)? {
                    expired += 1;
                }
            }
            Ok(expired)
        })
        .await
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl FinishUpload for LocalFileStorage {
    /// Syncs the upload and writes its complete index (outside the store's structure lock:
    /// this is the long part), then lists it under its document and renames its directory
    /// into `files`.
    ///
    /// # Cancel safety
    /// Once the rename has begun it completes even if this future is dropped.
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        self.checkpoint_upload(id, true).await?;

        let guard = Arc::clone(&self.inner.structure).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || {
            let _guard = guard;
            let session = inner.load(&id)?.ok_or_else(|| not_found("upload", id))?;
            let checkpoint = session.checkpoint_lock().blocking_lock_owned();
            session.complete_extents()?;
            // Usually little to do: only a chunk sent again since the sync above.
            session.final_checkpoint()?;
            drop(checkpoint);
            inner.forget(&id);
            let metadata = session.metadata().clone();
            // A stored file stays as it is, listed where it is.
            if !disk::exists(&inner.layout.file_dir(&id)) {
                inner.add_marker(&metadata)?;
            }
            inner.publish(&inner.layout.upload_dir(&id), &id, inner.layout.uploads())?;
            Ok(metadata)
        })
        .await
    }
}
