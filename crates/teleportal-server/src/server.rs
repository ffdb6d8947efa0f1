//! [`Server`]: the sessions of open documents and the connections using them.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use teleportal_pubsub::{NodePubSub, document_topic};
use teleportal_storage::{DocumentId, DocumentStore};
use tokio::sync::{Notify, mpsc};

use crate::peer::{Broadcast, Closer, Peer};
use crate::rpc::{RpcHandler, RpcRegistry};
use crate::session::{self, Session};
use crate::{
    Access, AllowAll, ClientContext, CloseReason, PermissionChecker, ServerConfig, ServerError,
};

/// What every clone of a server shares.
#[derive(Debug, Default)]
struct State {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    connections: Mutex<HashMap<u64, Arc<Closer>>>,
    next_connection: AtomicU64,
    shutting_down: AtomicBool,
    /// Notified whenever a connection ends, for [`Server::shutdown`].
    connection_ended: Notify,
}

/// The sync engine: one session per open document, over a [`DocumentStore`].
///
/// Cheap to clone; clones share sessions and connections. Configure it (`with_*`) before
/// cloning: a clone keeps the configuration it was made with.
///
/// ```
/// use teleportal_server::{Server, ServerConfig};
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()))
///     .with_config(ServerConfig::default().with_send_queue(256));
/// assert!(server.open_documents().is_empty());
/// ```
#[derive(Clone)]
pub struct Server {
    store: DocumentStore,
    config: Arc<ServerConfig>,
    permissions: Arc<dyn PermissionChecker>,
    pubsub: Option<NodePubSub>,
    rpc: Arc<RpcRegistry>,
    state: Arc<State>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("pubsub", &self.pubsub)
            .field("rpc", &self.rpc)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server over `store` with the default configuration, no pub/sub and [`AllowAll`].
    pub fn new(store: DocumentStore) -> Self {
        Server {
            store,
            config: Arc::new(ServerConfig::default()),
            permissions: Arc::new(AllowAll),
            pubsub: None,
            rpc: Arc::default(),
            state: Arc::default(),
        }
    }

    /// Sets the configuration.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Sets the permission hook every incoming message passes.
    pub fn with_permissions(mut self, permissions: impl PermissionChecker) -> Self {
        self.permissions = Arc::new(permissions);
        self
    }

    /// Fans documents out to other nodes on `pubsub` (its node id must be unique on the bus).
    pub fn with_pubsub(mut self, pubsub: NodePubSub) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// Answers RPC requests for the handler's methods (see [`crate::rpc`]); a method named by
    /// an earlier handler is taken over. Methods with no handler get `501 Unknown RPC method`.
    pub fn with_rpc(mut self, handler: impl RpcHandler) -> Self {
        Arc::make_mut(&mut self.rpc).register(Arc::new(handler));
        self
    }

    /// The handler registered for an RPC method.
    pub(crate) fn rpc_handler(&self, method: &str) -> Option<Arc<dyn RpcHandler>> {
        self.rpc.get(method).cloned()
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The document store.
    pub fn store(&self) -> &DocumentStore {
        &self.store
    }

    /// The documents with a session in memory, sorted.
    pub fn open_documents(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.state.sessions).keys().cloned().collect();
        names.sort();
        names
    }

    /// Closes every connection with a reason, waits for their drivers to finish, and drops
    /// every session. Connections started afterwards are closed at once.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping it leaves the server shutting down, without waiting.
    pub async fn shutdown(&self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
        loop {
            let ended = self.state.connection_ended.notified();
            {
                let connections = lock(&self.state.connections);
                if connections.is_empty() {
                    break;
                }
                for closer in connections.values() {
                    closer.close(CloseReason::shutdown());
                }
            }
            ended.await;
        }
        lock(&self.state.sessions).clear();
    }

    pub(crate) async fn allowed(
        &self,
        client: &ClientContext,
        document: &str,
        access: Access,
    ) -> bool {
        self.permissions.check(client, document, access).await
    }

    /// Registers a new connection, or returns `None` while shutting down.
    pub(crate) fn connect(&self) -> Option<Registration> {
        if self.state.shutting_down.load(Ordering::SeqCst) {
            return None;
        }
        let id = self.state.next_connection.fetch_add(1, Ordering::Relaxed);
        let closer = Arc::new(Closer::default());
        let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
        lock(&self.state.connections).insert(id, Arc::clone(&closer));
        // Checked again after registering, so `shutdown` either sees this connection or this
        // connection sees the flag.
        if self.state.shutting_down.load(Ordering::SeqCst) {
            closer.close(CloseReason::shutdown());
        }
        Some(Registration {
            server: self.clone(),
            peer: Peer::new(id, tx, Arc::clone(&closer)),
            closer,
            queue: rx,
            sessions: HashMap::new(),
        })
    }

    /// The session with internal id `key` (clients name it `document`), opened if needed,
    /// with `peer` joined to it.
    async fn join(
        &self,
        key: &str,
        document: &str,
        peer: &Peer,
    ) -> Result<Arc<Session>, ServerError> {
        if let Some(session) = lock(&self.state.sessions).get(key) {
            session.add_peer(peer.clone());
            return Ok(Arc::clone(session));
        }
        // Subscribe before the session exists, outside the lock: anything published later
        // reaches it, and anything published earlier was stored before, so sync finds it.
        let subscription = match &self.pubsub {
            Some(pubsub) => Some(pubsub.subscribe(&document_topic(key)).await.map_err(
                |source| ServerError::PubSub {
                    document: key.to_string(),
                    source,
                },
            )?),
            None => None,
        };
        // Read after subscribing: every later append is either published to this session or
        // caught by its missed-update audit (see `audit`), which counts from here.
        let audit_from = match (&subscription, self.config.missed_update_check) {
            (Some(_), Some(_)) => {
                let meta = self.store.metadata(&DocumentId::new(key)).await;
                let meta = meta.map_err(|source| ServerError::Storage {
                    document: key.to_string(),
                    source,
                })?;
                Some(meta.map_or(0, |m| m.last_seq))
            }
            _ => None,
        };
        let mut sessions = lock(&self.state.sessions);
        // Another connection may have opened it meanwhile; then its subscription serves.
        let session = sessions
            .entry(key.to_string())
            .or_insert_with(|| {
                Session::open(
                    key,
                    document,
                    self.store.clone(),
                    self.pubsub.clone(),
                    subscription,
                    &self.config,
                    audit_from,
                )
            })
            .clone();
        session.add_peer(peer.clone());
        Ok(session)
    }

    /// Unloads `session` after the idle timeout unless someone joins it meanwhile.
    fn schedule_unload(&self, session: &Arc<Session>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let epoch = session.epoch();
        let weak = Arc::downgrade(session);
        let state = Arc::clone(&self.state);
        let timeout = self.config.idle_timeout;
        runtime.spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            // Joins happen under this lock too, so "idle" cannot change while we decide.
            let mut sessions = lock(&state.sessions);
            let current = sessions
                .get(session.name())
                .is_some_and(|s| Arc::ptr_eq(s, &session));
            if current && session.is_idle_since(epoch) {
                sessions.remove(session.name());
                tracing::debug!(document = session.name(), "unloaded idle session");
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a single map operation; the maps stay valid after a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One live connection: its queue, its sessions, and cleanup when it ends (also when the
/// driver's future is dropped).
pub(crate) struct Registration {
    pub(crate) server: Server,
    pub(crate) peer: Peer,
    pub(crate) closer: Arc<Closer>,
    pub(crate) queue: mpsc::Receiver<Arc<Broadcast>>,
    sessions: HashMap<String, Arc<Session>>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.peer.id)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The session of `document` in `client`'s namespace, joining it on first use.
    pub(crate) async fn session(
        &mut self,
        client: &ClientContext,
        document: &str,
    ) -> Result<Arc<Session>, ServerError> {
        let key = client.document_key(document);
        if let Some(session) = self.sessions.get(key.as_ref()) {
            return Ok(Arc::clone(session));
        }
        let session = self.server.join(&key, document, &self.peer).await?;
        self.sessions.insert(key.into_owned(), Arc::clone(&session));
        Ok(session)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut to_publish = Vec::new();
        for (_, session) in self.sessions.drain() {
            let (empty, messages) = session.leave(self.peer.id);
            if empty {
                self.server.schedule_unload(&session);
            }
            to_publish.extend(messages);
        }
        if !to_publish.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pubsub = self.server.pubsub.clone();
            runtime.spawn(async move {
                for message in to_publish {
                    session::publish(pubsub.as_ref(), &message.document, &message).await;
                }
            });
        }
        lock(&self.server.state.connections).remove(&self.peer.id);
        self.server.state.connection_ended.notify_waiters();
    }
}
