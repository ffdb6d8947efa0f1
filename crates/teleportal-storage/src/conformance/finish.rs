//! Checks of the [`FinishUpload`] contract.

use super::file::file;
use crate::{DocumentId, FileId, FinishUpload, StorageError, TemporaryUploadStorage};

async fn upload_all<S: TemporaryUploadStorage>(
    storage: &S,
    metadata: &crate::FileMetadata,
    chunks: &[bytes::Bytes],
) {
    storage.begin(metadata.clone()).await.expect("begin");
    for (index, chunk) in (0u32..).zip(chunks) {
        storage
            .put_chunk(&metadata.id, index, chunk.clone())
            .await
            .unwrap_or_else(|e| panic!("put_chunk {index} failed: {e:?}"));
    }
}

pub(super) async fn finished_upload_becomes_the_file<S: FinishUpload>(storage: S) {
    let (metadata, chunks) = file(40, 16, 3);
    let metadata = metadata.with_document(DocumentId::from("room/finish"));
    upload_all(&storage, &metadata, &chunks).await;
    let finished = storage.finish_upload(&metadata.id).await.expect("finish");
    assert_eq!(finished, metadata, "finish_upload returned other metadata");
    assert_eq!(
        storage.file_metadata(&metadata.id).await.expect("metadata"),
        Some(metadata.clone()),
        "the finished file has other metadata"
    );
    for (index, chunk) in (0u32..).zip(&chunks) {
        assert_eq!(
            &storage.chunk(&metadata.id, index).await.expect("chunk"),
            chunk,
            "chunk {index} of the finished file differs from the upload's"
        );
    }
    assert_eq!(
        storage
            .files_of_document(&DocumentId::from("room/finish"))
            .await
            .expect("files_of_document"),
        std::slice::from_ref(&metadata),
        "the finished file is not listed under its document"
    );
    assert_eq!(
        storage.progress(&metadata.id).await.expect("progress"),
        None,
        "finishing left the session"
    );
    match storage.finish_upload(&metadata.id).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("finishing a finished upload again gave {other:?}, not NotFound"),
    }
}

pub(super) async fn incomplete_upload_is_not_finished<S: FinishUpload>(storage: S) {
    let (metadata, chunks) = file(41, 16, 3);
    storage.begin(metadata.clone()).await.expect("begin");
    for index in [0, 2] {
        storage
            .put_chunk(&metadata.id, index, chunks[index as usize].clone())
            .await
            .expect("put_chunk");
    }
    let before = storage.progress(&metadata.id).await.expect("progress");
    match storage.finish_upload(&metadata.id).await {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("finishing with chunk 1 missing gave {other:?}, not InvalidRequest"),
    }
    assert_eq!(
        storage.progress(&metadata.id).await.expect("progress"),
        before,
        "a refused finish changed the session"
    );
    assert_eq!(
        storage.file_metadata(&metadata.id).await.expect("metadata"),
        None,
        "a refused finish stored a file"
    );
    storage
        .put_chunk(&metadata.id, 1, chunks[1].clone())
        .await
        .expect("put_chunk");
    storage
        .finish_upload(&metadata.id)
        .await
        .expect("finish once complete");
    match storage.finish_upload(&FileId::new([0xee; 32])).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("finishing an unknown upload gave {other:?}, not NotFound"),
    }
}

pub(super) async fn finishing_a_stored_file_keeps_it<S: FinishUpload>(storage: S) {
    let (metadata, chunks) = file(42, 16, 2);
    storage
        .put_file(metadata.clone(), chunks.clone())
        .await
        .expect("put_file");
    // The same id uploaded again (as a client that did not ask first would).
    upload_all(&storage, &metadata, &chunks).await;
    storage
        .finish_upload(&metadata.id)
        .await
        .expect("finishing an upload of a stored file");
    assert_eq!(
        storage.progress(&metadata.id).await.expect("progress"),
        None,
        "the session survived"
    );
    for (index, chunk) in (0u32..).zip(&chunks) {
        assert_eq!(
            &storage.chunk(&metadata.id, index).await.expect("chunk"),
            chunk
        );
    }
}
