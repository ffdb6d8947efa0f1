//! [`LocalFileStorage`] across restarts: what a checkpoint made durable is there after a
//! reopen, what came after it is not (and can be sent again), finished files stay listed,
//! damaged files read as corrupt, and a 64 MiB upload goes through whole.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use teleportal_fs::LocalFileStorage;
use teleportal_storage::{
    DocumentId, FileId, FileMetadata, FileStorage, FinishUpload, StorageError,
    TemporaryUploadStorage,
};

/// A file of `count` chunks of `len` bytes, each distinct.
fn file(seed: u8, len: usize, count: u32) -> (FileMetadata, Vec<Bytes>) {
    let chunks: Vec<Bytes> = (0..count)
        .map(|i| {
            let mut chunk = vec![seed ^ i.to_le_bytes()[0]; len];
            chunk[..4].copy_from_slice(&i.to_le_bytes());
            Bytes::from(chunk)
        })
        .collect();
    let size = chunks.iter().map(|c| c.len() as u64).sum();
    let chunk_size = u32::try_from(len).unwrap();
    let meta = FileMetadata::new(
        FileId::new([seed; 32]),
        "f.bin",
        size,
        "x/y",
        chunk_size,
        count,
    );
    (meta, chunks)
}

fn upload_dir(root: &Path, id: &FileId) -> PathBuf {
    root.join("uploads").join(id.to_string())
}

fn file_dir(root: &Path, id: &FileId) -> PathBuf {
    root.join("files").join(id.to_string())
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    match result {
        Err(StorageError::Corrupt { .. }) => {}
        other => panic!("{what} gave {other:?}, not Corrupt"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpointed_chunks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, chunks) = file(1, 100, 3);
    let started = {
        let store = LocalFileStorage::open(dir.path())
            .unwrap()
            .with_checkpoint_bytes(1);
        let started = store.begin(meta.clone()).await.unwrap().started_at;
        store
            .put_chunk(&meta.id, 2, Bytes::from_static(b"stale"))
            .await
            .unwrap();
        store
            .put_chunk(&meta.id, 2, chunks[2].clone())
            .await
            .unwrap();
        store
            .put_chunk(&meta.id, 0, chunks[0].clone())
            .await
            .unwrap();
        store.sync_upload(&meta.id).await.unwrap();
        started
    };

    let store = LocalFileStorage::open(dir.path()).unwrap();
    let progress = store
        .progress(&meta.id)
        .await
        .unwrap()
        .expect("the upload survived");
    assert_eq!(progress.received, [0, 2]);
    assert_eq!(
        progress.started_at, started,
        "the start time changed in the round trip"
    );
    assert_eq!(progress.metadata, meta);
    assert_eq!(store.received_chunk(&meta.id, 2).await.unwrap(), chunks[2]);

    store
        .put_chunk(&meta.id, 1, chunks[1].clone())
        .await
        .unwrap();
    assert_eq!(store.finish_upload(&meta.id).await.unwrap(), meta);
    for (index, chunk) in (0..).zip(&chunks) {
        assert_eq!(
            &store.chunk(&meta.id, index).await.unwrap(),
            chunk,
            "chunk {index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_checkpoint_runs_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, chunks) = file(2, 100, 2);
    let store = LocalFileStorage::open(dir.path())
        .unwrap()
        .with_checkpoint_bytes(150);
    store.begin(meta.clone()).await.unwrap();
    store
        .put_chunk(&meta.id, 0, chunks[0].clone())
        .await
        .unwrap();
    store
        .put_chunk(&meta.id, 1, chunks[1].clone())
        .await
        .unwrap(); // 200 bytes: due.

    // Another store over the same directory sees what is on disk (and only that).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = LocalFileStorage::open(dir.path()).unwrap();
        let on_disk = view.progress(&meta.id).await.unwrap().unwrap().received;
        if on_disk == [0, 1] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint after 10 s: {on_disk:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn chunks_after_the_last_checkpoint_are_sent_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, chunks) = file(3, 100, 3);
    let (unsynced, _) = file(4, 100, 2);
    {
        let store = LocalFileStorage::open(dir.path()).unwrap(); // 64 MiB between checkpoints.
        store.begin(meta.clone()).await.unwrap();
        store.begin(unsynced.clone()).await.unwrap();
        store
            .put_chunk(&meta.id, 0, chunks[0].clone())
            .await
            .unwrap();
        store.sync_upload(&meta.id).await.unwrap();
        store
            .put_chunk(&meta.id, 1, chunks[1].clone())
            .await
            .unwrap();
        store
            .put_chunk(&meta.id, 0, Bytes::from_static(b"after the checkpoint"))
            .await
            .unwrap();
        store
            .put_chunk(&unsynced.id, 0, chunks[0].clone())
            .await
            .unwrap();
        assert_eq!(
            store.progress(&meta.id).await.unwrap().unwrap().received,
            [0, 1]
        );
    }

    let store = LocalFileStorage::open(dir.path()).unwrap();
    assert_eq!(
        store.progress(&meta.id).await.unwrap().unwrap().received,
        [0]
    );
    assert_eq!(
        store.received_chunk(&meta.id, 0).await.unwrap(),
        chunks[0],
        "a chunk re-sent after the checkpoint replaced the durable copy"
    );
    assert!(matches!(
        store.received_chunk(&meta.id, 1).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(
        store
            .progress(&unsynced.id)
            .await
            .unwrap()
            .unwrap()
            .received
            .is_empty(),
        "a never-checkpointed chunk was listed"
    );

    // The resuming client sends the rest; new bytes go after the garbage in `data`.
    for index in [1, 2] {
        store
            .put_chunk(&meta.id, index, chunks[index as usize].clone())
            .await
            .unwrap();
    }
    let (_, taken) = store.take(&meta.id).await.unwrap();
    assert_eq!(taken, chunks);
    assert!(
        !upload_dir(dir.path(), &meta.id).exists(),
        "take left the directory"
    );
}

#[tokio::test]
async fn finished_files_stay_listed_by_document_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than a file name may be once in hex: the listing takes several levels.
    let long = DocumentId::from("room/".repeat(60));
    let short = DocumentId::from("room/notes");
    let (put, put_chunks) = file(10, 10, 2);
    let put = put.with_document(long.clone());
    let (uploaded, uploaded_chunks) = file(11, 10, 2);
    let uploaded = uploaded.with_document(long.clone());
    let (other, other_chunks) = file(12, 10, 1);
    let other = other.with_document(short.clone());
    {
        let store = LocalFileStorage::open(dir.path()).unwrap();
        store
            .put_file(put.clone(), put_chunks.clone())
            .await
            .unwrap();
        store.put_file(other.clone(), other_chunks).await.unwrap();
        store.begin(uploaded.clone()).await.unwrap();
        for (index, chunk) in (0..).zip(&uploaded_chunks) {
            store
                .put_chunk(&uploaded.id, index, chunk.clone())
                .await
                .unwrap();
        }
        store.finish_upload(&uploaded.id).await.unwrap();
    }

    let store = LocalFileStorage::open(dir.path()).unwrap();
    let mut both = vec![put.clone(), uploaded.clone()];
    both.sort_by_key(|m| m.id);
    assert_eq!(store.files_of_document(&long).await.unwrap(), both);
    assert_eq!(store.files_of_document(&short).await.unwrap(), [other]);
    assert_eq!(
        store.chunk(&uploaded.id, 1).await.unwrap(),
        uploaded_chunks[1]
    );
    assert_eq!(store.progress(&uploaded.id).await.unwrap(), None);

    store.delete_file(&put.id).await.unwrap();
    drop(store);
    let store = LocalFileStorage::open(dir.path()).unwrap();
    assert_eq!(store.files_of_document(&long).await.unwrap(), [uploaded]);
    assert_eq!(store.file_metadata(&put.id).await.unwrap(), None);
}

#[tokio::test]
async fn sessions_from_before_a_restart_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, _) = file(20, 10, 2);
    LocalFileStorage::open(dir.path())
        .unwrap()
        .begin(meta.clone())
        .await
        .unwrap();
    let store = LocalFileStorage::open(dir.path()).unwrap();
    assert_eq!(store.expire(std::time::UNIX_EPOCH).await.unwrap(), 0);
    assert_eq!(store.expire(std::time::SystemTime::now()).await.unwrap(), 1);
    assert_eq!(store.progress(&meta.id).await.unwrap(), None);
    assert!(!upload_dir(dir.path(), &meta.id).exists());
}

/// Replaces the contents of `path` with each of: half of it, nothing, and noise.
fn damages(path: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let good = std::fs::read(path).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise = (0..good.len().max(64))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("noise", noise),
    ]
}

#[tokio::test]
async fn damaged_meta_or_index_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, chunks) = file(30, 10, 2);
    {
        let store = LocalFileStorage::open(dir.path()).unwrap();
        store.begin(meta.clone()).await.unwrap();
        store
            .put_chunk(&meta.id, 0, chunks[0].clone())
            .await
            .unwrap();
        store.sync_upload(&meta.id).await.unwrap();
        store.put_file(meta.clone(), chunks.clone()).await.unwrap();
    }
    for (dir_of, what) in [
        (upload_dir as fn(&Path, &FileId) -> PathBuf, "upload"),
        (file_dir, "file"),
    ] {
        for name in ["meta", "index"] {
            let path = dir_of(dir.path(), &meta.id).join(name);
            let good = std::fs::read(&path).unwrap();
            for (damage, bytes) in damages(&path) {
                std::fs::write(&path, bytes).unwrap();
                let store = LocalFileStorage::open(dir.path()).unwrap();
                let context = format!("{what} with a {damage} {name}");
                if what == "upload" {
                    assert_corrupt(store.progress(&meta.id).await, &context);
                    assert_corrupt(store.begin(meta.clone()).await, &context);
                } else {
                    assert_corrupt(store.file_metadata(&meta.id).await, &context);
                    assert_corrupt(store.chunk(&meta.id, 0).await, &context);
                }
            }
            std::fs::write(&path, good).unwrap();
        }
    }

    // An index pointing past the end of `data`.
    let data = file_dir(dir.path(), &meta.id).join("data");
    std::fs::write(&data, b"short").unwrap();
    let store = LocalFileStorage::open(dir.path()).unwrap();
    assert_corrupt(store.chunk(&meta.id, 0).await, "a file with truncated data");
    // A damaged session can still be dropped.
    store.abort(&meta.id).await.unwrap();
    assert_eq!(store.progress(&meta.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_is_finished_and_read_back() {
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalFileStorage::open(dir.path()).unwrap());
    let (meta, chunks) = file(40, MIB, 64);
    store.begin(meta.clone()).await.unwrap();
    // Eight writers at once: offsets are reserved, so no two chunks overlap.
    let mut writers = Vec::new();
    for lane in 0..8u32 {
        let (store, meta, chunks) = (store.clone(), meta.clone(), chunks.clone());
        writers.push(tokio::spawn(async move {
            for index in (lane..64).step_by(8) {
                store
                    .put_chunk(&meta.id, index, chunks[index as usize].clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    store.finish_upload(&meta.id).await.unwrap();

    let data = file_dir(dir.path(), &meta.id).join("data");
    assert_eq!(std::fs::metadata(data).unwrap().len(), 64 * MIB as u64);
    for (index, chunk) in (0..).zip(&chunks) {
        let read = store.chunk(&meta.id, index).await.unwrap();
        assert!(read == chunk, "chunk {index} came back different");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_sent_again_and_again_is_refused_before_it_fills_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileStorage::open(dir.path()).unwrap();
    let (meta, chunks) = file(9, 1 << 20, 2);
    store.begin(meta.clone()).await.unwrap();
    // Each copy is appended; past about twice the file (plus 16 MiB), the store refuses.
    let mut accepted = 0u32;
    let refusal = loop {
        match store.put_chunk(&meta.id, 0, chunks[0].clone()).await {
            Ok(()) => accepted += 1,
            Err(error) => break error,
        }
        assert!(accepted < 100, "a chunk was taken {accepted} times");
    };
    assert!(
        matches!(refusal, StorageError::InvalidRequest { .. }),
        "{refusal:?}"
    );
    assert!(
        (18..=22).contains(&accepted),
        "refused after {accepted} copies"
    );
    let data = std::fs::metadata(upload_dir(dir.path(), &meta.id).join("data")).unwrap();
    assert!(data.len() <= 22 << 20, "data grew to {} bytes", data.len());
    // The session itself is intact: what it had still reads back.
    assert_eq!(store.received_chunk(&meta.id, 0).await.unwrap(), chunks[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_upload_expires_by_its_directory_age() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, _) = file(10, 100, 2);
    {
        let store = LocalFileStorage::open(dir.path()).unwrap();
        store.begin(meta.clone()).await.unwrap();
    }
    std::fs::write(upload_dir(dir.path(), &meta.id).join("meta"), b"garbage").unwrap();
    let store = LocalFileStorage::open(dir.path()).unwrap();
    assert_eq!(
        store
            .expire(std::time::SystemTime::UNIX_EPOCH)
            .await
            .unwrap(),
        0,
        "a damaged upload expired before its time"
    );
    let later = std::time::SystemTime::now() + Duration::from_secs(1);
    assert_eq!(store.expire(later).await.unwrap(), 1);
    assert!(!upload_dir(dir.path(), &meta.id).exists());
}
