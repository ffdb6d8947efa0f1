//! Where Teleportal documents, files and milestones live.
//!
//! Documents are kept as encoded Yjs updates — one merged snapshot plus a tail of newer
//! updates — and never as a whole `Y.Doc`: yrs merges, diffs and reads state vectors straight
//! from the bytes ([`UpdateEncoding`]).
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = DocumentStore::new(MemoryStorage::new());
//! let doc = DocumentId::from("room/notes");
//! store.append(&doc, Bytes::from_static(&[0, 0])).await?; // the empty update
//! let state = store.read(&doc).await?;
//! assert_eq!(state.state_vector.as_ref(), &[0]); // nothing from any client yet
//! # Ok::<(), teleportal_storage::StorageError>(())
//! # }).unwrap();
//! ```
//!
//! # Why this shape
//! - Backends implement small object-safe traits — [`DocumentStorage`], [`FileStorage`],
//!   [`MilestoneStorage`], [`TemporaryUploadStorage`] — that store bytes and never parse
//!   updates, so a new backend is a few hundred lines and every backend behaves the same.
//! - [`DocumentStore`] holds the logic over any backend: validating updates, size limits,
//!   bounded-batch merges, diffs for sync, background compaction.
//! - Layers wrap a backend and implement the same trait, so they stack in any order:
//!   [`VirtualStorage`] ([`batching`]) buffers appends and writes them in batches;
//!   [`EncryptedStorage`] ([`encryption`]) encrypts everything stored with AES-256-GCM.
//! - `conformance` (feature `test-util`) is the one suite every backend runs.
//! - Durable backends are adapter crates, so a crate that needs only the traits (the engine,
//!   the other adapters) compiles no database: `teleportal-sqlite` (`SqliteStorage`, the
//!   embedded durable default: SQLite, bundled, in WAL mode, with group commit), `teleportal-fs`
//!   (`LocalFileStorage`, Unix: files and uploads as plain files, finished by a rename),
//!   `teleportal-postgres` and `teleportal-s3`. [`MemoryStorage`] stays here, for tests and
//!   single-process demos.
//!
//! # Features
//! - `test-util`: the conformance suite.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub mod batching;
mod bundle;
#[cfg(feature = "test-util")]
pub mod conformance;
mod delegate;
mod document;
pub mod encryption;
mod error;
mod file;
mod id;
mod memory;
pub mod milestone;
mod store;
mod update;
mod upload;

/// The attribute the storage traits are implemented with, so a backend needs no dependency of its own.
pub use async_trait::async_trait;
pub use batching::VirtualStorage;
pub use bundle::{FileStores, StoreBundle};
pub use delegate::DelegateStorage;
pub use document::{
    AppendOptions, AppendReceipt, DocumentMetadata, DocumentStorage, Seq, StoredDocument,
    StoredUpdate,
};
pub use encryption::EncryptedStorage;
pub use error::{BoxError, StorageError};
pub use file::{ChunkStream, FileId, FileMetadata, FileStorage};
pub use id::DocumentId;
pub use memory::MemoryStorage;
pub use milestone::{Milestone, MilestoneMeta, MilestoneStorage};
pub use store::{CompactionPolicy, DocumentState, DocumentStore, SizeLimits, SizeWarning};
/// An error and its causes, for log lines (the family's one [`teleportal_core::ErrorChain`]).
pub use teleportal_core::ErrorChain;
pub use update::{MERGE_BATCH, UpdateEncoding};
pub use upload::{FinishUpload, TemporaryUploadStorage, UploadProgress};
