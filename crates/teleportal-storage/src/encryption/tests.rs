// Tests use yrs documents as stand-in clients.
#![allow(clippy::disallowed_types)]
use std::sync::Arc;

use bytes::Bytes;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

use super::record::{NONCE_LEN, overhead};
use super::{EncryptedStorage, EncryptionKey, KeyId, StaticKeys};
use crate::milestone::{CreatedBy, CreatorKind};
use crate::{
    AppendOptions, DocumentId, DocumentStorage, DocumentStore, FileId, FileMetadata, FileStorage,
    MemoryStorage, Milestone, MilestoneMeta, MilestoneStorage, StorageError,
    TemporaryUploadStorage,
};

fn key(id: &str, byte: u8) -> EncryptionKey {
    EncryptionKey::new(KeyId::new(id).unwrap(), [byte; 32])
}

fn encrypted() -> (Arc<StaticKeys>, Arc<EncryptedStorage<MemoryStorage>>) {
    let keys = Arc::new(StaticKeys::new(key("k1", 1)));
    let storage = Arc::new(EncryptedStorage::new(MemoryStorage::new(), keys.clone()));
    (keys, storage)
}

fn doc() -> DocumentId {
    DocumentId::from("room/doc")
}

/// A client that types `words` one update at a time; returns the updates.
fn typed(words: &[&str]) -> Vec<Bytes> {
    let client = Doc::new();
    let text = client.get_or_insert_text("t");
    words
        .iter()
        .map(|word| {
            let before = client.transact().state_vector();
            let len = u32::try_from(text.get_string(&client.transact()).len()).unwrap();
            text.insert(&mut client.transact_mut(), len, word);
            Bytes::from(client.transact().encode_state_as_update_v1(&before))
        })
        .collect()
}

async fn text_of(store: &DocumentStore) -> Result<String, StorageError> {
    let state = store.read(&doc()).await?;
    let replica = Doc::new();
    replica
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&state.update).unwrap())
        .unwrap();
    let text = replica.get_or_insert_text("t");
    Ok(text.get_string(&replica.transact()))
}

/// The stored records of the document's tail, read past the encryption layer.
async fn records(storage: &EncryptedStorage<MemoryStorage>) -> Vec<Bytes> {
    let stored = storage.get_ref().load(&doc()).await.unwrap();
    stored.tail.into_iter().map(|u| u.update).collect()
}

fn key_id_of(record: &[u8]) -> &str {
    let len = usize::from(record[1]);
    std::str::from_utf8(&record[2..2 + len]).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn is_corrupt<T: std::fmt::Debug>(result: Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::Corrupt { .. }))
}

#[tokio::test]
async fn documents_round_trip_through_a_document_store() {
    let (_, storage) = encrypted();
    let store = DocumentStore::from_arc(storage.clone());
    for update in typed(&["secret ", "plans ", "ahead"]) {
        store.append(&doc(), update).await.unwrap();
    }
    assert_eq!(text_of(&store).await.unwrap(), "secret plans ahead");
    for record in records(&storage).await {
        assert!(
            !contains(&record, b"secret"),
            "the inner store holds ciphertext"
        );
    }

    assert!(store.compact(&doc()).await.unwrap());
    let inner = storage.get_ref().load(&doc()).await.unwrap();
    let snapshot = inner.snapshot.expect("compacted");
    assert!(
        !contains(&snapshot, b"secret"),
        "the snapshot is encrypted too"
    );
    assert_eq!(text_of(&store).await.unwrap(), "secret plans ahead");

    let diff = store
        .diff(
            &doc(),
            &yrs::updates::encoder::Encode::encode_v1(&StateVector::default()),
        )
        .await
        .unwrap();
    assert!(!diff.is_empty());
}

#[tokio::test]
async fn rotation_writes_with_the_new_key_and_reads_with_either() {
    let (keys, storage) = encrypted();
    let store = DocumentStore::from_arc(storage.clone());
    let updates = typed(&["before ", "after"]);
    store.append(&doc(), updates[0].clone()).await.unwrap();
    keys.rotate(key("k2", 2)).unwrap();
    store.append(&doc(), updates[1].clone()).await.unwrap();

    let ids: Vec<String> = records(&storage)
        .await
        .iter()
        .map(|r| key_id_of(r).to_owned())
        .collect();
    assert_eq!(ids, ["k1", "k2"]);
    assert_eq!(text_of(&store).await.unwrap(), "before after");

    assert!(
        keys.remove("k2").is_err(),
        "the current key cannot be removed"
    );
    assert!(keys.remove("k1").unwrap());
    assert!(
        is_corrupt(text_of(&store).await),
        "records under a removed key are unreadable, not garbage"
    );
}

#[tokio::test]
async fn a_key_id_cannot_be_reused_for_other_key_material() {
    let keys = StaticKeys::new(key("k1", 1));
    assert!(keys.insert(key("k1", 1)).is_ok(), "same key: no-op");
    assert!(matches!(
        keys.rotate(key("k1", 9)),
        Err(StorageError::InvalidRequest { .. })
    ));
}

/// Replaces the document's only stored record with `record`, through the inner trait.
async fn store_raw(storage: &EncryptedStorage<MemoryStorage>, record: Bytes) {
    let inner = storage.get_ref();
    inner.delete(&doc()).await.unwrap();
    inner
        .append(&doc(), record, AppendOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn every_altered_or_truncated_record_reads_as_corrupt() {
    let (_, storage) = encrypted();
    storage
        .append(
            &doc(),
            Bytes::from_static(b"hello"),
            AppendOptions::default(),
        )
        .await
        .unwrap();
    let record = records(&storage).await.remove(0);
    assert_eq!(record.len(), overhead(2) + 5);

    for i in 0..record.len() {
        for bit in [0x01, 0x80] {
            let mut altered = record.to_vec();
            altered[i] ^= bit;
            store_raw(&storage, Bytes::from(altered)).await;
            assert!(
                is_corrupt(storage.load(&doc()).await),
                "bit {bit:#x} of byte {i} flipped"
            );
        }
    }
    for len in 0..record.len() {
        store_raw(&storage, record.slice(..len)).await;
        assert!(is_corrupt(storage.load(&doc()).await), "cut to {len} bytes");
    }

    store_raw(&storage, record).await;
    let tail = storage.load(&doc()).await.unwrap().tail;
    assert_eq!(
        tail[0].update,
        Bytes::from_static(b"hello"),
        "the original reads"
    );
}

#[tokio::test]
async fn nonces_differ_for_the_same_plaintext() {
    let (_, storage) = encrypted();
    for _ in 0..2 {
        storage
            .append(
                &doc(),
                Bytes::from_static(b"same"),
                AppendOptions::default(),
            )
            .await
            .unwrap();
    }
    let records = records(&storage).await;
    let nonce = |r: &Bytes| r.slice(4..4 + NONCE_LEN);
    assert_ne!(nonce(&records[0]), nonce(&records[1]));
    assert_ne!(records[0], records[1]);
}

#[tokio::test]
async fn a_record_moved_to_another_document_fails() {
    let (_, storage) = encrypted();
    storage
        .append(
            &doc(),
            Bytes::from_static(b"mine"),
            AppendOptions::default(),
        )
        .await
        .unwrap();
    let record = records(&storage).await.remove(0);
    let other = DocumentId::from("room/other");
    storage
        .get_ref()
        .append(&other, record.clone(), AppendOptions::default())
        .await
        .unwrap();
    assert!(is_corrupt(storage.load(&other).await));

    // Nor does an update pass for the snapshot of its own document.
    storage.get_ref().compact(&doc(), 1, record).await.unwrap();
    assert!(is_corrupt(storage.load(&doc()).await));
}

#[tokio::test]
async fn the_size_limit_applies_to_the_stored_record() {
    let (_, storage) = encrypted();
    let update = Bytes::from_static(b"0123456789");
    let stored = u64::try_from(overhead(2) + update.len()).unwrap();
    let too_small = AppendOptions::with_max_size(stored - 1);
    assert!(matches!(
        storage.append(&doc(), update.clone(), too_small).await,
        Err(StorageError::DocumentTooLarge { size, .. }) if size == stored
    ));
    let receipt = storage
        .append(&doc(), update, AppendOptions::with_max_size(stored))
        .await
        .unwrap();
    assert_eq!(receipt.size, stored, "sizes count ciphertext");
    let meta = storage.metadata(&doc()).await.unwrap().unwrap();
    assert_eq!(meta.size, stored);
}

fn file(chunks: u32) -> FileMetadata {
    FileMetadata::new(FileId::new([7; 32]), "a.txt", 10, "text/plain", 5, chunks)
}

#[tokio::test]
async fn file_chunks_are_encrypted_and_bound_to_their_index() {
    let (_, storage) = encrypted();
    let chunks = vec![Bytes::from_static(b"chunk"), Bytes::from_static(b"other")];
    storage.put_file(file(2), chunks.clone()).await.unwrap();
    let id = FileId::new([7; 32]);
    assert_eq!(storage.chunk(&id, 0).await.unwrap(), chunks[0]);
    assert_eq!(storage.chunk(&id, 1).await.unwrap(), chunks[1]);
    let raw = storage.get_ref().chunk(&id, 0).await.unwrap();
    assert!(!contains(&raw, b"chunk"));
    assert_eq!(storage.file_metadata(&id).await.unwrap(), Some(file(2)));

    let raw = |index| storage.get_ref().chunk(&id, index);
    let (first, second) = (raw(0).await.unwrap(), raw(1).await.unwrap());

    // Swapped within the file, stored past the layer: neither reads.
    storage.get_ref().delete_file(&id).await.unwrap();
    let swapped = vec![second, first.clone()];
    storage.get_ref().put_file(file(2), swapped).await.unwrap();
    assert!(is_corrupt(storage.chunk(&id, 0).await));
    assert!(is_corrupt(storage.chunk(&id, 1).await));

    // Copied to the same index of another file: does not read.
    let other = FileMetadata::new(FileId::new([8; 32]), "b.txt", 5, "text/plain", 5, 1);
    storage
        .get_ref()
        .put_file(other, vec![first])
        .await
        .unwrap();
    assert!(is_corrupt(storage.chunk(&FileId::new([8; 32]), 0).await));
}

#[tokio::test]
async fn upload_chunks_are_encrypted_until_taken() {
    let (_, storage) = encrypted();
    let id = FileId::new([7; 32]);
    storage.begin(file(2)).await.unwrap();
    storage
        .put_chunk(&id, 1, Bytes::from_static(b"world"))
        .await
        .unwrap();
    storage
        .put_chunk(&id, 0, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(
        storage.progress(&id).await.unwrap().unwrap().received,
        [0, 1]
    );
    let (metadata, chunks) = storage.take(&id).await.unwrap();
    assert_eq!(metadata, file(2));
    assert_eq!(
        chunks,
        [Bytes::from_static(b"hello"), Bytes::from_static(b"world")]
    );

    // A chunk sealed for another upload does not read in this one.
    let other = FileId::new([9; 32]);
    let other_file = FileMetadata::new(other, "b.txt", 5, "text/plain", 5, 1);
    storage.begin(other_file).await.unwrap();
    storage
        .put_chunk(&other, 0, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let (_, records) = storage.get_ref().take(&other).await.unwrap();
    storage.get_ref().begin(file(1)).await.unwrap();
    storage
        .get_ref()
        .put_chunk(&id, 0, records[0].clone())
        .await
        .unwrap();
    assert!(is_corrupt(storage.take(&id).await));
}

fn milestone(doc: &str, id: &str, snapshot: &'static [u8]) -> Milestone {
    let by = CreatedBy {
        kind: CreatorKind::User,
        id: "alice".into(),
    };
    Milestone {
        meta: MilestoneMeta::new(doc, id, "Draft", 1.0, by),
        snapshot: Bytes::from_static(snapshot),
    }
}

#[tokio::test]
async fn milestone_snapshots_are_encrypted_and_bound_to_their_milestone() {
    let (_, storage) = encrypted();
    let created = milestone("room/doc", "m1", b"snapshot bytes");
    storage.create_milestone(created.clone()).await.unwrap();
    assert_eq!(
        storage.milestone(&doc(), "m1").await.unwrap(),
        Some(created.clone())
    );
    let raw = storage
        .get_ref()
        .milestone(&doc(), "m1")
        .await
        .unwrap()
        .unwrap();
    assert!(!contains(&raw.snapshot, b"snapshot bytes"));
    assert_eq!(raw.meta, created.meta, "metadata stays in clear");
    assert_eq!(storage.milestones(&doc(), false).await.unwrap().len(), 1);

    let mut copied = milestone("room/doc", "m2", b"");
    copied.snapshot = raw.snapshot;
    storage.get_ref().create_milestone(copied).await.unwrap();
    assert!(is_corrupt(storage.milestone(&doc(), "m2").await));
}

#[tokio::test]
async fn encryption_and_batching_stack_in_either_order() {
    use crate::batching::{AckMode, BatchConfig, VirtualStorage};

    let keys = Arc::new(StaticKeys::new(key("k1", 1)));
    let config = BatchConfig::default().with_ack(AckMode::Buffered);
    let batched_then_encrypted = DocumentStore::new(VirtualStorage::with_config(
        EncryptedStorage::new(MemoryStorage::new(), keys.clone()),
        config,
    ));
    let encrypted_then_batched = DocumentStore::new(EncryptedStorage::new(
        VirtualStorage::with_config(MemoryStorage::new(), config),
        keys,
    ));
    for store in [batched_then_encrypted, encrypted_then_batched] {
        for update in typed(&["layers ", "compose"]) {
            store.append(&doc(), update).await.unwrap();
        }
        assert_eq!(text_of(&store).await.unwrap(), "layers compose");
        assert!(store.compact(&doc()).await.unwrap());
        assert_eq!(text_of(&store).await.unwrap(), "layers compose");
    }
}
