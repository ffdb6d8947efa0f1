//! The file protocol (spec §12.4–12.5) end to end through the engine: upload by chunks,
//! resume, dedup, verification, download with proofs checked by a client-side verifier.

mod common;

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use futures::{TryStreamExt, stream};
use teleportal_core::merkle::{
    MerkleTree, ProvenChunk, Sha256Hasher, VerifyChunks, chunks, file_id, parse_file_id,
};
use teleportal_core::rpc::{
    FILE_DOWNLOAD, FILE_UPLOAD, FileDownloadRequest, FileDownloadResponse, FilePartStream,
    FileUploadRequest, FileUploadResponse,
};
use teleportal_core::{AckMessage, Any, Body, Message, RpcKind, RpcMessage, RpcPayload};
#[cfg(unix)]
use teleportal_fs::LocalFileStorage;
use teleportal_server::rpc::FileRpc;
use teleportal_server::{Access, ClientContext, PermissionChecker, Server};
use teleportal_storage::{
    DocumentStore, FileId, FileStorage, MemoryStorage, TemporaryUploadStorage,
};

const CHUNK: usize = 64;

/// `reader` may only read; everyone else may do everything.
struct ReaderReadsOnly;

#[async_trait]
impl PermissionChecker for ReaderReadsOnly {
    async fn check(&self, client: &ClientContext, _document: &str, access: Access) -> bool {
        client.client_id != "reader" || access == Access::Read
    }
}

fn server(max_size: u64) -> (Server, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    (server_over(storage.clone(), max_size, true), storage)
}

/// A server over `storage`, finishing uploads in place or (`in_place` false) by streaming
/// them across as two separate stores need.
fn server_over(storage: Arc<MemoryStorage>, max_size: u64, in_place: bool) -> Server {
    server_with_chunk(storage, max_size, in_place, CHUNK)
}

fn server_with_chunk(
    storage: Arc<MemoryStorage>,
    max_size: u64,
    in_place: bool,
    chunk: usize,
) -> Server {
    let chunk = u32::try_from(chunk).unwrap();
    let server = Server::builder(DocumentStore::new(storage.clone())).permissions(ReaderReadsOnly);
    if in_place {
        server
            .files(
                FileRpc::in_store(storage)
                    .with_chunk_size(chunk)
                    .with_max_size(max_size),
            )
            .build()
    } else {
        server
            .files(
                FileRpc::new(storage.clone(), storage)
                    .with_chunk_size(chunk)
                    .with_max_size(max_size),
            )
            .build()
    }
}

/// A file as an uploader holds it: bytes, chunks, id.
struct File {
    data: Vec<u8>,
    id: String,
    chunk: usize,
}

impl File {
    fn new(len: usize, seed: u8) -> Self {
        File::with_chunk(len, seed, CHUNK)
    }

    fn with_chunk(len: usize, seed: u8, chunk: usize) -> Self {
        let data: Vec<u8> = (0..len)
            .map(|i| (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let size = NonZeroUsize::new(chunk).unwrap();
        let tree = MerkleTree::from_chunks(&Sha256Hasher, chunks(&data, size)).unwrap();
        File {
            id: file_id(&tree.root()),
            data,
            chunk,
        }
    }

    fn chunks(&self) -> Vec<Bytes> {
        chunks(&self.data, NonZeroUsize::new(self.chunk).unwrap())
            .map(Bytes::copy_from_slice)
            .collect()
    }

    fn request(&self) -> FileUploadRequest {
        FileUploadRequest {
            file_id: self.id.clone(),
            filename: "notes.bin".into(),
            size: self.data.len() as u64,
            mime_type: "application/octet-stream".into(),
            last_modified: 1_700_000_000_000.0,
            encrypted: false,
            chunk_size: Some(self.chunk as u64),
        }
    }

    fn part(&self, index: usize, data: Bytes) -> Message {
        self.part_with_proof(index, data, vec![])
    }

    /// Chunk `index`'s proof in this file's tree.
    fn proof(&self, index: usize) -> Vec<Bytes> {
        let size = NonZeroUsize::new(self.chunk).unwrap();
        let tree = MerkleTree::from_chunks(&Sha256Hasher, chunks(&self.data, size)).unwrap();
        tree.proof(u32::try_from(index).unwrap())
            .unwrap()
            .iter()
            .map(|h| Bytes::copy_from_slice(h))
            .collect()
    }

    fn part_with_proof(&self, index: usize, data: Bytes, merkle_proof: Vec<Bytes>) -> Message {
        let part = FilePartStream {
            file_id: self.id.clone(),
            chunk_index: index as u64,
            chunk_data: data,
            merkle_proof,
            total_chunks: self.chunks().len() as u64,
            bytes_uploaded: 0,
            encrypted: false,
        };
        Message::rpc(
            "notes",
            RpcMessage {
                method: FILE_UPLOAD.into(),
                kind: RpcKind::Stream {
                    original_request_id: self.id.clone(),
                },
                payload: RpcPayload::Success(part.to_any()),
            },
        )
    }
}

fn request(method: &str, payload: Any) -> Message {
    Message::rpc(
        "notes",
        RpcMessage {
            method: method.into(),
            kind: RpcKind::Request,
            payload: RpcPayload::Success(payload),
        },
    )
}

/// Sends a request; returns the ack and the rpc messages before it.
async fn call(client: &mut Client, method: &str, payload: Any) -> (AckMessage, Vec<RpcMessage>) {
    let id = client.send(request(method, payload));
    let (ack, before) = client.until_ack(id).await;
    let rpcs = before
        .into_iter()
        .map(|m| match m.body {
            Body::Rpc(rpc) => rpc,
            other => panic!("expected rpc messages, got {other:?}"),
        })
        .collect();
    (ack, rpcs)
}

async fn start_upload(client: &mut Client, file: &File) -> FileUploadResponse {
    let (ack, rpcs) = call(client, FILE_UPLOAD, file.request().to_any()).await;
    assert!(ack.is_positive(), "{ack:?}");
    let [
        RpcMessage {
            payload: RpcPayload::Success(any),
            ..
        },
    ] = rpcs.as_slice()
    else {
        panic!("expected one success response, got {rpcs:?}");
    };
    FileUploadResponse::from_any(any).unwrap()
}

async fn send_chunk(client: &mut Client, file: &File, index: usize, data: Bytes) -> AckMessage {
    let id = client.send(file.part(index, data));
    let (ack, before) = client.until_ack(id).await;
    assert!(before.is_empty(), "chunks get only an ack: {before:?}");
    ack
}

/// Downloads a file, checking every part's proof against the id as a client does.
async fn download(client: &mut Client, file_id: &str) -> (FileDownloadResponse, Option<Vec<u8>>) {
    let (ack, rpcs) = call(
        client,
        FILE_DOWNLOAD,
        FileDownloadRequest {
            file_id: file_id.into(),
        }
        .to_any(),
    )
    .await;
    assert!(ack.is_positive(), "{ack:?}");
    let (last, parts) = rpcs.split_last().expect("a response");
    let RpcPayload::Success(any) = &last.payload else {
        panic!("{last:?}")
    };
    let response = FileDownloadResponse::from_any(any).unwrap();
    let FileDownloadResponse::Allowed { total_chunks, .. } = &response else {
        assert!(parts.is_empty());
        return (response, None);
    };
    let proven: Vec<ProvenChunk> = parts
        .iter()
        .map(|rpc| {
            assert!(matches!(rpc.kind, RpcKind::Stream { .. }), "{rpc:?}");
            let RpcPayload::Success(any) = &rpc.payload else {
                panic!("{rpc:?}")
            };
            let part = FilePartStream::from_any(any).unwrap();
            ProvenChunk {
                index: u32::try_from(part.chunk_index).unwrap(),
                data: part.chunk_data,
                proof: part
                    .merkle_proof
                    .iter()
                    .map(|h| <[u8; 32]>::try_from(h.as_ref()).unwrap())
                    .collect(),
            }
        })
        .collect();
    let root = parse_file_id(file_id).unwrap();
    let leaves = u32::try_from(total_chunks.unwrap()).unwrap();
    let input = stream::iter(proven.into_iter().map(Ok::<_, Infallible>));
    let bytes: Vec<Bytes> = VerifyChunks::new(input, Sha256Hasher, root, leaves)
        .try_collect()
        .await
        .unwrap();
    (response, Some(bytes.concat()))
}

#[tokio::test]
async fn uploaded_file_downloads_verified_byte_for_byte() {
    let (server, _) = server(1 << 20);
    let mut alice = Client::connect(&server, "alice");
    let file = File::new(1000, 1);
    let started = start_upload(&mut alice, &file).await;
    assert_eq!(
        started,
        FileUploadResponse::Accepted {
            file_id: file.id.clone(),
            existing_chunks: None,
            chunk_size: Some(CHUNK as u64)
        }
    );
    for (i, chunk) in file.chunks().into_iter().enumerate() {
        assert!(send_chunk(&mut alice, &file, i, chunk).await.is_positive());
    }
    let mut bob = Client::connect(&server, "bob");
    let (response, bytes) = download(&mut bob, &file.id).await;
    assert_eq!(bytes.as_deref(), Some(&file.data[..]));
    let FileDownloadResponse::Allowed {
        filename,
        size,
        total_chunks,
        ..
    } = response
    else {
        panic!()
    };
    assert_eq!(
        (filename.as_str(), size, total_chunks),
        ("notes.bin", 1000, Some(16))
    );

    // The same bytes again are a dedup hit.
    let again = start_upload(&mut bob, &file).await;
    assert_eq!(
        again,
        FileUploadResponse::AlreadyExists {
            file_id: file.id.clone(),
            chunk_size: CHUNK as u64
        }
    );
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_chunks_already_stored() {
    let (server, storage) = server(1 << 20);
    let file = File::new(500, 2);
    let chunks = file.chunks();
    {
        let mut first = Client::connect(&server, "alice");
        start_upload(&mut first, &file).await;
        for i in [0, 1, 2, 5] {
            assert!(
                send_chunk(&mut first, &file, i, chunks[i].clone())
                    .await
                    .is_positive()
            );
        }
    } // connection dropped mid-upload
    // A restarted server (nothing cached) over the same storage: finishing re-reads the
    // chunks stored before.
    let server = server_over(storage, 1 << 20, true);
    let mut second = Client::connect(&server, "alice");
    let resumed = start_upload(&mut second, &file).await;
    let FileUploadResponse::Accepted {
        existing_chunks, ..
    } = resumed
    else {
        panic!("{resumed:?}")
    };
    assert_eq!(existing_chunks, Some(vec![0, 1, 2, 5]));
    for i in (0..chunks.len()).filter(|i| ![0, 1, 2, 5].contains(i)) {
        assert!(
            send_chunk(&mut second, &file, i, chunks[i].clone())
                .await
                .is_positive()
        );
    }
    assert_eq!(
        download(&mut second, &file.id).await.1.as_deref(),
        Some(&file.data[..])
    );
}

#[tokio::test]
async fn chunks_that_do_not_hash_to_the_id_are_rejected_and_nothing_is_stored() {
    let (server, storage) = server(1 << 20);
    let mut alice = Client::connect(&server, "alice");
    let file = File::new(200, 3);
    start_upload(&mut alice, &file).await;
    let chunks = file.chunks();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let chunk = if i == 1 {
            Bytes::from(vec![0xff; CHUNK])
        } else {
            chunk
        };
        let ack = send_chunk(&mut alice, &file, i, chunk).await;
        if i == last {
            assert_eq!(
                ack.error.as_deref(),
                Some("upload rejected: the chunks do not hash to the file id")
            );
        } else {
            assert!(ack.is_positive());
        }
    }
    let id = FileId::new(parse_file_id(&file.id).unwrap());
    assert_eq!(storage.file_metadata(&id).await.unwrap(), None);
    let (response, bytes) = download(&mut alice, &file.id).await;
    assert!(bytes.is_none());
    assert!(matches!(
        response,
        FileDownloadResponse::Denied {
            status_code: 404,
            ..
        }
    ));
}

#[tokio::test]
async fn two_stores_move_a_finished_upload_across() {
    let storage = Arc::new(MemoryStorage::new());
    let server = server_over(storage.clone(), 1 << 20, false);
    let mut alice = Client::connect(&server, "alice");
    let file = File::new(700, 5);
    start_upload(&mut alice, &file).await;
    for (i, chunk) in file.chunks().into_iter().enumerate() {
        assert!(send_chunk(&mut alice, &file, i, chunk).await.is_positive());
    }
    assert_eq!(
        download(&mut alice, &file.id).await.1.as_deref(),
        Some(&file.data[..])
    );
    let id = FileId::new(parse_file_id(&file.id).unwrap());
    assert!(storage.progress(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_chunk_failing_its_proof_is_refused_before_it_is_stored() {
    let (server, storage) = server(1 << 20);
    let mut alice = Client::connect(&server, "alice");
    let file = File::new(300, 6);
    let chunks = file.chunks();
    start_upload(&mut alice, &file).await;
    let id = FileId::new(parse_file_id(&file.id).unwrap());

    // Chunk 1's bytes under chunk 2's proof, then the right bytes with chunk 1's proof.
    let forged = alice.send(file.part_with_proof(2, chunks[1].clone(), file.proof(2)));
    let (ack, _) = alice.until_ack(forged).await;
    assert_eq!(
        ack.error.as_deref(),
        Some(format!("chunk 2 fails its Merkle proof against file {}", file.id).as_str())
    );
    assert!(
        storage
            .progress(&id)
            .await
            .unwrap()
            .unwrap()
            .received
            .is_empty()
    );
    let short = alice.send(file.part_with_proof(1, chunks[1].clone(), vec![Bytes::new()]));
    let (ack, _) = alice.until_ack(short).await;
    assert_eq!(
        ack.error.as_deref(),
        Some("Merkle proof hashes must be 32 bytes")
    );

    for (i, chunk) in chunks.iter().enumerate() {
        let sent = alice.send(file.part_with_proof(i, chunk.clone(), file.proof(i)));
        assert!(alice.until_ack(sent).await.0.is_positive(), "chunk {i}");
    }
    assert_eq!(
        download(&mut alice, &file.id).await.1.as_deref(),
        Some(&file.data[..])
    );
}

#[cfg(unix)] // LocalFileStorage
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_sent_without_waiting_are_acked_in_order_after_the_commit() {
    // Chunks large enough that their ids and leaves are hashed off the connection's task, on
    // a store whose writes are real I/O: several chunks are handled at once, and the last
    // ones finish in any order.
    const BIG: usize = 96 * 1024;
    for seed in 0..8u8 {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(LocalFileStorage::open(dir.path()).unwrap());
        let chunk = u32::try_from(BIG).unwrap();
        let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
            .rpc(FileRpc::in_store(storage.clone()).with_chunk_size(chunk))
            .build();
        let mut alice = Client::connect(&server, "alice");
        let file = File::with_chunk(BIG * 9 + 7, seed, BIG);
        start_upload(&mut alice, &file).await;
        let ids: Vec<_> = (0..file.chunks().len())
            .map(|i| alice.send(file.part(i, file.chunks()[i].clone())))
            .collect();
        let mut acked = Vec::new();
        while acked.len() < ids.len() {
            if let Body::Ack(ack) = alice.recv_message().await.body {
                assert!(ack.is_positive(), "{ack:?}");
                acked.push(ack.message_id);
            }
        }
        let sent: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(acked, sent, "ACKs out of order");
        // The last ACK came after the commit: the file is there at once.
        let id = FileId::new(parse_file_id(&file.id).unwrap());
        assert!(
            storage.file_metadata(&id).await.unwrap().is_some(),
            "seed {seed}: not finished"
        );
        assert!(storage.progress(&id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn an_upload_complete_but_never_finished_is_finished_when_begun_again() {
    let (server, storage) = server(1 << 20);
    let file = File::new(300, 7);
    let mut alice = Client::connect(&server, "alice");
    start_upload(&mut alice, &file).await;
    // Every chunk stored, as if the server stopped before the last part's finish.
    let id = FileId::new(parse_file_id(&file.id).unwrap());
    for (i, chunk) in file.chunks().into_iter().enumerate() {
        storage
            .put_chunk(&id, u32::try_from(i).unwrap(), chunk)
            .await
            .unwrap();
    }
    let server = server_over(storage.clone(), 1 << 20, true);
    let mut bob = Client::connect(&server, "bob");
    assert_eq!(
        start_upload(&mut bob, &file).await,
        FileUploadResponse::AlreadyExists {
            file_id: file.id.clone(),
            chunk_size: CHUNK as u64
        }
    );
    assert_eq!(
        download(&mut bob, &file.id).await.1.as_deref(),
        Some(&file.data[..])
    );
}

#[tokio::test]
async fn limits_mismatches_and_bad_parts_are_refused() {
    let (server, _) = server(300);
    let mut alice = Client::connect(&server, "alice");
    let big = File::new(301, 4);
    assert!(matches!(
        start_upload(&mut alice, &big).await,
        FileUploadResponse::Denied {
            status_code: 413,
            ..
        }
    ));

    let file = File::new(100, 5);
    let mut other_size = file.request();
    other_size.chunk_size = Some(1 << 20);
    let (_, rpcs) = call(&mut alice, FILE_UPLOAD, other_size.to_any()).await;
    let RpcPayload::Success(any) = &rpcs[0].payload else {
        panic!()
    };
    assert_eq!(
        FileUploadResponse::from_any(any).unwrap(),
        FileUploadResponse::ChunkSizeMismatch {
            file_id: file.id.clone(),
            chunk_size: CHUNK as u64
        }
    );

    // A chunk for an upload nobody started.
    let ack = send_chunk(&mut alice, &file, 0, file.chunks()[0].clone()).await;
    assert_eq!(
        ack.error,
        Some(format!("No upload in progress for file {}", file.id))
    );
    start_upload(&mut alice, &file).await;
    let ack = send_chunk(&mut alice, &file, 9, Bytes::from_static(b"x")).await;
    assert_eq!(ack.error.as_deref(), Some("chunk index 9 out of range"));
    let ack = send_chunk(&mut alice, &file, 0, Bytes::from(vec![0; CHUNK + 1])).await;
    assert!(ack.error.unwrap().contains("exceeds the chunk size"));
}

#[tokio::test]
async fn readers_cannot_upload_and_other_rooms_cannot_download() {
    let (server, _) = server(1 << 20);
    let file = File::new(100, 6);
    let mut reader = Client::connect(&server, "reader");
    let (ack, rpcs) = call(&mut reader, FILE_UPLOAD, file.request().to_any()).await;
    assert_eq!(ack.error.as_deref(), Some("Permission denied"));
    assert!(matches!(
        rpcs[0].payload,
        RpcPayload::Error {
            status_code: 403,
            ..
        }
    ));

    let mut in_a =
        Client::connect_with(&server, ClientContext::new("alice").with_namespace("1:a/"));
    start_upload(&mut in_a, &file).await;
    for (i, chunk) in file.chunks().into_iter().enumerate() {
        assert!(send_chunk(&mut in_a, &file, i, chunk).await.is_positive());
    }
    let mut in_b = Client::connect_with(&server, ClientContext::new("bob").with_namespace("1:b/"));
    let (response, bytes) = download(&mut in_b, &file.id).await;
    assert!(bytes.is_none(), "room b read room a's file");
    assert!(matches!(
        response,
        FileDownloadResponse::Denied {
            status_code: 404,
            ..
        }
    ));
    assert!(download(&mut in_a, &file.id).await.1.is_some());
}
