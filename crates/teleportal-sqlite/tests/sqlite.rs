//! `SqliteStorage` behaviour through the public traits: durability across reopen, group
//! commit under concurrency, per-write rollback inside a group, and the contract's rules.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use teleportal_sqlite::SqliteStorage;
use teleportal_storage::milestone::{CreatedBy, CreatorKind};
use teleportal_storage::{
    AppendOptions, DocumentId, DocumentStorage, FileId, FileMetadata, FileStorage, Milestone,
    MilestoneMeta, MilestoneStorage, StorageError, TemporaryUploadStorage,
};

fn update(tag: &str) -> Bytes {
    Bytes::from(tag.as_bytes().to_vec())
}

fn open(dir: &Path) -> SqliteStorage {
    SqliteStorage::open(dir).expect("store opens")
}

fn milestone(doc: &str, id: &str, created_at: f64) -> Milestone {
    let by = CreatedBy {
        kind: CreatorKind::User,
        id: "alice".into(),
    };
    Milestone {
        meta: MilestoneMeta::new(doc, id, format!("name {id}"), created_at, by),
        snapshot: Bytes::from(format!("snapshot {id}")),
    }
}

fn file(root: u8, chunks: u32) -> FileMetadata {
    FileMetadata::new(
        FileId::new([root; 32]),
        "a.txt",
        10,
        "text/plain",
        4,
        chunks,
    )
}

/// Holds SQLite's write lock from another connection, so the store's writer waits and the
/// writes queued meanwhile all land in its next group.
fn hold_write_lock(storage: &SqliteStorage) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(storage.path()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

#[tokio::test]
async fn reopen_sees_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let doc = DocumentId::from("room/doc");
    {
        let storage = open(dir.path());
        for i in 0..5 {
            storage
                .append(&doc, update(&format!("u{i}")), AppendOptions::default())
                .await
                .unwrap();
        }
        storage.compact(&doc, 3, update("s3")).await.unwrap();
        storage
            .put_file(file(1, 2), vec![update("ab"), update("c")])
            .await
            .unwrap();
        storage
            .create_milestone(milestone("room/doc", "m1", 1.0))
            .await
            .unwrap();
        storage.begin(file(2, 2)).await.unwrap();
        storage
            .put_chunk(&FileId::new([2; 32]), 1, update("z"))
            .await
            .unwrap();
        storage.close().await.unwrap();
    }
    // Dropping without `close` must keep everything too.
    let storage = open(dir.path());
    let stored = storage.load(&doc).await.unwrap();
    assert_eq!(stored.snapshot, Some(update("s3")));
    assert_eq!(stored.snapshot_seq, 3);
    let tail: Vec<_> = stored
        .tail
        .iter()
        .map(|u| (u.seq, u.update.clone()))
        .collect();
    assert_eq!(tail, vec![(4, update("u3")), (5, update("u4"))]);
    drop(storage);

    let storage = open(dir.path());
    assert_eq!(storage.load(&doc).await.unwrap().last_seq(), 5);
    assert_eq!(
        storage.chunk(&FileId::new([1; 32]), 1).await.unwrap(),
        update("c")
    );
    assert!(storage.milestone(&doc, "m1").await.unwrap().is_some());
    let progress = storage
        .progress(&FileId::new([2; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress.received, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_100_tasks_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(open(dir.path()));
    let doc = DocumentId::from("busy");
    let tasks: Vec<_> = (0..100)
        .map(|task| {
            let (storage, doc) = (Arc::clone(&storage), doc.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..20 {
                    let bytes = update(&format!("{task}/{i}"));
                    let receipt = storage
                        .append(&doc, bytes.clone(), AppendOptions::default())
                        .await
                        .unwrap();
                    acks.push((receipt.seq, bytes));
                }
                acks
            })
        })
        .collect();
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.unwrap());
    }
    acks.sort();
    let seqs: Vec<u64> = acks.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=2000).collect::<Vec<_>>(),
        "each append got its own seq"
    );
    let stored = storage.load(&doc).await.unwrap();
    let tail: Vec<_> = stored.tail.into_iter().map(|u| (u.seq, u.update)).collect();
    assert_eq!(tail, acks);
    let metadata = storage.metadata(&doc).await.unwrap().unwrap();
    assert_eq!(metadata.tail_updates, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_append_in_a_group_leaves_the_others_in() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(open(dir.path()));
    let doc = DocumentId::from("limited");
    let limit = AppendOptions::with_max_size(100);
    let lock = hold_write_lock(&storage);
    let append = |bytes: Bytes, doc: DocumentId| {
        let storage = Arc::clone(&storage);
        tokio::spawn(async move { storage.append(&doc, bytes, limit).await })
    };
    let small: Vec<_> = (0..10)
        .map(|i| append(update(&format!("s{i}")), doc.clone()))
        .collect();
    let large = append(Bytes::from(vec![7; 200]), doc.clone());
    let other = append(update("other"), DocumentId::from("other"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(lock);

    match large.await.unwrap() {
        Err(StorageError::DocumentTooLarge {
            size, limit: 100, ..
        }) => assert!(size >= 200),
        other => panic!("expected DocumentTooLarge, got {other:?}"),
    }
    for task in small {
        task.await.unwrap().unwrap();
    }
    other.await.unwrap().unwrap();
    let stored = storage.load(&doc).await.unwrap();
    assert_eq!(stored.tail.len(), 10);
    assert!(
        stored.tail.iter().all(|u| u.update.len() == 2),
        "the large one was not stored"
    );
    let seqs: Vec<u64> = stored.tail.iter().map(|u| u.seq).collect();
    assert_eq!(
        seqs,
        (1..=10).collect::<Vec<_>>(),
        "the rejected append used no seq"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_milestone_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(open(dir.path()));
    storage
        .create_milestone(milestone("d", "m1", 1.0))
        .await
        .unwrap();
    let lock = hold_write_lock(&storage);
    let (s1, s2) = (Arc::clone(&storage), Arc::clone(&storage));
    let duplicate =
        tokio::spawn(async move { s1.create_milestone(milestone("d", "m1", 2.0)).await });
    let fresh = tokio::spawn(async move { s2.create_milestone(milestone("d", "m2", 3.0)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(lock);
    assert!(matches!(
        duplicate.await.unwrap(),
        Err(StorageError::InvalidRequest { .. })
    ));
    fresh.await.unwrap().unwrap();
    let doc = DocumentId::from("d");
    let ids: Vec<_> = storage
        .milestones(&doc, false)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.created_at))
        .collect();
    assert_eq!(ids, vec![("m1".into(), 1.0), ("m2".into(), 3.0)]);
}

#[tokio::test]
async fn stale_compaction_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let doc = DocumentId::from("d");
    for i in 1..=4 {
        storage
            .append(&doc, update(&format!("u{i}")), AppendOptions::default())
            .await
            .unwrap();
    }
    storage.compact(&doc, 3, update("s3")).await.unwrap();
    let after_first = storage.load(&doc).await.unwrap();

    storage.compact(&doc, 2, update("stale")).await.unwrap();
    storage.compact(&doc, 3, update("same upto")).await.unwrap();
    storage
        .compact(&doc, 9, update("never appended"))
        .await
        .unwrap();
    assert_eq!(storage.load(&doc).await.unwrap(), after_first);
    let metadata = storage.metadata(&doc).await.unwrap().unwrap();
    assert_eq!((metadata.snapshot_seq, metadata.last_seq), (3, 4));
    assert_eq!((metadata.tail_updates, metadata.tail_bytes), (1, 2));
    assert_eq!(metadata.size, 4);
}

#[tokio::test]
async fn delete_keeps_the_sequence_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let doc = DocumentId::from("d");
    {
        let storage = open(dir.path());
        for i in 1..=3 {
            storage
                .append(&doc, update(&format!("u{i}")), AppendOptions::default())
                .await
                .unwrap();
        }
        storage.delete(&doc).await.unwrap();
        assert!(storage.load(&doc).await.unwrap().is_empty());
        assert_eq!(storage.metadata(&doc).await.unwrap(), None);
        // A compaction that loaded before the delete must not bring the content back.
        storage.compact(&doc, 3, update("old")).await.unwrap();
        assert!(storage.load(&doc).await.unwrap().is_empty());
    }
    let storage = open(dir.path());
    let receipt = storage
        .append(&doc, update("new"), AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(receipt.seq, 4, "sequence numbers are never reused");
    let stored = storage.load(&doc).await.unwrap();
    assert_eq!(stored.snapshot, None);
    assert_eq!(stored.snapshot_seq, 3);
    assert_eq!(stored.tail.len(), 1);
}

#[tokio::test]
async fn size_limit_rejects_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let doc = DocumentId::from("d");
    storage
        .append(&doc, Bytes::from(vec![1; 60]), AppendOptions::default())
        .await
        .unwrap();
    storage
        .compact(&doc, 1, Bytes::from(vec![2; 50]))
        .await
        .unwrap();
    let receipt = storage
        .append(
            &doc,
            Bytes::from(vec![3; 30]),
            AppendOptions::with_max_size(80),
        )
        .await
        .unwrap();
    assert_eq!((receipt.seq, receipt.size, receipt.tail_bytes), (2, 80, 30));
    let before = storage.load(&doc).await.unwrap();
    let error = storage
        .append(
            &doc,
            Bytes::from(vec![4; 1]),
            AppendOptions::with_max_size(80),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        StorageError::DocumentTooLarge {
            size: 81,
            limit: 80,
            ..
        }
    ));
    assert_eq!(storage.load(&doc).await.unwrap(), before);
    assert_eq!(storage.metadata(&doc).await.unwrap().unwrap().last_seq, 2);
}

#[tokio::test]
async fn files_store_whole_and_read_by_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let doc = DocumentId::from("d");
    let a = file(9, 2)
        .with_document(doc.clone())
        .with_last_modified(u64::MAX);
    let b = file(3, 1).with_document(doc.clone()).with_encrypted(true);
    assert!(matches!(
        storage.put_file(a.clone(), vec![update("x")]).await,
        Err(StorageError::InvalidRequest { .. })
    ));
    storage
        .put_file(a.clone(), vec![update("ab"), update("c")])
        .await
        .unwrap();
    storage
        .put_file(a.clone(), vec![update("zz"), update("z")])
        .await
        .unwrap(); // no-op
    storage
        .put_file(b.clone(), vec![update("q")])
        .await
        .unwrap();
    assert_eq!(storage.file_metadata(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(storage.chunk(&a.id, 0).await.unwrap(), update("ab"));
    assert_eq!(
        storage.files_of_document(&doc).await.unwrap(),
        vec![b.clone(), a.clone()]
    );
    assert!(matches!(
        storage.chunk(&a.id, 2).await,
        Err(StorageError::NotFound { kind: "chunk", .. })
    ));
    storage.delete_file(&a.id).await.unwrap();
    storage.delete_file(&a.id).await.unwrap();
    assert!(matches!(
        storage.chunk(&a.id, 0).await,
        Err(StorageError::NotFound { kind: "file", .. })
    ));
    assert_eq!(storage.files_of_document(&doc).await.unwrap(), vec![b]);
    assert_eq!(
        rows(&storage, "file_chunks"),
        1,
        "the deleted file's chunks went with it"
    );
}

/// Rows in one of the store's tables, read with SQLite directly.
fn rows(storage: &SqliteStorage, table: &str) -> i64 {
    rusqlite::Connection::open(storage.path())
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[tokio::test]
async fn milestones_list_in_creation_order_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let doc = DocumentId::from("d");
    storage
        .create_milestone(milestone("d", "b", 2.0))
        .await
        .unwrap();
    storage
        .create_milestone(milestone("d", "a", 2.0))
        .await
        .unwrap();
    storage
        .create_milestone(milestone("d", "c", 1.0))
        .await
        .unwrap();
    storage
        .create_milestone(milestone("other", "x", 0.0))
        .await
        .unwrap();
    let mut deleted = milestone("d", "b", 2.0).meta;
    deleted.deleted_at = Some(5.0);
    storage.update_milestone(deleted.clone()).await.unwrap();
    let ids = |metas: Vec<MilestoneMeta>| metas.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(storage.milestones(&doc, false).await.unwrap()),
        ["c", "a"]
    );
    assert_eq!(
        ids(storage.milestones(&doc, true).await.unwrap()),
        ["c", "a", "b"]
    );
    let b = storage.milestone(&doc, "b").await.unwrap().unwrap();
    assert_eq!((b.meta, b.snapshot), (deleted, update("snapshot b")));
    assert!(matches!(
        storage
            .update_milestone(milestone("d", "nope", 0.0).meta)
            .await,
        Err(StorageError::NotFound {
            kind: "milestone",
            ..
        })
    ));
    storage.delete_milestone(&doc, "b").await.unwrap();
    storage.delete_milestone(&doc, "b").await.unwrap();
    assert_eq!(storage.milestone(&doc, "b").await.unwrap(), None);
}

#[tokio::test]
async fn uploads_resume_complete_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let meta = file(4, 2);
    let id = meta.id;
    let started = storage.begin(meta.clone()).await.unwrap();
    assert!(matches!(
        storage.begin(file(4, 3)).await,
        Err(StorageError::InvalidRequest { .. })
    ));
    assert!(matches!(
        storage.put_chunk(&id, 2, update("x")).await,
        Err(StorageError::InvalidRequest { .. })
    ));
    assert!(matches!(
        storage
            .put_chunk(&FileId::new([0; 32]), 0, update("x"))
            .await,
        Err(StorageError::NotFound { kind: "upload", .. })
    ));
    storage.put_chunk(&id, 1, update("old")).await.unwrap();
    storage.put_chunk(&id, 1, update("b")).await.unwrap();
    assert!(matches!(
        storage.take(&id).await,
        Err(StorageError::InvalidRequest { .. })
    ));
    let resumed = storage.begin(meta.clone()).await.unwrap();
    assert_eq!(resumed.started_at, started.started_at);
    assert_eq!(resumed.received, vec![1]);
    assert_eq!(storage.progress(&id).await.unwrap(), Some(resumed));
    storage.put_chunk(&id, 0, update("a")).await.unwrap();
    let (taken, chunks) = storage.take(&id).await.unwrap();
    assert_eq!((taken, chunks), (meta, vec![update("a"), update("b")]));
    assert_eq!(storage.progress(&id).await.unwrap(), None);
    assert_eq!(
        rows(&storage, "upload_chunks"),
        0,
        "taken chunks are removed"
    );

    let old = storage.begin(file(5, 1)).await.unwrap();
    assert_eq!(storage.expire(old.started_at).await.unwrap(), 0);
    let later = old.started_at + Duration::from_micros(1);
    assert_eq!(storage.expire(later).await.unwrap(), 1);
    assert_eq!(storage.expire(SystemTime::now()).await.unwrap(), 0);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let path = storage.path().to_owned();
    storage.close().await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        SqliteStorage::open(dir.path()),
        Err(StorageError::Backend {
            backend: "sqlite",
            ..
        })
    ));
}

#[test]
fn works_without_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let doc = DocumentId::from("d");
    futures::executor::block_on(async {
        storage
            .append(&doc, update("u"), AppendOptions::default())
            .await
            .unwrap();
        assert_eq!(storage.load(&doc).await.unwrap().tail.len(), 1);
        storage.close().await.unwrap();
    });
}
