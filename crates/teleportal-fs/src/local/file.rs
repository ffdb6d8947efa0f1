//! [`FileStorage`] for [`LocalFileStorage`]: each file a directory under `files`, made whole
//! in `tmp` and renamed into place, and listed by document through marker files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use teleportal_storage::{DocumentId, FileId, FileMetadata, FileStorage, StorageError};

use super::codec::{self, Extent};
use super::disk::{self, blocking, io_error};
use super::layout::{self, DATA, INDEX, Layout, META};
use super::{Inner, LocalFileStorage, not_found};

/// A finished file, open for reading.
#[derive(Debug)]
pub(super) struct OpenFile {
    metadata: FileMetadata,
    extents: Vec<Extent>,
    data: File,
    path: PathBuf,
}

impl OpenFile {
    /// Opens file `id`; `None` if there is none. Blocking.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when its `meta` or `index` is missing or malformed, the
    /// index does not list each chunk once in order, or it points past the end of `data`.
    fn load(layout: &Layout, id: &FileId) -> Result<Option<Self>, StorageError> {
        let dir = layout.file_dir(id);
        match Self::load_from(&dir, id) {
            // Deleted while being read (the directory is renamed away in one step): the
            // file is simply gone, not damaged.
            Err(_) if !disk::exists(&dir) => Ok(None),
            result => result,
        }
    }

    fn load_from(dir: &Path, id: &FileId) -> Result<Option<Self>, StorageError> {
        let Some(metadata) = read_meta(dir, id)? else {
            return Ok(None);
        };
        let index =
            disk::read_bounded(&dir.join(INDEX), codec::max_index_len(metadata.chunk_count))?
                .ok_or_else(|| StorageError::corrupt("file has no index"))?;
        let index = codec::decode_index(&index)?;
        // A finished file has every chunk: entries 0, 1, … chunk_count - 1.
        let dense = (0..)
            .zip(&index)
            .all(|(expected, (index, _))| expected == *index);
        if !dense || u32::try_from(index.len()).ok() != Some(metadata.chunk_count) {
            return Err(StorageError::corrupt(
                "file index does not list every chunk",
            ));
        }
        let path = dir.join(DATA);
        let data = disk::open_data(&path, false)?;
        let len = data.metadata().map_err(io_error("stat", &path))?.len();
        if index
            .iter()
            .any(|(_, e)| e.end().is_none_or(|end| end > len))
        {
            return Err(StorageError::corrupt(
                "file index points past the end of data",
            ));
        }
        let extents = index.into_iter().map(|(_, extent)| extent).collect();
        Ok(Some(OpenFile {
            metadata,
            extents,
            data,
            path,
        }))
    }

    /// The file's metadata.
    pub(super) fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    /// Reads chunk `index`. Blocking.
    fn chunk(&self, index: u32) -> Result<Bytes, StorageError> {
        let extent = usize::try_from(index)
            .ok()
            .and_then(|i| self.extents.get(i))
            .ok_or_else(|| not_found("chunk", format!("{}/{index}", self.metadata.id)))?;
        disk::read_extent(&self.data, *extent, &self.path)
    }
}

/// The metadata in `dir/meta`, for file `id`; `None` if `dir` does not exist. Blocking.
fn read_meta(dir: &Path, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
    let Some(bytes) = disk::read_bounded(&dir.join(META), codec::MAX_META_LEN)? else {
        return if disk::exists(dir) {
            Err(StorageError::corrupt("file has no meta"))
        } else {
            Ok(None)
        };
    };
    // A finished upload keeps its start time; a file needs none.
    let (metadata, _) = codec::decode_meta(&bytes)?;
    if metadata.id != *id {
        return Err(StorageError::corrupt("file is stored under another id"));
    }
    Ok(Some(metadata))
}

impl Inner {
    /// Writes a whole file into a staging directory, then renames it into `files`; a no-op
    /// if the file exists. Blocking.
    fn put_file(&self, metadata: &FileMetadata, chunks: &[Bytes]) -> Result<(), StorageError> {
        if disk::exists(&self.layout.file_dir(&metadata.id)) {
            return Ok(()); // Content-addressed: the stored file has these very bytes.
        }
        let staging = self.layout.scratch("put");
        let result = stage_file(&staging, metadata, chunks).and_then(|()| {
            self.add_marker(metadata)?;
            self.publish(&staging, &metadata.id, self.layout.tmp())
        });
        if result.is_err() {
            // Best effort: `tmp` is emptied on the next open anyway.
            let _ = disk::remove_any(&staging);
        }
        result
    }

    /// Renames the complete file directory `from` (synced) to `files/<id>`, unless a file
    /// `id` exists already: then `from` is discarded (content-addressed, same bytes).
    /// Durable when it returns. Blocking.
    pub(super) fn publish(
        &self,
        from: &Path,
        id: &FileId,
        from_parent: &Path,
    ) -> Result<(), StorageError> {
        let to = self.layout.file_dir(id);
        if !disk::exists(&to) {
            match fs::rename(from, &to) {
                Ok(()) => {
                    disk::sync_dir(self.layout.files())?;
                    return disk::sync_dir(from_parent);
                }
                // Lost a race with another put or finish of the same id.
                Err(_) if disk::exists(&to) => {}
                Err(e) => return Err(io_error("rename", from)(e)),
            }
        }
        disk::discard(&self.layout, from, from_parent).map(drop)
    }

    /// Creates (durably) the marker listing file `metadata.id` under its document, if it has
    /// one. Done before the file appears, so a listed-but-missing file (after a crash) is
    /// possible and skipped, an unlisted file is not. Blocking.
    pub(super) fn add_marker(&self, metadata: &FileMetadata) -> Result<(), StorageError> {
        let Some(doc) = &metadata.document else {
            return Ok(());
        };
        let dir = self.layout.document_dir(doc);
        fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let marker = dir.join(metadata.id.to_string());
        File::create(&marker).map_err(io_error("create", &marker))?;
        // The marker's entry, and each level create_dir_all may have made.
        let mut level = dir.as_path();
        loop {
            disk::sync_dir(level)?;
            match level.parent() {
                Some(parent) if parent.starts_with(self.layout.documents()) => level = parent,
                _ => return Ok(()),
            }
        }
    }

    /// The files listed under `doc`, sorted by id. Blocking.
    fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let dir = self.layout.document_dir(doc);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", &dir)(e)),
        };
        let mut files = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list", &dir))?;
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            let Some(id) = layout::parse_file_id(&entry.file_name()).filter(|_| is_file) else {
                continue; // A level of a longer document name.
            };
            // A marker outlives its file after a crash mid-delete, or names a file stored
            // under another document by a racing put: the file's own metadata decides.
            if let Some(metadata) = read_meta(&self.layout.file_dir(&id), &id)?
                && metadata.document.as_ref() == Some(doc)
            {
                files.insert(id, metadata);
            }
        }
        Ok(files.into_values().collect())
    }

    /// Removes file `id`: unlisted, then renamed away in one step, then deleted. Unlisting
    /// first means a `put_file` of the same id racing this delete either finds the file (and
    /// leaves it to go) or lists its own copy after, never a file without its marker. Blocking.
    fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        let dir = self.layout.file_dir(id);
        // An unreadable meta only costs a stale marker, which listing skips.
        let metadata = read_meta(&dir, id).ok().flatten();
        if let Some(doc) = metadata.and_then(|m| m.document) {
            let marker = self.layout.document_dir(&doc).join(id.to_string());
            disk::remove_any(&marker)?;
        }
        disk::discard(&self.layout, &dir, self.layout.files())?;
        self.files().invalidate(id);
        Ok(())
    }
}

/// Writes `meta`, `data` and `index` of a new file into `staging`, all synced.
fn stage_file(
    staging: &Path,
    metadata: &FileMetadata,
    chunks: &[Bytes],
) -> Result<(), StorageError> {
    fs::create_dir(staging).map_err(io_error("create", staging))?;
    let meta = codec::encode_meta_checked(metadata, None)?;
    let mut index = Vec::with_capacity(chunks.len());
    let mut offset = 0u64;
    for (i, chunk) in (0u32..).zip(chunks) {
        let len = u32::try_from(chunk.len()).map_err(|_| StorageError::InvalidRequest {
            reason: format!("chunk {i} of file {} is over 4 GiB", metadata.id),
        })?;
        index.push((i, Extent { offset, len }));
        offset += u64::from(len);
    }
    let path = staging.join(DATA);
    File::create_new(&path)
        .and_then(|mut data| {
            chunks.iter().try_for_each(|chunk| data.write_all(chunk))?;
            data.sync_all()
        })
        .map_err(io_error("write", &path))?;
    disk::write_new(&staging.join(META), &meta)?;
    disk::write_new(
        &staging.join(INDEX),
        &codec::encode_index(index.into_iter()),
    )?;
    disk::sync_dir(staging)
}

impl LocalFileStorage {
    /// File `id`, from the cache or opened and cached.
    async fn open_file(&self, id: &FileId) -> Result<Option<Arc<OpenFile>>, StorageError> {
        let generation = {
            let mut cache = self.inner.files();
            if let Some(file) = cache.get(id) {
                return Ok(Some(file));
            }
            cache.generation()
        };
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || {
            let Some(file) = OpenFile::load(&inner.layout, &id)? else {
                return Ok(None);
            };
            let file = Arc::new(file);
            inner.files().insert(Arc::clone(&file), generation);
            Ok(Some(file))
        })
        .await
    }
}

// `put_file_stream` is the default (collect, then `put_file`): this store finishes its own
// uploads in place (`FinishUpload`).
#[async_trait]
impl FileStorage for LocalFileStorage {
    /// Writes the file in `tmp`, syncs it, lists it under its document and renames it into
    /// `files`: a reader sees all of it or nothing.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        metadata.check_chunk_count(chunks.len())?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.put_file(&metadata, &chunks)).await
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        Ok(self.open_file(id).await?.map(|f| f.metadata().clone()))
    }

    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let file = self
            .open_file(id)
            .await?
            .ok_or_else(|| not_found("file", id))?;
        blocking(move || file.chunk(index)).await
    }

    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        blocking(move || inner.files_of_document(&doc)).await
    }

    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || inner.delete_file(&id)).await
    }
}
