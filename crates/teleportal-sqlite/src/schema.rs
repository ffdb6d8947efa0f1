//! Connection settings and the schema, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};
use teleportal_storage::StorageError;

use super::{BUSY_TIMEOUT, sql};

/// The schema this build writes. Each later version adds one step to [`migrate`].
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Version 1.
///
/// - `documents` keeps each document's counters, so appends, receipts and `metadata` need no
///   scan; `snapshot_len` is NULL while there is no snapshot. Its rows are never deleted: a
///   deleted document keeps `last_seq`, so sequence numbers are never reused.
/// - `snapshots` is apart from `documents` so that an append, which rewrites the counters,
///   never rewrites (or reads) a large snapshot.
/// - `updates` is keyed by the document's integer key, not its name, to keep each small
///   update's row small.
const SCHEMA_V1: &str = "
CREATE TABLE documents (
    key INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL,
    snapshot_seq INTEGER NOT NULL,
    snapshot_len INTEGER,
    tail_updates INTEGER NOT NULL,
    tail_bytes INTEGER NOT NULL
);
CREATE TABLE snapshots (
    doc INTEGER PRIMARY KEY REFERENCES documents (key),
    data BLOB NOT NULL
);
CREATE TABLE updates (
    doc INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
) WITHOUT ROWID;

CREATE TABLE files (
    id BLOB PRIMARY KEY,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    encrypted INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    document TEXT
);
CREATE INDEX files_by_document ON files (document) WHERE document IS NOT NULL;
CREATE TABLE file_chunks (
    file BLOB NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (file, idx)
);

CREATE TABLE milestones (
    document TEXT NOT NULL,
    id TEXT NOT NULL,
    meta BLOB NOT NULL,
    snapshot BLOB NOT NULL,
    PRIMARY KEY (document, id)
);

CREATE TABLE uploads (
    id BLOB PRIMARY KEY,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    encrypted INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    document TEXT,
    started_at INTEGER NOT NULL
);
CREATE INDEX uploads_by_start ON uploads (started_at);
CREATE TABLE upload_chunks (
    upload BLOB NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload, idx)
);
";

/// Settings of the one write connection.
pub(super) fn configure_writer(conn: &Connection) -> Result<(), StorageError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    // WAL: readers see a snapshot and never block the writer; a commit appends to the log.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::backend("sqlite", NoWal { mode }));
    }
    let pragmas: [(&str, &dyn rusqlite::ToSql); 4] = [
        // FULL: every commit fsyncs the WAL, so an acknowledged write survives power loss.
        // (NORMAL would fsync only at checkpoints and could lose the last commits.)
        ("synchronous", &"FULL"),
        ("foreign_keys", &true),
        // Savepoint journals stay in memory: a rolled-back write costs no file I/O.
        ("temp_store", &"MEMORY"),
        // Truncate the WAL back to 64 MiB after a checkpoint instead of keeping its peak size.
        ("journal_size_limit", &(64 * 1024 * 1024)),
    ];
    for (name, value) in pragmas {
        conn.pragma_update(None, name, value).map_err(sql)?;
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`], in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql)?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1).map_err(sql)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sql)?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(StorageError::backend(
                "sqlite",
                NewerSchema {
                    found,
                    supported: SCHEMA_VERSION,
                },
            ));
        }
    }
    tx.commit().map_err(sql)
}

/// The database was written by a build with a schema this one does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "database schema version {found} is not one this build knows (it supports up to {supported})"
)]
struct NewerSchema {
    found: i64,
    supported: i64,
}

/// SQLite would not switch the database to WAL mode (e.g. a file system without shared memory).
#[derive(Debug, thiserror::Error)]
#[error("SQLite refused WAL mode (journal_mode is {mode})")]
struct NoWal {
    mode: String,
}
