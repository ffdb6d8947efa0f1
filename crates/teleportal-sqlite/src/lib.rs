//! The embedded durable store for Teleportal: [`SqliteStorage`], one SQLite database (bundled,
//! WAL) in a data directory, with group commit.
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_sqlite::SqliteStorage;
//! use teleportal_storage::{DocumentId, DocumentStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let store = DocumentStore::new(SqliteStorage::open(dir.path())?);
//! let doc = DocumentId::from("room/notes");
//! store.append(&doc, Bytes::from_static(&[0, 0])).await?; // durable once this resolves
//! let state = store.read(&doc).await?;
//! assert_eq!(state.state_vector.as_ref(), &[0]); // nothing from any client yet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Why this shape
//! - [`SqliteStorage`] implements all four storage traits of `teleportal-storage`
//!   ([`DocumentStorage`](teleportal_storage::DocumentStorage),
//!   [`MilestoneStorage`](teleportal_storage::MilestoneStorage),
//!   [`FileStorage`](teleportal_storage::FileStorage),
//!   [`TemporaryUploadStorage`](teleportal_storage::TemporaryUploadStorage), plus
//!   [`FinishUpload`](teleportal_storage::FinishUpload)) and passes their conformance suites,
//!   so the storage layers (batching, encryption) stack on it.
//! - It is a crate of its own so that only what uses it compiles SQLite: the engine and the
//!   PostgreSQL and S3 adapters depend on `teleportal-storage` alone.
//! - Nothing to install or run: rusqlite's `bundled` feature compiles SQLite in, and a data
//!   directory is the whole deployment.
//!
//! The facade crate `teleportal` re-exports this crate as `teleportal::sqlite` under its
//! `sqlite` feature (on by default).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod document;
mod file;
mod milestone;
mod schema;
mod upload;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use teleportal_storage::StorageError;
use tokio::sync::{mpsc, oneshot};

use writer::{Job, Pending};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "teleportal.sqlite3";

/// How long a connection waits for a lock another process holds before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tuning for [`SqliteStorage`]; the defaults suit a server.
///
/// ```
/// use teleportal_sqlite::SqliteConfig;
///
/// let config = SqliteConfig::default().with_max_batch(256).with_read_connections(8);
/// assert_eq!(config.max_batch(), 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteConfig {
    max_batch: usize,
    queue_capacity: usize,
    read_connections: usize,
}

impl Default for SqliteConfig {
    /// Up to 1,024 writes per transaction, 4,096 queued writes, 4 idle read connections.
    fn default() -> Self {
        SqliteConfig {
            max_batch: 1024,
            queue_capacity: 4096,
            read_connections: 4,
        }
    }
}

impl SqliteConfig {
    /// The most writes one transaction (one fsync) takes. More writes per fsync raise
    /// throughput; fewer bound how long one commit holds the writer. At least 1.
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// How many writes may wait for the writer thread before callers wait to enqueue
    /// (backpressure, without blocking the runtime). At least 1.
    pub fn with_queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity.max(1);
        self
    }

    /// How many read connections are kept open between reads. More concurrent reads open
    /// extra connections, closed when done.
    pub fn with_read_connections(mut self, read_connections: usize) -> Self {
        self.read_connections = read_connections;
        self
    }

    /// The most writes one transaction takes.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// How many writes may be queued.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// How many idle read connections are kept.
    pub fn read_connections(&self) -> usize {
        self.read_connections
    }
}

/// All four storage traits in one SQLite database: the embedded durable default.
///
/// The data directory holds one database file, [`DATABASE_FILE`], plus SQLite's `-wal` and
/// `-shm` files while it is open. Copy the directory only while the store is closed; while
/// it is open, use SQLite's online backup (`sqlite3 teleportal.sqlite3 ".backup copy"`).
///
/// ```
/// use bytes::Bytes;
/// use teleportal_sqlite::SqliteStorage;
/// use teleportal_storage::{AppendOptions, DocumentId, DocumentStorage};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let doc = DocumentId::from("room/notes");
/// let storage = SqliteStorage::open(dir.path())?;
/// let receipt = storage.append(&doc, Bytes::from_static(&[0, 0]), AppendOptions::default()).await?;
/// assert_eq!(receipt.seq, 1);
/// storage.close().await?;
///
/// // Everything acknowledged is there after a reopen.
/// let storage = SqliteStorage::open(dir.path())?;
/// assert_eq!(storage.load(&doc).await?.tail.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Durability
/// A write (an append, a file, a milestone, an upload chunk, a compaction or delete) resolves
/// `Ok` only after the transaction holding it committed with `synchronous=FULL` in WAL mode:
/// its frames were appended to the write-ahead log and the log was fsync'd. A crash or power
/// loss after that keeps it (given a disk that honours fsync); SQLite's WAL recovery on the
/// next open discards any half-written transaction, so a crash never leaves a partial write.
///
/// # Group commit
/// One writer thread owns the only write connection. Writes are queued to it (a bounded
/// queue: when full, callers wait asynchronously); it takes everything queued, up to
/// [`SqliteConfig::with_max_batch`] writes, into **one** transaction and commits it with one
/// fsync, so concurrent writers share it. A second thread then wakes the group's callers
/// while the writer already runs the next group, which queued up during the fsync: throughput
/// grows with concurrency instead of being capped at one write per fsync. Each write runs in
/// its own savepoint: one that fails (a size limit, a duplicate milestone) is rolled back
/// alone and the rest of its group commits. Size limits are checked inside the transaction,
/// so they are atomic with the write. If the transaction itself fails, every write of the
/// group gets the error and none of them is stored.
///
/// Reads run on a small pool of read connections through `spawn_blocking` (inline when no
/// tokio runtime is running); WAL gives each read a consistent snapshot and never blocks the
/// writer. No SQLite call runs on an async worker thread.
///
/// # Closing
/// [`close`](SqliteStorage::close) (or dropping the store, which blocks briefly) lets the
/// writer finish every queued write, then closes the database.
pub struct SqliteStorage {
    /// The writer's queue; taken (so the queue ends) when the store closes. Behind a lock so
    /// that `close` works through a shared reference, as the storage traits' `close` needs.
    writer: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<JoinHandle<rusqlite::Result<()>>>>,
    readers: Arc<ReadPool>,
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the store in the data directory `dir`, with the default
    /// [`SqliteConfig`]. Blocks while it opens the database and migrates its schema.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A fresh, empty store, e.g. for a test:
    /// let storage = teleportal_sqlite::SqliteStorage::open(tempfile::tempdir()?.keep())?;
    /// # drop(storage);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the directory cannot be created, the database cannot be
    /// opened, or it was written by a newer schema version.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(dir, SqliteConfig::default())
    }

    /// [`open`](Self::open) with a configuration.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, StorageError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| StorageError::backend("sqlite", e))?;
        let path = dir.join(DATABASE_FILE);
        let mut conn = Connection::open(&path).map_err(sql)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let readers = Arc::new(ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle: config.read_connections,
        });
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let thread = writer::spawn(conn, rx, config.max_batch)
            .map_err(|e| StorageError::backend("sqlite", e))?;
        Ok(SqliteStorage {
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.readers.path
    }

    /// Finishes every queued write, then closes the database. Later writes fail with
    /// [`StorageError::ShutDown`]; reads still work (on their own connections). Closing again
    /// returns `Ok` at once. The storage traits' `close` methods call this.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when SQLite failed to close cleanly (every write acknowledged
    /// before stays durable regardless).
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the shutdown: the queued writes still finish and the
    /// database still closes, in the background.
    pub async fn close(&self) -> Result<(), StorageError> {
        let Some(join) = self.shut_down() else {
            return Ok(());
        };
        let closed = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || join.join())
                .await
                .map_err(|e| StorageError::backend("sqlite", e))?,
            Err(_) => join.join(),
        };
        match closed {
            Ok(result) => result.map_err(sql),
            Err(_) => Err(StorageError::backend("sqlite", writer::WriterStopped)),
        }
    }

    /// Stops taking writes: closes idle readers and the queue, returning the writer thread,
    /// which exits once the queue is drained.
    fn shut_down(&self) -> Option<JoinHandle<rusqlite::Result<()>>> {
        // Readers first, so the writer is the last connection and checkpoints on close.
        self.readers.lock().clear();
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Runs `work` on the writer thread, in its own savepoint inside the current group's
    /// transaction, and resolves once that transaction committed (fsync'd).
    async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StorageError::ShutDown)?;
        writer
            .send(Box::new(Pending::new(work, reply)))
            .await
            .map_err(|_| StorageError::ShutDown)?;
        answer
            .await
            .map_err(|_| StorageError::backend("sqlite", writer::WriterStopped))?
    }

    /// Runs `work` on a read connection, off the async runtime.
    async fn read<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let task = move || readers.with(work);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(task)
                .await
                .map_err(|e| StorageError::backend("sqlite", e))?,
            // No runtime to stall: blocking here is what the caller's executor expects.
            Err(_) => task(),
        }
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        if let Some(join) = self.shut_down() {
            // Waits for at most the group in flight plus any writes whose callers gave up; no
            // caller can be waiting, since every write borrows the store.
            let _ = join.join();
        }
    }
}

/// Idle read connections; a read takes one (or opens one) and gives it back.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReadPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Push and pop cannot leave the list half-changed; a poisoned lock guards a valid list.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let idle = self.lock().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(sql)?,
        };
        let result = work(&mut conn);
        // A transaction `work` left open was rolled back when its `Transaction` dropped.
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Read-write open (WAL readers need the shared-memory index), but no statement on it
        // may write: all writes go through the writer thread.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

/// Maps a SQLite error into this crate's error.
fn sql(error: rusqlite::Error) -> StorageError {
    StorageError::backend("sqlite", error)
}

/// A `u64` the caller chose (a size, a timestamp) as SQLite's signed integer, bit for bit, so
/// every value round-trips; these columns are never compared in SQL.
fn u64_to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

/// The inverse of [`u64_to_sql`].
fn u64_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn not_found(kind: &'static str, id: impl fmt::Display) -> StorageError {
    StorageError::NotFound {
        kind,
        id: id.to_string(),
    }
}
