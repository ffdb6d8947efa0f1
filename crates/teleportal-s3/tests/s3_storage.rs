//! Both stores against a real S3 server (s3s-fs in process, signatures checked): the shared
//! conformance suites on both runtimes, then what only S3 has: multipart uploads, ranged chunk
//! reads, URL configuration, credentials and writers on separate clients racing.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use support::{BUCKET, TestServer, fresh_prefix};
use teleportal_s3::{S3Config, S3DocumentStorage, S3FileStorage};
use teleportal_storage::conformance::{run_document_storage_suite, run_file_storage_suite};
use teleportal_storage::{
    AppendOptions, DocumentId, DocumentStorage, FileId, FileMetadata, FileStorage, StorageError,
};

async fn document_suite() {
    let server = TestServer::start().await;
    let store = server.object_store();
    run_document_storage_suite(|| {
        let store = Arc::clone(&store);
        async move { S3DocumentStorage::with_store(store, &fresh_prefix("documents")) }
    })
    .await;
}

async fn file_suite() {
    let server = TestServer::start().await;
    let store = server.object_store();
    run_file_storage_suite(|| {
        let store = Arc::clone(&store);
        async move { S3FileStorage::with_store(store, &fresh_prefix("files")) }
    })
    .await;
}

#[tokio::test]
async fn document_storage_conforms_on_current_thread() {
    document_suite().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_storage_conforms_on_multi_thread() {
    document_suite().await;
}

#[tokio::test]
async fn file_storage_conforms_on_current_thread() {
    file_suite().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_storage_conforms_on_multi_thread() {
    file_suite().await;
}

/// `count` chunks of `size` bytes (the last `last` bytes), each distinct.
fn chunks(size: usize, count: usize, last: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| {
            let len = if i + 1 == count { last } else { size };
            Bytes::from(
                (0..len)
                    .map(|j| u8::try_from((i * 7 + j * 13) % 251).expect("below 251"))
                    .collect::<Vec<u8>>(),
            )
        })
        .collect()
}

fn metadata_for(seed: u8, chunks: &[Bytes], chunk_size: u32) -> FileMetadata {
    FileMetadata::new(
        FileId::new([seed; 32]),
        format!("file-{seed}"),
        chunks.iter().map(|c| c.len() as u64).sum(),
        "application/octet-stream",
        chunk_size,
        u32::try_from(chunks.len()).expect("few chunks"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_uploads_in_parts_and_reads_back_by_range() {
    const MIB: usize = 1024 * 1024;
    let server = TestServer::start().await;
    let files = S3FileStorage::new(&server.config("large").part_size(5 * MIB)).expect("storage");
    // 12 MiB in 1 MiB chunks, the last one half a chunk: 11.5 MiB, three 5 MiB parts.
    let chunks = chunks(MIB, 12, MIB / 2);
    let metadata = metadata_for(1, &chunks, u32::try_from(MIB).expect("fits"));
    files
        .put_file(metadata.clone(), chunks.clone())
        .await
        .expect("put_file");

    assert_eq!(
        server.requests.upload_parts.load(Ordering::Relaxed),
        3,
        "11.5 MiB in 5 MiB parts"
    );
    assert_eq!(
        server.requests.completed_multipart.load(Ordering::Relaxed),
        1
    );

    // Out of order, then the last (short) chunk: each comes back exactly.
    for index in [5, 0, 11, 3] {
        let chunk = files.chunk(&metadata.id, index).await.expect("chunk");
        assert!(chunk == chunks[index as usize], "chunk {index} differs");
    }
    let ranges = server.requests.data_ranges.lock().unwrap().clone();
    let expected: Vec<_> = [5_u64, 0, 11, 3]
        .iter()
        .map(|i| {
            let first = i * MIB as u64;
            let len = if *i == 11 { MIB / 2 } else { MIB } as u64;
            Some(s3s::dto::Range::Int {
                first,
                last: Some(first + len - 1),
            })
        })
        .collect();
    assert_eq!(
        ranges, expected,
        "each chunk read is one ranged GET of its bytes"
    );
}

#[tokio::test]
async fn chunks_stream_reads_every_chunk_in_order_one_range_each() {
    let server = TestServer::start().await;
    let files = S3FileStorage::new(&server.config("stream")).expect("storage");
    let chunks = chunks(1000, 5, 10);
    let metadata = metadata_for(2, &chunks, 1000);
    files
        .put_file(metadata.clone(), chunks.clone())
        .await
        .expect("put_file");
    assert_eq!(server.requests.upload_parts.load(Ordering::Relaxed), 0);

    let streamed: Vec<Bytes> = files
        .chunks(&metadata.id)
        .await
        .expect("chunks")
        .try_collect()
        .await
        .expect("every chunk");
    assert_eq!(streamed, chunks);
    assert_eq!(server.requests.data_ranges.lock().unwrap().len(), 5);
    assert!(matches!(
        files.chunks(&FileId::new([9; 32])).await.map(drop),
        Err(StorageError::NotFound { .. })
    ));
}

#[tokio::test]
async fn uneven_chunks_read_back_exactly() {
    let server = TestServer::start().await;
    let files = S3FileStorage::new(&server.config("uneven")).expect("storage");
    // As encrypted chunks are: not the chunk size the metadata declares.
    let chunks = vec![
        Bytes::from_static(b"first chunk, longer"),
        Bytes::from_static(b"short"),
        Bytes::new(),
        Bytes::from_static(b"the last chunk is the longest of all"),
    ];
    let metadata = metadata_for(3, &chunks, 16).with_encrypted(true);
    files
        .put_file(metadata.clone(), chunks.clone())
        .await
        .expect("put_file");
    for (index, chunk) in (0..).zip(&chunks) {
        assert_eq!(
            &files.chunk(&metadata.id, index).await.expect("chunk"),
            chunk
        );
    }
    assert_eq!(
        files.file_metadata(&metadata.id).await.expect("metadata"),
        Some(metadata)
    );
}

#[tokio::test]
async fn configuration_from_a_url_reaches_the_server() {
    let server = TestServer::start().await;
    let url = format!(
        "s3://{BUCKET}/from-url?endpoint={}&region={}&path_style=true",
        server.endpoint,
        support::REGION
    );
    let config = S3Config::from_url(&url)
        .expect("URL")
        .credentials(support::ACCESS_KEY, support::SECRET_KEY);
    assert!(config.allows_http());
    let documents = S3DocumentStorage::new(&config).expect("storage");
    let doc = DocumentId::from("room/url");
    let receipt = documents
        .append(&doc, Bytes::from_static(&[0, 0]), AppendOptions::default())
        .await
        .expect("append");
    assert_eq!(receipt.seq, 1);

    // The objects are where the prefix says.
    let listed: Vec<_> = server
        .object_store()
        .list(Some(&Path::from("from-url")))
        .try_collect()
        .await
        .expect("list");
    assert_eq!(
        listed.len(),
        1,
        "one update object under the prefix: {listed:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_backend_error() {
    let server = TestServer::start().await;
    let config = server
        .config("denied")
        .credentials(support::ACCESS_KEY, "not-the-secret");
    let documents = S3DocumentStorage::new(&config).expect("storage");
    match documents.load(&DocumentId::from("a")).await {
        Err(StorageError::Backend { backend: "s3", .. }) => {}
        other => panic!("a bad signature gave {other:?}, not an s3 backend error"),
    }
}

/// Four nodes (four clients, no shared memory) append to one document at once: every update
/// arrives, each under its own `Seq`, because each `Seq` is created with `If-None-Match: *`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_separate_clients_never_share_a_seq() {
    const NODES: usize = 4;
    const APPENDS: usize = 15;
    let server = TestServer::start().await;
    let doc = DocumentId::from("room/raced");
    let tasks: Vec<_> = (0..NODES)
        .map(|node| {
            let documents = S3DocumentStorage::new(&server.config("raced")).expect("storage");
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..APPENDS {
                    let update = Bytes::from(format!("node {node} update {i}"));
                    let receipt = documents
                        .append(&doc, update, AppendOptions::default())
                        .await
                        .expect("append");
                    seqs.push(receipt.seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        for seq in task.await.expect("task") {
            assert!(seqs.insert(seq), "seq {seq} was handed out twice");
        }
    }
    let documents = S3DocumentStorage::new(&server.config("raced")).expect("storage");
    let stored = documents.load(&doc).await.expect("load");
    assert_eq!(stored.tail.len(), NODES * APPENDS);
    let stored_seqs: BTreeSet<u64> = stored.tail.iter().map(|u| u.seq).collect();
    assert_eq!(stored_seqs, seqs);
    let contents: BTreeSet<&[u8]> = stored.tail.iter().map(|u| u.update.as_ref()).collect();
    assert_eq!(contents.len(), NODES * APPENDS, "an update was overwritten");
    println!(
        "{} conditional puts lost a race",
        server
            .requests
            .precondition_failures
            .load(Ordering::Relaxed)
    );
}
