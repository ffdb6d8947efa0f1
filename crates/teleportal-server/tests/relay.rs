//! When updates reach the other clients: before or after their durable append
//! (`ServerConfig::relay`), with the sender's ACK always after it.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use teleportal_core::{Body, DocMessage, Message};
use teleportal_server::{RelayMode, Server, ServerConfig};
use teleportal_storage::{DocumentStore, SizeLimits};
use tokio::sync::Semaphore;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

const QUIET: Duration = Duration::from_millis(300);

/// A server over gated storage; returns the gate and the failure switch.
fn gated_server(
    relay: RelayMode,
    limits: SizeLimits,
) -> (Server, Arc<Semaphore>, Arc<std::sync::atomic::AtomicBool>) {
    let gate = Arc::new(Semaphore::new(0));
    let storage = GatedStorage::new(Arc::clone(&gate));
    let fail = Arc::clone(&storage.fail);
    let store = DocumentStore::new(storage).with_size_limits(limits);
    let server = Server::builder(store)
        .config(ServerConfig::default().with_relay(relay))
        .build();
    (server, gate, fail)
}

/// A writer and a watcher synced on `notes` (sync-step-1 stores nothing, so the gate stays shut).
async fn writer_and_watcher(server: &Server) -> (Client, Client, Replica) {
    let mut watcher = Client::connect(server, "bob");
    let watching = Replica::new(2);
    sync(&mut watcher, &watching, "notes").await;
    let writer = Client::connect(server, "alice");
    (writer, watcher, watching)
}

async fn expect_update(client: &mut Client, replica: &Replica, text: &str) {
    let message = client.recv_message().await;
    assert!(
        matches!(message.body, Body::Doc(DocMessage::Update(_))),
        "expected an update, got {message:?}"
    );
    replica.apply_message(&message);
    assert_eq!(replica.text(), text);
}

/// The stored (V1) length of a V2 update.
fn v1_len(v2: &Bytes) -> u64 {
    yrs::Update::decode_v2(v2).expect("v2").encode_v1().len() as u64
}

#[tokio::test]
async fn before_durable_relays_before_the_append_and_acks_after_it() {
    let (server, gate, _) = gated_server(RelayMode::BeforeDurable, SizeLimits::default());
    assert_eq!(
        server.config().relay,
        RelayMode::BeforeDurable,
        "the default"
    );
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", Replica::new(1).type_text("early")));

    expect_update(&mut watcher, &watching, "early").await;
    writer.assert_quiet(QUIET).await;
    assert_eq!(stored_text(&server, "notes").await, "");

    gate.add_permits(1);
    let (ack, before) = writer.until_ack(id).await;
    assert!(ack.is_positive() && before.is_empty());
    assert_eq!(stored_text(&server, "notes").await, "early");
}

#[tokio::test]
async fn after_durable_relays_nothing_until_the_append_resolves() {
    let (server, gate, _) = gated_server(RelayMode::AfterDurable, SizeLimits::default());
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", Replica::new(1).type_text("late")));

    watcher.assert_quiet(QUIET).await;
    writer.assert_quiet(Duration::ZERO).await;

    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
    expect_update(&mut watcher, &watching, "late").await;
}

#[tokio::test]
async fn before_durable_failed_append_is_nacked_after_the_relay() {
    let (server, gate, fail) = gated_server(RelayMode::BeforeDurable, SizeLimits::default());
    fail.store(true, Ordering::SeqCst);
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", Replica::new(1).type_text("x")));
    expect_update(&mut watcher, &watching, "x").await;

    gate.add_permits(1);
    let (ack, _) = writer.until_ack(id).await;
    assert_eq!(
        ack.error.as_deref(),
        Some("storage failed for document notes: disk backend failed: disk full")
    );
    assert_eq!(stored_text(&server, "notes").await, "");
}

#[tokio::test]
async fn far_below_a_hard_size_limit_updates_are_relayed_early() {
    let limits = SizeLimits::new(None, Some(1 << 20));
    let (server, gate, _) = gated_server(RelayMode::BeforeDurable, limits);
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", Replica::new(1).type_text("room")));
    expect_update(&mut watcher, &watching, "room").await;
    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
}

#[tokio::test]
async fn near_a_hard_size_limit_an_update_is_stored_before_it_is_relayed() {
    let update = Replica::new(1).type_text("edge");
    // Exactly at the limit: the store accepts it, but it is not below the limit.
    let limits = SizeLimits::new(None, Some(v1_len(&update)));
    let (server, gate, _) = gated_server(RelayMode::BeforeDurable, limits);
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", update));

    watcher.assert_quiet(QUIET).await;
    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
    expect_update(&mut watcher, &watching, "edge").await;
}

#[tokio::test]
async fn an_update_past_a_hard_size_limit_is_never_relayed() {
    let update = Replica::new(1).type_text("too big");
    let limits = SizeLimits::new(None, Some(v1_len(&update) - 1));
    let (server, gate, _) = gated_server(RelayMode::BeforeDurable, limits);
    let (mut writer, mut watcher, _) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", update));

    watcher.assert_quiet(QUIET).await;
    gate.add_permits(1);
    let (ack, _) = writer.until_ack(id).await;
    assert!(!ack.is_positive(), "rejected: {ack:?}");
    watcher.assert_quiet(QUIET).await;
    assert_eq!(stored_text(&server, "notes").await, "");
}

#[tokio::test]
async fn a_retransmission_is_not_relayed_twice() {
    let (server, gate, fail) = gated_server(RelayMode::BeforeDurable, SizeLimits::default());
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let replica = Replica::new(1);

    // Sent twice in a row: the second waits for the first and is a duplicate.
    let message: Message = update_message("notes", replica.type_text("a"));
    let first = writer.send(message.clone());
    let second = writer.send(message);
    expect_update(&mut watcher, &watching, "a").await;
    gate.add_permits(1);
    assert!(writer.until_ack(first).await.0.is_positive());
    assert!(writer.until_ack(second).await.0.is_positive());
    watcher.assert_quiet(QUIET).await;

    // Relayed, then its append fails: the retransmission is stored but not relayed again.
    fail.store(true, Ordering::SeqCst);
    let message = update_message("notes", replica.type_text("b"));
    let id = writer.send(message.clone());
    expect_update(&mut watcher, &watching, "ab").await;
    gate.add_permits(1);
    assert!(!writer.until_ack(id).await.0.is_positive());
    fail.store(false, Ordering::SeqCst);
    assert_eq!(writer.send(message), id);
    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
    watcher.assert_quiet(QUIET).await;
    assert_eq!(stored_text(&server, "notes").await, "ab");
}

#[tokio::test]
async fn a_client_syncing_between_the_early_relay_and_the_append_gets_the_update() {
    let (server, gate, _) = gated_server(RelayMode::BeforeDurable, SizeLimits::default());
    let (mut writer, mut watcher, watching) = writer_and_watcher(&server).await;
    let id = writer.send(update_message("notes", Replica::new(1).type_text("early")));
    expect_update(&mut watcher, &watching, "early").await;

    // Joins after the relay, while storage does not hold the update yet.
    let mut late = Client::connect(&server, "carol");
    let joined = Replica::new(3);
    let sync_id = late.send(sync_step_1("notes", joined.state_vector()));
    let (ack, before) = late.until_ack(sync_id).await;
    assert!(ack.is_positive());
    before.iter().for_each(|m| joined.apply_message(m));
    assert_eq!(
        joined.text(),
        "early",
        "in the sync answer though not stored yet"
    );
    assert_eq!(stored_text(&server, "notes").await, "");

    gate.add_permits(1);
    assert!(writer.until_ack(id).await.0.is_positive());
}
