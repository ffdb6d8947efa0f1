//! [`FileStorage`] for [`PostgresStorage`]: a `files` row per file and a `bytea` row per chunk,
//! keyed by (file id, index); and the file-metadata columns uploads share.

use async_trait::async_trait;
use bytes::Bytes;
use teleportal_storage::{DocumentId, FileId, FileMetadata, FileStorage, StorageError};
use tokio_postgres::types::ToSql;

use crate::{
    PostgresStorage, execute, not_found, pg_error, query, query_one, query_opt, u64_from_sql,
    u64_to_sql,
};

/// The columns [`metadata_from_row`] reads, in order; `files` and `uploads` both have them.
pub(crate) const METADATA_COLUMNS: &str =
    "id, filename, size, mime_type, last_modified, encrypted, chunk_size, chunk_count, document";

/// At most this many chunks go into one INSERT, so one statement stays a few MiB.
const CHUNKS_PER_STATEMENT: usize = 64;

/// Reads [`METADATA_COLUMNS`] starting at column 0.
pub(crate) fn metadata_from_row(row: &tokio_postgres::Row) -> Result<FileMetadata, StorageError> {
    let id: Vec<u8> = row.get(0);
    let id: [u8; 32] = id
        .try_into()
        .map_err(|_| StorageError::corrupt("stored file id is not 32 bytes"))?;
    let chunk_size = u32::try_from(row.get::<_, i64>(6))
        .map_err(|_| StorageError::corrupt("stored chunk size is out of range"))?;
    let chunk_count = u32::try_from(row.get::<_, i64>(7))
        .map_err(|_| StorageError::corrupt("stored chunk count is out of range"))?;
    let mut metadata = FileMetadata::new(
        FileId::new(id),
        row.get::<_, String>(1),
        u64_from_sql(row.get(2)),
        row.get::<_, String>(3),
        chunk_size,
        chunk_count,
    )
    .with_last_modified(u64_from_sql(row.get(4)))
    .with_encrypted(row.get(5));
    if let Some(doc) = row.get::<_, Option<String>>(8) {
        metadata = metadata.with_document(DocumentId::from(doc));
    }
    Ok(metadata)
}

/// [`METADATA_COLUMNS`]' values for `metadata`, owned, in order.
pub(crate) struct MetadataValues {
    id: Vec<u8>,
    filename: String,
    size: i64,
    mime_type: String,
    last_modified: i64,
    encrypted: bool,
    chunk_size: i64,
    chunk_count: i64,
    document: Option<String>,
}

impl MetadataValues {
    pub(crate) fn new(metadata: &FileMetadata) -> Self {
        MetadataValues {
            id: metadata.id.as_bytes().to_vec(),
            filename: metadata.filename.clone(),
            size: u64_to_sql(metadata.size),
            mime_type: metadata.mime_type.clone(),
            last_modified: u64_to_sql(metadata.last_modified),
            encrypted: metadata.encrypted,
            chunk_size: metadata.chunk_size.into(),
            chunk_count: metadata.chunk_count.into(),
            document: metadata.document.as_ref().map(|d| d.as_str().to_owned()),
        }
    }

    /// The values as statement parameters `$1`…`$9`.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.id,
            &self.filename,
            &self.size,
            &self.mime_type,
            &self.last_modified,
            &self.encrypted,
            &self.chunk_size,
            &self.chunk_count,
            &self.document,
        ]
    }
}

// `put_file_stream` is the default (collect, then `put_file`): this store stores a file in one
// transaction; uploads finish in place (`FinishUpload`).
#[async_trait]
impl FileStorage for PostgresStorage {
    /// Stores the metadata and every chunk in one transaction: a reader sees all or nothing.
    /// A second put of a stored id (or one racing it from another node) changes nothing.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        metadata.check_chunk_count(chunks.len())?;
        let values = MetadataValues::new(&metadata);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let inserted = execute(
            &tx,
            &format!(
                "INSERT INTO files ({METADATA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            &values.params(),
        )
        .await?;
        if inserted == 0 {
            // Content-addressed: the stored file has these very bytes.
            return tx.commit().await.map_err(pg_error);
        }
        insert_chunks(&tx, "file_chunks", "file", &values.id, &chunks).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {METADATA_COLUMNS} FROM files WHERE id = $1"),
            &[&id.as_bytes().as_slice()],
        )
        .await?
        .map(|row| metadata_from_row(&row))
        .transpose()
    }

    /// Looks up the chunk and whether the file exists in one statement (one snapshot), so
    /// "no such chunk" is never a file deleted in between.
    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let client = self.client().await?;
        let row = query_one(
            &client,
            "SELECT (SELECT data FROM file_chunks WHERE file = $1 AND idx = $2), \
             EXISTS (SELECT 1 FROM files WHERE id = $1)",
            &[&id.as_bytes().as_slice(), &i64::from(index)],
        )
        .await?;
        match (row.get::<_, Option<Vec<u8>>>(0), row.get::<_, bool>(1)) {
            (Some(data), _) => Ok(Bytes::from(data)),
            (None, false) => Err(not_found("file", id)),
            (None, true) => Err(not_found("chunk", format!("{id}/{index}"))),
        }
    }

    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let client = self.client().await?;
        query(
            &client,
            &format!("SELECT {METADATA_COLUMNS} FROM files WHERE document = $1 ORDER BY id"),
            &[&doc.as_str()],
        )
        .await?
        .iter()
        .map(metadata_from_row)
        .collect()
    }

    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        let client = self.client().await?;
        // Its chunks go with it (ON DELETE CASCADE).
        execute(
            &client,
            "DELETE FROM files WHERE id = $1",
            &[&id.as_bytes().as_slice()],
        )
        .await
        .map(drop)
    }

    /// Closes the connection pool (every kind of data): each acknowledged write is already
    /// committed, so there is nothing to finish.
    async fn close(&self) -> Result<(), StorageError> {
        self.pool.close();
        Ok(())
    }
}

/// Inserts `chunks` as rows (`owner`, idx, data) of `table`, index 0 first, a batch of
/// [`CHUNKS_PER_STATEMENT`] per statement (arrays unnested server-side: one round trip each).
async fn insert_chunks(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    owner_column: &str,
    owner: &[u8],
    chunks: &[Bytes],
) -> Result<(), StorageError> {
    let sql = format!(
        "INSERT INTO {table} ({owner_column}, idx, data) \
         SELECT $1, idx, data FROM unnest($2::bigint[], $3::bytea[]) AS c (idx, data)"
    );
    let mut first: i64 = 0;
    for batch in chunks.chunks(CHUNKS_PER_STATEMENT) {
        let indexes: Vec<i64> = (first..).take(batch.len()).collect();
        let data: Vec<&[u8]> = batch.iter().map(Bytes::as_ref).collect();
        execute(tx, &sql, &[&owner, &indexes, &data]).await?;
        first = indexes.last().map_or(first, |last| last + 1);
    }
    Ok(())
}
