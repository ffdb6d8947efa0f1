//! Where Teleportal documents and files live.
//!
//! This crate will hold the storage traits (`DocumentStorage`, `FileStorage`,
//! `MilestoneStorage`, `TemporaryUploadStorage`), an in-memory implementation, an embedded
//! durable default, write batching, encryption at rest and the conformance suite every backend
//! runs (see the storage issue). Documents are kept as encoded Yjs updates, never as a whole
//! `Y.Doc`. For now it re-exports the wire types storage works with.
//!
//! ```
//! use teleportal_storage::ContentEnvelope;
//! assert!(ContentEnvelope::default().sidecars.is_empty());
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core::{ContentEnvelope, milestone};
