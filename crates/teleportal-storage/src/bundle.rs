//! [`StoreBundle`]: every store a server uses, handed over in one piece.

use std::fmt;
use std::sync::Arc;

use crate::{
    DocumentStorage, DocumentStore, FileStorage, FinishUpload, MilestoneStorage,
    TemporaryUploadStorage,
};

/// Where a server keeps files: finished in the upload store itself, or moved to another.
#[derive(Clone)]
pub enum FileStores {
    /// One store for uploads and files; a finished upload becomes a file where it lies.
    InPlace(Arc<dyn FinishUpload>),
    /// Uploads in one store, finished files in another (S3): a finished upload is streamed
    /// across.
    Split {
        /// Uploads in progress.
        uploads: Arc<dyn TemporaryUploadStorage>,
        /// Finished files.
        files: Arc<dyn FileStorage>,
    },
}

impl fmt::Debug for FileStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileStores::InPlace(_) => "FileStores::InPlace",
            FileStores::Split { .. } => "FileStores::Split",
        })
    }
}

/// The stores of a server: documents, and optionally milestones and files. A backend that
/// keeps every kind of data (SQLite, PostgreSQL) hands all of them out at once with
/// [`StoreBundle::all_in`]; replace a field to keep one kind elsewhere.
///
/// ```
/// use teleportal_storage::{MemoryStorage, StoreBundle};
///
/// let stores = StoreBundle::all_in(MemoryStorage::new());
/// assert!(stores.milestones.is_some() && stores.files.is_some());
/// let documents = stores.document_store(); // configure it, then give it to a server
/// # drop(documents);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct StoreBundle {
    /// The documents.
    pub documents: Arc<dyn DocumentStorage>,
    /// Milestones, if the server answers the milestone methods.
    pub milestones: Option<Arc<dyn MilestoneStorage>>,
    /// Uploads and files, if the server answers the file methods.
    pub files: Option<FileStores>,
}

impl fmt::Debug for StoreBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBundle")
            .field("milestones", &self.milestones.is_some())
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl StoreBundle {
    /// Documents only.
    pub fn documents(documents: impl DocumentStorage) -> Self {
        StoreBundle {
            documents: Arc::new(documents),
            milestones: None,
            files: None,
        }
    }

    /// Every kind of data in `storage`, shared.
    pub fn all_in<S>(storage: S) -> Self
    where
        S: DocumentStorage + MilestoneStorage + FinishUpload,
    {
        let storage = Arc::new(storage);
        StoreBundle {
            documents: storage.clone(),
            milestones: Some(storage.clone()),
            files: Some(FileStores::InPlace(storage)),
        }
    }

    /// A [`DocumentStore`] over the documents, with its defaults.
    pub fn document_store(&self) -> DocumentStore {
        DocumentStore::from_arc(Arc::clone(&self.documents))
    }
}
