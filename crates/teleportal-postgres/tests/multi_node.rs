//! Two OS processes (this test binary and a copy of itself in the writer role) append to one
//! document and compact it concurrently, each through its own `PostgresStorage`; nothing
//! either appended may be lost, and no sequence number may be handed out twice.
// yrs documents play the clients here; the store under test never builds one.
#![allow(clippy::disallowed_types)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;

use bytes::Bytes;
use common::{TestSchemas, config, fresh_schema_name};
use teleportal_postgres::PostgresStorage;
use teleportal_storage::{
    CompactionPolicy, DocumentId, DocumentStorage, DocumentStore, UpdateEncoding,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, ReadTxn, Text, Transact, Update};

/// Set in the child: `<schema>:<client id>`.
const WRITER_ENV: &str = "TELEPORTAL_PG_WRITER";
/// The child prints this once connected (and migrated), then starts writing.
const READY: &str = "writer-ready";
/// The child's last line: its receipts' sequence numbers.
const SEQS: &str = "writer-seqs:";
const DOC: &str = "multi-node/shared";
const EDITS: u32 = 150;
/// Every this many appends a writer compacts explicitly (the store also compacts in the
/// background once the tail reaches 5 updates).
const COMPACT_EVERY: u32 = 4;

fn key(client: u64, i: u32) -> String {
    format!("c{client}-{i}")
}

fn token(client: u64, i: u32) -> String {
    format!("<c{client}.{i}>")
}

/// One node: a client's edits appended through a `DocumentStore` over its own pool, with
/// compactions in between; returns the sequence numbers the appends got.
async fn write_and_compact(schema: &str, client: u64, ready: impl FnOnce()) -> Vec<u64> {
    // Both processes connect at once, each migrating the fresh schema: the advisory lock
    // makes one of them create it and the other find it done.
    let storage = PostgresStorage::connect(config(schema))
        .await
        .expect("connect and migrate");
    let store = DocumentStore::new(storage).with_compaction(CompactionPolicy::new(5, 1 << 20));
    ready();
    let doc_id = DocumentId::from(DOC);
    let doc = Doc::with_client_id(client);
    let map = doc.get_or_insert_map("entries");
    let text = doc.get_or_insert_text("log");
    let mut seqs = Vec::new();
    for i in 0..EDITS {
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            map.insert(&mut txn, key(client, i), i64::from(i));
            let len = text.len(&txn);
            text.insert(&mut txn, len, &token(client, i));
        }
        let update = Bytes::from(doc.transact().encode_diff_v1(&before));
        let receipt = store.append(&doc_id, update).await.expect("append");
        seqs.push(receipt.seq);
        if i % COMPACT_EVERY == COMPACT_EVERY - 1 {
            store.compact(&doc_id).await.expect("compact");
        }
    }
    store.idle().await;
    seqs
}

/// The child's role; without the variable (a normal test run) it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_role() {
    let Ok(role) = std::env::var(WRITER_ENV) else {
        return;
    };
    let (schema, client) = role.split_once(':').expect("<schema>:<client>");
    let client: u64 = client.parse().expect("client id");
    let seqs = write_and_compact(schema, client, || println!("{READY}")).await;
    let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
    println!("{SEQS}{}", seqs.join(","));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_and_compacting_one_document_lose_nothing() {
    if std::env::var_os(WRITER_ENV).is_some() {
        return; // This is the child: only `writer_role` runs here.
    }
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let schema = fresh_schema_name();
    schemas.track(&schema);

    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["writer_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, format!("{schema}:2"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the second process");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    // Start together: wait until the child is connected, then both write.
    let mut child_output = Vec::new();
    loop {
        let line = lines
            .next_line()
            .await
            .expect("read the child")
            .unwrap_or_else(|| panic!("the child ended before it was ready: {child_output:?}"));
        // The harness prints "test writer_role ... " before it, on the same line.
        let ready = line.ends_with(READY);
        child_output.push(line);
        if ready {
            break;
        }
    }
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read the child") {
            rest.push(line);
        }
        rest
    });
    let ours = write_and_compact(&schema, 1, || {}).await;
    child_output.extend(reader.await.expect("reader task"));
    let status = child.wait().await.expect("the child exits");
    assert!(
        status.success(),
        "the second process failed: {status}\n{}",
        child_output.join("\n")
    );
    let theirs: Vec<u64> = child_output
        .iter()
        .find_map(|line| line.split_once(SEQS).map(|(_, seqs)| seqs))
        .unwrap_or_else(|| {
            panic!(
                "the child reported no receipts:\n{}",
                child_output.join("\n")
            )
        })
        .split(',')
        .map(|seq| seq.parse().expect("a seq"))
        .collect();

    // Sequence numbers: all distinct, and the two processes' appends interleaved (so they
    // really ran at the same time).
    assert_eq!(
        theirs.len(),
        EDITS as usize,
        "the child did not append everything"
    );
    let all: BTreeSet<u64> = ours.iter().chain(&theirs).copied().collect();
    assert_eq!(
        all.len(),
        ours.len() + theirs.len(),
        "a sequence number was handed out twice"
    );
    let (our_last, their_last) = (ours[ours.len() - 1], theirs[theirs.len() - 1]);
    assert!(
        ours[0] < their_last && theirs[0] < our_last,
        "the processes did not overlap (ours {}..{our_last}, theirs {}..{their_last})",
        ours[0],
        theirs[0]
    );

    // Every edit of both clients is in the stored document, before and after a last
    // compaction by a third store.
    let storage = PostgresStorage::connect(config(&schema))
        .await
        .expect("connect");
    let doc_id = DocumentId::from(DOC);
    assert_all_edits_present(&storage, &doc_id).await;
    DocumentStore::new(storage.clone())
        .compact(&doc_id)
        .await
        .expect("final compaction");
    assert_all_edits_present(&storage, &doc_id).await;
    let meta = storage
        .metadata(&doc_id)
        .await
        .expect("metadata")
        .expect("exists");
    assert_eq!(meta.last_seq, *all.last().expect("appends"));
}

async fn assert_all_edits_present(storage: &PostgresStorage, doc_id: &DocumentId) {
    let stored = storage.load(doc_id).await.expect("load");
    let merged = UpdateEncoding::V1
        .merge(&stored.updates())
        .expect("stored updates merge");
    let doc = Doc::new();
    let map = doc.get_or_insert_map("entries");
    let text = doc.get_or_insert_text("log");
    {
        let mut txn = doc.transact_mut();
        txn.apply_update(Update::decode_v1(&merged).expect("decodes"))
            .expect("applies");
        assert!(
            !txn.has_missing_updates(),
            "the merged update depends on missing ones"
        );
    }
    let txn = doc.transact();
    let text = text.get_string(&txn);
    let mut missing = Vec::new();
    for client in [1, 2] {
        for i in 0..EDITS {
            if map.get(&txn, &key(client, i)).is_none() || !text.contains(&token(client, i)) {
                missing.push(key(client, i));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} edits were lost (snapshot at {}, {} in the tail): {missing:?}",
        missing.len(),
        stored.snapshot_seq,
        stored.tail.len()
    );
    assert_eq!(map.len(&txn), 2 * EDITS, "the map has edits nobody made");
}
