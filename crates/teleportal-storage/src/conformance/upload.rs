//! Checks of the [`TemporaryUploadStorage`] contract.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::file::file;
use crate::{FileId, FileMetadata, StorageError, TemporaryUploadStorage, UploadProgress};

async fn begin<S: TemporaryUploadStorage>(storage: &S, metadata: &FileMetadata) -> UploadProgress {
    storage
        .begin(metadata.clone())
        .await
        .unwrap_or_else(|e| panic!("begin of {} failed: {e:?}", metadata.id))
}

async fn put<S: TemporaryUploadStorage>(storage: &S, id: &FileId, index: u32, chunk: &Bytes) {
    storage
        .put_chunk(id, index, chunk.clone())
        .await
        .unwrap_or_else(|e| panic!("put_chunk {index} of {id} failed: {e:?}"));
}

async fn progress<S: TemporaryUploadStorage>(storage: &S, id: &FileId) -> Option<UploadProgress> {
    storage.progress(id).await.expect("progress")
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    match result {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("{what} gave {other:?}, not InvalidRequest"),
    }
}

pub(super) async fn new_upload_has_no_chunks<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, _) = file(1, 16, 3);
    let started = begin(&storage, &metadata).await;
    assert_eq!(started.metadata, metadata, "begin returned other metadata");
    assert!(
        started.received.is_empty(),
        "a new upload has chunks {:?}",
        started.received
    );
    assert!(!started.is_complete());
    assert_eq!(progress(&storage, &metadata.id).await, Some(started));
    assert_eq!(progress(&storage, &FileId::new([0xee; 32])).await, None);
}

pub(super) async fn received_chunks_are_listed_in_order<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(2, 16, 4);
    begin(&storage, &metadata).await;
    put(&storage, &metadata.id, 3, &chunks[3]).await;
    put(&storage, &metadata.id, 0, &chunks[0]).await;
    put(&storage, &metadata.id, 3, &chunks[3]).await; // Again: still one index.
    let now = progress(&storage, &metadata.id)
        .await
        .expect("the upload exists");
    assert_eq!(
        now.received,
        [0, 3],
        "received chunks are not listed ascending, once each"
    );
    assert!(!now.is_complete());
}

pub(super) async fn received_chunks_read_back<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(12, 16, 3);
    begin(&storage, &metadata).await;
    put(&storage, &metadata.id, 2, &Bytes::from_static(b"stale")).await;
    put(&storage, &metadata.id, 2, &chunks[2]).await;
    put(&storage, &metadata.id, 0, &chunks[0]).await;
    for index in [0, 2] {
        assert_eq!(
            storage
                .received_chunk(&metadata.id, index)
                .await
                .unwrap_or_else(|e| panic!("received_chunk {index} failed: {e:?}")),
            chunks[index as usize],
            "received chunk {index} is not the latest bytes stored"
        );
    }
    for (id, index, what) in [
        (metadata.id, 1, "a chunk not received"),
        (metadata.id, 3, "a chunk past the end"),
        (FileId::new([0xee; 32]), 0, "a chunk of an unknown upload"),
    ] {
        match storage.received_chunk(&id, index).await {
            Err(StorageError::NotFound { .. }) => {}
            other => panic!("{what} gave {other:?}, not NotFound"),
        }
    }
}

pub(super) async fn interrupted_upload_resumes<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(3, 16, 3);
    let started = begin(&storage, &metadata).await;
    put(&storage, &metadata.id, 1, &chunks[1]).await;
    // The connection drops; the client reconnects and begins the same upload again.
    let resumed = begin(&storage, &metadata).await;
    assert_eq!(resumed.received, [1], "resuming lost or invented chunks");
    assert_eq!(
        resumed.started_at, started.started_at,
        "resuming restarted the session"
    );
    assert_eq!(resumed.metadata, metadata);

    put(&storage, &metadata.id, 0, &chunks[0]).await;
    put(&storage, &metadata.id, 2, &chunks[2]).await;
    let (taken, taken_chunks) = storage.take(&metadata.id).await.expect("take");
    assert_eq!(taken, metadata);
    assert_eq!(
        taken_chunks, chunks,
        "chunks from before the interruption were lost"
    );
}

pub(super) async fn conflicting_upload_is_rejected<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(4, 16, 3);
    begin(&storage, &metadata).await;
    put(&storage, &metadata.id, 0, &chunks[0]).await;
    let before = progress(&storage, &metadata.id).await;

    let mut renamed = metadata.clone();
    renamed.filename = "other.bin".into();
    let mut recut = metadata.clone();
    recut.chunk_count = 5;
    for (conflict, what) in [(renamed, "another name"), (recut, "another chunk count")] {
        assert_invalid(
            storage.begin(conflict).await,
            &format!("begin of the same id with {what}"),
        );
        assert_eq!(
            progress(&storage, &metadata.id).await,
            before,
            "a rejected begin changed the session"
        );
    }
}

pub(super) async fn chunk_outside_the_upload_is_rejected<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, _) = file(5, 16, 3);
    begin(&storage, &metadata).await;
    for index in [3, u32::MAX] {
        assert_invalid(
            storage
                .put_chunk(&metadata.id, index, Bytes::from_static(b"x"))
                .await,
            &format!("chunk {index} of 3"),
        );
    }
    let now = progress(&storage, &metadata.id)
        .await
        .expect("the upload exists");
    assert!(now.received.is_empty(), "a rejected chunk was recorded");

    match storage
        .put_chunk(&FileId::new([0xee; 32]), 0, Bytes::from_static(b"x"))
        .await
    {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("a chunk for an unknown upload gave {other:?}, not NotFound"),
    }
}

pub(super) async fn incomplete_upload_cannot_be_taken<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(6, 16, 3);
    begin(&storage, &metadata).await;
    assert_invalid(storage.take(&metadata.id).await, "take with no chunks");
    put(&storage, &metadata.id, 0, &chunks[0]).await;
    put(&storage, &metadata.id, 2, &chunks[2]).await;
    let before = progress(&storage, &metadata.id).await;
    assert_invalid(
        storage.take(&metadata.id).await,
        "take with chunk 1 missing",
    );
    assert_eq!(
        progress(&storage, &metadata.id).await,
        before,
        "a refused take changed the session"
    );
    // The session is intact: finishing it still works.
    put(&storage, &metadata.id, 1, &chunks[1]).await;
    let (_, taken) = storage
        .take(&metadata.id)
        .await
        .expect("take once complete");
    assert_eq!(taken, chunks);
}

pub(super) async fn complete_upload_is_taken_in_index_order<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(7, 16, 4);
    begin(&storage, &metadata).await;
    put(&storage, &metadata.id, 1, &Bytes::from_static(b"stale")).await;
    for index in [2, 0, 3, 1] {
        put(&storage, &metadata.id, index, &chunks[index as usize]).await;
    }
    let now = progress(&storage, &metadata.id)
        .await
        .expect("the upload exists");
    assert!(
        now.is_complete(),
        "all chunks arrived, yet progress is {:?}",
        now.received
    );

    let (taken, taken_chunks) = storage.take(&metadata.id).await.expect("take");
    assert_eq!(taken, metadata);
    assert_eq!(
        taken_chunks, chunks,
        "take did not return the latest chunks in index order"
    );
    assert_eq!(
        progress(&storage, &metadata.id).await,
        None,
        "take left the session"
    );
    assert!(
        storage.take(&metadata.id).await.is_err(),
        "a second take of the same upload succeeded"
    );
}

pub(super) async fn aborted_upload_is_gone<S: TemporaryUploadStorage>(storage: S) {
    let (metadata, chunks) = file(8, 16, 2);
    let (other, _) = file(9, 16, 2);
    begin(&storage, &metadata).await;
    begin(&storage, &other).await;
    put(&storage, &metadata.id, 0, &chunks[0]).await;
    storage.abort(&metadata.id).await.expect("abort");
    assert_eq!(
        progress(&storage, &metadata.id).await,
        None,
        "abort left the session"
    );
    assert!(
        progress(&storage, &other.id).await.is_some(),
        "abort removed another session"
    );
    storage
        .abort(&metadata.id)
        .await
        .expect("a second abort is Ok");
    storage
        .abort(&FileId::new([0xee; 32]))
        .await
        .expect("aborting an unknown upload is Ok");
    // Beginning again starts from nothing.
    assert!(
        begin(&storage, &metadata).await.received.is_empty(),
        "chunks outlived abort"
    );
}

/// Sessions started 20 ms apart, with the cut between them: the backend's `started_at` must
/// be finer than that.
pub(super) async fn expire_removes_only_older_sessions<S: TemporaryUploadStorage>(storage: S) {
    let (old, chunks) = file(10, 16, 2);
    let (new, _) = file(11, 16, 2);
    let old_started = begin(&storage, &old).await.started_at;
    put(&storage, &old.id, 0, &chunks[0]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new_started = begin(&storage, &new).await.started_at;
    assert!(
        old_started < cut && cut <= new_started,
        "started_at is not when begin ran ({old_started:?}, {new_started:?}; cut {cut:?})"
    );

    assert_eq!(
        storage
            .expire(SystemTime::UNIX_EPOCH)
            .await
            .expect("expire"),
        0,
        "expire(UNIX_EPOCH) removed sessions"
    );
    assert_eq!(
        storage.expire(cut).await.expect("expire"),
        1,
        "expire removed another count"
    );
    assert_eq!(
        progress(&storage, &old.id).await,
        None,
        "the older session survived"
    );
    assert!(
        progress(&storage, &new.id).await.is_some(),
        "the newer session expired"
    );
    assert_eq!(
        storage.expire(cut).await.expect("expire"),
        0,
        "expire is not idempotent"
    );
}
