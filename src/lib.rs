//! Teleportal: build production Y.js (CRDT) sync servers in Rust.
//!
//! This facade re-exports the crate family, each behind a feature:
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`core`] | `teleportal-core`: wire protocol, codecs, Merkle chunking | always |
//! | `storage` | `teleportal-storage` | `storage` |
//! | `sqlite` | `teleportal-sqlite`: `SqliteStorage`, the embedded durable default | `sqlite` |
//! | `fs` | `teleportal-fs`: `LocalFileStorage`, files as plain files (Unix) | `fs` |
//! | `pubsub` | `teleportal-pubsub` | `pubsub` |
//! | `auth` | `teleportal-auth` | `auth` |
//! | `transport` | `teleportal-transport` | `transport` |
//! | `server` | `teleportal-server` (turns on `storage` and `pubsub`) | `server` |
//! | `axum` | `teleportal-axum` (turns on `server`) | `axum` |
//! | `redis` | `teleportal-redis`: `RedisPubSub` | `redis` |
//! | `nats` | `teleportal-nats`: `NatsPubSub`, core NATS or JetStream | `nats` |
//! | `postgres` | `teleportal-postgres`: `PostgresStorage`, shared by every node | `postgres` |
//! | `s3` | `teleportal-s3`: `S3FileStorage`, `S3DocumentStorage` | `s3` |
//!
//! ```
//! use teleportal::core::{DocMessage, Message};
//!
//! let bytes = Message::doc("my-doc", DocMessage::SyncDone).to_bytes();
//! assert_eq!(Message::decode(bytes)?, Message::doc("my-doc", DocMessage::SyncDone));
//! # Ok::<(), teleportal::core::DecodeError>(())
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core as core;

#[cfg(feature = "auth")]
pub use teleportal_auth as auth;
#[cfg(feature = "axum")]
pub use teleportal_axum as axum;
#[cfg(feature = "fs")]
pub use teleportal_fs as fs;
#[cfg(feature = "nats")]
pub use teleportal_nats as nats;
#[cfg(feature = "postgres")]
pub use teleportal_postgres as postgres;
#[cfg(feature = "pubsub")]
pub use teleportal_pubsub as pubsub;
#[cfg(feature = "redis")]
pub use teleportal_redis as redis;
#[cfg(feature = "s3")]
pub use teleportal_s3 as s3;
#[cfg(feature = "server")]
pub use teleportal_server as server;
#[cfg(feature = "sqlite")]
pub use teleportal_sqlite as sqlite;
#[cfg(feature = "storage")]
pub use teleportal_storage as storage;
#[cfg(feature = "transport")]
pub use teleportal_transport as transport;

/// Compiles and runs the README's Rust examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
