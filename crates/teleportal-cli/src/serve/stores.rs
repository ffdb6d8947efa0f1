//! Where documents, milestones, uploads and files live, as the storage flags say, with the
//! layers (encryption at rest, write batching) over them.

use std::path::Path;
use std::sync::Arc;

use teleportal_fs::LocalFileStorage;
use teleportal_sqlite::{DATABASE_FILE, SqliteStorage};
use teleportal_storage::batching::BatchConfig;
use teleportal_storage::encryption::KeyProvider;
use teleportal_storage::{
    DocumentStorage, EncryptedStorage, FileStorage, FileStores, StoreBundle,
    TemporaryUploadStorage, VirtualStorage,
};

use super::args::StorageArgs;
use super::keys;
use crate::{Failure, context};

/// Opens every store.
///
/// By default documents and milestones are in SQLite in `--data`, uploads and files are plain
/// files under `--data/files`; `--storage postgres://…` keeps all of it in PostgreSQL.
/// `--storage s3://…` moves documents to S3 (milestones and uploads in progress stay in
/// `--data`), and `--files s3://…` moves finished files there.
pub(super) async fn open(args: &StorageArgs) -> Result<StoreBundle, Failure> {
    let url = args.storage.as_deref();
    let postgres = url.filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let s3_documents = url.filter(|u| u.starts_with("s3://"));
    if let Some(url) = url
        && postgres.is_none()
        && s3_documents.is_none()
    {
        return Err(Failure::usage(format!(
            "--storage {url:?}: expected postgres://… or s3://… (without --storage: SQLite in --data)"
        )));
    }
    let keys = encryption_keys(args)?;
    let mut stores = match postgres {
        Some(url) => postgres_stores(url, &args.schema).await?,
        None => embedded_stores(&args.data)?,
    };
    if let Some(url) = s3_documents {
        stores.documents = s3_documents_at(url)?;
        tracing::info!(url = %super::redact(url), "documents in S3");
    }
    if let Some(url) = &args.files {
        let uploads = match stores.files.take() {
            Some(FileStores::InPlace(store)) => store as Arc<dyn TemporaryUploadStorage>,
            Some(FileStores::Split { uploads, .. }) => uploads,
            None => Arc::new(local_files(&args.data)?),
        };
        stores.files = Some(FileStores::Split {
            uploads,
            files: s3_files_at(url)?,
        });
        tracing::info!(url = %super::redact(url), "finished files in S3");
    }
    if let Some(keys) = keys {
        stores = encrypted(stores, keys);
    }
    if args.write_batching {
        let config = BatchConfig::default()
            .with_interval(args.write_batch_interval)
            .with_max_updates(args.write_batch_max_updates as usize);
        tracing::info!(
            interval = ?args.write_batch_interval,
            max_updates = args.write_batch_max_updates,
            "write batching on"
        );
        stores.documents = Arc::new(VirtualStorage::with_config(
            Arc::clone(&stores.documents),
            config,
        ));
    }
    Ok(stores)
}

/// SQLite for documents and milestones, plain files for uploads and files, in `data`.
fn embedded_stores(data: &Path) -> Result<StoreBundle, Failure> {
    let database = data.join(DATABASE_FILE);
    let existed = database.exists();
    let sqlite = SqliteStorage::open(data).map_err(context(format!(
        "cannot open the SQLite store {}",
        database.display()
    )))?;
    if existed {
        tracing::info!(path = %database.display(), "opened the existing SQLite store");
    } else {
        tracing::info!(path = %database.display(), "created a new SQLite store");
    }
    let sqlite = Arc::new(sqlite);
    let mut stores = StoreBundle::documents(Arc::clone(&sqlite));
    stores.milestones = Some(sqlite);
    stores.files = Some(FileStores::InPlace(Arc::new(local_files(data)?)));
    Ok(stores)
}

fn local_files(data: &Path) -> Result<LocalFileStorage, Failure> {
    let dir = data.join("files");
    LocalFileStorage::open(&dir).map_err(context(format!(
        "cannot open the file store {}",
        dir.display()
    )))
}

/// Every store of `stores` behind one key set. Batching (if on) goes over this, so updates
/// wait in memory in plaintext and are encrypted as they are written.
fn encrypted(stores: StoreBundle, keys: Arc<dyn KeyProvider>) -> StoreBundle {
    let mut out = StoreBundle::documents(EncryptedStorage::new(stores.documents, keys.clone()));
    out.milestones = stores
        .milestones
        .map(|m| Arc::new(EncryptedStorage::new(m, keys.clone())) as _);
    out.files = stores.files.map(|files| match files {
        FileStores::InPlace(store) => {
            FileStores::InPlace(Arc::new(EncryptedStorage::new(store, keys.clone())))
        }
        FileStores::Split { uploads, files } => FileStores::Split {
            uploads: Arc::new(EncryptedStorage::new(uploads, keys.clone())),
            files: Arc::new(EncryptedStorage::new(files, keys.clone())),
        },
    });
    out
}

fn encryption_keys(args: &StorageArgs) -> Result<Option<Arc<dyn KeyProvider>>, Failure> {
    let (text, source) = match (&args.encryption_key_file, &args.encryption_keys) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!("--encryption-key-file {}: {e}", path.display()))
            })?;
            (text, format!("--encryption-key-file {}", path.display()))
        }
        (None, Some(text)) => (text.clone(), "TELEPORTAL_ENCRYPTION_KEYS".to_owned()),
        (None, None) => return Ok(None),
    };
    let keys = keys::parse(&text).map_err(|e| Failure::usage(format!("{source}: {e}")))?;
    let ids = keys.ids();
    let current = keys
        .current_key()
        .map_err(|e| Failure::usage(format!("{source}: {e}")))?;
    tracing::info!(
        current = current.id().as_str(),
        keys = ids.len(),
        "encryption at rest on (AES-256-GCM)"
    );
    Ok(Some(Arc::new(keys)))
}

#[cfg(feature = "postgres")]
async fn postgres_stores(url: &str, schema: &str) -> Result<StoreBundle, Failure> {
    use teleportal_postgres::{PostgresConfig, PostgresStorage};
    let config = PostgresConfig::from_url(url)
        .map_err(|e| Failure::usage(format!("--storage {}: {e}", super::redact(url))))?
        .with_schema(schema);
    let storage = PostgresStorage::connect(config)
        .await
        .map_err(context(format!(
            "cannot open the PostgreSQL store {} (schema {schema})",
            super::redact(url)
        )))?;
    tracing::info!(url = %super::redact(url), schema, "opened the PostgreSQL store");
    Ok(StoreBundle::all_in(storage))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_stores(_url: &str, _schema: &str) -> Result<StoreBundle, Failure> {
    Err(super::missing_feature("postgres"))
}

#[cfg(feature = "s3")]
fn s3_documents_at(url: &str) -> Result<Arc<dyn DocumentStorage>, Failure> {
    let config = teleportal_s3::S3Config::from_url(url)
        .map_err(|e| Failure::usage(format!("--storage {}: {e}", super::redact(url))))?;
    let storage = teleportal_s3::S3DocumentStorage::new(&config).map_err(context(format!(
        "cannot open the S3 document store {}",
        super::redact(url)
    )))?;
    Ok(Arc::new(storage))
}

#[cfg(feature = "s3")]
fn s3_files_at(url: &str) -> Result<Arc<dyn FileStorage>, Failure> {
    if !url.starts_with("s3://") {
        return Err(Failure::usage(format!("--files {url:?}: expected s3://…")));
    }
    let config = teleportal_s3::S3Config::from_url(url)
        .map_err(|e| Failure::usage(format!("--files {}: {e}", super::redact(url))))?;
    let storage = teleportal_s3::S3FileStorage::new(&config).map_err(context(format!(
        "cannot open the S3 file store {}",
        super::redact(url)
    )))?;
    Ok(Arc::new(storage))
}

#[cfg(not(feature = "s3"))]
fn s3_documents_at(_url: &str) -> Result<Arc<dyn DocumentStorage>, Failure> {
    Err(super::missing_feature("s3"))
}

#[cfg(not(feature = "s3"))]
fn s3_files_at(_url: &str) -> Result<Arc<dyn FileStorage>, Failure> {
    Err(super::missing_feature("s3"))
}
