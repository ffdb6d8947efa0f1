//! Several servers sharing one store and one pub/sub bus behave as one.

mod common;

use common::*;
use teleportal_core::{AwarenessMessage, Body, DocMessage, Message};
use teleportal_pubsub::{MemoryPubSub, NodePubSub, document_topic};
use teleportal_server::Server;
use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};

fn cluster(n: usize, bus: &MemoryPubSub) -> Vec<Server> {
    let store = DocumentStore::new(MemoryStorage::new());
    (0..n)
        .map(|i| {
            Server::builder(store.clone())
                .pubsub(NodePubSub::new(format!("node-{i}"), bus.clone()))
                .build()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_on_three_nodes_converge() {
    let servers = cluster(3, &MemoryPubSub::new());
    let mut clients: Vec<(Client, Replica)> = servers
        .iter()
        .enumerate()
        .map(|(i, server)| {
            (
                Client::connect(server, &format!("c{i}")),
                Replica::new(i as u64 + 1),
            )
        })
        .collect();
    for (client, replica) in &mut clients {
        sync(client, replica, "doc").await;
    }

    for round in 0..5 {
        let ids: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, (client, replica))| {
                client.send(update_message(
                    "doc",
                    replica.type_text(&format!("[{i}.{round}]")),
                ))
            })
            .collect();
        for ((client, replica), id) in clients.iter_mut().zip(ids) {
            let (ack, before) = client.until_ack(id).await;
            assert!(ack.is_positive());
            before.iter().for_each(|m| replica.apply_message(m));
        }
    }

    let want = stored_text(&servers[0], "doc").await;
    assert_eq!(want.matches('[').count(), 15);
    for (client, replica) in &mut clients {
        converge(client, replica, &want).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_crosses_nodes() {
    let servers = cluster(2, &MemoryPubSub::new());
    let (mut a, mut b) = (
        Client::connect(&servers[0], "a"),
        Client::connect(&servers[1], "b"),
    );
    sync(&mut a, &Replica::new(1), "doc").await;
    sync(&mut b, &Replica::new(2), "doc").await;

    let update = teleportal_core::y_protocols::AwarenessUpdate {
        entries: vec![teleportal_core::y_protocols::AwarenessEntry {
            client_id: 1,
            clock: 1,
            state: r#"{"name":"a"}"#.into(),
        }],
    }
    .to_bytes();
    a.send(Message::awareness(
        "doc",
        AwarenessMessage::Update(update.clone()),
    ));
    loop {
        let message = b.recv_message().await;
        if let Body::Awareness(AwarenessMessage::Update(got)) = message.body {
            assert_eq!(got, update);
            break;
        }
    }
}

#[tokio::test]
async fn lagging_node_resends_the_stored_document_to_its_clients() {
    let bus = MemoryPubSub::with_capacity(4);
    let servers = cluster(1, &bus);
    let mut client = Client::connect(&servers[0], "a");
    let replica = Replica::new(1);
    sync(&mut client, &replica, "doc").await;

    // Another node stored an update (shared storage)...
    let writer = Replica::new(2);
    writer.type_text("missed");
    servers[0]
        .store()
        .append(&DocumentId::from("doc"), writer.full_v1())
        .await
        .unwrap();
    // ...and then flooded the bus faster than this node reads, so the update's frame is lost.
    let other = NodePubSub::new("node-other", bus.clone());
    let noise = Message::awareness("doc", AwarenessMessage::Request).to_bytes();
    for _ in 0..64 {
        other
            .publish(&document_topic("doc"), noise.clone())
            .await
            .unwrap();
    }

    loop {
        let message = client.recv_message().await;
        if matches!(message.body, Body::Doc(DocMessage::Update(_))) {
            replica.apply_message(&message);
            break;
        }
    }
    assert_eq!(replica.text(), "missed");
}

/// Relaying before durability reaches local clients at once, but another node's clients only
/// once the update is stored: a client joining there reads shared storage and cannot see the
/// first node's list of unstored updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_durable_publishes_only_once_stored() {
    use std::sync::Arc;
    use std::time::Duration;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let store = DocumentStore::new(GatedStorage::new(Arc::clone(&gate)));
    let bus = MemoryPubSub::new();
    let servers: Vec<Server> = (0..2)
        .map(|i| {
            Server::builder(store.clone())
                .pubsub(NodePubSub::new(format!("node-{i}"), bus.clone()))
                .build()
        })
        .collect();
    let (mut writer, mut local, mut remote) = (
        Client::connect(&servers[0], "w"),
        Client::connect(&servers[0], "l"),
        Client::connect(&servers[1], "r"),
    );
    let (local_doc, remote_doc) = (Replica::new(2), Replica::new(3));
    sync(&mut local, &local_doc, "doc").await;
    sync(&mut remote, &remote_doc, "doc").await;

    let id = writer.send(update_message("doc", Replica::new(1).type_text("x")));
    let relayed = local.recv_message().await;
    assert!(matches!(relayed.body, Body::Doc(DocMessage::Update(_))));
    remote.assert_quiet(Duration::from_millis(300)).await;

    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
    let published = remote.recv_message().await;
    remote_doc.apply_message(&published);
    assert_eq!(remote_doc.text(), "x");
}

/// A node that dies between storing an update and publishing it: the others find the update
/// in storage on their own and hand it to their clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stored_but_never_published_still_reaches_the_other_nodes() {
    use std::time::Duration;
    use teleportal_server::ServerConfig;

    let bus = MemoryPubSub::new();
    let store = DocumentStore::new(MemoryStorage::new());
    let config = ServerConfig::default().with_missed_update_check(Some(Duration::from_millis(50)));
    let survivor = Server::builder(store.clone())
        .config(config)
        .pubsub(NodePubSub::new("survivor", bus.clone()))
        .build();
    let mut client = Client::connect(&survivor, "reader");
    let replica = Replica::new(1);
    sync(&mut client, &replica, "doc").await;

    // What a dying node managed: the durable append, not the publication.
    let writer = Replica::new(2);
    store
        .append(
            &DocumentId::new("doc"),
            writer.type_text_v1("stored, never published"),
        )
        .await
        .expect("append");

    converge(&mut client, &replica, "stored, never published").await;
}
