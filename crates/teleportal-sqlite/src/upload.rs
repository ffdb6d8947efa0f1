//! [`TemporaryUploadStorage`] for [`SqliteStorage`]: a session row per upload (its declared
//! metadata and start time in milliseconds) plus a row per received chunk.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use teleportal_storage::{
    FileId, FileMetadata, FinishUpload, StorageError, TemporaryUploadStorage, UploadProgress,
};

use super::file::{METADATA_COLUMNS, chunk_row, metadata_from_row, metadata_values};
use super::{SqliteStorage, not_found, sql};

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl TemporaryUploadStorage for SqliteStorage {
    /// Starts a session stamped with the current time, truncated to the millisecond it is
    /// stored with (so `begin` and [`progress`](TemporaryUploadStorage::progress) agree).
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        self.write(move |conn| {
            if let Some(existing) = progress(conn, &metadata.id)? {
                if existing.metadata != metadata {
                    return Err(StorageError::InvalidRequest {
                        reason: format!("upload {} exists with different metadata", metadata.id),
                    });
                }
                return Ok(existing); // Resume.
            }
            let started_at = millis_floor(SystemTime::now());
            let mut values = metadata_values(&metadata);
            values.push(Value::Integer(started_at));
            conn.prepare_cached(&format!(
                "INSERT INTO uploads ({METADATA_COLUMNS}, started_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .and_then(|mut s| s.execute(params_from_iter(values)))
            .map_err(sql)?;
            Ok(UploadProgress::new(
                metadata,
                Vec::new(),
                from_millis(started_at)?,
            ))
        })
        .await
    }

    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        let id = *id;
        self.write(move |conn| {
            let metadata = session(conn, &id)?
                .ok_or_else(|| not_found("upload", id))?
                .0;
            metadata.check_chunk_index(index)?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO upload_chunks (upload, idx, data) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute((id.as_bytes(), index, chunk.as_ref())))
            .map(drop)
            .map_err(sql)
        })
        .await
    }

    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let id = *id;
        self.read(move |conn| {
            let select = "SELECT data FROM upload_chunks WHERE upload = ?1 AND idx = ?2";
            let exists = |tx: &Connection| Ok(session(tx, &id)?.is_some());
            chunk_row(conn, select, &id, index, exists)?
                .ok_or_else(|| not_found("upload", id))?
                .ok_or_else(|| not_found("upload chunk", format!("{id}/{index}")))
        })
        .await
    }

    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        let id = *id;
        self.read(move |conn| {
            // One snapshot: the session and its chunk list from the same commit.
            let tx = conn.transaction().map_err(sql)?;
            progress(&tx, &id)
        })
        .await
    }

    /// Reads and removes the session in one transaction.
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        let id = *id;
        self.write(move |conn| {
            let (metadata, _) = session(conn, &id)?.ok_or_else(|| not_found("upload", id))?;
            let chunks = conn
                .prepare_cached("SELECT data FROM upload_chunks WHERE upload = ?1 ORDER BY idx")
                .and_then(|mut s| {
                    s.query_map([id.as_bytes()], |r| r.get::<_, Vec<u8>>(0).map(Bytes::from))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(sql)?;
            // Indexes are checked below `chunk_count` and unique, so the count says it all.
            if u32::try_from(chunks.len()).ok() != Some(metadata.chunk_count) {
                return Err(StorageError::InvalidRequest {
                    reason: format!("upload {id} is missing chunks"),
                });
            }
            // Its chunks go with it (ON DELETE CASCADE).
            delete_session(conn, &id)?;
            Ok((metadata, chunks))
        })
        .await
    }

    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        let id = *id;
        self.write(move |conn| delete_session(conn, &id).map(drop))
            .await
    }

    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        // Started before `before` at full precision: a start stored as `ms` is earlier than
        // `before` exactly when `ms` is below `before` rounded up.
        let before = millis_ceil(before);
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM uploads WHERE started_at < ?1")
                .and_then(|mut s| s.execute([before]))
                .map_err(sql)
        })
        .await
    }

    /// Closes the whole database (every kind of data), as [`SqliteStorage::close`] does.
    async fn close(&self) -> Result<(), StorageError> {
        SqliteStorage::close(self).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl FinishUpload for SqliteStorage {
    /// Copies the session's rows into the file tables and deletes it, in one transaction on
    /// the writer: SQLite moves the chunks page by page, never the whole file through memory.
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        let id = *id;
        self.write(move |conn| {
            let (metadata, _) = session(conn, &id)?.ok_or_else(|| not_found("upload", id))?;
            let received: u32 = conn
                .prepare_cached("SELECT count(*) FROM upload_chunks WHERE upload = ?1")
                .and_then(|mut s| s.query_row([id.as_bytes()], |r| r.get(0)))
                .map_err(sql)?;
            // Indexes are checked below `chunk_count` and unique, so the count says it all.
            if received != metadata.chunk_count {
                return Err(StorageError::InvalidRequest {
                    reason: format!("upload {id} is missing chunks"),
                });
            }
            let inserted = conn
                .prepare_cached(&format!(
                    "INSERT INTO files ({METADATA_COLUMNS}) SELECT {METADATA_COLUMNS} \
                     FROM uploads WHERE id = ?1 ON CONFLICT (id) DO NOTHING"
                ))
                .and_then(|mut s| s.execute([id.as_bytes()]))
                .map_err(sql)?;
            if inserted > 0 {
                conn.prepare_cached(
                    "INSERT INTO file_chunks (file, idx, data) \
                     SELECT upload, idx, data FROM upload_chunks WHERE upload = ?1",
                )
                .and_then(|mut s| s.execute([id.as_bytes()]))
                .map_err(sql)?;
            }
            delete_session(conn, &id)?;
            Ok(metadata)
        })
        .await
    }
}

/// The session's declared metadata and start (ms since the epoch).
fn session(conn: &Connection, id: &FileId) -> Result<Option<(FileMetadata, i64)>, StorageError> {
    conn.prepare_cached(&format!(
        "SELECT {METADATA_COLUMNS}, started_at FROM uploads WHERE id = ?1"
    ))
    .and_then(|mut s| {
        s.query_row([id.as_bytes()], |r| Ok((metadata_from_row(r)?, r.get(9)?)))
            .optional()
    })
    .map_err(sql)
}

fn progress(conn: &Connection, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
    let Some((metadata, started_at)) = session(conn, id)? else {
        return Ok(None);
    };
    let received = conn
        .prepare_cached("SELECT idx FROM upload_chunks WHERE upload = ?1 ORDER BY idx")
        .and_then(|mut s| {
            s.query_map([id.as_bytes()], |r| r.get::<_, u32>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    Ok(Some(UploadProgress::new(
        metadata,
        received,
        from_millis(started_at)?,
    )))
}

fn delete_session(conn: &Connection, id: &FileId) -> Result<usize, StorageError> {
    conn.prepare_cached("DELETE FROM uploads WHERE id = ?1")
        .and_then(|mut s| s.execute([id.as_bytes()]))
        .map_err(sql)
}

/// Milliseconds since the epoch, rounded down (negative before it), saturating.
fn millis_floor(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => saturating_millis(after),
        Err(before) => {
            let before = before.duration();
            let rounded_up =
                saturating_millis(before) + i64::from(before.subsec_nanos() % 1_000_000 != 0);
            -rounded_up
        }
    }
}

/// Milliseconds since the epoch, rounded up (negative before it), saturating.
fn millis_ceil(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => saturating_millis(after)
            .saturating_add(i64::from(after.subsec_nanos() % 1_000_000 != 0)),
        Err(before) => -saturating_millis(before.duration()),
    }
}

fn saturating_millis(duration: Duration) -> i64 {
    // Leaves room to add 1 or negate without overflow.
    i64::try_from(duration.as_millis()).map_or(i64::MAX - 1, |ms| ms.min(i64::MAX - 1))
}

fn from_millis(ms: i64) -> Result<SystemTime, StorageError> {
    let offset = Duration::from_millis(ms.unsigned_abs());
    let time = if ms >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| StorageError::corrupt("upload start time is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_and_rounding() {
        let t = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(millis_floor(t), 1);
        assert_eq!(millis_ceil(t), 2);
        let t = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(millis_floor(t), -2);
        assert_eq!(millis_ceil(t), -1);
        assert_eq!(
            from_millis(-2).unwrap(),
            UNIX_EPOCH - Duration::from_millis(2)
        );
        assert_eq!(millis_floor(from_millis(1_234).unwrap()), 1_234);
    }
}
