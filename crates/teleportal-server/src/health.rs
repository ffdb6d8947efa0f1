//! Whether this node should get new connections ([`Server::readiness`]) and what it holds
//! now ([`Server::status`]), for load balancers and operators.

use std::time::Duration;

use teleportal_storage::DocumentId;

use crate::Server;

/// The document the storage probe reads. Only its metadata is read, so a client document of
/// the same name is harmless. Plain text: PostgreSQL refuses a NUL in a text column.
const PROBE_DOCUMENT: &str = ".teleportal/readiness-probe";

/// What [`Server::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether new connections should come here: not shutting down, and the storage answered.
    pub ready: bool,
    /// [`Server::shutdown`] has begun: connections are draining, new ones are refused.
    pub shutting_down: bool,
    /// `None` when the document storage answered a cheap read in time, else why not.
    pub storage_error: Option<String>,
}

/// A snapshot of what a server holds, cheap to take.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStatus {
    /// Connections being served, both protocols.
    pub connections: usize,
    /// Documents with a session in memory.
    pub open_documents: usize,
    /// [`Server::shutdown`] has begun.
    pub shutting_down: bool,
    /// This node's id on the pub/sub bus, if it has one.
    pub node_id: Option<String>,
    /// Time since the server was built.
    pub uptime: Duration,
    /// Messages received from clients since then, by type (`doc`, `awareness`, `ack`, `rpc`,
    /// `presence`, `ping`, `other`; y-websocket sync messages count as `doc`).
    pub messages: Vec<(&'static str, u64)>,
}

impl Server {
    /// Asks the document storage for a document's metadata (a cheap read every backend
    /// answers: a query, a HEAD request) and reports whether this node is ready: it is not
    /// while shutting down, nor when the storage failed or took longer than `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use teleportal_server::Server;
    /// use teleportal_storage::{DocumentStore, MemoryStorage};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    /// assert!(server.readiness(Duration::from_secs(2)).await.ready);
    /// server.shutdown(Duration::from_secs(1)).await.unwrap();
    /// let draining = server.readiness(Duration::from_secs(2)).await;
    /// assert!(!draining.ready && draining.shutting_down);
    /// # });
    /// ```
    pub async fn readiness(&self, timeout: Duration) -> Readiness {
        let shutting_down = self.is_shutting_down();
        let storage_error = if shutting_down {
            // The stores may be closed already; a draining node is not ready either way.
            None
        } else {
            let probe = DocumentId::from(PROBE_DOCUMENT);
            match tokio::time::timeout(timeout, self.store().storage().metadata(&probe)).await {
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(teleportal_core::ErrorChain::new(&error).to_string()),
                Err(_) => Some(format!("no answer within {timeout:?}")),
            }
        };
        Readiness {
            ready: !shutting_down && storage_error.is_none(),
            shutting_down,
            storage_error,
        }
    }

    /// What the server holds now.
    ///
    /// ```
    /// use teleportal_server::Server;
    /// use teleportal_storage::{DocumentStore, MemoryStorage};
    ///
    /// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    /// let status = server.status();
    /// assert_eq!((status.connections, status.open_documents), (0, 0));
    /// assert_eq!(status.node_id, None);
    /// assert!(status.messages.iter().all(|&(_, n)| n == 0));
    /// ```
    pub fn status(&self) -> ServerStatus {
        ServerStatus {
            connections: self.connection_count(),
            open_documents: self.open_documents().len(),
            shutting_down: self.is_shutting_down(),
            node_id: self.pubsub().map(|bus| bus.node_id().to_owned()),
            uptime: self.started().elapsed(),
            messages: self.metrics().message_counts(),
        }
    }
}
