//! Checks of the [`FileStorage`] contract.

use bytes::Bytes;

use crate::{DocumentId, FileId, FileMetadata, FileStorage, StorageError};

/// A file of `chunk_count` chunks of `chunk_size` bytes (the last one shorter), each filled
/// with bytes derived from `seed` and its index so that chunks never compare equal by accident.
pub(super) fn file(seed: u8, chunk_size: u32, chunk_count: u32) -> (FileMetadata, Vec<Bytes>) {
    let chunks: Vec<Bytes> = (0..chunk_count)
        .map(|i| {
            let len = if i + 1 == chunk_count {
                chunk_size / 2 + 1
            } else {
                chunk_size
            };
            let bytes: Vec<u8> = (0..len)
                .map(|j| seed ^ (i.wrapping_mul(31).wrapping_add(j) % 251).to_le_bytes()[0])
                .collect();
            Bytes::from(bytes)
        })
        .collect();
    let size = chunks.iter().map(|c| c.len() as u64).sum();
    let metadata = FileMetadata::new(
        FileId::new([seed; 32]),
        format!("file-{seed}.bin"),
        size,
        "application/octet-stream",
        chunk_size,
        chunk_count,
    );
    (metadata, chunks)
}

async fn put<S: FileStorage>(storage: &S, metadata: &FileMetadata, chunks: &[Bytes]) {
    storage
        .put_file(metadata.clone(), chunks.to_vec())
        .await
        .unwrap_or_else(|e| panic!("put_file of {} failed: {e:?}", metadata.id));
}

fn assert_not_found(result: Result<Bytes, StorageError>, what: &str) {
    match result {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("{what} gave {other:?}, not NotFound"),
    }
}

pub(super) async fn file_round_trips_metadata_and_chunks<S: FileStorage>(storage: S) {
    let doc = DocumentId::from("conformance/files");
    let (metadata, chunks) = file(1, 64 * 1024, 3);
    let metadata = metadata
        .with_document(doc)
        .with_encrypted(true)
        .with_last_modified(1_700_000_000_123);
    put(&storage, &metadata, &chunks).await;

    assert_eq!(
        storage
            .file_metadata(&metadata.id)
            .await
            .expect("file_metadata"),
        Some(metadata.clone()),
        "metadata did not round-trip"
    );
    for (index, chunk) in (0..).zip(&chunks) {
        let read = storage
            .chunk(&metadata.id, index)
            .await
            .unwrap_or_else(|e| panic!("chunk {index} failed: {e:?}"));
        assert!(read == chunk, "chunk {index} came back different");
    }
}

pub(super) async fn missing_files_and_chunks_are_not_found<S: FileStorage>(storage: S) {
    let (metadata, chunks) = file(2, 16, 2);
    put(&storage, &metadata, &chunks).await;
    assert_not_found(
        storage.chunk(&metadata.id, 2).await,
        "the chunk just past the end",
    );
    assert_not_found(
        storage.chunk(&metadata.id, u32::MAX).await,
        "chunk u32::MAX",
    );

    let unknown = FileId::new([0xee; 32]);
    assert_not_found(
        storage.chunk(&unknown, 0).await,
        "a chunk of an unknown file",
    );
    assert_eq!(
        storage
            .file_metadata(&unknown)
            .await
            .expect("file_metadata"),
        None
    );
}

pub(super) async fn wrong_chunk_count_is_rejected<S: FileStorage>(storage: S) {
    let (metadata, chunks) = file(3, 16, 3);
    for given in [&chunks[..2], &[chunks.clone(), chunks.clone()].concat()[..]] {
        match storage.put_file(metadata.clone(), given.to_vec()).await {
            Err(StorageError::InvalidRequest { .. }) => {}
            other => panic!(
                "a file declaring 3 chunks put with {} gave {other:?}, not InvalidRequest",
                given.len()
            ),
        }
    }
    assert_eq!(
        storage
            .file_metadata(&metadata.id)
            .await
            .expect("file_metadata"),
        None,
        "a rejected put stored the file"
    );
}

pub(super) async fn files_of_document_lists_only_its_files<S: FileStorage>(storage: S) {
    let a = DocumentId::from("conformance/a");
    let b = DocumentId::from("conformance/b");
    let mut of_a = Vec::new();
    for (seed, doc) in [(10, Some(&a)), (11, Some(&b)), (12, Some(&a)), (13, None)] {
        let (metadata, chunks) = file(seed, 8, 1);
        let metadata = match doc {
            Some(doc) => metadata.with_document(doc.clone()),
            None => metadata,
        };
        put(&storage, &metadata, &chunks).await;
        if doc == Some(&a) {
            of_a.push(metadata);
        }
    }

    let mut listed = storage
        .files_of_document(&a)
        .await
        .expect("files_of_document");
    listed.sort_by_key(|m| m.id);
    of_a.sort_by_key(|m| m.id);
    assert_eq!(
        listed, of_a,
        "files_of_document(a) lists other files or misses some"
    );
    let of_b = storage
        .files_of_document(&b)
        .await
        .expect("files_of_document");
    assert_eq!(of_b.len(), 1, "b has one file, listed {}", of_b.len());
    let none = storage
        .files_of_document(&DocumentId::from("conformance/none"))
        .await
        .expect("files_of_document");
    assert!(none.is_empty(), "a document without files lists {none:?}");
}

pub(super) async fn putting_an_existing_file_changes_nothing<S: FileStorage>(storage: S) {
    let (metadata, chunks) = file(20, 16, 2);
    put(&storage, &metadata, &chunks).await;
    // Content-addressed: a second put of the id is a no-op, whatever it says.
    let mut renamed = metadata.clone();
    renamed.filename = "renamed.bin".into();
    let other_chunks = vec![Bytes::from_static(b"other"), Bytes::from_static(b"chunks")];
    storage
        .put_file(renamed, other_chunks)
        .await
        .unwrap_or_else(|e| panic!("a second put of the same id failed: {e:?}"));

    assert_eq!(
        storage
            .file_metadata(&metadata.id)
            .await
            .expect("file_metadata"),
        Some(metadata.clone()),
        "a second put replaced the metadata"
    );
    for (index, chunk) in (0..).zip(&chunks) {
        let read = storage.chunk(&metadata.id, index).await.expect("chunk");
        assert!(read == chunk, "a second put replaced chunk {index}");
    }
}

pub(super) async fn deleted_file_is_gone<S: FileStorage>(storage: S) {
    let doc = DocumentId::from("conformance/files");
    let (metadata, chunks) = file(30, 16, 2);
    let metadata = metadata.with_document(doc.clone());
    let (kept, kept_chunks) = file(31, 16, 1);
    let kept = kept.with_document(doc.clone());
    put(&storage, &metadata, &chunks).await;
    put(&storage, &kept, &kept_chunks).await;

    storage
        .delete_file(&metadata.id)
        .await
        .expect("delete_file");
    assert_eq!(
        storage
            .file_metadata(&metadata.id)
            .await
            .expect("file_metadata"),
        None
    );
    assert_not_found(
        storage.chunk(&metadata.id, 0).await,
        "a chunk of a deleted file",
    );
    assert_eq!(
        storage
            .files_of_document(&doc)
            .await
            .expect("files_of_document"),
        vec![kept.clone()],
        "a deleted file is still listed, or the other file went too"
    );
    assert!(storage.chunk(&kept.id, 0).await.expect("chunk") == kept_chunks[0]);

    storage
        .delete_file(&metadata.id)
        .await
        .expect("a second delete is Ok");
    storage
        .delete_file(&FileId::new([0xdd; 32]))
        .await
        .expect("deleting an unknown file is Ok");
    // The id is free again.
    put(&storage, &metadata, &chunks).await;
    assert_eq!(
        storage.chunk(&metadata.id, 1).await.expect("chunk"),
        chunks[1]
    );
}

pub(super) async fn streamed_file_is_stored_whole_or_not_at_all<S: FileStorage>(storage: S) {
    use futures::stream::{self, StreamExt};

    let (metadata, chunks) = file(32, 16, 4);
    let streamed = stream::iter(chunks.clone().into_iter().map(Ok)).boxed();
    storage
        .put_file_stream(metadata.clone(), streamed)
        .await
        .expect("put_file_stream");
    assert_eq!(
        storage.file_metadata(&metadata.id).await.expect("metadata"),
        Some(metadata.clone())
    );
    for (index, chunk) in (0u32..).zip(&chunks) {
        assert_eq!(
            &storage.chunk(&metadata.id, index).await.expect("chunk"),
            chunk,
            "streamed chunk {index} reads back different"
        );
    }

    // A stream that fails part way, and one a chunk short: nothing is stored.
    let (failing, chunks) = file(33, 16, 4);
    let broken = stream::iter(chunks.into_iter().take(2).map(Ok))
        .chain(stream::once(async {
            Err(StorageError::InvalidRequest {
                reason: "the source went away".into(),
            })
        }))
        .boxed();
    assert!(
        storage
            .put_file_stream(failing.clone(), broken)
            .await
            .is_err(),
        "a failing stream was stored"
    );
    let (short, chunks) = file(34, 16, 4);
    let truncated = stream::iter(chunks.into_iter().take(3).map(Ok)).boxed();
    match storage.put_file_stream(short.clone(), truncated).await {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("a stream one chunk short gave {other:?}, not InvalidRequest"),
    }
    for id in [failing.id, short.id] {
        assert_eq!(
            storage.file_metadata(&id).await.expect("metadata"),
            None,
            "a refused stream left file {id}"
        );
    }
}
