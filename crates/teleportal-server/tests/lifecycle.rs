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
    let server = memory_server()
        .with_config(ServerConfig::default().with_idle_timeout(Duration::from_secs(30)));
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
    assert_eq!(
        closed,
        Some(CloseReason("send queue full: client is not reading".into()))
    );
    drop(slow_tx);
}

#[tokio::test]
async fn shutdown_closes_clients_with_a_reason_and_drops_sessions() {
    let server = memory_server();
    let mut client = Client::connect(&server, "a");
    sync(&mut client, &Replica::new(1), "notes").await;

    server.shutdown().await;
    let reason = Some(CloseReason("server is shutting down".into()));
    assert_eq!(client.driver.await.unwrap().unwrap(), reason);
    assert!(server.open_documents().is_empty());

    let late = Client::connect(&server, "b");
    assert_eq!(late.driver.await.unwrap().unwrap(), reason);
}
