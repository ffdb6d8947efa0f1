//! The example server's optional backends, each behind its facade feature: the flags are
//! always parsed, and a backend built without its feature is a clear error at startup.

use std::path::Path;
use std::sync::Arc;

use teleportal::pubsub::NodePubSub;
use teleportal::server::Server;
use teleportal::server::rpc::{FileRpc, MilestoneRpc};
use teleportal::storage::{
    DocumentStorage, DocumentStore, FileStorage, MilestoneStorage, SqliteStorage,
    TemporaryUploadStorage,
};

use crate::Error;

/// Where documents and milestones live.
pub(crate) enum Storage {
    /// The embedded default, in `--data`; closed (queued writes finished) at shutdown.
    Sqlite(Arc<SqliteStorage>),
    /// Shared by every node (`--storage postgres://…`).
    #[cfg(feature = "postgres")]
    Postgres(Arc<teleportal::postgres::PostgresStorage>),
}

impl Storage {
    /// Opens `--storage URL` (PostgreSQL, in `schema` if given), or SQLite in `data`.
    pub(crate) async fn open(
        url: Option<&str>,
        schema: Option<&str>,
        data: &Path,
    ) -> Result<Self, Error> {
        match url {
            None => Ok(Storage::Sqlite(Arc::new(SqliteStorage::open(data)?))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                #[cfg(feature = "postgres")]
                {
                    use teleportal::postgres::{PostgresConfig, PostgresStorage};
                    let mut config = PostgresConfig::from_url(url)?;
                    if let Some(schema) = schema {
                        config = config.with_schema(schema);
                    }
                    Ok(Storage::Postgres(Arc::new(
                        PostgresStorage::connect(config).await?,
                    )))
                }
                #[cfg(not(feature = "postgres"))]
                {
                    let _ = schema;
                    Err(missing_feature("postgres"))
                }
            }
            Some(url) => Err(format!("--storage {url:?}: expected postgres://…").into()),
        }
    }

    /// The embedded store, which needs closing at shutdown; `None` for server-side stores.
    pub(crate) fn into_sqlite(self) -> Option<Arc<SqliteStorage>> {
        match self {
            Storage::Sqlite(storage) => Some(storage),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => None,
        }
    }

    /// A server over this storage, answering milestone and file RPCs from it too (uploads in
    /// progress and finished files alike).
    pub(crate) fn server(&self) -> (Server, DocumentStore) {
        match self {
            Storage::Sqlite(storage) => over(storage),
            #[cfg(feature = "postgres")]
            Storage::Postgres(storage) => over(storage),
        }
    }
}

/// A server whose documents, milestones and files all live in `storage`.
fn over<S>(storage: &Arc<S>) -> (Server, DocumentStore)
where
    S: DocumentStorage + MilestoneStorage + FileStorage + TemporaryUploadStorage,
{
    let store = DocumentStore::from_arc(storage.clone());
    let server = Server::new(store.clone())
        .with_rpc(MilestoneRpc::new(storage.clone()))
        .with_rpc(FileRpc::new(storage.clone(), storage.clone()));
    (server, store)
}

/// Which bus `--pubsub URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PubSubUrl {
    /// `redis://…` (or `rediss://…`).
    Redis(String),
    /// `nats://…`: core NATS.
    Nats(String),
    /// `nats+jetstream://…`: NATS with a JetStream stream, so a restarted node replays what it
    /// missed.
    JetStream(String),
}

impl PubSubUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(PubSubUrl::Redis(url.to_owned()))
        } else if let Some(rest) = url.strip_prefix("nats+jetstream://") {
            Ok(PubSubUrl::JetStream(format!("nats://{rest}")))
        } else if url.starts_with("nats://") {
            Ok(PubSubUrl::Nats(url.to_owned()))
        } else {
            Err(
                format!("--pubsub {url:?}: expected redis://…, nats://… or nats+jetstream://…")
                    .into(),
            )
        }
    }
}

/// Connects the bus and wraps it with this node's id.
pub(crate) async fn connect_pubsub(url: &PubSubUrl, node_id: &str) -> Result<NodePubSub, Error> {
    match url {
        #[cfg(feature = "redis")]
        PubSubUrl::Redis(url) => {
            let bus = teleportal::redis::RedisPubSub::connect(url).await?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[cfg(feature = "nats")]
        PubSubUrl::Nats(url) => {
            let bus = teleportal::nats::NatsPubSub::connect(url).await?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[cfg(feature = "nats")]
        PubSubUrl::JetStream(url) => {
            let bus = teleportal::nats::NatsPubSub::jetstream(url, node_id).await?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = node_id;
            Err(missing_feature(match other {
                PubSubUrl::Redis(_) => "redis",
                PubSubUrl::Nats(_) | PubSubUrl::JetStream(_) => "nats",
            }))
        }
    }
}

fn missing_feature(feature: &str) -> Error {
    format!(
        "this server was built without the `{feature}` feature; run it with \
         `cargo run --release --features {feature} --example server -- …`"
    )
    .into()
}

/// A node id for this process when `--node-id` is not given: host name and process id.
pub(crate) fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubsub_urls_pick_the_bus() {
        assert_eq!(
            PubSubUrl::parse("redis://127.0.0.1:6379").unwrap(),
            PubSubUrl::Redis("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            PubSubUrl::parse("nats+jetstream://127.0.0.1:4222").unwrap(),
            PubSubUrl::JetStream("nats://127.0.0.1:4222".into())
        );
        assert!(PubSubUrl::parse("kafka://x").is_err());
    }
}
