//! A y-websocket client and a Teleportal client on one document see each other.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use futures::channel::mpsc;
use teleportal_core::y_protocols::{AuthMessage, AwarenessEntry, AwarenessUpdate, SyncMessage};
use teleportal_core::{AwarenessMessage, Body, DocMessage, Message, YMessage};
use teleportal_server::{
    Access, ClientContext, CloseReason, PermissionChecker, ServerError, serve_y_protocols,
};
use tokio::task::JoinHandle;

struct YClient {
    tx: mpsc::UnboundedSender<Result<YMessage, Infallible>>,
    rx: mpsc::UnboundedReceiver<YMessage>,
    driver: JoinHandle<Result<Option<CloseReason>, ServerError>>,
}

impl YClient {
    fn connect(server: &teleportal_server::Server, document: &str) -> Self {
        let (tx, incoming) = mpsc::unbounded();
        let (outgoing, rx) = mpsc::unbounded();
        let server = server.clone();
        let document = document.to_string();
        let driver = tokio::spawn(async move {
            serve_y_protocols(
                &server,
                ClientContext::new("y"),
                &document,
                incoming,
                outgoing,
            )
            .await
        });
        YClient { tx, rx, driver }
    }

    fn send(&self, message: YMessage) {
        self.tx.unbounded_send(Ok(message)).expect("driver alive");
    }

    async fn recv(&mut self) -> YMessage {
        tokio::time::timeout(WAIT, self.rx.next())
            .await
            .expect("a message in time")
            .expect("connection open")
    }
}

fn awareness(client_id: u64, clock: u64, state: &str) -> Bytes {
    AwarenessUpdate {
        entries: vec![AwarenessEntry {
            client_id,
            clock,
            state: state.into(),
        }],
    }
    .to_bytes()
}

#[tokio::test]
async fn y_websocket_and_teleportal_clients_converge_and_share_awareness() {
    let server = memory_server();
    let mut tp = Client::connect(&server, "tp");
    let tp_doc = Replica::new(1);
    tp_doc.type_text("tp;");
    sync(&mut tp, &tp_doc, "doc").await;

    // On connect the server sends its state vector, as the y-websocket server does.
    let mut y = YClient::connect(&server, "doc");
    let y_doc = Replica::new(2);
    let YMessage::Sync(SyncMessage::Step1(server_sv)) = y.recv().await else {
        panic!("expected sync step 1 first");
    };
    assert_eq!(server_sv, tp_doc.state_vector());
    y.send(YMessage::Sync(SyncMessage::Step2(
        y_doc.diff_v1(&server_sv),
    )));
    y.send(YMessage::Sync(SyncMessage::Step1(y_doc.state_vector())));
    let YMessage::Sync(SyncMessage::Step2(diff)) = y.recv().await else {
        panic!("expected sync step 2");
    };
    y_doc.apply_v1(&diff);
    assert_eq!(y_doc.text(), "tp;");

    // y-websocket → Teleportal: a V1 update arrives as a V2 envelope.
    y.send(YMessage::Sync(SyncMessage::Update(
        y_doc.type_text_v1("y;"),
    )));
    converge(&mut tp, &tp_doc, "tp;y;").await;

    // Teleportal → y-websocket: a V2 envelope arrives as a V1 update.
    let id = tp.send(update_message("doc", tp_doc.type_text("tp2;")));
    assert!(tp.until_ack(id).await.0.is_positive());
    let YMessage::Sync(SyncMessage::Update(update)) = y.recv().await else {
        panic!("expected an update");
    };
    y_doc.apply_v1(&update);
    assert_eq!(y_doc.text(), tp_doc.text());
    assert_eq!(stored_text(&server, "doc").await, tp_doc.text());

    // Awareness both ways.
    y.send(YMessage::Awareness(awareness(2, 1, r#"{"who":"y"}"#)));
    let tp_state = awareness(1, 1, r#"{"who":"tp"}"#);
    let seen = loop {
        let message = tp.recv_message().await;
        if let Body::Awareness(AwarenessMessage::Update(update)) = message.body {
            break update;
        }
    };
    assert_eq!(seen, awareness(2, 1, r#"{"who":"y"}"#));
    tp.send(Message::awareness(
        "doc",
        AwarenessMessage::Update(tp_state.clone()),
    ));
    assert_eq!(y.recv().await, YMessage::Awareness(tp_state));

    // queryAwareness gets every known state.
    y.send(YMessage::QueryAwareness);
    let YMessage::Awareness(states) = y.recv().await else {
        panic!("expected awareness states");
    };
    assert_eq!(AwarenessUpdate::decode(states).unwrap().entries.len(), 2);

    // The y-websocket client leaves: its state is removed for the Teleportal client.
    drop(y.tx);
    assert_eq!(y.driver.await.unwrap().unwrap(), None);
    let removal = loop {
        let message = tp.recv_message().await;
        if let Body::Awareness(AwarenessMessage::Update(update)) = message.body {
            break update;
        }
    };
    assert_eq!(removal, awareness(2, 2, "null"));
}

#[tokio::test]
async fn y_websocket_null_state_removes_the_client_from_what_late_joiners_get() {
    let server = memory_server();
    let mut y = YClient::connect(&server, "doc");
    assert!(matches!(
        y.recv().await,
        YMessage::Sync(SyncMessage::Step1(_))
    ));
    // `awareness.setLocalState(null)`: the next clock and JSON `null`, however spaced.
    for (client_id, null) in [(1, "null"), (2, "null ")] {
        y.send(YMessage::Awareness(awareness(
            client_id,
            1,
            r#"{"who":"y"}"#,
        )));
        y.send(YMessage::Awareness(awareness(client_id, 2, null)));
    }
    let kept = awareness(3, 1, r#"{"who":"z"}"#);
    y.send(YMessage::Awareness(kept.clone()));
    // Answered after the updates before it are applied.
    y.send(YMessage::QueryAwareness);
    assert_eq!(y.recv().await, YMessage::Awareness(kept.clone()));

    let mut late = YClient::connect(&server, "doc");
    assert!(matches!(
        late.recv().await,
        YMessage::Sync(SyncMessage::Step1(_))
    ));
    assert_eq!(late.recv().await, YMessage::Awareness(kept));
}

struct ReadOnly;

#[async_trait::async_trait]
impl PermissionChecker for ReadOnly {
    async fn check(
        &self,
        _client: &teleportal_server::ClientContext,
        _document: &str,
        access: Access,
    ) -> bool {
        access == Access::Read
    }
}

#[tokio::test]
async fn y_websocket_denied_write_is_dropped_with_permission_denied() {
    let server = memory_builder().permissions(ReadOnly).build();
    let mut y = YClient::connect(&server, "doc");
    assert!(matches!(
        y.recv().await,
        YMessage::Sync(SyncMessage::Step1(_))
    ));
    y.send(YMessage::Sync(SyncMessage::Update(
        Replica::new(2).type_text_v1("no"),
    )));
    assert_eq!(
        y.recv().await,
        YMessage::Auth(AuthMessage::PermissionDenied {
            reason: "Insufficient permissions to access document doc".into()
        })
    );
    assert_eq!(stored_text(&server, "doc").await, "");
}

#[tokio::test]
async fn y_websocket_reader_answers_sync_step_1_with_an_empty_update_unrefused() {
    let server = memory_builder().permissions(ReadOnly).build();
    let mut y = YClient::connect(&server, "doc");
    assert!(matches!(
        y.recv().await,
        YMessage::Sync(SyncMessage::Step1(_))
    ));
    // What a y-websocket client with nothing new answers the server's sync-step-1 with:
    // `Y.encodeStateAsUpdate(doc, serverStateVector)`, the empty V1 update.
    y.send(YMessage::Sync(SyncMessage::Step2(Bytes::from_static(&[
        0, 0,
    ]))));
    y.send(YMessage::Sync(SyncMessage::Update(Bytes::from_static(&[
        0, 0,
    ]))));
    // The next reply answers the client's own sync-step-1: no denial came before it.
    y.send(YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0]))));
    assert!(
        matches!(y.recv().await, YMessage::Sync(SyncMessage::Step2(_))),
        "the empty updates were refused"
    );
    // A real write is still refused.
    y.send(YMessage::Sync(SyncMessage::Step2(
        Replica::new(2).type_text_v1("no"),
    )));
    assert!(matches!(
        y.recv().await,
        YMessage::Auth(AuthMessage::PermissionDenied { .. })
    ));
    assert_eq!(stored_text(&server, "doc").await, "");
}

#[tokio::test]
async fn teleportal_update_reaches_y_websocket_client_without_envelope() {
    let server = memory_server();
    let mut y = YClient::connect(&server, "doc");
    assert!(matches!(
        y.recv().await,
        YMessage::Sync(SyncMessage::Step1(_))
    ));
    let mut tp = Client::connect(&server, "tp");
    let tp_doc = Replica::new(1);
    let id = tp.send(Message::doc(
        "doc",
        DocMessage::Update(teleportal_core::Update {
            version: 2,
            data: teleportal_core::ContentEnvelope::plain(tp_doc.type_text("hi")).to_bytes(),
        }),
    ));
    assert!(tp.until_ack(id).await.0.is_positive());
    let YMessage::Sync(SyncMessage::Update(v1)) = y.recv().await else {
        panic!("expected an update");
    };
    let y_doc = Replica::new(2);
    y_doc.apply_v1(&v1);
    assert_eq!(y_doc.text(), "hi");
}

/// A y-websocket update reaches a Teleportal client before its append resolves in
/// `BeforeDurable` mode, and only after it in `AfterDurable` mode.
#[tokio::test]
async fn y_websocket_updates_follow_the_relay_mode() {
    use std::sync::Arc;
    use std::time::Duration;
    use teleportal_server::{RelayMode, ServerConfig};
    for relay in [RelayMode::BeforeDurable, RelayMode::AfterDurable] {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let store = teleportal_storage::DocumentStore::new(GatedStorage::new(Arc::clone(&gate)));
        let server = teleportal_server::Server::builder(store)
            .config(ServerConfig::default().with_relay(relay))
            .build();
        let mut tp = Client::connect(&server, "tp");
        let tp_doc = Replica::new(1);
        sync(&mut tp, &tp_doc, "doc").await;
        let mut y = YClient::connect(&server, "doc");
        assert!(matches!(
            y.recv().await,
            YMessage::Sync(SyncMessage::Step1(_))
        ));

        let y_doc = Replica::new(2);
        y.send(YMessage::Sync(SyncMessage::Update(y_doc.type_text_v1("y"))));
        if relay == RelayMode::AfterDurable {
            tp.assert_quiet(Duration::from_millis(300)).await;
            gate.add_permits(1);
        }
        let relayed = tp.recv_message().await;
        assert!(
            matches!(relayed.body, Body::Doc(DocMessage::Update(_))),
            "{relay:?}: expected an update, got {relayed:?}"
        );
        tp_doc.apply_message(&relayed);
        assert_eq!(tp_doc.text(), "y");
        if relay == RelayMode::BeforeDurable {
            assert_eq!(
                stored_text(&server, "doc").await,
                "",
                "relayed before stored"
            );
            gate.add_permits(1);
        }
    }
}
