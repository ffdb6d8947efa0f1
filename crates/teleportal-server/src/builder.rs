//! [`ServerBuilder`]: assembles a [`Server`] from its stores, hooks and settings.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use teleportal_pubsub::NodePubSub;
use teleportal_storage::{
    DocumentStorage, DocumentStore, FileStorage, FileStores, MilestoneStorage, StorageError,
    StoreBundle, TemporaryUploadStorage,
};

use crate::metrics::{MeteredStorage, ServerMetrics};
use crate::rpc::{FileRpc, MilestoneRpc, RpcHandler, RpcRegistry};
use crate::{AllowAll, PermissionChecker, Server, ServerConfig};

/// Closes one store at shutdown; named for the error it reports.
pub(crate) struct StoreCloser {
    pub(crate) what: &'static str,
    pub(crate) close: Box<dyn Fn() -> BoxFuture<'static, Result<(), StorageError>> + Send + Sync>,
}

impl fmt::Debug for StoreCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

/// Everything a server is made of, before it serves. Made by [`Server::builder`].
///
/// Each setting has a default: [`ServerConfig::default`], [`AllowAll`], no pub/sub (one
/// node), no milestones or files (their RPC methods answer `501 Unknown RPC method`).
///
/// ```
/// use std::sync::Arc;
///
/// use teleportal_server::rpc::FileRpc;
/// use teleportal_server::{Server, ServerConfig};
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// // One backend keeps documents, milestones, files and uploads.
/// let storage = Arc::new(MemoryStorage::new());
/// let server = Server::builder(DocumentStore::new(storage.clone()))
///     .milestones(storage.clone())
///     .files(FileRpc::in_store(storage))
///     .config(ServerConfig::default().with_send_queue(256))
///     .build();
/// assert_eq!(server.config().send_queue, 256);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ServerBuilder {
    pub(crate) store: DocumentStore,
    pub(crate) config: ServerConfig,
    pub(crate) permissions: Arc<dyn PermissionChecker>,
    pub(crate) pubsub: Option<NodePubSub>,
    pub(crate) rpc: RpcRegistry,
    pub(crate) closers: Vec<StoreCloser>,
    pub(crate) uploads: Option<Arc<dyn TemporaryUploadStorage>>,
    pub(crate) metrics: ServerMetrics,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("pubsub", &self.pubsub)
            .field("rpc", &self.rpc)
            .field("closes", &self.closers)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    pub(crate) fn new(store: DocumentStore) -> Self {
        ServerBuilder {
            store,
            config: ServerConfig::default(),
            permissions: Arc::new(AllowAll),
            pubsub: None,
            rpc: RpcRegistry::default(),
            closers: Vec::new(),
            uploads: None,
            metrics: ServerMetrics::default(),
        }
    }

    /// Sets the configuration (default [`ServerConfig::default`]).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the permission hook every incoming message passes (default [`AllowAll`]).
    pub fn permissions(mut self, permissions: impl PermissionChecker) -> Self {
        self.permissions = Arc::new(permissions);
        self
    }

    /// Registers the engine's metrics in `registry` (under the `teleportal_` prefix), so the
    /// application serves them with its own: active clients and sessions, documents opened,
    /// messages by type, connections closed by reason, and the document storage's operations
    /// (counted and timed by a decorator this puts around the store's backend), size warnings
    /// and refusals past the size limit. Without it they are counted but not exposed. Call it
    /// after the store's size limits are set.
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// use teleportal_server::Server;
    /// use teleportal_storage::{DocumentStore, MemoryStorage};
    ///
    /// let mut registry = Registry::default();
    /// let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
    ///     .metrics(&mut registry)
    ///     .build();
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains("teleportal_clients_active 0"));
    /// # drop(server);
    /// ```
    pub fn metrics(mut self, registry: &mut Registry) -> Self {
        let (metrics, storage) = ServerMetrics::registered(registry);
        let warn_at = self.store.size_limits().warn_at;
        self.store = self.store.map_storage(|inner| {
            Arc::new(MeteredStorage::new(inner, storage, warn_at)) as Arc<dyn DocumentStorage>
        });
        self.metrics = metrics;
        self
    }

    /// Fans documents out to other nodes on `pubsub` (its node id must be unique on the bus).
    pub fn pubsub(mut self, pubsub: NodePubSub) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// Answers the milestone RPC methods from `storage` ([`MilestoneRpc`]), and closes it at
    /// shutdown.
    pub fn milestones<M: MilestoneStorage>(mut self, storage: M) -> Self {
        let rpc = MilestoneRpc::new(storage);
        let storage = rpc.storage();
        self.closers.push(StoreCloser {
            what: "milestone",
            close: Box::new(move || {
                let storage = Arc::clone(&storage);
                Box::pin(async move { storage.close().await })
            }),
        });
        self.rpc(rpc)
    }

    /// Answers file uploads and downloads ([`FileRpc`]: files in the document store with
    /// [`FileRpc::in_store`], or split file and upload stores with [`FileRpc::new`]). Uploads
    /// abandoned for [`ServerConfig::upload_max_age`] are removed in the background; both
    /// stores are closed at shutdown.
    pub fn files<F: FileStorage, U: TemporaryUploadStorage>(
        mut self,
        files: FileRpc<F, U>,
    ) -> Self {
        let (file_store, uploads) = files.stores();
        self.closers.push(StoreCloser {
            what: "file",
            close: Box::new(move || {
                let files = Arc::clone(&file_store);
                Box::pin(async move { files.close().await })
            }),
        });
        let upload_store = Arc::clone(&uploads);
        self.closers.push(StoreCloser {
            what: "upload",
            close: Box::new(move || {
                let uploads = Arc::clone(&upload_store);
                Box::pin(async move { uploads.close().await })
            }),
        });
        self.uploads = Some(uploads);
        self.rpc(files)
    }

    /// Takes the milestone and file stores of `stores` (see [`milestones`](Self::milestones)
    /// and [`files`](Self::files)); its documents are the ones given to
    /// [`Server::builder`](crate::Server::builder), usually `stores.document_store()`.
    ///
    /// ```
    /// use teleportal_server::Server;
    /// use teleportal_storage::{MemoryStorage, StoreBundle};
    ///
    /// let stores = StoreBundle::all_in(MemoryStorage::new());
    /// let server = Server::builder(stores.document_store()).stores(stores).build();
    /// # drop(server);
    /// ```
    pub fn stores(self, stores: StoreBundle) -> Self {
        let with_milestones = match stores.milestones {
            Some(milestones) => self.milestones(milestones),
            None => self,
        };
        match stores.files {
            Some(FileStores::InPlace(store)) => with_milestones.files(FileRpc::in_store(store)),
            Some(FileStores::Split { uploads, files }) => {
                with_milestones.files(FileRpc::new(files, uploads))
            }
            None => with_milestones,
        }
    }

    /// Answers RPC requests for the handler's methods (see [`crate::rpc`]); a method named by
    /// an earlier handler is taken over.
    pub fn rpc(mut self, handler: impl RpcHandler) -> Self {
        self.rpc.register(Arc::new(handler));
        self
    }

    /// The server. Its background work (upload expiry) starts now when called inside a tokio
    /// runtime, otherwise with the first connection.
    pub fn build(self) -> Server {
        Server::assemble(self)
    }
}
