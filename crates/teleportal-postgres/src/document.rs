//! [`DocumentStorage`] for [`PostgresStorage`].

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use teleportal_storage::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument, StoredUpdate,
};
use tokio_postgres::IsolationLevel;

use crate::{PostgresStorage, count_from_sql, execute, pg_error, query, query_one, query_opt};

/// The counters every statement below reads back, in this order.
const COUNTERS: &str = "id, last_seq, snapshot_seq, snapshot_len, tail_updates, tail_bytes";

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for PostgresStorage {
    /// Advances the document's counters and inserts the update in one transaction, which holds
    /// the document's row lock until it commits; the size limit is checked on the locked
    /// counters. Resolves after `COMMIT` returned (see the durability section of
    /// [`PostgresStorage`]).
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let len = i64::try_from(update.len()).map_err(|_| StorageError::DocumentTooLarge {
            doc: doc.clone(),
            size: u64::MAX,
            limit: options.max_size.unwrap_or(u64::MAX),
        })?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The common case (the document exists) is one UPDATE; the first append inserts, and
        // ON CONFLICT covers another node inserting the same document meanwhile.
        let row = match query_opt(
            &tx,
            &format!(
                "UPDATE documents SET last_seq = last_seq + 1, tail_updates = tail_updates + 1, \
                 tail_bytes = tail_bytes + $2 WHERE name = $1 RETURNING {COUNTERS}"
            ),
            &[&doc.as_str(), &len],
        )
        .await?
        {
            Some(row) => row,
            None => {
                query_one(
                    &tx,
                    &format!(
                        "INSERT INTO documents (name, last_seq, snapshot_seq, snapshot_len, \
                         tail_updates, tail_bytes) VALUES ($1, 1, 0, NULL, 1, $2) \
                         ON CONFLICT (name) DO UPDATE SET last_seq = documents.last_seq + 1, \
                         tail_updates = documents.tail_updates + 1, \
                         tail_bytes = documents.tail_bytes + $2 RETURNING {COUNTERS}"
                    ),
                    &[&doc.as_str(), &len],
                )
                .await?
            }
        };
        let counters = Counters::from_row(&row)?;
        let size = counters.size();
        if let Some(limit) = options.max_size
            && size > limit
        {
            // Undoes the counters' advance; nothing was stored.
            tx.rollback().await.map_err(pg_error)?;
            return Err(StorageError::DocumentTooLarge {
                doc: doc.clone(),
                size,
                limit,
            });
        }
        execute(
            &tx,
            "INSERT INTO updates (doc, seq, data) VALUES ($1, $2, $3)",
            &[&counters.id, &counters.last_seq_sql, &update.as_ref()],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(AppendReceipt::new(
            counters.last_seq,
            size,
            counters.tail_updates,
            counters.tail_bytes,
        ))
    }

    /// Reads the counters, snapshot and tail in one `REPEATABLE READ` snapshot, so a
    /// compaction committing meanwhile is either wholly seen or not at all.
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let Some(counters) = counters(&tx, doc, "").await? else {
            tx.commit().await.map_err(pg_error)?;
            return Ok(StoredDocument::default());
        };
        let snapshot = match counters.snapshot_len {
            None => None,
            Some(_) => {
                let row = query_opt(
                    &tx,
                    "SELECT data FROM snapshots WHERE doc = $1",
                    &[&counters.id],
                )
                .await?
                .ok_or_else(|| {
                    StorageError::corrupt("document has a snapshot length but no snapshot")
                })?;
                Some(Bytes::from(row.get::<_, Vec<u8>>(0)))
            }
        };
        let rows = query(
            &tx,
            "SELECT seq, data FROM updates WHERE doc = $1 AND seq > $2 ORDER BY seq",
            &[&counters.id, &counters.snapshot_seq_sql],
        )
        .await?;
        let mut tail = Vec::with_capacity(rows.len());
        for row in rows {
            tail.push(StoredUpdate {
                seq: count_from_sql(row.get(0), "negative sequence number")?,
                update: Bytes::from(row.get::<_, Vec<u8>>(1)),
            });
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(StoredDocument {
            snapshot,
            snapshot_seq: counters.snapshot_seq,
            tail,
        })
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        let client = self.client().await?;
        let Some(counters) = counters(&client, doc, "").await? else {
            return Ok(None);
        };
        if counters.snapshot_len.is_none() && counters.tail_updates == 0 {
            return Ok(None); // Deleted: only its sequence is kept.
        }
        Ok(Some(DocumentMetadata::new(
            counters.size(),
            counters.last_seq,
            counters.snapshot_seq,
            counters.tail_updates,
            counters.tail_bytes,
        )))
    }

    /// Locks the document's row (`FOR UPDATE`), so no append commits between reading its
    /// counters and replacing the snapshot; appends of other nodes wait for the lock and land
    /// after `upto`.
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let Some(counters) = counters(&tx, doc, " FOR UPDATE").await? else {
            return tx.commit().await.map_err(pg_error); // Never written: nothing to fold.
        };
        // Another compaction (or a delete) got there first, or `upto` was never appended.
        if upto <= counters.snapshot_seq || upto > counters.last_seq {
            // Ends the transaction now, releasing the row lock before the connection is reused.
            return tx.commit().await.map_err(pg_error);
        }
        // `upto <= last_seq`, which came from a BIGINT.
        let upto_sql = i64::try_from(upto).map_err(|_| StorageError::corrupt("seq overflow"))?;
        let snapshot_len =
            i64::try_from(snapshot.len()).map_err(|_| StorageError::InvalidRequest {
                reason: "snapshot larger than PostgreSQL can count".into(),
            })?;
        execute(
            &tx,
            "DELETE FROM updates WHERE doc = $1 AND seq <= $2",
            &[&counters.id, &upto_sql],
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO snapshots (doc, data) VALUES ($1, $2) \
             ON CONFLICT (doc) DO UPDATE SET data = EXCLUDED.data",
            &[&counters.id, &snapshot.as_ref()],
        )
        .await?;
        // Recounted from what is left (updates appended while the caller merged), so the
        // counters are right even if they had drifted.
        execute(
            &tx,
            "UPDATE documents SET snapshot_seq = $2, snapshot_len = $3, \
             (tail_updates, tail_bytes) = (SELECT count(*), coalesce(sum(length(data)), 0) \
             FROM updates WHERE doc = $1) WHERE id = $1",
            &[&counters.id, &upto_sql, &snapshot_len],
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Locks the document's row, removes its snapshot and tail, and keeps its last sequence
    /// number as the snapshot position: a compaction that loaded before the delete finds
    /// `upto <= snapshot_seq` and changes nothing, and a later append continues the sequence.
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let Some(counters) = counters(&tx, doc, " FOR UPDATE").await? else {
            return tx.commit().await.map_err(pg_error);
        };
        execute(&tx, "DELETE FROM updates WHERE doc = $1", &[&counters.id]).await?;
        execute(&tx, "DELETE FROM snapshots WHERE doc = $1", &[&counters.id]).await?;
        execute(
            &tx,
            "UPDATE documents SET snapshot_seq = last_seq, snapshot_len = NULL, \
             tail_updates = 0, tail_bytes = 0 WHERE id = $1",
            &[&counters.id],
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Closes the connection pool (every kind of data): each acknowledged write is already
    /// committed, so there is nothing to finish.
    async fn close(&self) -> Result<(), StorageError> {
        self.pool.close();
        Ok(())
    }
}

/// A document's row.
struct Counters {
    id: i64,
    last_seq: Seq,
    last_seq_sql: i64,
    snapshot_seq: Seq,
    snapshot_seq_sql: i64,
    snapshot_len: Option<u64>,
    tail_updates: u64,
    tail_bytes: u64,
}

impl Counters {
    /// Reads [`COUNTERS`] starting at column 0.
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, StorageError> {
        let last_seq_sql: i64 = row.get(1);
        let snapshot_seq_sql: i64 = row.get(2);
        Ok(Counters {
            id: row.get(0),
            last_seq: count_from_sql(last_seq_sql, "negative last_seq")?,
            last_seq_sql,
            snapshot_seq: count_from_sql(snapshot_seq_sql, "negative snapshot_seq")?,
            snapshot_seq_sql,
            snapshot_len: row
                .get::<_, Option<i64>>(3)
                .map(|len| count_from_sql(len, "negative snapshot length"))
                .transpose()?,
            tail_updates: count_from_sql(row.get(4), "negative tail count")?,
            tail_bytes: count_from_sql(row.get(5), "negative tail size")?,
        })
    }

    /// Stored bytes: the snapshot plus the tail.
    fn size(&self) -> u64 {
        self.snapshot_len
            .unwrap_or(0)
            .saturating_add(self.tail_bytes)
    }
}

/// The document's row, or `None` if it was never written; `lock` is appended to the query
/// (`" FOR UPDATE"` or empty).
async fn counters<C: GenericClient>(
    client: &C,
    doc: &DocumentId,
    lock: &str,
) -> Result<Option<Counters>, StorageError> {
    query_opt(
        client,
        &format!("SELECT {COUNTERS} FROM documents WHERE name = $1{lock}"),
        &[&doc.as_str()],
    )
    .await?
    .map(|row| Counters::from_row(&row))
    .transpose()
}
