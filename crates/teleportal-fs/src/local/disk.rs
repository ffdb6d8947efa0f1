//! Filesystem steps with the syncs that make them durable, and I/O errors that name their
//! path.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use teleportal_storage::StorageError;

use super::codec::Extent;
use super::layout::Layout;

/// The backend name in [`StorageError::Backend`].
pub(super) const BACKEND: &str = "local";

/// An I/O failure and the path it happened on (the source is the OS error).
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", path.display())]
struct IoError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Maps an [`io::Error`] of `op` on `path` to [`StorageError::Backend`].
pub(super) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::backend(BACKEND, IoError { op, path, source })
}

/// Runs blocking filesystem work off the async workers.
///
/// # Errors
/// `f`'s error; [`StorageError::Backend`] if the task panicked or the runtime is shutting
/// down.
pub(super) async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::backend(BACKEND, e))?
}

/// Makes `dir`'s entries (creations, renames, removals in it) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync", dir))
}

/// Creates `path` (it must not exist) with `bytes`, synced.
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    File::create_new(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io_error("write", path))
}

/// Replaces `dir/name` with `bytes` atomically: a reader (or a restart) sees the old
/// contents or the new, whole. Durable when it returns.
pub(super) fn replace(dir: &Path, name: &str, tmp: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(tmp);
    let path = dir.join(name);
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io_error("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_error("rename", &tmp))?;
    sync_dir(dir)
}

/// Reads `path` whole if it holds at most `limit` bytes; `None` if it does not exist.
///
/// # Errors
/// [`StorageError::Corrupt`] when the file is longer than `limit` (so a damaged file never
/// makes a huge allocation); [`StorageError::Backend`] when it cannot be read.
pub(super) fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StorageError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("open", path)(e)),
    };
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    if len > limit {
        return Err(StorageError::corrupt(
            "stored file is longer than its contents can be",
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` holds to the bound even if the file grew since the stat.
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    Ok(Some(bytes))
}

/// Removes the file or directory tree at `path`, if there is one.
pub(super) fn remove_any(path: &Path) -> Result<(), StorageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Removes directory `dir` so that a reader sees all of it or none: it is first renamed into
/// `tmp` (one atomic step, synced in `parent`), then deleted at leisure. `false` if it did
/// not exist.
pub(super) fn discard(layout: &Layout, dir: &Path, parent: &Path) -> Result<bool, StorageError> {
    let trash = layout.scratch("trash");
    match fs::rename(dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error("rename", dir)(e)),
    }
    sync_dir(parent)?;
    remove_any(&trash)?;
    Ok(true)
}

/// Whether `path` exists (an error to stat it counts as existing, so nothing is overwritten
/// on a guess).
pub(super) fn exists(path: &Path) -> bool {
    !matches!(fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Reads the chunk at `extent` of `data` (named `path` in errors). Blocking.
///
/// # Errors
/// [`StorageError::Corrupt`] when `data` ends before the extent does.
pub(super) fn read_extent(data: &File, extent: Extent, path: &Path) -> Result<Bytes, StorageError> {
    let len = usize::try_from(extent.len)
        .map_err(|_| StorageError::corrupt("chunk is longer than memory can hold"))?;
    let mut buf = vec![0; len];
    match data.read_exact_at(&mut buf, extent.offset) {
        Ok(()) => Ok(Bytes::from(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StorageError::corrupt(
            "chunk lies past the end of its data file",
        )),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

/// Opens the `data` file at `path`, for reading and, with `write`, appending.
///
/// # Errors
/// [`StorageError::Corrupt`] when it is missing (its directory has `meta` and `index`, so
/// it should be there); [`StorageError::Backend`] when it cannot be opened.
pub(super) fn open_data(path: &Path, write: bool) -> Result<File, StorageError> {
    match fs::OpenOptions::new().read(true).write(write).open(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(StorageError::corrupt("stored data file is missing"))
        }
        Err(e) => Err(io_error("open", path)(e)),
    }
}
