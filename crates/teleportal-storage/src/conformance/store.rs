//! Checks of a backend under [`DocumentStore`]: what a server sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use super::document::stored_content;
use super::{Content, Writer, apply, history, join, replay};
use crate::{
    CompactionPolicy, DocumentId, DocumentStorage, DocumentStore, SizeLimits, SizeWarning,
    StorageError, UpdateEncoding,
};

async fn append_all(store: &DocumentStore, doc: &DocumentId, updates: &[Bytes]) {
    for (i, update) in updates.iter().enumerate() {
        store
            .append(doc, update.clone())
            .await
            .unwrap_or_else(|e| panic!("append {i} to {doc} failed: {e:?}"));
    }
}

async fn read_content(store: &DocumentStore, doc: &DocumentId) -> Content {
    let state = store
        .read(doc)
        .await
        .unwrap_or_else(|e| panic!("read of {doc} failed: {e:?}"));
    let content = Content::of_update(&state.update);
    assert_eq!(
        StateVector::decode_v1(&state.state_vector).expect("the state vector decodes"),
        content.state_vector,
        "read's state vector is not that of its update"
    );
    content
}

pub(super) async fn store_reads_what_was_appended<S: DocumentStorage>(storage: S) {
    let store = DocumentStore::new(Arc::new(storage));
    let doc = DocumentId::from("conformance/store-read");
    let empty = Content::of_updates([]);
    assert_eq!(
        read_content(&store, &doc).await,
        empty,
        "an unknown document reads content"
    );

    let mut writer = Writer::new(1);
    let updates = writer.edits(10);
    append_all(&store, &doc, &updates[..6]).await;
    assert!(
        store.compact(&doc).await.expect("compact"),
        "a tail of 6 had nothing to fold"
    );
    assert!(
        !store.compact(&doc).await.expect("compact"),
        "an empty tail was folded"
    );
    append_all(&store, &doc, &updates[6..]).await;
    assert_eq!(
        read_content(&store, &doc).await,
        Content::of_doc(&writer.doc),
        "snapshot plus tail read back differs from the client"
    );
}

/// 8 tasks, each a distinct client, append 25 edits each concurrently.
pub(super) async fn concurrent_appends_all_arrive<S: DocumentStorage>(storage: S) {
    const TASKS: u64 = 8;
    const EDITS: usize = 25;
    let storage = Arc::new(storage);
    let store = DocumentStore::new(Arc::clone(&storage));
    let doc = DocumentId::from("conformance/concurrent");
    let batches: Vec<Vec<Bytes>> = (0..TASKS)
        .map(|t| Writer::new(100 + t).edits(EDITS))
        .collect();
    let expected = Content::of_updates(batches.iter().flatten());

    let tasks: Vec<_> = batches
        .iter()
        .cloned()
        .map(|updates| {
            let store = store.clone();
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(updates.len());
                for update in updates {
                    let receipt = store
                        .append(&doc, update.clone())
                        .await
                        .unwrap_or_else(|e| panic!("concurrent append failed: {e:?}"));
                    seqs.push((receipt.seq, update));
                    tokio::task::yield_now().await; // Interleave on a current-thread runtime.
                }
                seqs
            })
        })
        .collect();
    let mut by_seq = BTreeMap::new();
    for task in tasks {
        let appended = join(task).await;
        for pair in appended.windows(2) {
            assert!(
                pair[1].0 > pair[0].0,
                "one task's appends got decreasing seqs"
            );
        }
        for (seq, update) in appended {
            assert!(
                by_seq.insert(seq, update).is_none(),
                "two appends got seq {seq}"
            );
        }
    }
    store.idle().await;

    // The default policy does not compact 200 updates: the tail is every append, by seq.
    let stored = storage.load(&doc).await.expect("load");
    let tail: Vec<(u64, &Bytes)> = stored.tail.iter().map(|u| (u.seq, &u.update)).collect();
    let appended: Vec<(u64, &Bytes)> = by_seq.iter().map(|(s, u)| (*s, u)).collect();
    assert!(
        tail == appended,
        "the tail differs from the appends ordered by their receipts' seqs"
    );
    assert_eq!(
        read_content(&store, &doc).await,
        expected,
        "concurrent appends lost or changed content"
    );
}

/// For clients holding several prefixes of the shared history, the diff against their state
/// vector brings them to the whole document, with nothing they already had.
pub(super) async fn diff_gives_exactly_the_missing_content<S: DocumentStorage>(storage: S) {
    let store = DocumentStore::from_arc(Arc::new(storage));
    let doc = DocumentId::from("conformance/diff");
    let history = history();
    append_all(&store, &doc, &history).await;
    store.idle().await; // 1000 appends started compactions; diff over snapshot plus tail.
    let full = Content::of_updates(&history);

    // Client states at several prefixes, replayed once.
    let prefixes = [0, 1, 2, 137, 500, 501, 999, history.len()];
    let client = yrs::Doc::new();
    let mut applied = 0;
    for k in prefixes {
        for update in &history[applied..k] {
            apply(&client, update, "a history update");
        }
        applied = k;
        let (state, sv) = {
            let txn = client.transact();
            (
                txn.encode_state_as_update_v1(&StateVector::default()),
                txn.state_vector(),
            )
        };
        let diff = store
            .diff(&doc, &sv.encode_v1())
            .await
            .unwrap_or_else(|e| panic!("diff after {k} updates failed: {e:?}"));

        let decoded = Update::decode_v1(&diff).expect("a diff decodes");
        let lowest = decoded.state_vector_lower();
        for (client_id, clock) in lowest.iter() {
            assert!(
                *clock >= sv.get(client_id),
                "the diff for a client at {k} updates resends client {client_id}'s structs \
                 from clock {clock}; it has up to {}",
                sv.get(client_id)
            );
        }
        let caught_up = replay([state.as_slice()]);
        apply(
            &caught_up,
            &diff,
            &format!("the diff for a client at {k} updates"),
        );
        assert_eq!(
            Content::of_doc(&caught_up),
            full,
            "a client at {k} updates did not reach the document with the diff"
        );
        if k == history.len() {
            assert!(
                lowest.is_empty(),
                "the diff against the full state vector holds structs"
            );
        }
    }
}

pub(super) async fn diff_rejects_a_bad_state_vector<S: DocumentStorage>(storage: S) {
    let store = DocumentStore::new(Arc::new(storage));
    let doc = DocumentId::from("conformance/bad-sv");
    append_all(&store, &doc, &Writer::new(1).edits(2)).await;
    match store.diff(&doc, &[0xff, 0xff, 0xff]).await {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("a diff against garbage gave {other:?}, not InvalidRequest"),
    }
}

/// Appenders run while the main task compacts, through the store and through the raw trait
/// (whole tail and half of it), and a small policy adds background compactions.
pub(super) async fn compaction_during_appends_loses_nothing<S: DocumentStorage>(storage: S) {
    const TASKS: u64 = 4;
    const EDITS: usize = 40;
    let storage = Arc::new(storage);
    let store = DocumentStore::new(Arc::clone(&storage))
        .with_compaction(CompactionPolicy::new(5, 1024 * 1024));
    let doc = DocumentId::from("conformance/compact-while-appending");
    let batches: Vec<Vec<Bytes>> = (0..TASKS)
        .map(|t| Writer::new(200 + t).edits(EDITS))
        .collect();
    let expected = Content::of_updates(batches.iter().flatten());

    let tasks: Vec<_> = batches
        .into_iter()
        .map(|updates| {
            let store = store.clone();
            let doc = doc.clone();
            tokio::spawn(async move {
                for update in updates {
                    store
                        .append(&doc, update)
                        .await
                        .unwrap_or_else(|e| panic!("append while compacting failed: {e:?}"));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let mut round = 0_usize;
    while !tasks.iter().all(tokio::task::JoinHandle::is_finished) {
        store
            .compact(&doc)
            .await
            .unwrap_or_else(|e| panic!("compaction while appending failed: {e:?}"));
        tokio::task::yield_now().await;
        // Raw: load, merge, compact, with appends landing between load and compact.
        let stored = storage.load(&doc).await.expect("load");
        if !stored.tail.is_empty() {
            let keep = if round.is_multiple_of(2) {
                0
            } else {
                stored.tail.len() / 2
            };
            let folded = &stored.tail[..stored.tail.len() - keep];
            let updates: Vec<Bytes> = stored
                .snapshot
                .iter()
                .cloned()
                .chain(folded.iter().map(|u| u.update.clone()))
                .collect();
            let merged = UpdateEncoding::V1
                .merge(&updates)
                .expect("stored updates merge");
            tokio::task::yield_now().await;
            let upto = folded.last().map_or(stored.snapshot_seq, |u| u.seq);
            storage
                .compact(&doc, upto, merged)
                .await
                .unwrap_or_else(|e| panic!("raw compaction while appending failed: {e:?}"));
        }
        round += 1;
        tokio::task::yield_now().await;
    }
    for task in tasks {
        join(task).await;
    }
    store.idle().await;

    assert_eq!(
        read_content(&store, &doc).await,
        expected,
        "compaction racing appends lost content"
    );
    assert_eq!(stored_content(&*storage, &doc).await, expected);
    let stored = storage.load(&doc).await.expect("load");
    assert!(
        stored.snapshot_seq > 0,
        "no compaction took effect in {round} rounds"
    );
    assert!(
        stored.tail.iter().all(|u| u.seq > stored.snapshot_seq),
        "the tail holds updates already folded into the snapshot"
    );
}

pub(super) async fn deleted_document_reads_empty_through_store<S: DocumentStorage>(storage: S) {
    let store = DocumentStore::from_arc(Arc::new(storage));
    let doc = DocumentId::from("conformance/store-delete");
    append_all(&store, &doc, &Writer::new(1).edits(4)).await;
    store.compact(&doc).await.expect("compact");
    append_all(&store, &doc, &Writer::new(2).edits(2)).await;
    store.delete(&doc).await.expect("delete");

    let state = store.read(&doc).await.expect("read");
    assert_eq!(Content::of_update(&state.update), Content::of_updates([]));
    assert_eq!(
        state.state_vector.as_ref(),
        &[0],
        "a deleted document has a state vector"
    );
    assert_eq!(store.metadata(&doc).await.expect("metadata"), None);

    let mut fresh = Writer::new(3);
    append_all(&store, &doc, &fresh.edits(2)).await;
    assert_eq!(
        read_content(&store, &doc).await,
        Content::of_doc(&fresh.doc),
        "content from before the delete came back"
    );
}

pub(super) async fn size_limits_warn_once_and_reject_past_max<S: DocumentStorage>(storage: S) {
    let storage = Arc::new(storage);
    let updates = Writer::new(1).edits(6);
    // Stored sizes differ between backends and layers: measure them on another document.
    let probe = DocumentStore::new(Arc::clone(&storage));
    let mut sizes = Vec::new();
    for update in &updates {
        let receipt = probe
            .append(&DocumentId::from("conformance/probe"), update.clone())
            .await
            .expect("probe append");
        sizes.push(receipt.size);
    }
    let (warn_at, max) = (sizes[2], sizes[4]);

    let warnings: Arc<Mutex<Vec<SizeWarning>>> = Arc::default();
    let seen = Arc::clone(&warnings);
    let store = DocumentStore::new(Arc::clone(&storage))
        .with_size_limits(SizeLimits::new(Some(warn_at), Some(max)))
        .on_size_warning(move |w| seen.lock().expect("warnings").push(w.clone()));
    let doc = DocumentId::from("conformance/limits");
    for (i, update) in updates[..5].iter().enumerate() {
        let receipt = store
            .append(&doc, update.clone())
            .await
            .unwrap_or_else(|e| panic!("append {i}, within the limit, failed: {e:?}"));
        assert_eq!(
            receipt.size, sizes[i],
            "the same updates stored to another size"
        );
    }
    {
        let warnings = warnings.lock().expect("warnings");
        assert_eq!(
            warnings.len(),
            1,
            "the warning fired {} times, not once",
            warnings.len()
        );
        assert_eq!(warnings[0].doc, doc);
        assert_eq!(
            warnings[0].size, warn_at,
            "the warning came at another append"
        );
        assert_eq!(warnings[0].warn_at, warn_at);
    }

    let before = store.read(&doc).await.expect("read");
    let meta_before = store.metadata(&doc).await.expect("metadata");
    match store.append(&doc, updates[5].clone()).await {
        Err(StorageError::DocumentTooLarge {
            doc: rejected,
            size,
            limit,
        }) => {
            assert_eq!(rejected, doc);
            assert_eq!(limit, max);
            assert!(
                size > max,
                "DocumentTooLarge reports size {size} within the limit {max}"
            );
        }
        other => panic!("an append past the limit gave {other:?}, not DocumentTooLarge"),
    }
    assert_eq!(
        store.read(&doc).await.expect("read"),
        before,
        "a rejected append changed the document"
    );
    assert_eq!(store.metadata(&doc).await.expect("metadata"), meta_before);
    assert_eq!(
        warnings.lock().expect("warnings").len(),
        1,
        "a rejected append warned"
    );
}

pub(super) async fn invalid_update_is_rejected_and_not_stored<S: DocumentStorage>(storage: S) {
    let store = DocumentStore::new(Arc::new(storage));
    let doc = DocumentId::from("conformance/invalid");
    let garbage: [&'static [u8]; 3] = [&[], &[0xff, 0xff, 0xff], &[1, 1, 200, 1, 0]];
    for bytes in garbage {
        match store.append(&doc, Bytes::from_static(bytes)).await {
            Err(StorageError::InvalidUpdate { doc: rejected, .. }) => assert_eq!(rejected, doc),
            other => panic!("appending {bytes:?} gave {other:?}, not InvalidUpdate"),
        }
    }
    assert_eq!(
        store.metadata(&doc).await.expect("metadata"),
        None,
        "an invalid update was stored"
    );

    let valid = Writer::new(1).edits(2);
    append_all(&store, &doc, &valid).await;
    let before = store.read(&doc).await.expect("read");
    let meta_before = store.metadata(&doc).await.expect("metadata");
    for bytes in garbage {
        assert!(
            matches!(
                store.append(&doc, Bytes::from_static(bytes)).await,
                Err(StorageError::InvalidUpdate { .. })
            ),
            "appending {bytes:?} to a document was not InvalidUpdate"
        );
    }
    assert_eq!(store.read(&doc).await.expect("read"), before);
    assert_eq!(store.metadata(&doc).await.expect("metadata"), meta_before);
}

/// 1200 updates (the shared history, then 200 edits on top of it) under the default policy:
/// once background compaction is idle the tail is within the policy, and the merged document
/// equals the replay.
pub(super) async fn cold_read_after_long_history_is_compacted<S: DocumentStorage>(storage: S) {
    let policy = CompactionPolicy::default();
    let store = DocumentStore::new(Arc::new(storage)).with_compaction(policy);
    let doc = DocumentId::from("conformance/long-history");
    let history = history();
    let mut writer = Writer::new(9000);
    for update in &history {
        writer.receive(update);
    }
    let mut updates = history;
    updates.extend(writer.edits(200));
    append_all(&store, &doc, &updates).await;
    store.idle().await;

    let meta = store
        .metadata(&doc)
        .await
        .expect("metadata")
        .expect("exists");
    assert!(
        meta.tail_updates <= policy.max_tail_updates && meta.tail_bytes <= policy.max_tail_bytes,
        "after 1200 appends and idle the tail holds {} updates, {} bytes; the policy allows {}, {}",
        meta.tail_updates,
        meta.tail_bytes,
        policy.max_tail_updates,
        policy.max_tail_bytes
    );
    assert!(meta.snapshot_seq > 0, "1200 appends were never compacted");
    assert_eq!(
        read_content(&store, &doc).await,
        Content::of_doc(&writer.doc),
        "the compacted document differs from the replayed history"
    );
}
