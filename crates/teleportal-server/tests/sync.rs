//! Sync per spec §4.3: sync-step-1 answers, convergence, ACK after durability, dedup.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use teleportal_server::{E2EE_UNSUPPORTED, ENCRYPTION_MISMATCH, RelayMode, Server, ServerConfig};
use teleportal_storage::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, DocumentStore,
    MemoryStorage, Seq, StorageError, StoredDocument,
};
use tokio::sync::Semaphore;

#[tokio::test]
async fn sync_step_1_on_empty_document_answers_empty_envelope_then_server_step_1_then_ack() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let id = client.send(sync_step_1("notes", Bytes::from_static(&[0])));

    let step2 = client.recv_message().await;
    assert_eq!(step2.document, "notes");
    let Body::Doc(DocMessage::SyncStep2(Update { version, data })) = step2.body else {
        panic!("expected sync-step-2, got {step2:?}");
    };
    assert_eq!(version, 2);
    assert_eq!(
        data.as_ref(),
        &[1, 0, 0, 0],
        "doc_sync_step_2_empty_envelope"
    );
    let step1 = client.recv_message().await;
    assert!(matches!(
        step1.body,
        Body::Doc(DocMessage::SyncStep1 { .. })
    ));
    let ack = client.recv_message().await;
    assert!(
        matches!(ack.body, Body::Ack(ref a) if a.is_positive() && a.message_id == id.to_string())
    );
}

#[tokio::test]
async fn sync_step_1_on_stored_document_returns_its_content() {
    let server = memory_server();
    let mut writer = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let id = writer.send(update_message("notes", replica.type_text("hello")));
    assert!(writer.until_ack(id).await.0.is_positive());

    let mut reader = Client::connect(&server, "bob");
    let fresh = Replica::new(2);
    let id = reader.send(sync_step_1("notes", fresh.state_vector()));
    let (_, before) = reader.until_ack(id).await;
    let Body::Doc(DocMessage::SyncStep2(update)) = &before[0].body else {
        panic!("expected sync-step-2 first, got {:?}", before[0]);
    };
    assert_eq!(update.version, 2);
    fresh.apply_envelope(&update.data);
    assert_eq!(fresh.text(), "hello");
    // The server's own sync-step-1 carries the stored state vector.
    assert_eq!(
        before[1].body,
        Body::Doc(DocMessage::SyncStep1 {
            state_vector: replica.state_vector()
        })
    );
}

#[tokio::test]
async fn two_clients_converge_after_concurrent_edits() {
    let server = memory_server();
    let (mut a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    let (ra, rb) = (Replica::new(1), Replica::new(2));
    sync(&mut a, &ra, "doc").await;
    sync(&mut b, &rb, "doc").await;

    // Both edit before seeing the other's edit.
    let ua = ra.type_text("from a;");
    let ub = rb.type_text("from b;");
    let ida = a.send(update_message("doc", ua));
    let idb = b.send(update_message("doc", ub));
    for (client, replica, id) in [(&mut a, &ra, ida), (&mut b, &rb, idb)] {
        let (ack, before) = client.until_ack(id).await;
        assert!(ack.is_positive());
        before.iter().for_each(|m| replica.apply_message(m));
    }
    // Both updates are acked, so both are stored; each client receives the other's.
    let want = stored_text(&server, "doc").await;
    converge(&mut a, &ra, &want).await;
    converge(&mut b, &rb, &want).await;
    assert_eq!(ra.text(), rb.text());
    assert!(want.contains("from a;") && want.contains("from b;"));
}

#[tokio::test]
async fn update_is_acked_only_after_storage_append_resolves() {
    let gate = Arc::new(Semaphore::new(0));
    let storage = GatedStorage::new(Arc::clone(&gate));
    let server = Server::new(DocumentStore::new(storage));
    let mut client = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let id = client.send(update_message("notes", replica.type_text("durable")));

    client.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(stored_text(&server, "notes").await, "");

    gate.add_permits(1);
    let (ack, _) = client.until_ack(id).await;
    assert!(ack.is_positive());
    assert_eq!(stored_text(&server, "notes").await, "durable");
}

/// Storage whose appends each wait until `n` appends are waiting: only a server that stores
/// a connection's updates concurrently gets past it.
struct BarrierStorage {
    inner: MemoryStorage,
    barrier: tokio::sync::Barrier,
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for BarrierStorage {
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        self.barrier.wait().await;
        self.inner.append(doc, update, options).await
    }
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        self.inner.load(doc).await
    }
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        self.inner.metadata(doc).await
    }
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        self.inner.compact(doc, upto, snapshot).await
    }
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.inner.delete(doc).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn consecutive_updates_are_stored_together_but_acked_and_relayed_in_order() {
    let storage = BarrierStorage {
        inner: MemoryStorage::new(),
        barrier: tokio::sync::Barrier::new(3),
    };
    let server = Server::new(DocumentStore::new(storage));
    let mut watcher = Client::connect(&server, "bob");
    let watching = Replica::new(2);
    let id = watcher.send(sync_step_1("notes", watching.state_vector()));
    assert!(watcher.until_ack(id).await.0.is_positive());

    let mut writer = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let updates: Vec<Bytes> = ["a", "b", "c"].map(|s| replica.type_text(s)).into();
    let ids: Vec<_> = updates
        .iter()
        .map(|u| writer.send(update_message("notes", u.clone())))
        .collect();
    tokio::time::timeout(Duration::from_secs(5), async {
        for id in &ids {
            let ack = writer.recv_message().await;
            let Body::Ack(ack) = ack.body else {
                panic!("expected an ack, got {ack:?}");
            };
            assert!(ack.is_positive());
            assert_eq!(ack.message_id, id.to_string(), "acks in the order sent");
        }
        // Each update builds on the one before: applied in order, the text grows by one.
        for expected in ["a", "ab", "abc"] {
            let relayed = watcher.recv_message().await;
            assert!(
                matches!(relayed.body, Body::Doc(DocMessage::Update(_))),
                "expected an update, got {relayed:?}"
            );
            watching.apply_message(&relayed);
            assert_eq!(watching.text(), expected, "relayed in the order sent");
        }
    })
    .await
    .expect("three updates stored concurrently (a one-at-a-time server waits forever)");
    assert_eq!(stored_text(&server, "notes").await, "abc");
}

#[tokio::test]
async fn duplicate_message_is_acked_twice_but_applied_once() {
    let server = memory_server();
    let mut writer = Client::connect(&server, "alice");
    let mut watcher = Client::connect(&server, "bob");
    sync(&mut watcher, &Replica::new(2), "notes").await;

    let replica = Replica::new(1);
    let message = update_message("notes", replica.type_text("once"));
    let first = writer.send(message.clone());
    let second = writer.send(message);
    assert_eq!(first, second);
    assert!(writer.until_ack(first).await.0.is_positive());
    assert!(writer.until_ack(second).await.0.is_positive());

    let meta = server
        .store()
        .metadata(&DocumentId::from("notes"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.tail_updates, 1, "stored once");
    let relayed = watcher.recv_message().await;
    assert!(matches!(relayed.body, Body::Doc(DocMessage::Update(_))));
    watcher.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    client.send_frame(Frame::Ping);
    assert_eq!(client.recv().await, Frame::Pong);
}

#[tokio::test]
async fn encrypted_update_is_nacked_as_unsupported() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let mut message = update_message("secret", replica.type_text("x"));
    message.encrypted = true;
    let id = client.send(message);
    let (ack, _) = client.until_ack(id).await;
    assert_eq!(ack.error.as_deref(), Some(E2EE_UNSUPPORTED));

    // An unencrypted message to the same document now mismatches the session's mode.
    let id = client.send(update_message("secret", replica.type_text("y")));
    let (ack, _) = client.until_ack(id).await;
    assert_eq!(ack.error.as_deref(), Some(ENCRYPTION_MISMATCH));
    assert_eq!(stored_text(&server, "secret").await, "");
}

#[tokio::test]
async fn envelope_with_sidecars_is_nacked_and_not_stored() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let envelope = ContentEnvelope {
        structure_update: replica.type_text("x"),
        sidecars: vec![Bytes::from_static(&[0; 28])],
        compaction: None,
    };
    let id = client.send(Message::doc(
        "notes",
        DocMessage::Update(Update {
            version: 2,
            data: envelope.to_bytes(),
        }),
    ));
    let (ack, _) = client.until_ack(id).await;
    assert_eq!(ack.error.as_deref(), Some(E2EE_UNSUPPORTED));
    assert_eq!(stored_text(&server, "notes").await, "");
}

#[tokio::test]
async fn garbage_update_is_nacked_with_a_reason() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let id = client.send(Message::doc(
        "notes",
        DocMessage::Update(Update {
            version: 2,
            data: Bytes::from_static(&[7, 7, 7]),
        }),
    ));
    let (ack, _) = client.until_ack(id).await;
    let error = ack.error.expect("a NACK");
    assert!(
        error.starts_with("invalid content envelope for document notes"),
        "{error}"
    );
}

#[tokio::test]
async fn message_past_the_size_limit_is_nacked_and_not_stored() {
    let server = memory_builder()
        .config(teleportal_server::ServerConfig::default().with_max_message_size(64))
        .build();
    let mut client = Client::connect(&server, "alice");
    let replica = Replica::new(1);
    let message = update_message("notes", replica.type_text(&"x".repeat(100)));
    let size = message.to_bytes().len();
    let id = client.send(message);
    let (ack, _) = client.until_ack(id).await;
    assert_eq!(
        ack.error,
        Some(format!("message-too-large: {size} > 64 bytes"))
    );
    assert_eq!(stored_text(&server, "notes").await, "");
}

#[tokio::test]
async fn sync_answer_includes_current_awareness_states_after_the_ack() {
    let server = memory_server();
    let mut a = Client::connect(&server, "a");
    let state = teleportal_core::y_protocols::AwarenessUpdate {
        entries: vec![teleportal_core::y_protocols::AwarenessEntry {
            client_id: 1,
            clock: 1,
            state: "{}".into(),
        }],
    }
    .to_bytes();
    let id = a.send(Message::awareness(
        "notes",
        teleportal_core::AwarenessMessage::Update(state.clone()),
    ));
    a.until_ack(id).await;

    let mut b = Client::connect(&server, "b");
    let id = b.send(sync_step_1("notes", Bytes::from_static(&[0])));
    b.until_ack(id).await;
    assert_eq!(
        b.recv_message().await,
        Message::awareness("notes", teleportal_core::AwarenessMessage::Update(state))
    );
}

#[tokio::test]
async fn failed_append_is_nacked_with_the_cause_and_not_relayed_after_durable() {
    // Appends always fail, as on a broken disk: the gate is wide open and `fail` is set.
    let storage = GatedStorage::new(std::sync::Arc::new(tokio::sync::Semaphore::new(
        tokio::sync::Semaphore::MAX_PERMITS,
    )));
    storage
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let server = Server::builder(DocumentStore::new(storage))
        .config(ServerConfig::default().with_relay(RelayMode::AfterDurable))
        .build();
    let mut watcher = Client::connect(&server, "bob");
    sync(&mut watcher, &Replica::new(2), "notes").await;
    let mut writer = Client::connect(&server, "alice");
    let id = writer.send(update_message("notes", Replica::new(1).type_text("lost")));
    let (ack, _) = writer.until_ack(id).await;
    assert_eq!(
        ack.error.as_deref(),
        Some("storage failed for document notes: disk backend failed: disk full")
    );
    watcher.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn unknown_rpc_gets_501_response_and_nack() {
    use teleportal_core::{Any, RpcKind, RpcMessage, RpcPayload};
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let id = client.send(Message::rpc(
        "notes",
        RpcMessage {
            method: "milestoneList".into(),
            kind: RpcKind::Request,
            payload: RpcPayload::Success(Any::Object(vec![(
                "method".into(),
                Any::String("milestoneList".into()),
            )])),
        },
    ));
    let (ack, before) = client.until_ack(id).await;
    assert_eq!(
        ack.error.as_deref(),
        Some("Unknown RPC method: milestoneList")
    );
    let [response] = before.as_slice() else {
        panic!("expected one response, got {before:?}");
    };
    let Body::Rpc(rpc) = &response.body else {
        panic!("expected an rpc response, got {response:?}");
    };
    assert_eq!(
        rpc.kind,
        RpcKind::Response {
            original_request_id: id.to_string()
        }
    );
    assert!(matches!(
        &rpc.payload,
        RpcPayload::Error { status_code: 501, details, .. } if details == "Unknown RPC method: milestoneList"
    ));
}

#[tokio::test]
async fn garbage_state_vector_is_nacked_with_a_reason() {
    let server = memory_server();
    let mut client = Client::connect(&server, "alice");
    let id = client.send(sync_step_1("notes", Bytes::from_static(&[0xff, 0xff])));
    let (ack, before) = client.until_ack(id).await;
    assert!(before.is_empty(), "{before:?}");
    let error = ack.error.expect("a NACK");
    assert!(
        error.starts_with("invalid state vector for document notes"),
        "{error}"
    );
}
