//! The engine that drives Teleportal sessions, over any transport.
//!
//! A [`Server`] keeps one session per open document — created when a client first touches the
//! document, dropped after [`ServerConfig::idle_timeout`] without clients — and never holds a
//! whole `Y.Doc`: updates go to a [`DocumentStore`](teleportal_storage::DocumentStore) as
//! encoded bytes and sync answers come from it. Transports (WebSocket, MessageArray over a
//! byte stream, HTTP) hand each connection's messages to [`serve`] (Teleportal protocol) or
//! [`serve_y_protocols`] (standard y-websocket clients); both kinds of client share sessions.
//!
//! ```
//! use futures::{SinkExt, StreamExt};
//! use teleportal_core::{Body, DocMessage, Frame, Message};
//! use teleportal_server::{ClientContext, Server, serve};
//! use teleportal_storage::{DocumentStore, MemoryStorage};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = Server::new(DocumentStore::new(MemoryStorage::new()));
//! // Any Stream of frames and Sink of frames is a transport; here, two channels.
//! let (mut to_server, incoming) = futures::channel::mpsc::unbounded::<Result<Frame, std::io::Error>>();
//! let (outgoing, mut from_server) = futures::channel::mpsc::unbounded::<Frame>();
//! let driver = tokio::spawn({
//!     let server = server.clone();
//!     async move { serve(&server, ClientContext::new("alice"), incoming, outgoing).await }
//! });
//!
//! let sync = Message::doc("notes", DocMessage::SyncStep1 { state_vector: vec![0].into() });
//! to_server.send(Ok(Frame::Message(sync))).await.unwrap();
//! // The server answers with sync-step-2 (the empty document), its sync-step-1, and an ack.
//! let Some(Frame::Message(reply)) = from_server.next().await else { panic!() };
//! assert!(matches!(reply.body, Body::Doc(DocMessage::SyncStep2(_))));
//!
//! drop(to_server);
//! assert_eq!(driver.await.unwrap().unwrap(), None); // the client left
//! # });
//! ```
//!
//! # Why this shape
//! - **Drivers are plain async functions over `Stream` + `Sink`**, so any transport (axum
//!   WebSockets, a byte stream with the MessageArray codec, test channels) reuses them, and a
//!   connection is one future with no tasks of its own.
//! - **Each client has a bounded queue.** Sessions never wait for a client: a client whose
//!   queue is full is closed with a [`CloseReason`], so one slow reader cannot stall a document
//!   or grow memory.
//! - **ACK after durability.** An update is acknowledged only after
//!   [`DocumentStore::append`](teleportal_storage::DocumentStore::append) returned, then
//!   relayed to the document's other clients and published to other nodes. A connection's
//!   consecutive updates are stored concurrently (up to 256), so the store can commit them in
//!   one group, but are acknowledged and relayed in the order they came.
//! - **Storage is Yjs V1** (the store's encoding); Teleportal clients speak V2 in content
//!   envelopes and y-websocket clients V1, so updates are converted on the way with yrs.
//!
//! # Between nodes
//! With [`ServerBuilder::pubsub`], each session subscribes to its document's topic. What a node's
//! clients send (updates once stored, awareness, presence) is published; what other nodes
//! publish is relayed to local clients and never stored again (storage is shared). When a
//! subscription lags and frames were lost, the session sends each local client the whole
//! stored document as one update: applying it is idempotent and needs no knowledge of what
//! each client has.
//!
//! # Not supported yet
//! - Content-encrypted (E2EE) documents: their doc messages are NACKed with
//!   [`E2EE_UNSUPPORTED`]; encrypted awareness is relayed.
//! - RPC: [`rpc::MilestoneRpc`] answers the milestone methods once registered with
//!   [`ServerBuilder::milestones`] and [`rpc::FileRpc`] the file methods once registered with
//!   [`ServerBuilder::files`]; key registry and attribution have no built-in handler, so they
//!   get a 501 `Unknown RPC method` error response and a NACK unless the application
//!   registers its own [`rpc::RpcHandler`] ([`ServerBuilder::rpc`]).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod audit;
mod awareness;
mod builder;
mod client;
mod config;
mod connection;
mod convert;
mod dedup;
mod error;
mod health;
mod id_hashing;
pub mod layer;
mod metrics;
mod peer;
mod permission;
pub mod rpc;
mod server;
mod session;
mod y_protocols;

/// The attribute [`PermissionChecker`] and [`rpc::RpcHandler`] are implemented with.
pub use async_trait::async_trait;
pub use builder::ServerBuilder;
pub use client::{ClientContext, CloseReason};
pub use config::{RelayMode, ServerConfig};
pub use connection::{E2EE_UNSUPPORTED, ENCRYPTION_MISMATCH, permission_denied_reason, serve};
pub use error::{BoxError, ServerError, ShutdownError};
pub use health::{Readiness, ServerStatus};
pub use permission::{Access, AllowAll, PermissionChecker};
/// The metrics library [`ServerBuilder::metrics`] registers in.
pub use prometheus_client;
pub use server::Server;
pub use teleportal_core::{Frame, Message, YMessage};
pub use y_protocols::serve_y_protocols;
