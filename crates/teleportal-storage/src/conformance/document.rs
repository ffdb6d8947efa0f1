//! Checks of the raw [`DocumentStorage`] contract.
//!
//! Sizes are in the backend's stored bytes, which a layer may make larger than the update it was
//! given (encryption adds a nonce and a tag), so sizes are held to each other and to the
//! receipts, never to update lengths.

use bytes::Bytes;

use super::{Content, Writer};
use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentStorage, StorageError, StoredDocument,
    UpdateEncoding,
};

/// Appends `updates` one after the other, returning the receipts.
async fn append_all<S: DocumentStorage + ?Sized>(
    storage: &S,
    doc: &DocumentId,
    updates: &[Bytes],
) -> Vec<AppendReceipt> {
    let mut receipts = Vec::with_capacity(updates.len());
    for update in updates {
        let receipt = storage
            .append(doc, update.clone(), AppendOptions::default())
            .await
            .unwrap_or_else(|e| panic!("append to {doc} failed: {e:?}"));
        receipts.push(receipt);
    }
    receipts
}

async fn load<S: DocumentStorage + ?Sized>(storage: &S, doc: &DocumentId) -> StoredDocument {
    storage
        .load(doc)
        .await
        .unwrap_or_else(|e| panic!("load of {doc} failed: {e:?}"))
}

/// The document's content, merged from what `load` returns.
pub(super) async fn stored_content<S: DocumentStorage + ?Sized>(
    storage: &S,
    doc: &DocumentId,
) -> Content {
    let merged = UpdateEncoding::V1
        .merge(&load(storage, doc).await.updates())
        .unwrap_or_else(|e| panic!("the stored updates of {doc} do not merge: {e}"));
    Content::of_update(&merged)
}

/// Compacts every update up to the `count`-th of the tail into the merge of the snapshot and
/// those updates, as a correct caller does; returns the `upto` it used.
async fn compact_first<S: DocumentStorage + ?Sized>(
    storage: &S,
    doc: &DocumentId,
    count: usize,
) -> u64 {
    let stored = load(storage, doc).await;
    let folded = &stored.tail[..count];
    let upto = folded.last().map_or(stored.snapshot_seq, |u| u.seq);
    let updates: Vec<Bytes> = stored
        .snapshot
        .iter()
        .cloned()
        .chain(folded.iter().map(|u| u.update.clone()))
        .collect();
    let merged = UpdateEncoding::V1
        .merge(&updates)
        .expect("stored updates merge");
    storage
        .compact(doc, upto, merged)
        .await
        .unwrap_or_else(|e| panic!("compact of {doc} up to {upto} failed: {e:?}"));
    upto
}

pub(super) async fn appends_read_back_in_order<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/order");
    let updates = Writer::new(1).edits(20);
    let receipts = append_all(&storage, &doc, &updates).await;

    assert!(
        receipts[0].seq > 0,
        "seq 0 means \"no snapshot\"; the first append needs a later one"
    );
    for (i, pair) in receipts.windows(2).enumerate() {
        assert!(
            pair[1].seq > pair[0].seq,
            "append {} got seq {} after seq {}: sequence numbers must increase",
            i + 1,
            pair[1].seq,
            pair[0].seq
        );
    }
    for (i, receipt) in receipts.iter().enumerate() {
        assert_eq!(
            receipt.tail_updates,
            i as u64 + 1,
            "receipt {i} counts the tail wrongly"
        );
    }

    let stored = load(&storage, &doc).await;
    assert_eq!(
        stored.snapshot, None,
        "nothing was compacted, yet a snapshot loads"
    );
    assert_eq!(
        stored.snapshot_seq, 0,
        "nothing was compacted, yet snapshot_seq is set"
    );
    let seqs: Vec<u64> = stored.tail.iter().map(|u| u.seq).collect();
    let receipt_seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs, receipt_seqs,
        "the tail's seqs differ from the receipts'"
    );
    let read: Vec<&Bytes> = stored.tail.iter().map(|u| &u.update).collect();
    let appended: Vec<&Bytes> = updates.iter().collect();
    assert!(
        read == appended,
        "the tail does not hold the appended updates in append order"
    );
    assert_eq!(stored.last_seq(), receipt_seqs[receipt_seqs.len() - 1]);
}

pub(super) async fn documents_are_isolated<S: DocumentStorage>(storage: S) {
    let a = DocumentId::from("conformance/a");
    let b = DocumentId::from("conformance/b");
    // A name that is a prefix of another must not share its records.
    let a_prefix = DocumentId::from("conformance/");
    let a_updates = Writer::new(1).edits(3);
    let b_updates = Writer::new(2).edits(4);
    append_all(&storage, &a, &a_updates).await;
    append_all(&storage, &b, &b_updates).await;

    assert_eq!(
        stored_content(&storage, &a).await,
        Content::of_updates(&a_updates)
    );
    assert_eq!(
        stored_content(&storage, &b).await,
        Content::of_updates(&b_updates)
    );
    assert!(
        load(&storage, &a_prefix).await.is_empty(),
        "a prefix of a name loads its data"
    );
    let meta_b = storage
        .metadata(&b)
        .await
        .expect("metadata")
        .expect("b exists");
    assert_eq!(meta_b.tail_updates, 4, "b counts a's updates");

    compact_first(&storage, &a, 3).await;
    storage.delete(&a).await.expect("delete a");
    assert!(load(&storage, &a).await.is_empty());
    assert_eq!(
        stored_content(&storage, &b).await,
        Content::of_updates(&b_updates),
        "compacting and deleting a changed b"
    );
    assert_eq!(storage.metadata(&b).await.expect("metadata"), Some(meta_b));
}

pub(super) async fn unknown_document_has_no_metadata<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/never-written");
    assert_eq!(storage.metadata(&doc).await.expect("metadata"), None);
    assert!(
        load(&storage, &doc).await.is_empty(),
        "a document never written loads content"
    );
}

pub(super) async fn metadata_counts_snapshot_and_tail<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/metadata");
    let updates = Writer::new(1).edits(6);
    let receipts = append_all(&storage, &doc, &updates).await;

    // Each update's stored size, from the receipts: the size it added.
    let mut stored_sizes = Vec::new();
    let mut before = 0;
    for receipt in &receipts {
        assert_eq!(
            receipt.size, receipt.tail_bytes,
            "without a snapshot the size is the tail's bytes"
        );
        assert!(receipt.size > before, "an append did not grow the document");
        stored_sizes.push(receipt.size - before);
        before = receipt.size;
    }

    let last = receipts[receipts.len() - 1];
    let meta = storage
        .metadata(&doc)
        .await
        .expect("metadata")
        .expect("the document exists");
    assert_eq!(
        meta.size, last.size,
        "metadata size differs from the last receipt"
    );
    assert_eq!(meta.tail_bytes, last.tail_bytes);
    assert_eq!(meta.tail_updates, 6);
    assert_eq!(meta.last_seq, last.seq);
    assert_eq!(meta.snapshot_seq, 0);

    let upto = compact_first(&storage, &doc, 4).await;
    let meta = storage
        .metadata(&doc)
        .await
        .expect("metadata")
        .expect("the document exists");
    assert_eq!(meta.snapshot_seq, upto, "metadata misses the compaction");
    assert_eq!(meta.last_seq, last.seq, "compaction changed last_seq");
    assert_eq!(
        meta.tail_updates, 2,
        "the tail after compacting 4 of 6 updates"
    );
    assert_eq!(
        meta.tail_bytes,
        stored_sizes[4] + stored_sizes[5],
        "tail bytes after compaction differ from what the two kept updates added"
    );
    assert!(
        meta.size > meta.tail_bytes,
        "the size leaves out the snapshot"
    );

    // The next receipt agrees with the metadata.
    let next = storage
        .append(&doc, Writer::new(2).edit(), AppendOptions::default())
        .await
        .expect("append after compaction");
    assert!(next.seq > last.seq);
    assert_eq!(next.tail_updates, 3);
    let meta_after = storage
        .metadata(&doc)
        .await
        .expect("metadata")
        .expect("exists");
    assert_eq!(
        meta_after.size, next.size,
        "receipt and metadata sizes differ"
    );
    assert_eq!(meta_after.tail_bytes, next.tail_bytes);
    assert_eq!(
        meta_after.size - meta_after.tail_bytes,
        meta.size - meta.tail_bytes
    );

    storage.delete(&doc).await.expect("delete");
    assert_eq!(
        storage.metadata(&doc).await.expect("metadata"),
        None,
        "deleted, yet metadata"
    );
}

pub(super) async fn compaction_keeps_later_updates<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/compaction");
    let updates = Writer::new(1).edits(5);
    let receipts = append_all(&storage, &doc, &updates).await;
    let merged = UpdateEncoding::V1.merge(&updates[..3]).expect("merge");

    storage
        .compact(&doc, receipts[2].seq, merged.clone())
        .await
        .expect("compact");
    let stored = load(&storage, &doc).await;
    assert_eq!(
        stored.snapshot.as_ref(),
        Some(&merged),
        "the snapshot is not the one given"
    );
    assert_eq!(stored.snapshot_seq, receipts[2].seq);
    let tail: Vec<(u64, &Bytes)> = stored.tail.iter().map(|u| (u.seq, &u.update)).collect();
    let expected: Vec<(u64, &Bytes)> = receipts[3..]
        .iter()
        .map(|r| r.seq)
        .zip(&updates[3..])
        .collect();
    assert!(
        tail == expected,
        "compaction up to the 3rd update changed the later ones"
    );
    assert_eq!(
        stored_content(&storage, &doc).await,
        Content::of_updates(&updates)
    );
}

pub(super) async fn stale_compaction_changes_nothing<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/stale-compaction");
    let updates = Writer::new(1).edits(5);
    let receipts = append_all(&storage, &doc, &updates).await;
    storage
        .compact(
            &doc,
            receipts[2].seq,
            UpdateEncoding::V1.merge(&updates[..3]).expect("merge"),
        )
        .await
        .expect("compact");
    let before = load(&storage, &doc).await;
    let meta_before = storage.metadata(&doc).await.expect("metadata");

    // A compaction that lost the race: its `upto` is at or before the current snapshot.
    for (upto, snapshot) in [
        (receipts[2].seq, updates[0].clone()),
        (
            receipts[1].seq,
            UpdateEncoding::V1.merge(&updates[..2]).expect("merge"),
        ),
        (receipts[0].seq, updates[0].clone()),
    ] {
        storage
            .compact(&doc, upto, snapshot)
            .await
            .expect("a stale compaction is Ok");
        assert_eq!(
            load(&storage, &doc).await,
            before,
            "a compaction up to {upto} (snapshot at {}) changed the document",
            before.snapshot_seq
        );
    }
    assert_eq!(storage.metadata(&doc).await.expect("metadata"), meta_before);
}

pub(super) async fn deleted_document_reads_empty<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/deleted");
    append_all(&storage, &doc, &Writer::new(1).edits(4)).await;
    compact_first(&storage, &doc, 2).await;
    storage.delete(&doc).await.expect("delete");
    assert!(
        load(&storage, &doc).await.is_empty(),
        "a deleted document loads content"
    );
    assert_eq!(storage.metadata(&doc).await.expect("metadata"), None);
    // Deleting again, or a document never written, is fine.
    storage.delete(&doc).await.expect("second delete");
    storage
        .delete(&DocumentId::from("conformance/never-written"))
        .await
        .expect("delete of an unknown document");
}

pub(super) async fn deleted_document_starts_afresh<S: DocumentStorage>(storage: S) {
    let doc = DocumentId::from("conformance/reborn");
    let old = append_all(&storage, &doc, &Writer::new(1).edits(3)).await;
    storage.delete(&doc).await.expect("delete");

    let fresh = Writer::new(2).edits(2);
    let receipts = append_all(&storage, &doc, &fresh).await;
    assert!(
        receipts[0].seq > old[old.len() - 1].seq,
        "seq {} reused after delete (last before: {}): a stale compaction could apply",
        receipts[0].seq,
        old[old.len() - 1].seq
    );
    assert_eq!(receipts[0].tail_updates, 1, "the deleted tail still counts");
    assert_eq!(
        stored_content(&storage, &doc).await,
        Content::of_updates(&fresh),
        "deleted content came back"
    );
    let meta = storage
        .metadata(&doc)
        .await
        .expect("metadata")
        .expect("exists");
    assert_eq!(meta.tail_updates, 2);
    assert_eq!(meta.size, receipts[1].size);
}

pub(super) async fn compaction_loaded_before_delete_cannot_resurrect<S: DocumentStorage>(
    storage: S,
) {
    let doc = DocumentId::from("conformance/resurrect");
    append_all(&storage, &doc, &Writer::new(1).edits(4)).await;
    // A compactor loads and merges; the document is deleted before it writes.
    let stale = load(&storage, &doc).await;
    let merged = UpdateEncoding::V1.merge(&stale.updates()).expect("merge");
    storage.delete(&doc).await.expect("delete");

    storage
        .compact(&doc, stale.last_seq(), merged.clone())
        .await
        .expect("a stale compaction is Ok");
    assert!(
        load(&storage, &doc).await.is_empty(),
        "a compaction loaded before the delete brought content back"
    );
    assert_eq!(storage.metadata(&doc).await.expect("metadata"), None);

    // Also when the document was written again in between.
    let fresh = Writer::new(2).edits(2);
    append_all(&storage, &doc, &fresh).await;
    storage
        .compact(&doc, stale.last_seq(), merged)
        .await
        .expect("a stale compaction is Ok");
    assert_eq!(
        stored_content(&storage, &doc).await,
        Content::of_updates(&fresh),
        "a compaction loaded before the delete brought content back into the new document"
    );
}

pub(super) async fn append_past_max_size_stores_nothing<S: DocumentStorage>(storage: S) {
    let updates = Writer::new(1).edits(3);
    // Stored sizes differ between backends and layers: measure them on another document.
    let probe = append_all(&storage, &DocumentId::from("conformance/probe"), &updates).await;
    let doc = DocumentId::from("conformance/limited");
    append_all(&storage, &doc, &updates[..1]).await;
    let before = load(&storage, &doc).await;
    let meta_before = storage.metadata(&doc).await.expect("metadata");

    let limit = probe[1].size - 1;
    match storage
        .append(
            &doc,
            updates[1].clone(),
            AppendOptions::with_max_size(limit),
        )
        .await
    {
        Err(StorageError::DocumentTooLarge {
            doc: rejected,
            size,
            limit: reported,
        }) => {
            assert_eq!(rejected, doc);
            assert_eq!(reported, limit);
            assert_eq!(size, probe[1].size, "the error reports another size");
        }
        other => panic!("an append past max_size gave {other:?}, not DocumentTooLarge"),
    }
    assert_eq!(
        load(&storage, &doc).await,
        before,
        "a rejected append changed the document"
    );
    assert_eq!(storage.metadata(&doc).await.expect("metadata"), meta_before);

    // Reaching the limit exactly is allowed; only exceeding it is not.
    let receipt = storage
        .append(
            &doc,
            updates[1].clone(),
            AppendOptions::with_max_size(probe[1].size),
        )
        .await
        .unwrap_or_else(|e| panic!("an append reaching max_size exactly failed: {e:?}"));
    assert_eq!(receipt.size, probe[1].size);
    assert!(receipt.seq > before.last_seq());
}
