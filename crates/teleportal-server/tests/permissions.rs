//! Every message passes the permission hook before it has any effect (spec §4.2, §4.3).

mod common;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Message, Update};
use teleportal_server::{Access, ClientContext, PermissionChecker};

/// `reader` may only read; `nobody` may do nothing; everyone else may do everything.
struct Roles;

#[async_trait]
impl PermissionChecker for Roles {
    async fn check(&self, client: &ClientContext, _document: &str, access: Access) -> bool {
        match client.client_id.as_str() {
            "reader" => access == Access::Read,
            "nobody" => false,
            _ => true,
        }
    }
}

fn server() -> teleportal_server::Server {
    memory_builder().permissions(Roles).build()
}

const REASON: &str = "Insufficient permissions to access document notes";

#[tokio::test]
async fn denied_write_leaves_document_unchanged_and_answers_auth_message() {
    let server = server();
    let mut writer = Client::connect(&server, "writer");
    let replica = Replica::new(1);
    let id = writer.send(update_message("notes", replica.type_text("kept")));
    assert!(writer.until_ack(id).await.0.is_positive());

    let mut reader = Client::connect(&server, "reader");
    let id = reader.send(update_message(
        "notes",
        Replica::new(2).type_text("rejected"),
    ));
    let (ack, before) = reader.until_ack(id).await;
    assert_eq!(ack.error.as_deref(), Some(REASON));
    assert_eq!(
        before,
        vec![Message::doc(
            "notes",
            DocMessage::Auth {
                allowed: false,
                reason: REASON.into()
            }
        )]
    );
    assert_eq!(stored_text(&server, "notes").await, "kept");
}

#[tokio::test]
async fn denied_sync_step_2_gets_sync_done_and_stores_nothing() {
    let server = server();
    let mut reader = Client::connect(&server, "reader");
    let step2 = Message::doc(
        "notes",
        DocMessage::SyncStep2(Update {
            version: 2,
            data: ContentEnvelope::plain(Replica::new(2).type_text("rejected")).to_bytes(),
        }),
    );
    let id = reader.send(step2);
    let (ack, before) = reader.until_ack(id).await;
    assert!(!ack.is_positive());
    assert_eq!(before, vec![Message::doc("notes", DocMessage::SyncDone)]);
    assert_eq!(stored_text(&server, "notes").await, "");
}

#[tokio::test]
async fn denied_read_gets_auth_message_and_no_state() {
    let server = server();
    let mut nobody = Client::connect(&server, "nobody");
    let id = nobody.send(sync_step_1("notes", Bytes::from_static(&[0])));
    let (ack, before) = nobody.until_ack(id).await;
    assert_eq!(ack.error.as_deref(), Some(REASON));
    assert_eq!(before.len(), 1);
    assert!(matches!(
        &before[0].body,
        Body::Doc(DocMessage::Auth { allowed: false, reason }) if reason == REASON
    ));
    assert!(
        server.open_documents().is_empty(),
        "a denied client opens no session"
    );
}

#[tokio::test]
async fn reader_may_sync() {
    let server = server();
    let mut reader = Client::connect(&server, "reader");
    let id = reader.send(sync_step_1("notes", Bytes::from_static(&[0])));
    assert!(reader.until_ack(id).await.0.is_positive());
}

#[tokio::test]
async fn reader_with_nothing_to_add_completes_the_sync_without_a_denial() {
    let server = server();
    let mut writer = Client::connect(&server, "writer");
    let id = writer.send(update_message("notes", Replica::new(1).type_text("kept")));
    assert!(writer.until_ack(id).await.0.is_positive());

    // The whole sync of a viewer: its sync-step-2 carries the empty update yrs encodes, as a
    // yjs client's does when it holds nothing the server lacks.
    let mut reader = Client::connect(&server, "reader");
    let replica = Replica::new(2);
    sync(&mut reader, &replica, "notes").await;
    assert_eq!(replica.text(), "kept");
    assert_eq!(stored_text(&server, "notes").await, "kept");
}

#[tokio::test]
async fn empty_updates_from_a_reader_are_acked_silently_and_store_nothing() {
    let server = server();
    let mut reader = Client::connect(&server, "reader");
    // What yjs's `encodeStateAsUpdateV2` gives for an empty diff, and the empty envelope.
    let empty_v2 = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let empty_envelope = ContentEnvelope::default().to_bytes();
    for data in [ContentEnvelope::plain(empty_v2).to_bytes(), empty_envelope] {
        let update = Update { version: 2, data };
        let id = reader.send(Message::doc("notes", DocMessage::SyncStep2(update.clone())));
        let (ack, before) = reader.until_ack(id).await;
        assert!(ack.is_positive(), "{ack:?}");
        assert_eq!(before, vec![Message::doc("notes", DocMessage::SyncDone)]);

        let id = reader.send(Message::doc("notes", DocMessage::Update(update)));
        let (ack, before) = reader.until_ack(id).await;
        assert!(ack.is_positive(), "{ack:?}");
        assert!(before.is_empty(), "no auth-message: {before:?}");
    }
    let state = server
        .store()
        .read(&teleportal_storage::DocumentId::from("notes"))
        .await
        .unwrap();
    assert_eq!(&state.update[..], [0, 0], "nothing stored");
}
