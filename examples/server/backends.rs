//! The example server's optional backends, each behind its facade feature: the flags are
//! always parsed, and a backend built without its feature is a clear error at startup.

use std::path::Path;
use std::sync::Arc;

use teleportal::fs::LocalFileStorage;
use teleportal::pubsub::NodePubSub;
use teleportal::server::Server;
use teleportal::sqlite::SqliteStorage;
use teleportal::storage::{
    DocumentStorage, FileStorage, FileStores, StoreBundle, TemporaryUploadStorage,
};

use crate::Error;

/// Opens where documents, milestones, uploads and files live, as the flags say.
///
/// By default documents and milestones are in SQLite in `--data`, uploads and files are plain
/// files under `--data/files` ([`LocalFileStorage`]); `--storage postgres://…` keeps all of it
/// in PostgreSQL. `--storage s3://…` moves documents to S3 (milestones and uploads in progress
/// stay in `--data`), and `--files s3://…` moves finished files there.
pub(crate) async fn open_stores(
    storage: Option<&str>,
    schema: Option<&str>,
    files: Option<&str>,
    data: &Path,
) -> Result<StoreBundle, Error> {
    let postgres =
        storage.filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let s3_documents = storage.filter(|u| u.starts_with("s3://"));
    if let Some(url) = storage
        && postgres.is_none()
        && s3_documents.is_none()
    {
        return Err(format!("--storage {url:?}: expected postgres://… or s3://…").into());
    }
    let mut stores = match postgres {
        Some(url) => postgres_stores(url, schema).await?,
        None => {
            let sqlite = Arc::new(SqliteStorage::open(data)?);
            let mut stores = StoreBundle::documents(sqlite.clone());
            stores.milestones = Some(sqlite);
            let local = LocalFileStorage::open(data.join("files"))?;
            stores.files = Some(FileStores::InPlace(Arc::new(local)));
            stores
        }
    };
    if let Some(url) = s3_documents {
        stores.documents = s3_documents_at(url)?;
    }
    if let Some(url) = files {
        let uploads = match stores.files.take() {
            Some(FileStores::InPlace(store)) => store as Arc<dyn TemporaryUploadStorage>,
            Some(FileStores::Split { uploads, .. }) => uploads,
            None => Arc::new(LocalFileStorage::open(data.join("files"))?),
        };
        stores.files = Some(FileStores::Split {
            uploads,
            files: s3_files_at(url)?,
        });
    }
    Ok(stores)
}

#[cfg(feature = "postgres")]
async fn postgres_stores(url: &str, schema: Option<&str>) -> Result<StoreBundle, Error> {
    use teleportal::postgres::{PostgresConfig, PostgresStorage};
    let mut config = PostgresConfig::from_url(url)?;
    if let Some(schema) = schema {
        config = config.with_schema(schema);
    }
    Ok(StoreBundle::all_in(PostgresStorage::connect(config).await?))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_stores(_url: &str, _schema: Option<&str>) -> Result<StoreBundle, Error> {
    Err(missing_feature("postgres"))
}

/// A server over `stores`, answering milestone and file RPCs too; it closes every store when
/// it shuts down.
pub(crate) fn server(stores: StoreBundle, pubsub: Option<NodePubSub>) -> Server {
    let builder = Server::builder(stores.document_store()).stores(stores);
    match pubsub {
        Some(pubsub) => builder.pubsub(pubsub),
        None => builder,
    }
    .build()
}

#[cfg(feature = "s3")]
fn s3_documents_at(url: &str) -> Result<Arc<dyn DocumentStorage>, Error> {
    let config = teleportal::s3::S3Config::from_url(url)?;
    Ok(Arc::new(teleportal::s3::S3DocumentStorage::new(&config)?))
}

#[cfg(feature = "s3")]
fn s3_files_at(url: &str) -> Result<Arc<dyn FileStorage>, Error> {
    if !url.starts_with("s3://") {
        return Err(format!("--files {url:?}: expected s3://…").into());
    }
    let config = teleportal::s3::S3Config::from_url(url)?;
    Ok(Arc::new(teleportal::s3::S3FileStorage::new(&config)?))
}

#[cfg(not(feature = "s3"))]
fn s3_documents_at(_url: &str) -> Result<Arc<dyn DocumentStorage>, Error> {
    Err(missing_feature("s3"))
}

#[cfg(not(feature = "s3"))]
fn s3_files_at(_url: &str) -> Result<Arc<dyn FileStorage>, Error> {
    Err(missing_feature("s3"))
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
