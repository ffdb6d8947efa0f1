//! [`Server`]: the sessions of open documents and the connections using them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use teleportal_pubsub::{NodePubSub, document_topic};
use teleportal_storage::{DocumentId, DocumentStore, TemporaryUploadStorage};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builder::{ServerBuilder, StoreCloser};
use crate::metrics::ServerMetrics;
use crate::peer::{Broadcast, Closer, Peer};
use crate::rpc::{RpcHandler, RpcRegistry};
use crate::session::{self, Session};
use crate::{
    Access, ClientContext, CloseReason, PermissionChecker, ServerConfig, ServerError, ShutdownError,
};

/// The least time [`Server::shutdown`] gives background tasks to end once cancelled, even
/// when the connections took the whole deadline.
const TASK_GRACE: Duration = Duration::from_secs(1);

/// What every clone of a server shares.
#[derive(Debug, Default)]
struct State {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    connections: Mutex<HashMap<u64, Arc<Closer>>>,
    next_connection: AtomicU64,
    shutting_down: AtomicBool,
    /// Notified whenever a connection ends, for [`Server::shutdown`].
    connection_ended: Notify,
    /// Background work: idle unloads, pub/sub relays and publications, upload expiry.
    /// [`Server::shutdown`] waits for it.
    tasks: TaskTracker,
    /// Cancelled by [`Server::shutdown`]: background loops end, and connections still
    /// finishing their appends after the deadline stop.
    stop: CancellationToken,
    /// Whether the background work that runs for the server's life has been started.
    background_started: AtomicBool,
    /// Counted whether or not a registry exposes them.
    metrics: ServerMetrics,
}

/// The sync engine: one session per open document, over a [`DocumentStore`].
///
/// Assembled once with [`Server::builder`] (or [`Server::new`] for the defaults), then
/// immutable; cheap to clone, and clones share sessions, connections and background tasks.
/// The server owns its background work and its shutdown ([`Server::shutdown`]).
///
/// ```
/// use teleportal_server::{Server, ServerConfig};
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
///     .config(ServerConfig::default().with_send_queue(256))
///     .build();
/// assert!(server.open_documents().is_empty());
/// ```
#[derive(Clone)]
pub struct Server {
    store: DocumentStore,
    config: Arc<ServerConfig>,
    permissions: Arc<dyn PermissionChecker>,
    pubsub: Option<NodePubSub>,
    rpc: Arc<RpcRegistry>,
    /// The stores besides the document store, closed at shutdown after it.
    closers: Arc<[StoreCloser]>,
    /// The upload store, whose abandoned uploads expire in the background.
    uploads: Option<Arc<dyn TemporaryUploadStorage>>,
    state: Arc<State>,
    /// When the server was built, for its uptime.
    started: std::time::Instant,
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
    /// A server over `store` with the defaults: [`ServerConfig::default`], no pub/sub,
    /// [`AllowAll`](crate::AllowAll), no milestones or files. Short for
    /// `Server::builder(store).build()`.
    pub fn new(store: DocumentStore) -> Self {
        Self::builder(store).build()
    }

    /// Starts assembling a server over `store`: see [`ServerBuilder`].
    pub fn builder(store: DocumentStore) -> ServerBuilder {
        ServerBuilder::new(store)
    }

    pub(crate) fn assemble(built: ServerBuilder) -> Self {
        let server = Server {
            store: built.store,
            config: Arc::new(built.config),
            permissions: built.permissions,
            pubsub: built.pubsub,
            rpc: Arc::new(built.rpc),
            closers: built.closers.into(),
            uploads: built.uploads,
            state: Arc::new(State {
                metrics: built.metrics,
                ..State::default()
            }),
            started: std::time::Instant::now(),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            server.start_background();
        }
        server
    }

    /// Starts the work that runs for the server's life (upload expiry), once.
    fn start_background(&self) {
        if self.state.background_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (Some(uploads), Some(max_age)) = (&self.uploads, self.config.upload_max_age) else {
            return;
        };
        let uploads = Arc::clone(uploads);
        let every = self
            .config
            .upload_expiry_check
            .max(Duration::from_millis(1));
        let stop = self.state.stop.clone();
        self.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let before = SystemTime::now()
                    .checked_sub(max_age)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                match uploads.expire(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "removed abandoned uploads"),
                    Err(error) => tracing::warn!(error = %teleportal_core::ErrorChain::new(&error), "upload expiry failed; will retry"),
                }
            }
        });
    }

    /// Runs `task` as the server's background work, which [`shutdown`](Self::shutdown)
    /// waits for. Needs a tokio runtime.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.state.tasks.spawn(task);
    }

    /// Cancelled when shutdown stops the background work.
    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.state.stop
    }

    /// The task tracker background work of sessions runs under.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.state.tasks
    }

    /// The engine's metrics.
    pub(crate) fn metrics(&self) -> &ServerMetrics {
        &self.state.metrics
    }

    /// When the server was built.
    pub(crate) fn started(&self) -> std::time::Instant {
        self.started
    }

    /// How many connections are being served.
    pub(crate) fn connection_count(&self) -> usize {
        lock(&self.state.connections).len()
    }

    /// The pub/sub bus, if the server has one.
    pub(crate) fn pubsub(&self) -> Option<&NodePubSub> {
        self.pubsub.as_ref()
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

    /// Stops the server gracefully, within `deadline`:
    ///
    /// 1. new connections are refused (closed at once with the shutdown reason);
    /// 2. every connection is asked to close: a Teleportal connection first finishes the
    ///    updates it is storing and sends their ACKs, then each gets a close with the reason
    ///    `server is shutting down`; y-websocket connections finish the update in hand;
    /// 3. background work (idle unloads, pub/sub relays, upload expiry) is cancelled and
    ///    waited for, given at least one second even when the connections took the deadline;
    /// 4. sessions are dropped, then the document store closes (running compactions finish,
    ///    then [`DocumentStorage::close`](teleportal_storage::DocumentStorage::close): batching
    ///    layers flush, SQLite finishes its queue), then the milestone, file and upload stores.
    ///
    /// Stores are closed even when the deadline passed; connections still open then are cut
    /// off from it (their unacknowledged updates may be refused, never half-applied). Calling
    /// it again returns quickly.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use teleportal_server::Server;
    /// use teleportal_storage::{DocumentStore, MemoryStorage};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    /// // ... serve connections until a signal, then:
    /// server.shutdown(Duration::from_secs(10)).await?;
    /// # Ok::<(), teleportal_server::ShutdownError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`ShutdownError::DeadlineExceeded`] when connections or tasks were still running at the
    /// deadline (the stores were closed anyway), else [`ShutdownError::Close`] for the first
    /// store that failed to close.
    ///
    /// # Cancel safety
    /// Dropping it leaves the server refusing connections, with the steps done so far.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), ShutdownError> {
        let until = tokio::time::Instant::now() + deadline;
        self.state.shutting_down.store(true, Ordering::SeqCst);
        let drained = tokio::time::timeout_at(until, self.close_connections())
            .await
            .is_ok();
        self.state.stop.cancel();
        self.state.tasks.close();
        let grace = until.max(tokio::time::Instant::now() + TASK_GRACE);
        let tasks_ended = tokio::time::timeout_at(grace, self.state.tasks.wait())
            .await
            .is_ok();
        let connections = lock(&self.state.connections).len();
        let tasks = self.state.tasks.len();
        lock(&self.state.sessions).clear();
        self.state.metrics.sessions(0);
        let mut closed = self
            .store
            .close()
            .await
            .map_err(|source| ShutdownError::Close {
                store: "document",
                source,
            });
        for closer in self.closers.iter() {
            let result = (closer.close)().await;
            if let Err(source) = result
                && closed.is_ok()
            {
                closed = Err(ShutdownError::Close {
                    store: closer.what,
                    source,
                });
            }
        }
        if !drained || !tasks_ended {
            return Err(ShutdownError::DeadlineExceeded { connections, tasks });
        }
        closed
    }

    /// Asks every connection to close and waits until all have ended.
    async fn close_connections(&self) {
        loop {
            let ended = self.state.connection_ended.notified();
            {
                let connections = lock(&self.state.connections);
                if connections.is_empty() {
                    return;
                }
                for closer in connections.values() {
                    closer.close(CloseReason::ShuttingDown);
                }
            }
            ended.await;
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.state.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) async fn allowed(
        &self,
        client: &ClientContext,
        document: &str,
        access: Access,
    ) -> bool {
        if !self.permissions.check(client, document, access).await {
            return false;
        }
        match &client.permissions {
            Some(own) => own.check(client, document, access).await,
            None => true,
        }
    }

    /// Registers a new connection, or returns `None` while shutting down.
    pub(crate) fn connect(&self) -> Option<Registration> {
        if self.state.shutting_down.load(Ordering::SeqCst) {
            return None;
        }
        self.start_background();
        let id = self.state.next_connection.fetch_add(1, Ordering::Relaxed);
        let closer = Arc::new(Closer::default());
        let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
        lock(&self.state.connections).insert(id, Arc::clone(&closer));
        self.state.metrics.client_connected();
        // Checked again after registering, so `shutdown` either sees this connection or this
        // connection sees the flag.
        if self.state.shutting_down.load(Ordering::SeqCst) {
            closer.close(CloseReason::ShuttingDown);
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
                self.state.metrics.document_opened();
                Session::open(key, document, self, subscription, audit_from)
            })
            .clone();
        self.state.metrics.sessions(sessions.len());
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
        let stop = self.state.stop.clone();
        self.state.tasks.spawn_on(
            async move {
                tokio::select! {
                    // Shutdown drops every session itself.
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(timeout) => {}
                }
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
                    state.metrics.sessions(sessions.len());
                    tracing::debug!(document = session.name(), "unloaded idle session");
                }
            },
            &runtime,
        );
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
        self.server.state.metrics.client_disconnected();
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
            self.server.state.tasks.spawn_on(
                async move {
                    for message in to_publish {
                        session::publish(pubsub.as_ref(), &message.document, &message).await;
                    }
                },
                &runtime,
            );
        }
        lock(&self.server.state.connections).remove(&self.peer.id);
        self.server.state.connection_ended.notify_waiters();
    }
}
