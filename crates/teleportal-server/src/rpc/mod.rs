//! RPC dispatch (spec §11.3): requests reach the [`RpcHandler`] registered for their method.
//!
//! The connection checks permission first (write-class methods need
//! [`Access::Write`](crate::Access), the rest read), so a handler only sees allowed requests.
//! A handler answers with an [`RpcResponse`] (streamed parts, then the response) or an
//! [`RpcError`] (an error response with a status code); the request is ACKed after a success
//! and NACKed with the error's details after a failure. A method with no handler gets the
//! spec's `501 Unknown RPC method: <m>`.
//!
//! ```
//! use async_trait::async_trait;
//! use teleportal_server::rpc::{RpcError, RpcHandler, RpcRequest, RpcResponse};
//! use teleportal_server::Server;
//! use teleportal_storage::{DocumentStore, MemoryStorage};
//!
//! /// Answers `echo` with the request's payload.
//! struct Echo;
//!
//! #[async_trait]
//! impl RpcHandler for Echo {
//!     fn methods(&self) -> &[&'static str] {
//!         &["echo"]
//!     }
//!     async fn handle(&self, request: RpcRequest) -> Result<RpcResponse, RpcError> {
//!         Ok(RpcResponse::new(request.payload))
//!     }
//! }
//!
//! let server = Server::builder(DocumentStore::new(MemoryStorage::new())).rpc(Echo).build();
//! // Serve connections with `teleportal_server::serve`, or mount `teleportal-axum`.
//! # drop(server);
//! ```

pub(crate) mod dispatch;
mod files;
mod milestones;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use teleportal_core::Any;
use teleportal_core::RpcPayload;
use teleportal_storage::StorageError;

pub use files::FileRpc;
pub use milestones::MilestoneRpc;

use crate::ClientContext;

/// An allowed RPC request, as a handler sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcRequest {
    /// Who sent it.
    pub client: ClientContext,
    /// The document name in the envelope.
    pub document: String,
    /// The document's internal id for this client (namespace + name): what storage keys use.
    pub document_key: String,
    /// The method.
    pub method: String,
    /// The request payload (client requests start with a `method` key, §11.2).
    pub payload: Any,
    /// The envelope's `encrypted` flag: whether the payload is encrypted.
    pub encrypted: bool,
    /// For a `stream` part from the client: the id it names (for file uploads, the file id).
    pub original_request_id: Option<String>,
}

/// A handler's success: streamed parts, sent first, then the response payload.
///
/// Parts are a stream, so a handler can send a large answer (a file download) one piece at
/// a time: the connection sends each part before asking for the next, and memory holds one.
/// A part that fails ends the answer with that error instead of the response.
#[non_exhaustive]
pub struct RpcResponse {
    /// Parts sent as `stream` messages before the response, in order.
    pub parts: BoxStream<'static, Result<Any, RpcError>>,
    /// The response payload.
    pub payload: Any,
    /// Overrides the `encrypted` flag of the answer (the request's by default, §11.2).
    pub encrypted: Option<bool>,
}

impl fmt::Debug for RpcResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcResponse")
            .field("payload", &self.payload)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl RpcResponse {
    /// A plain response with no streamed parts.
    pub fn new(payload: Any) -> Self {
        RpcResponse {
            parts: stream::empty().boxed(),
            payload,
            encrypted: None,
        }
    }

    /// Sends `parts` before the response.
    #[must_use]
    pub fn with_parts(
        mut self,
        parts: impl IntoIterator<Item = Any, IntoIter: Send + 'static>,
    ) -> Self {
        self.parts = stream::iter(parts.into_iter().map(Ok)).boxed();
        self
    }

    /// Sends the parts of `parts` before the response, pulling each only once the one before
    /// was sent.
    #[must_use]
    pub fn with_part_stream(
        mut self,
        parts: impl Stream<Item = Result<Any, RpcError>> + Send + 'static,
    ) -> Self {
        self.parts = parts.boxed();
        self
    }

    /// Sets the answer's `encrypted` flag.
    #[must_use]
    pub fn with_encrypted(mut self, encrypted: bool) -> Self {
        self.encrypted = Some(encrypted);
        self
    }
}

/// A handler's failure: the error response's status code, details and optional payload.
///
/// ```
/// use teleportal_server::rpc::RpcError;
///
/// let error = RpcError::bad_request("rpc payload: missing field `milestoneId`");
/// assert_eq!(error.status_code, 400);
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status_code} {details}")]
#[non_exhaustive]
pub struct RpcError {
    /// HTTP-like status code (§11.3: 400, 403, 404, 500, 501…).
    pub status_code: u64,
    /// Human-readable details.
    pub details: String,
    /// An optional payload (e.g. `{milestoneId}` for a 404).
    pub payload: Option<Any>,
}

impl RpcError {
    /// An error with a status code and details, without payload.
    pub fn new(status_code: u64, details: impl Into<String>) -> Self {
        RpcError {
            status_code,
            details: details.into(),
            payload: None,
        }
    }

    /// Adds a payload.
    #[must_use]
    pub fn with_payload(mut self, payload: Any) -> Self {
        self.payload = Some(payload);
        self
    }

    /// 400: the request payload is not what the method expects.
    pub fn bad_request(details: impl Into<String>) -> Self {
        RpcError::new(400, details)
    }

    /// 500: the handler failed (§11.3: the exception's message, no payload).
    pub fn internal(details: impl Into<String>) -> Self {
        RpcError::new(500, details)
    }

    /// As an [`RpcPayload::Error`].
    pub fn to_payload(&self) -> RpcPayload {
        RpcPayload::Error {
            status_code: self.status_code,
            details: self.details.clone(),
            payload: self.payload.clone(),
        }
    }
}

impl From<teleportal_core::rpc::RpcPayloadError> for RpcError {
    fn from(error: teleportal_core::rpc::RpcPayloadError) -> Self {
        RpcError::bad_request(error.to_string())
    }
}

impl From<StorageError> for RpcError {
    fn from(error: StorageError) -> Self {
        RpcError::internal(error.to_string())
    }
}

/// Answers the RPC methods it names.
///
/// # Contract
/// - `methods` is fixed for the handler's life; a later registration of the same method
///   replaces an earlier one.
/// - `handle` is only called for a method in `methods`, after the permission check.
/// - A handler must not panic on any payload: bad input is an [`RpcError::bad_request`].
/// - `handle_stream` is called for client `stream` parts of the handler's methods, after the
///   same permission check as a request of that method.
#[async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// The methods this handler answers.
    fn methods(&self) -> &[&'static str];

    /// Answers one request.
    ///
    /// # Errors
    /// An [`RpcError`], sent to the client as the error response.
    async fn handle(&self, request: RpcRequest) -> Result<RpcResponse, RpcError>;

    /// Takes one `stream` part sent by the client (e.g. a file upload's chunk): the part is
    /// ACKed on `Ok`, NACKed with the error's details otherwise. By default a handler takes
    /// no streams.
    ///
    /// # Errors
    /// An [`RpcError`], whose details the NACK carries.
    async fn handle_stream(&self, part: RpcRequest) -> Result<(), RpcError> {
        Err(RpcError::new(
            501,
            format!("RPC streams are not supported for {}", part.method),
        ))
    }
}

/// The handlers of a server, by method.
#[derive(Clone, Default)]
pub(crate) struct RpcRegistry {
    handlers: HashMap<&'static str, Arc<dyn RpcHandler>>,
}

impl fmt::Debug for RpcRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<_> = self.handlers.keys().collect();
        methods.sort();
        f.debug_struct("RpcRegistry")
            .field("methods", &methods)
            .finish()
    }
}

impl RpcRegistry {
    pub(crate) fn register(&mut self, handler: Arc<dyn RpcHandler>) {
        for method in handler.methods() {
            self.handlers.insert(method, Arc::clone(&handler));
        }
    }

    pub(crate) fn get(&self, method: &str) -> Option<&Arc<dyn RpcHandler>> {
        self.handlers.get(method)
    }
}
