//! [`MilestoneStorage`]: named snapshots of a document.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
pub use teleportal_core::milestone::{CreatedBy, CreatorKind, MilestoneMeta};

use crate::{DocumentId, StorageError};

/// A milestone: its metadata and the snapshot bytes (a stored content envelope or Yjs update,
/// opaque to storage).
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    /// Id, name, document, creation and lifecycle fields (spec §13).
    pub meta: MilestoneMeta,
    /// The snapshot.
    pub snapshot: Bytes,
}

/// Named snapshots of documents, with metadata that can change (rename, soft delete, restore).
///
/// # Contract
/// - Milestones are keyed by `(meta.document_id, meta.id)`; documents never see each other's.
/// - `create_milestone` with an existing key is [`StorageError::InvalidRequest`].
/// - `milestones` lists metadata in creation order (`created_at`, then id), leaving out
///   soft-deleted ones (`deleted_at` set) unless `include_deleted`.
/// - `update_milestone` replaces the metadata (the snapshot never changes);
///   an unknown key is [`StorageError::NotFound`].
/// - `delete_milestone` removes it for good; an unknown key is `Ok`.
#[async_trait]
pub trait MilestoneStorage: Send + Sync + 'static {
    /// Stores a new milestone.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError>;

    /// The metadata of a document's milestones.
    ///
    /// # Errors
    /// A backend error.
    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError>;

    /// One milestone with its snapshot, or `None`.
    ///
    /// # Errors
    /// A backend error.
    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError>;

    /// Replaces a milestone's metadata.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError>;

    /// Removes a milestone for good.
    ///
    /// # Errors
    /// A backend error.
    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError>;

    /// Finishes what the backend still has queued and releases what it holds, at shutdown
    /// once nothing writes milestones any more; closing twice is `Ok`. The default does nothing
    /// (see [`DocumentStorage::close`](crate::DocumentStorage::close)).
    ///
    /// # Errors
    /// A backend error while closing.
    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: MilestoneStorage + ?Sized> MilestoneStorage for Arc<S> {
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError> {
        (**self).create_milestone(milestone).await
    }
    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError> {
        (**self).milestones(doc, include_deleted).await
    }
    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError> {
        (**self).milestone(doc, id).await
    }
    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError> {
        (**self).update_milestone(meta).await
    }
    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError> {
        (**self).delete_milestone(doc, id).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        (**self).close().await
    }
}

/// Sorts metadata in creation order (`created_at`, then id), the order
/// [`MilestoneStorage::milestones`] returns.
///
/// For backends: sort what a listing read with this, so every backend lists ties alike.
///
/// ```
/// use teleportal_storage::milestone::{CreatedBy, CreatorKind, MilestoneMeta, sort_in_creation_order};
///
/// let alice = CreatedBy { kind: CreatorKind::User, id: "alice".into() };
/// let mut metas = vec![
///     MilestoneMeta::new("room/doc", "b", "Second", 2.0, alice.clone()),
///     MilestoneMeta::new("room/doc", "a", "First", 2.0, alice.clone()),
///     MilestoneMeta::new("room/doc", "c", "Oldest", 1.0, alice),
/// ];
/// sort_in_creation_order(&mut metas);
/// let ids: Vec<&str> = metas.iter().map(|m| m.id.as_str()).collect();
/// assert_eq!(ids, ["c", "a", "b"]); // oldest first; a tie goes by id
/// ```
pub fn sort_in_creation_order(metas: &mut [MilestoneMeta]) {
    metas.sort_by(|a, b| {
        a.created_at
            .total_cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
}
