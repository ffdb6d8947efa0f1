//! Sessions come and go; slow clients are cut off; shutdown closes everyone.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use futures::channel::mpsc;
use teleportal_core::{Body, DocMessage, Frame};
use teleportal_server::{ClientContext, CloseReason, ServerConfig, serve};

#[tokio::test(start_paused = true)]
async fn idle_session_unloads_after_timeout_unless_rejoined() {
    let server = memory_builder()
        .config(ServerConfig::default().with_idle_timeout(Duration::from_secs(30)))
        .build();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;
    assert_eq!(server.open_documents(), ["notes"]);

    drop(client.tx);
    client.driver.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        server.open_documents(),
        ["notes"],
        "still within the idle timeout"
    );

    // A client comes back and leaves again: the earlier timer must not unload the session.
    let mut again = Client::connect(&server, "b");
    sync(&mut again, &Replica::new(2), "notes").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(server.open_documents(), ["notes"], "in use");
    drop(again.tx);
    again.driver.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(server.open_documents(), ["notes"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        server.open_documents().is_empty(),
        "unloaded after 30 s idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_disconnected_while_others_get_every_update() {
    const UPDATES: usize = 10_000;
    // The default queue (1024) absorbs the writer's bursts for a client that reads.
    let server = memory_server();

    // The slow client: its transport holds one frame and nobody ever reads it.
    let (slow_tx, incoming) = mpsc::unbounded::<Result<Frame, Infallible>>();
    let (outgoing, mut slow_rx) = mpsc::channel::<Frame>(0);
    let slow = tokio::spawn({
        let server = server.clone();
        async move { serve(&server, ClientContext::new("slow"), incoming, outgoing).await }
    });
    slow_tx
        .unbounded_send(Ok(Frame::Message(sync_step_1(
            "doc",
            Bytes::from_static(&[0]),
        ))))
        .unwrap();
    // Its first answer proves it joined the document; after that it reads nothing.
    assert!(matches!(slow_rx.next().await, Some(Frame::Message(_))));

    let mut fast = Client::connect(&server, "fast");
    sync(&mut fast, &Replica::new(2), "doc").await;
    let reader = tokio::spawn(async move {
        let mut updates = 0;
        while updates < UPDATES {
            let message = fast.recv_message().await;
            if matches!(message.body, Body::Doc(DocMessage::Update(_))) {
                updates += 1;
            }
        }
        updates
    });

    let mut writer = Client::connect(&server, "writer");
    let replica = Replica::new(1);
    let messages: Vec<_> = (0..UPDATES)
        .map(|i| update_message("doc", replica.type_text(if i % 2 == 0 { "a" } else { "b" })))
        .collect();
    // Like a real client, the writer keeps a bounded window of messages in flight.
    for window in messages.chunks(100) {
        let ids: Vec<_> = window.iter().map(|m| writer.send(m.clone())).collect();
        for id in ids {
            assert!(writer.until_ack(id).await.0.is_positive());
        }
    }

    assert_eq!(reader.await.unwrap(), UPDATES);
    let closed = tokio::time::timeout(WAIT, slow)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(closed, Some(CloseReason::SendQueueFull));
    drop(slow_tx);
}

#[tokio::test]
async fn shutdown_closes_clients_with_a_reason_and_drops_sessions() {
    let server = memory_server();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;

    server.shutdown(Duration::from_secs(5)).await.unwrap();
    let reason = Some(CloseReason::ShuttingDown);
    assert_eq!(client.driver.await.unwrap().unwrap(), reason);
    assert!(server.open_documents().is_empty());

    let late = Client::connect(&server, "b");
    assert_eq!(late.driver.await.unwrap().unwrap(), reason);
}

#[tokio::test]
async fn dropping_the_driver_future_removes_the_client_like_a_disconnect() {
    let server = memory_server();
    let (mut a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    sync(&mut b, &Replica::new(2), "notes").await;
    let state = teleportal_core::y_protocols::AwarenessUpdate {
        entries: vec![teleportal_core::y_protocols::AwarenessEntry {
            client_id: 5,
            clock: 1,
            state: "{}".into(),
        }],
    };
    let id = a.send(teleportal_core::Message::awareness(
        "notes",
        teleportal_core::AwarenessMessage::Update(state.to_bytes()),
    ));
    a.until_ack(id).await;
    b.recv_message().await; // the state itself

    a.driver.abort(); // e.g. the transport's task was cancelled
    let removal = b.recv_message().await;
    let Body::Awareness(teleportal_core::AwarenessMessage::Update(update)) = removal.body else {
        panic!("expected the removal, got {removal:?}");
    };
    let update = teleportal_core::y_protocols::AwarenessUpdate::decode(update).unwrap();
    assert_eq!(update.entries[0].state, "null");
}

#[derive(Debug)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("socket reset")
    }
}

impl std::error::Error for Broken {}

#[tokio::test]
async fn transport_error_ends_serve_with_the_error() {
    let server = memory_server();
    let incoming = futures::stream::iter([Err::<Frame, _>(Broken)]);
    let (outgoing, _rx) = mpsc::unbounded::<Frame>();
    let result = serve(&server, ClientContext::new("a"), incoming, outgoing).await;
    let error = result.expect_err("transport error");
    assert!(matches!(
        error,
        teleportal_server::ServerError::Transport(_)
    ));
    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        "socket reset"
    );
}

/// A server over storage whose appends wait for a permit, with its gate.
fn gated() -> (
    teleportal_server::Server,
    std::sync::Arc<tokio::sync::Semaphore>,
) {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let store = teleportal_storage::DocumentStore::new(GatedStorage::new(gate.clone()));
    (teleportal_server::Server::new(store), gate)
}

#[tokio::test]
async fn shutdown_finishes_appends_in_flight_and_acks_them_before_closing() {
    let (server, gate) = gated();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;
    let id = client.send(update_message("notes", Replica::new(1).type_text("kept")));
    // The append is waiting for its permit when the shutdown begins.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutdown = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!shutdown.is_finished(), "shutdown waits for the append");
    gate.add_permits(1);

    let (ack, _) = client.until_ack(id).await;
    assert_eq!(ack.error, None, "the update was stored and acknowledged");
    let reason = Some(CloseReason::ShuttingDown);
    assert_eq!(client.driver.await.unwrap().unwrap(), reason);
    shutdown.await.unwrap().expect("a clean shutdown");
    assert_eq!(stored_text(&server, "notes").await, "kept");
}

#[tokio::test]
async fn shutdown_past_its_deadline_reports_it_and_still_closes_the_stores() {
    let (server, _gate) = gated();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;
    // The gate never opens: this append cannot finish.
    client.send(update_message("notes", Replica::new(1).type_text("stuck")));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = tokio::time::Instant::now();
    let outcome = server.shutdown(Duration::from_millis(200)).await;
    assert!(
        matches!(
            outcome,
            Err(teleportal_server::ShutdownError::DeadlineExceeded { .. })
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the deadline"
    );
    // Past the deadline the connection gave up on its append and closed.
    let reason = Some(CloseReason::ShuttingDown);
    assert_eq!(client.driver.await.unwrap().unwrap(), reason);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_idle_unload_timers_instead_of_waiting_for_them() {
    let server = memory_builder()
        .config(ServerConfig::default().with_idle_timeout(Duration::from_secs(3600)))
        .build();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;
    drop(client.tx);
    client.driver.await.unwrap().unwrap();
    // An unload timer of an hour is armed; shutdown must not wait for it.
    let started = tokio::time::Instant::now();
    server.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(server.open_documents().is_empty());
}
