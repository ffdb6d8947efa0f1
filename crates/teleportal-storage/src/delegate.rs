//! [`DelegateStorage`]: decorators that change a few methods of a storage they wrap.

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument,
};

/// A decorator over another [`DocumentStorage`]: implement this instead of `DocumentStorage`
/// and override only the methods the decorator changes; the others forward to
/// [`inner`](Self::inner). Every `DelegateStorage` is a `DocumentStorage`.
///
/// Forwarding by default means a method added to `DocumentStorage` later reaches the wrapped
/// backend instead of a default that skips it (a `close` that did not flush, say).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use bytes::Bytes;
/// use teleportal_storage::{
///     AppendOptions, AppendReceipt, DelegateStorage, DocumentId, DocumentStorage,
///     MemoryStorage, StorageError, async_trait,
/// };
///
/// /// Counts appends; everything else goes straight to the backend.
/// struct Counted(MemoryStorage, AtomicU64);
///
/// #[async_trait]
/// impl DelegateStorage for Counted {
///     type Inner = MemoryStorage;
///     fn inner(&self) -> &MemoryStorage {
///         &self.0
///     }
///     async fn append(
///         &self,
///         doc: &DocumentId,
///         update: Bytes,
///         options: AppendOptions,
///     ) -> Result<AppendReceipt, StorageError> {
///         self.1.fetch_add(1, Ordering::Relaxed);
///         self.0.append(doc, update, options).await
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let storage = Counted(MemoryStorage::new(), AtomicU64::new(0));
/// let doc = DocumentId::new("notes");
/// // With both traits in scope, say which one a call goes through.
/// DocumentStorage::append(&storage, &doc, Bytes::from_static(&[0, 0]), AppendOptions::default())
///     .await?;
/// assert_eq!(storage.1.load(Ordering::Relaxed), 1);
/// assert_eq!(DocumentStorage::load(&storage, &doc).await?.tail.len(), 1); // forwarded
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[async_trait]
pub trait DelegateStorage: Send + Sync + 'static {
    /// The wrapped storage.
    type Inner: DocumentStorage + ?Sized;

    /// The storage every method not overridden forwards to.
    fn inner(&self) -> &Self::Inner;

    /// [`DocumentStorage::append`]; forwards by default.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        self.inner().append(doc, update, options).await
    }

    /// [`DocumentStorage::load`]; forwards by default.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        self.inner().load(doc).await
    }

    /// [`DocumentStorage::metadata`]; forwards by default.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        self.inner().metadata(doc).await
    }

    /// [`DocumentStorage::compact`]; forwards by default.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        self.inner().compact(doc, upto, snapshot).await
    }

    /// [`DocumentStorage::delete`]; forwards by default.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.inner().delete(doc).await
    }

    /// [`DocumentStorage::close`]; forwards by default, so the backend still flushes.
    ///
    /// # Errors
    /// As the wrapped storage's.
    async fn close(&self) -> Result<(), StorageError> {
        self.inner().close().await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<D: DelegateStorage> DocumentStorage for D {
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        DelegateStorage::append(self, doc, update, options).await
    }
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        DelegateStorage::load(self, doc).await
    }
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        DelegateStorage::metadata(self, doc).await
    }
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        DelegateStorage::compact(self, doc, upto, snapshot).await
    }
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        DelegateStorage::delete(self, doc).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        DelegateStorage::close(self).await
    }
}
