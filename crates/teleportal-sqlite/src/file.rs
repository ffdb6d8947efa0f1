//! [`FileStorage`] for [`SqliteStorage`], and the file-metadata columns uploads share.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use teleportal_storage::{DocumentId, FileId, FileMetadata, FileStorage, StorageError};

use super::{SqliteStorage, not_found, sql, u64_from_sql, u64_to_sql};

/// The columns [`metadata_from_row`] reads, in order; `files` and `uploads` both have them.
pub(super) const METADATA_COLUMNS: &str =
    "id, filename, size, mime_type, last_modified, encrypted, chunk_size, chunk_count, document";

/// Reads [`METADATA_COLUMNS`] starting at column 0.
pub(super) fn metadata_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FileMetadata> {
    // `FileMetadata` is non-exhaustive: built by `new`, then the columns it leaves out.
    let mut metadata = FileMetadata::new(
        FileId::new(row.get(0)?),
        row.get::<_, String>(1)?,
        u64_from_sql(row.get(2)?),
        row.get::<_, String>(3)?,
        row.get(6)?,
        row.get(7)?,
    );
    metadata.last_modified = u64_from_sql(row.get(4)?);
    metadata.encrypted = row.get(5)?;
    metadata.document = row.get::<_, Option<String>>(8)?.map(DocumentId::from);
    Ok(metadata)
}

/// [`METADATA_COLUMNS`]' values for `metadata`, in order, as statement parameters.
pub(super) fn metadata_values(metadata: &FileMetadata) -> Vec<Value> {
    vec![
        Value::Blob(metadata.id.as_bytes().to_vec()),
        Value::Text(metadata.filename.clone()),
        Value::Integer(u64_to_sql(metadata.size)),
        Value::Text(metadata.mime_type.clone()),
        Value::Integer(u64_to_sql(metadata.last_modified)),
        Value::Integer(metadata.encrypted.into()),
        Value::Integer(metadata.chunk_size.into()),
        Value::Integer(metadata.chunk_count.into()),
        metadata
            .document
            .as_ref()
            .map_or(Value::Null, |doc| Value::Text(doc.as_str().to_owned())),
    ]
}

// `put_file_stream` is the default (collect, then `put_file`): this store stores a file in one
// transaction; uploads finish in place (`FinishUpload`).
#[async_trait]
impl FileStorage for SqliteStorage {
    /// Stores the metadata and every chunk in one transaction: a reader sees all or nothing.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        metadata.check_chunk_count(chunks.len())?;
        self.write(move |conn| put_file(conn, &metadata, &chunks))
            .await
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        let id = *id;
        self.read(move |conn| file_metadata(conn, &id)).await
    }

    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let id = *id;
        self.read(move |conn| chunk(conn, &id, index)).await
    }

    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let doc = doc.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {METADATA_COLUMNS} FROM files WHERE document = ?1 ORDER BY id"
            ))
            .and_then(|mut s| {
                s.query_map([doc.as_str()], metadata_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql)
        })
        .await
    }

    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        let id = *id;
        self.write(move |conn| {
            // Its chunks go with it (ON DELETE CASCADE).
            conn.prepare_cached("DELETE FROM files WHERE id = ?1")
                .and_then(|mut s| s.execute([id.as_bytes()]))
                .map(drop)
                .map_err(sql)
        })
        .await
    }

    /// Closes the whole database (every kind of data), as [`SqliteStorage::close`] does.
    async fn close(&self) -> Result<(), StorageError> {
        SqliteStorage::close(self).await
    }
}

fn put_file(
    conn: &Connection,
    metadata: &FileMetadata,
    chunks: &[Bytes],
) -> Result<(), StorageError> {
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO files ({METADATA_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .and_then(|mut s| s.execute(params_from_iter(metadata_values(metadata))))
        .map_err(sql)?;
    if inserted == 0 {
        return Ok(()); // Content-addressed: the stored file has these very bytes.
    }
    let mut statement = conn
        .prepare_cached("INSERT INTO file_chunks (file, idx, data) VALUES (?1, ?2, ?3)")
        .map_err(sql)?;
    for (index, chunk) in (0u32..).zip(chunks) {
        statement
            .execute((metadata.id.as_bytes(), index, chunk.as_ref()))
            .map_err(sql)?;
    }
    Ok(())
}

fn file_metadata(conn: &Connection, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
    conn.prepare_cached(&format!(
        "SELECT {METADATA_COLUMNS} FROM files WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.as_bytes()], metadata_from_row).optional())
    .map_err(sql)
}

fn chunk(conn: &mut Connection, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
    let select = "SELECT data FROM file_chunks WHERE file = ?1 AND idx = ?2";
    let exists = |tx: &Connection| Ok(file_metadata(tx, id)?.is_some());
    chunk_row(conn, select, id, index, exists)?
        .ok_or_else(|| not_found("file", id))?
        .ok_or_else(|| not_found("chunk", format!("{id}/{index}")))
}

/// One chunk by `select` (parameters: id, index), and whether its file or upload exists
/// (`owner_exists`), from one snapshot, so "no such chunk" is never an owner deleted in
/// between. `Ok(None)`: no owner; `Ok(Some(None))`: the owner lacks the chunk.
pub(super) fn chunk_row(
    conn: &mut Connection,
    select: &str,
    id: &FileId,
    index: u32,
    owner_exists: impl FnOnce(&Connection) -> Result<bool, StorageError>,
) -> Result<Option<Option<Bytes>>, StorageError> {
    let tx = conn.transaction().map_err(sql)?;
    let data = tx
        .prepare_cached(select)
        .and_then(|mut s| {
            s.query_row((id.as_bytes(), index), |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })
        .map_err(sql)?;
    match data {
        Some(data) => Ok(Some(Some(Bytes::from(data)))),
        None if owner_exists(&tx)? => Ok(Some(None)),
        None => Ok(None),
    }
}
