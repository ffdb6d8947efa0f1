//! PostgreSQL storage for Teleportal: documents, milestones, files and uploads in one database
//! that every server node shares.
//!
//! ```no_run
//! use bytes::Bytes;
//! use teleportal_postgres::{PostgresConfig, PostgresStorage};
//! use teleportal_storage::{DocumentId, DocumentStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), teleportal_storage::StorageError> {
//! let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test")?;
//! // Connects, and migrates the `teleportal` schema if it is behind.
//! let storage = PostgresStorage::connect(config).await?;
//! let store = DocumentStore::new(storage);
//! let doc = DocumentId::from("room/notes");
//! store.append(&doc, Bytes::from_static(&[0, 0])).await?; // durable once this resolves
//! let state = store.read(&doc).await?;
//! assert_eq!(state.state_vector.as_ref(), &[0]);
//! # Ok(()) }
//! ```
//!
//! # Why this shape
//! - [`PostgresStorage`] implements the storage traits of `teleportal-storage`
//!   ([`DocumentStorage`](teleportal_storage::DocumentStorage),
//!   [`MilestoneStorage`](teleportal_storage::MilestoneStorage),
//!   [`FileStorage`](teleportal_storage::FileStorage),
//!   [`TemporaryUploadStorage`](teleportal_storage::TemporaryUploadStorage)) and passes their
//!   shared conformance suites, so it drops in wherever the embedded SQLite store does, and the
//!   storage layers (batching, encryption) stack on it.
//! - It stores encoded Yjs updates as bytes and never builds a document: merging and deciding
//!   when to compact happen in [`DocumentStore`](teleportal_storage::DocumentStore).
//! - Several nodes may write one document at once: every write to a document takes that
//!   document's row lock, so appends get distinct sequence numbers and a compaction never drops
//!   an update another node appended meanwhile (see [`PostgresStorage`]).
//! - The schema ships with the crate (`migrations/*.sql`) and is applied on connect under an
//!   advisory lock, in a schema of the caller's choosing ([`PostgresConfig::with_schema`]).
//!
//! The facade crate `teleportal` re-exports this crate as `teleportal::postgres` under its
//! `postgres` feature. TLS is not built in: connections are made without it (use a local
//! socket, a private network, or a TLS-terminating proxy).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod config;
mod document;
mod file;
mod milestone;
mod schema;
mod upload;

use std::fmt;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use teleportal_storage::{BoxError, StorageError};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

pub use config::{DEFAULT_SCHEMA, PostgresConfig};
pub use schema::SCHEMA_VERSION;

/// All four storage traits in one PostgreSQL schema, through a pool of connections.
///
/// ```no_run
/// use teleportal_postgres::{PostgresConfig, PostgresStorage};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), teleportal_storage::StorageError> {
/// let url = std::env::var("DATABASE_URL").unwrap_or("postgres://postgres@127.0.0.1/test".into());
/// let config = PostgresConfig::from_url(&url)?.with_schema("collab");
/// let storage = PostgresStorage::connect(config).await?;
/// assert_eq!(storage.schema(), "collab");
/// # Ok(()) }
/// ```
///
/// # Durability
/// A write resolves `Ok` only after its transaction's `COMMIT` returned. The store leaves
/// `synchronous_commit` at the server's setting, which by default (`on`) means the commit
/// record was flushed to the write-ahead log on disk (and, where synchronous replication is
/// configured, reached the standbys it names). Connecting warns (through `tracing`) when the
/// server runs with `synchronous_commit = off`, which would let a crash lose acknowledged
/// appends.
///
/// # Several nodes, one document
/// Each document has one row in `documents` holding its counters (last sequence number,
/// snapshot position, tail size). An append updates that row first, in the same transaction
/// as it inserts the update, so it holds the row's lock until commit; `compact` and `delete`
/// lock the same row (`SELECT … FOR UPDATE`) before touching the tail. Hence:
/// - sequence numbers come from the row, one at a time, and are never reused (a deleted
///   document's row keeps its last one);
/// - the size limit is checked against the locked counters, atomically with the write;
/// - a compaction sees every append that committed before it took the lock and waits for the
///   ones in flight; it deletes exactly the updates with `seq <= upto`, which its caller
///   merged, and re-counts the tail from what is left, so an update appended by another node
///   while the caller was merging stays in the tail.
///
/// Reads (`load`, a chunk, progress) run in one `REPEATABLE READ` snapshot or one statement,
/// so they never mix two commits.
///
/// # Cancel safety
/// Dropping a future mid-write rolls its transaction back (or leaves it committed, if the
/// `COMMIT` was already sent); the caller must treat it as not acknowledged.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
    schema: String,
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("schema", &self.schema)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Builds the connection pool and, unless the configuration says otherwise, migrates the
    /// schema ([`migrate`](Self::migrate)). Either way one connection is opened, so an
    /// unreachable server fails here rather than on the first write.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), teleportal_storage::StorageError> {
    /// use teleportal_postgres::{PostgresConfig, PostgresStorage};
    ///
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test")?;
    /// let storage = PostgresStorage::connect(config).await?;
    /// # drop(storage); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] for a schema name that is not a plain identifier;
    /// [`StorageError::Backend`] when the server cannot be reached, or the schema was written
    /// by a newer build.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StorageError> {
        let pg = config.session_config()?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                // A pooled connection is reused unless it is closed; a dropped transaction
                // was already rolled back by tokio-postgres, so no check query is needed.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections())
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(pg_error)?;
        let storage = PostgresStorage {
            pool,
            schema: config.schema().to_owned(),
        };
        if config.migrate_on_connect() {
            storage.migrate().await?;
        }
        storage.warn_unless_durable().await?;
        Ok(storage)
    }

    /// Brings the schema up to [`SCHEMA_VERSION`]: creates it if missing and applies every
    /// shipped migration it lacks, in one transaction. Idempotent, and safe when several
    /// processes run it at once: they serialize on an advisory lock
    /// (`pg_advisory_xact_lock`), and the later ones find the work done.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), teleportal_storage::StorageError> {
    /// use teleportal_postgres::{PostgresConfig, PostgresStorage};
    ///
    /// // A deploy step migrates; the servers connect without migrating.
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test")?
    ///     .with_migrate_on_connect(false);
    /// PostgresStorage::connect(config).await?.migrate().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StorageError::Backend`] when a statement fails (nothing is changed then) or the
    /// schema is at a version newer than this build knows.
    ///
    /// # Cancel safety
    /// Dropping the future rolls the migration back whole.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        schema::migrate(&mut client, &self.schema).await
    }

    /// The schema the tables live in (see the example on [`PostgresStorage`]).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Closes the pool: idle connections close now, connections in use when returned, and
    /// later operations fail with [`StorageError::Backend`]. Clones share the pool, so they
    /// are closed too.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), teleportal_storage::StorageError> {
    /// use teleportal_postgres::{PostgresConfig, PostgresStorage};
    ///
    /// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test")?;
    /// let storage = PostgresStorage::connect(config).await?;
    /// storage.close();
    /// assert!(storage.migrate().await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(pg_error)
    }

    async fn warn_unless_durable(&self) -> Result<(), StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(pg_error)?;
        let setting: String = row.get(0);
        if setting == "off" {
            tracing::warn!(
                schema = %self.schema,
                "synchronous_commit is off: a crash can lose appends that were acknowledged"
            );
        }
        Ok(())
    }
}

/// Maps an error of the driver or the pool into this crate's error.
fn pg_error(error: impl Into<BoxError>) -> StorageError {
    StorageError::backend("postgres", error)
}

fn not_found(kind: &'static str, id: impl fmt::Display) -> StorageError {
    StorageError::NotFound {
        kind,
        id: id.to_string(),
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs a cached statement that returns at most one row.
async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<tokio_postgres::Row>, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query_opt(&statement, params).await.map_err(pg_error)
}

/// Runs a cached statement that returns exactly one row.
async fn query_one<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<tokio_postgres::Row, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query_one(&statement, params).await.map_err(pg_error)
}

/// Runs a cached statement, returning its rows.
async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query(&statement, params).await.map_err(pg_error)
}

/// Runs a cached statement, returning how many rows it changed.
async fn execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, StorageError> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.execute(&statement, params).await.map_err(pg_error)
}

/// A `u64` the caller chose (a size, a timestamp) as PostgreSQL's `BIGINT`, bit for bit, so
/// every value round-trips; such columns are never compared in SQL.
fn u64_to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

/// The inverse of [`u64_to_sql`].
fn u64_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

/// A count or position the store wrote (never negative) back as a `u64`.
fn count_from_sql(value: i64, what: &'static str) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::corrupt(what))
}
