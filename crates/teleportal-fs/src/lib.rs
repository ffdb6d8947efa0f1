//! Filesystem storage for Teleportal: [`LocalFileStorage`] keeps finished files and uploads in
//! progress as plain files under a data directory.
//!
//! **Unix only.** It relies on positioned reads and writes (`std::os::unix::fs::FileExt`) and
//! on directory renames and syncs behaving as POSIX says; on other targets this crate builds
//! empty.
//!
#![cfg_attr(
    unix,
    doc = r#"
```
use bytes::Bytes;
use teleportal_fs::LocalFileStorage;
use teleportal_storage::{FileId, FileMetadata, FileStorage, FinishUpload, TemporaryUploadStorage};

# tokio::runtime::Runtime::new().unwrap().block_on(async {
let dir = tempfile::tempdir()?;
let store = LocalFileStorage::open(dir.path())?;
let meta = FileMetadata::new(FileId::new([7; 32]), "hello.txt", 5, "text/plain", 5, 1);
store.begin(meta.clone()).await?;
store.put_chunk(&meta.id, 0, Bytes::from_static(b"hello")).await?;
store.finish_upload(&meta.id).await?; // a rename: the bytes were written once, on arrival
assert_eq!(store.chunk(&meta.id, 0).await?, Bytes::from_static(b"hello"));
# Ok::<(), Box<dyn std::error::Error>>(())
# }).unwrap();
```
"#
)]
//!
//! # Why this shape
//! - An upload is written to disk once as it arrives, synced in 64 MiB checkpoints, and
//!   finishing it (`FinishUpload`) is a directory rename, so a 1 GiB file never passes
//!   through memory.
//! - It implements `FileStorage`, `TemporaryUploadStorage` and `FinishUpload` of
//!   `teleportal-storage` and passes their conformance suites, so it pairs with any document
//!   store (SQLite, PostgreSQL) and the encryption layer stacks on it.
//! - It is a crate of its own so that what keeps files elsewhere (S3, PostgreSQL) compiles
//!   none of it, and it needs no database.
//!
//! The facade crate `teleportal` re-exports this crate as `teleportal::fs` under its `fs`
//! feature (on by default).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

#[cfg(unix)]
mod local;

#[cfg(unix)]
pub use local::LocalFileStorage;
