//! [`DocumentStorage`] for [`SqliteStorage`].

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use teleportal_storage::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument, StoredUpdate,
};

use super::{SqliteStorage, sql};

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for SqliteStorage {
    /// Appends in the writer's current group; resolves once the group's commit was fsync'd
    /// (see [`SqliteStorage`]'s durability section). The size limit is checked in the same
    /// transaction.
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let doc = doc.clone();
        self.write(move |conn| append(conn, &doc, &update, options))
            .await
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let doc = doc.clone();
        self.read(move |conn| load(conn, &doc)).await
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        let doc = doc.clone();
        self.read(move |conn| metadata(conn, &doc)).await
    }

    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let doc = doc.clone();
        self.write(move |conn| compact(conn, &doc, upto, &snapshot))
            .await
    }

    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let doc = doc.clone();
        self.write(move |conn| delete(conn, &doc)).await
    }

    /// Closes the whole database (every kind of data), as [`SqliteStorage::close`] does.
    async fn close(&self) -> Result<(), StorageError> {
        SqliteStorage::close(self).await
    }
}

fn append(
    conn: &Connection,
    doc: &DocumentId,
    update: &[u8],
    options: AppendOptions,
) -> Result<AppendReceipt, StorageError> {
    let len = update.len() as u64;
    // One statement creates or advances the counters and reads them back; the savepoint this
    // runs in undoes it if the limit below rejects the append.
    let (key, seq, snapshot_len, tail_updates, tail_bytes) = conn
        .prepare_cached(
            "INSERT INTO documents (name, last_seq, snapshot_seq, snapshot_len, tail_updates, \
             tail_bytes) VALUES (?1, 1, 0, NULL, 1, ?2) \
             ON CONFLICT (name) DO UPDATE SET last_seq = last_seq + 1, \
             tail_updates = tail_updates + 1, tail_bytes = tail_bytes + ?2 \
             RETURNING key, last_seq, snapshot_len, tail_updates, tail_bytes",
        )
        .and_then(|mut s| {
            s.query_row((doc.as_str(), len), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Seq>(1)?,
                    row.get::<_, Option<u64>>(2)?,
                    row.get::<_, u64>(3)?,
                    row.get::<_, u64>(4)?,
                ))
            })
        })
        .map_err(sql)?;
    let size = snapshot_len.unwrap_or(0).saturating_add(tail_bytes);
    if let Some(limit) = options.max_size
        && size > limit
    {
        return Err(StorageError::DocumentTooLarge {
            doc: doc.clone(),
            size,
            limit,
        });
    }
    conn.prepare_cached("INSERT INTO updates (doc, seq, data) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute((key, seq, update)))
        .map_err(sql)?;
    Ok(AppendReceipt::new(seq, size, tail_updates, tail_bytes))
}

/// A document's row: its key and positions.
struct DocumentRow {
    key: i64,
    last_seq: Seq,
    snapshot_seq: Seq,
    snapshot_len: Option<u64>,
    tail_updates: u64,
    tail_bytes: u64,
}

fn row(conn: &Connection, doc: &DocumentId) -> Result<Option<DocumentRow>, StorageError> {
    conn.prepare_cached(
        "SELECT key, last_seq, snapshot_seq, snapshot_len, tail_updates, tail_bytes \
         FROM documents WHERE name = ?1",
    )
    .and_then(|mut s| {
        s.query_row([doc.as_str()], |row| {
            Ok(DocumentRow {
                key: row.get(0)?,
                last_seq: row.get(1)?,
                snapshot_seq: row.get(2)?,
                snapshot_len: row.get(3)?,
                tail_updates: row.get(4)?,
                tail_bytes: row.get(5)?,
            })
        })
        .optional()
    })
    .map_err(sql)
}

fn load(conn: &mut Connection, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
    // One read transaction: the snapshot and the tail come from the same commit, even if a
    // compaction commits in between.
    let tx = conn.transaction().map_err(sql)?;
    let Some(row) = row(&tx, doc)? else {
        return Ok(StoredDocument::default());
    };
    let snapshot = match row.snapshot_len {
        None => None,
        Some(_) => {
            let data = tx
                .prepare_cached("SELECT data FROM snapshots WHERE doc = ?1")
                .and_then(|mut s| {
                    s.query_row([row.key], |r| r.get::<_, Vec<u8>>(0))
                        .optional()
                })
                .map_err(sql)?
                .ok_or_else(|| {
                    StorageError::corrupt("document has a snapshot length but no snapshot")
                })?;
            Some(Bytes::from(data))
        }
    };
    let tail = tx
        .prepare_cached("SELECT seq, data FROM updates WHERE doc = ?1 AND seq > ?2 ORDER BY seq")
        .and_then(|mut s| {
            s.query_map((row.key, row.snapshot_seq), |r| {
                Ok(StoredUpdate {
                    seq: r.get(0)?,
                    update: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    Ok(StoredDocument {
        snapshot,
        snapshot_seq: row.snapshot_seq,
        tail,
    })
}

fn metadata(
    conn: &mut Connection,
    doc: &DocumentId,
) -> Result<Option<DocumentMetadata>, StorageError> {
    let Some(row) = row(conn, doc)? else {
        return Ok(None);
    };
    if row.snapshot_len.is_none() && row.tail_updates == 0 {
        return Ok(None); // Deleted: only its sequence is kept.
    }
    Ok(Some(DocumentMetadata::new(
        row.snapshot_len.unwrap_or(0).saturating_add(row.tail_bytes),
        row.last_seq,
        row.snapshot_seq,
        row.tail_updates,
        row.tail_bytes,
    )))
}

fn compact(
    conn: &Connection,
    doc: &DocumentId,
    upto: Seq,
    snapshot: &[u8],
) -> Result<(), StorageError> {
    let Some(row) = row(conn, doc)? else {
        return Ok(()); // Never written: nothing to fold.
    };
    // Another compaction (or a delete) got there first, or `upto` was never appended.
    if upto <= row.snapshot_seq || upto > row.last_seq {
        return Ok(());
    }
    conn.prepare_cached("DELETE FROM updates WHERE doc = ?1 AND seq <= ?2")
        .and_then(|mut s| s.execute((row.key, upto)))
        .map_err(sql)?;
    conn.prepare_cached("INSERT OR REPLACE INTO snapshots (doc, data) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute((row.key, snapshot)))
        .map_err(sql)?;
    // Recounted from what is left (updates appended while the caller merged), so the counters
    // are right even if they had drifted.
    conn.prepare_cached(
        "UPDATE documents SET snapshot_seq = ?2, snapshot_len = ?3, \
         (tail_updates, tail_bytes) = (SELECT count(*), coalesce(sum(length(data)), 0) \
         FROM updates WHERE doc = ?1) WHERE key = ?1",
    )
    .and_then(|mut s| s.execute((row.key, upto, snapshot.len() as u64)))
    .map_err(sql)?;
    Ok(())
}

fn delete(conn: &Connection, doc: &DocumentId) -> Result<(), StorageError> {
    let Some(row) = row(conn, doc)? else {
        return Ok(());
    };
    conn.prepare_cached("DELETE FROM updates WHERE doc = ?1")
        .and_then(|mut s| s.execute([row.key]))
        .map_err(sql)?;
    conn.prepare_cached("DELETE FROM snapshots WHERE doc = ?1")
        .and_then(|mut s| s.execute([row.key]))
        .map_err(sql)?;
    // Keep the sequence: a compaction that loaded before the delete must not apply, and a
    // later append continues after `last_seq`.
    conn.prepare_cached(
        "UPDATE documents SET snapshot_seq = last_seq, snapshot_len = NULL, tail_updates = 0, \
         tail_bytes = 0 WHERE key = ?1",
    )
    .and_then(|mut s| s.execute([row.key]))
    .map_err(sql)?;
    Ok(())
}
