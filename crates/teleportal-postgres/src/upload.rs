//! [`TemporaryUploadStorage`] for [`PostgresStorage`]: a session row per upload (its declared
//! metadata and start time in microseconds) plus a row per received chunk.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use teleportal_storage::{
    FileId, FileMetadata, FinishUpload, StorageError, TemporaryUploadStorage, UploadProgress,
};

use crate::file::{METADATA_COLUMNS, MetadataValues, metadata_from_row};
use crate::{PostgresStorage, execute, not_found, pg_error, query, query_opt};

/// How often `begin` retries when a session it saw vanished (taken or aborted by another node)
/// before it could read it back.
const BEGIN_ATTEMPTS: usize = 3;

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl TemporaryUploadStorage for PostgresStorage {
    /// Starts a session stamped with this node's clock, truncated to the microsecond it is
    /// stored with (so `begin` and [`progress`](TemporaryUploadStorage::progress) agree).
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        let values = MetadataValues::new(&metadata);
        let id = metadata.id;
        let client = self.client().await?;
        for _ in 0..BEGIN_ATTEMPTS {
            let started_at = micros_floor(SystemTime::now());
            let mut params = values.params().to_vec();
            params.push(&started_at);
            let inserted = execute(
                &client,
                &format!(
                    "INSERT INTO uploads ({METADATA_COLUMNS}, started_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
                ),
                &params,
            )
            .await?;
            if inserted == 1 {
                return Ok(UploadProgress::new(
                    metadata,
                    Vec::new(),
                    from_micros(started_at)?,
                ));
            }
            // A session exists (ON CONFLICT waited for its insert to commit): resume it.
            if let Some(existing) = progress(&client, &id).await? {
                if existing.metadata != metadata {
                    return Err(StorageError::InvalidRequest {
                        reason: format!("upload {id} exists with different metadata"),
                    });
                }
                return Ok(existing);
            }
        }
        Err(StorageError::InvalidRequest {
            reason: format!("upload {id} keeps being removed while it is begun"),
        })
    }

    /// Checks the index against the session (locked `FOR SHARE`, so it cannot be taken or
    /// aborted meanwhile) and stores the chunk, replacing an earlier one of the same index.
    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = query_opt(
            &tx,
            "SELECT chunk_count FROM uploads WHERE id = $1 FOR SHARE",
            &[&id.as_bytes().as_slice()],
        )
        .await?
        .ok_or_else(|| not_found("upload", id))?;
        let chunk_count: i64 = row.get(0);
        if i64::from(index) >= chunk_count {
            tx.rollback().await.map_err(pg_error)?;
            return Err(StorageError::InvalidRequest {
                reason: format!("chunk {index} of upload {id}, which has {chunk_count} chunks"),
            });
        }
        execute(
            &tx,
            "INSERT INTO upload_chunks (upload, idx, data) VALUES ($1, $2, $3) \
             ON CONFLICT (upload, idx) DO UPDATE SET data = EXCLUDED.data",
            &[
                &id.as_bytes().as_slice(),
                &i64::from(index),
                &chunk.as_ref(),
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Looks up the chunk and whether the session exists in one statement (one snapshot).
    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT (SELECT data FROM upload_chunks WHERE upload = u.id AND idx = $2) \
             FROM uploads u WHERE id = $1",
            &[&id.as_bytes().as_slice(), &i64::from(index)],
        )
        .await?
        .ok_or_else(|| not_found("upload", id))?;
        row.get::<_, Option<Vec<u8>>>(0)
            .map(Bytes::from)
            .ok_or_else(|| not_found("upload chunk", format!("{id}/{index}")))
    }

    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        let client = self.client().await?;
        progress(&client, id).await
    }

    /// Locks the session, reads its chunks and removes it, in one transaction: two nodes
    /// taking the same upload cannot both get it.
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = query_opt(
            &tx,
            &format!("SELECT {METADATA_COLUMNS} FROM uploads WHERE id = $1 FOR UPDATE"),
            &[&id.as_bytes().as_slice()],
        )
        .await?
        .ok_or_else(|| not_found("upload", id))?;
        let metadata = metadata_from_row(&row)?;
        let chunks: Vec<Bytes> = query(
            &tx,
            "SELECT data FROM upload_chunks WHERE upload = $1 ORDER BY idx",
            &[&id.as_bytes().as_slice()],
        )
        .await?
        .into_iter()
        .map(|row| Bytes::from(row.get::<_, Vec<u8>>(0)))
        .collect();
        // Indexes are checked below `chunk_count` and unique, so the count says it all.
        if u32::try_from(chunks.len()).ok() != Some(metadata.chunk_count) {
            tx.rollback().await.map_err(pg_error)?;
            return Err(StorageError::InvalidRequest {
                reason: format!("upload {id} is missing chunks"),
            });
        }
        // Its chunks go with it (ON DELETE CASCADE).
        execute(
            &tx,
            "DELETE FROM uploads WHERE id = $1",
            &[&id.as_bytes().as_slice()],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok((metadata, chunks))
    }

    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        let client = self.client().await?;
        execute(
            &client,
            "DELETE FROM uploads WHERE id = $1",
            &[&id.as_bytes().as_slice()],
        )
        .await
        .map(drop)
    }

    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        // Started before `before` at full precision: a start stored as `us` is earlier than
        // `before` exactly when `us` is below `before` rounded up.
        let before = micros_ceil(before);
        let client = self.client().await?;
        let removed = execute(
            &client,
            "DELETE FROM uploads WHERE started_at_us < $1",
            &[&before],
        )
        .await?;
        usize::try_from(removed).map_err(pg_error)
    }

    /// Closes the connection pool (every kind of data): each acknowledged write is already
    /// committed, so there is nothing to finish.
    async fn close(&self) -> Result<(), StorageError> {
        self.pool.close();
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl FinishUpload for PostgresStorage {
    /// Locks the session, copies its rows into the file tables inside PostgreSQL and removes
    /// it, in one transaction: no chunk travels to this node, and two nodes finishing the
    /// same upload store one file.
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        let key = id.as_bytes().as_slice();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = query_opt(
            &tx,
            &format!(
                "SELECT {METADATA_COLUMNS}, \
                 (SELECT count(*) FROM upload_chunks WHERE upload = u.id) \
                 FROM uploads u WHERE id = $1 FOR UPDATE"
            ),
            &[&key],
        )
        .await?
        .ok_or_else(|| not_found("upload", id))?;
        let metadata = metadata_from_row(&row)?;
        // Indexes are checked below `chunk_count` and unique, so the count says it all.
        if row.get::<_, i64>(9) != i64::from(metadata.chunk_count) {
            tx.rollback().await.map_err(pg_error)?;
            return Err(StorageError::InvalidRequest {
                reason: format!("upload {id} is missing chunks"),
            });
        }
        let inserted = execute(
            &tx,
            &format!(
                "INSERT INTO files ({METADATA_COLUMNS}) SELECT {METADATA_COLUMNS} \
                 FROM uploads WHERE id = $1 ON CONFLICT (id) DO NOTHING"
            ),
            &[&key],
        )
        .await?;
        if inserted == 1 {
            execute(
                &tx,
                "INSERT INTO file_chunks (file, idx, data) \
                 SELECT upload, idx, data FROM upload_chunks WHERE upload = $1",
                &[&key],
            )
            .await?;
        }
        // Its chunks go with it (ON DELETE CASCADE).
        execute(&tx, "DELETE FROM uploads WHERE id = $1", &[&key]).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(metadata)
    }
}

/// The session and its received indexes, from one statement (one snapshot).
async fn progress<C: GenericClient>(
    client: &C,
    id: &FileId,
) -> Result<Option<UploadProgress>, StorageError> {
    let Some(row) = query_opt(
        client,
        &format!(
            "SELECT {METADATA_COLUMNS}, started_at_us, \
             ARRAY(SELECT idx FROM upload_chunks WHERE upload = u.id ORDER BY idx) \
             FROM uploads u WHERE id = $1"
        ),
        &[&id.as_bytes().as_slice()],
    )
    .await?
    else {
        return Ok(None);
    };
    let metadata = metadata_from_row(&row)?;
    let started_at = from_micros(row.get(9))?;
    let received = row
        .get::<_, Vec<i64>>(10)
        .into_iter()
        .map(|index| {
            u32::try_from(index).map_err(|_| StorageError::corrupt("chunk index out of range"))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(Some(UploadProgress::new(metadata, received, started_at)))
}

/// Microseconds since the epoch, rounded down (negative before it), saturating.
fn micros_floor(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => saturating_micros(after),
        Err(before) => {
            let before = before.duration();
            -(saturating_micros(before) + i64::from(before.subsec_nanos() % 1_000 != 0))
        }
    }
}

/// Microseconds since the epoch, rounded up (negative before it), saturating.
fn micros_ceil(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => {
            saturating_micros(after).saturating_add(i64::from(after.subsec_nanos() % 1_000 != 0))
        }
        Err(before) => -saturating_micros(before.duration()),
    }
}

fn saturating_micros(duration: Duration) -> i64 {
    // Leaves room to add 1 or negate without overflow.
    i64::try_from(duration.as_micros()).map_or(i64::MAX - 1, |us| us.min(i64::MAX - 1))
}

fn from_micros(us: i64) -> Result<SystemTime, StorageError> {
    let offset = Duration::from_micros(us.unsigned_abs());
    let time = if us >= 0 {
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
    fn micros_round_trip_and_rounding() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_500);
        assert_eq!(micros_floor(t), 1);
        assert_eq!(micros_ceil(t), 2);
        let t = UNIX_EPOCH - Duration::from_nanos(1_500);
        assert_eq!(micros_floor(t), -2);
        assert_eq!(micros_ceil(t), -1);
        assert_eq!(
            from_micros(-2).unwrap(),
            UNIX_EPOCH - Duration::from_micros(2)
        );
        assert_eq!(micros_floor(from_micros(1_234).unwrap()), 1_234);
        assert_eq!(micros_ceil(UNIX_EPOCH), 0);
    }
}
