//! S3-compatible object storage for Teleportal: finished files and cold documents.
//!
//! - [`S3FileStorage`] implements [`FileStorage`](teleportal_storage::FileStorage): one data
//!   object per file, uploaded in parts when large, read back a chunk at a time with ranged
//!   `GET`s.
//! - [`S3DocumentStorage`] implements [`DocumentStorage`](teleportal_storage::DocumentStorage)
//!   for cold documents: a snapshot object plus one object per update, kept consistent by
//!   conditional puts (`If-None-Match: *` to append, `If-Match` to compact and delete).
//!
//! Both speak S3 through [`object_store`] (its `aws` client), so AWS S3, MinIO, Cloudflare R2,
//! Ceph RGW and the like all work; [`S3Config`] says where, from code or from a URL.
//!
//! ```no_run
//! use bytes::Bytes;
//! use teleportal_s3::{S3Config, S3DocumentStorage, S3FileStorage};
//! use teleportal_storage::{DocumentId, DocumentStore, VirtualStorage};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), teleportal_storage::StorageError> {
//!     // Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
//!     let config = S3Config::from_url(
//!         "s3://teleportal/prod?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true",
//!     )?;
//!     let files = S3FileStorage::new(&config)?;
//!     // One PUT per append: batch appends in front of S3.
//!     let documents = DocumentStore::new(VirtualStorage::new(S3DocumentStorage::new(&config)?));
//!     documents
//!         .append(&DocumentId::from("room/notes"), Bytes::from_static(&[0, 0]))
//!         .await?;
//!     # let _ = files;
//!     Ok(())
//! }
//! ```
//!
//! # Why this shape
//! S3 has no transactions, only single-object conditional writes. Every invariant of the
//! storage contracts is therefore pinned to one object: a file exists once its metadata object
//! does, an update once its sequence-numbered object does, and a compaction or delete once
//! the document's manifest says so. Readers check the manifest before and after reading and
//! retry when it moved. See [`S3DocumentStorage`] for the scheme and its request costs, and
//! [`S3FileStorage`] for the file layout.
//!
//! Errors are [`StorageError`](teleportal_storage::StorageError)s; the adapter's own failures
//! are `Backend { backend: "s3", .. }` with the request that failed as the source.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod config;
mod document;
mod error;
mod file;
mod keys;
mod manifest;

pub use config::S3Config;
pub use document::S3DocumentStorage;
pub use file::S3FileStorage;
/// The object store client library, at the version the stores take in `with_store`.
pub use object_store;
