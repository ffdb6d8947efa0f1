//! Awareness (spec §6) and presence (spec §8).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use teleportal_core::y_protocols::{AwarenessEntry, AwarenessUpdate};
use teleportal_core::{AwarenessMessage, Body, Message, PresenceMessage};

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

fn awareness_message(update: Bytes) -> Message {
    Message::awareness("notes", AwarenessMessage::Update(update))
}

/// Waits for the next awareness update, skipping other messages.
async fn next_awareness(client: &mut Client) -> AwarenessUpdate {
    loop {
        let message = client.recv_message().await;
        if let Body::Awareness(AwarenessMessage::Update(update)) = message.body {
            return AwarenessUpdate::decode(update).expect("awareness update");
        }
    }
}

#[tokio::test]
async fn awareness_update_reaches_other_clients_not_the_sender() {
    let server = memory_server();
    let (mut a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    sync(&mut b, &Replica::new(2), "notes").await;

    let update = awareness(1, 1, r#"{"user":"a"}"#);
    let id = a.send(awareness_message(update.clone()));
    let (ack, before) = a.until_ack(id).await;
    assert!(ack.is_positive());
    assert!(
        before.is_empty(),
        "the sender does not get its own awareness back"
    );
    assert_eq!(
        next_awareness(&mut b).await,
        AwarenessUpdate::decode(update).unwrap()
    );
}

#[tokio::test]
async fn awareness_request_is_answered_with_current_states() {
    let server = memory_server();
    let (mut a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    let id = a.send(awareness_message(awareness(1, 1, r#"{"user":"a"}"#)));
    a.until_ack(id).await;
    // A newer state replaces the older one.
    let id = a.send(awareness_message(awareness(1, 2, r#"{"user":"a2"}"#)));
    a.until_ack(id).await;

    let id = b.send(Message::awareness("notes", AwarenessMessage::Request));
    let (ack, before) = b.until_ack(id).await;
    assert!(ack.is_positive());
    let [message] = before.as_slice() else {
        panic!("expected one answer, got {before:?}");
    };
    let Body::Awareness(AwarenessMessage::Update(states)) = &message.body else {
        panic!("expected an awareness update, got {message:?}");
    };
    assert_eq!(
        AwarenessUpdate::decode(states.clone()).unwrap(),
        AwarenessUpdate::decode(awareness(1, 2, r#"{"user":"a2"}"#)).unwrap()
    );
}

#[tokio::test]
async fn disconnect_broadcasts_removal_of_its_awareness_states() {
    let server = memory_server();
    let (a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    sync(&mut b, &Replica::new(2), "notes").await;
    a.send(awareness_message(awareness(7, 3, r#"{"cursor":1}"#)));
    next_awareness(&mut b).await;

    drop(a.tx); // the client goes away
    assert_eq!(a.driver.await.unwrap().unwrap(), None);
    let removal = next_awareness(&mut b).await;
    assert_eq!(
        removal,
        AwarenessUpdate::decode(awareness(7, 4, "null")).unwrap(),
        "state null with the next clock, as y-protocols removes states"
    );

    // And the removed state is no longer answered.
    let id = b.send(Message::awareness("notes", AwarenessMessage::Request));
    let (_, before) = b.until_ack(id).await;
    assert!(before.is_empty(), "{before:?}");
}

#[tokio::test]
async fn presence_announce_gets_roster_and_others_see_join_and_leave() {
    let server = memory_server();
    let mut a = Client::connect(&server, "a");
    let id = a.send(Message::presence(
        "notes",
        PresenceMessage::Announce { awareness_id: 11 },
    ));
    let (ack, before) = a.until_ack(id).await;
    assert!(ack.is_positive());
    assert!(
        matches!(&before[..], [m] if matches!(&m.body, Body::Presence(PresenceMessage::Join(e)) if e.awareness_id == 11 && e.client_id == "a")),
        "the announcer gets its own entry: {before:?}"
    );

    let mut b = Client::connect(&server, "b");
    let id = b.send(Message::presence(
        "notes",
        PresenceMessage::Announce { awareness_id: 22 },
    ));
    let (_, before) = b.until_ack(id).await;
    let mut ids: Vec<u64> = before
        .iter()
        .filter_map(|m| match &m.body {
            Body::Presence(PresenceMessage::Join(e)) => Some(e.awareness_id),
            _ => None,
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [11, 22]);
    let join = a.recv_message().await;
    assert!(
        matches!(join.body, Body::Presence(PresenceMessage::Join(ref e)) if e.awareness_id == 22)
    );

    drop(b.tx);
    let leave = a.recv_message().await;
    assert!(
        matches!(leave.body, Body::Presence(PresenceMessage::Leave(ref e)) if e.awareness_id == 22)
    );
    a.assert_quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn encrypted_awareness_is_relayed_unread() {
    let server = memory_server();
    let (mut a, mut b) = (Client::connect(&server, "a"), Client::connect(&server, "b"));
    // b joins the document with an encrypted awareness request.
    let mut request = Message::awareness("secret", AwarenessMessage::Request);
    request.encrypted = true;
    let id = b.send(request);
    assert!(b.until_ack(id).await.0.is_positive());

    let blob = Bytes::from_static(&[0xaa; 40]); // an AES-GCM blob, opaque to the server
    let mut update = Message::awareness("secret", AwarenessMessage::Update(blob.clone()));
    update.encrypted = true;
    let id = a.send(update.clone());
    assert!(a.until_ack(id).await.0.is_positive());
    assert_eq!(b.recv_message().await, update);
}

#[tokio::test]
async fn null_state_removes_the_client_from_what_late_joiners_get() {
    let server = memory_server();
    let mut a = Client::connect(&server, "a");
    // JSON `null`, however spaced (yjs reads the state with `JSON.parse`), means the client
    // went away; client 3 stays.
    for (client_id, null) in [(1, "null"), (2, " null\n")] {
        let id = a.send(awareness_message(awareness(
            client_id,
            1,
            r#"{"user":"a"}"#,
        )));
        assert!(a.until_ack(id).await.0.is_positive());
        let id = a.send(awareness_message(awareness(client_id, 2, null)));
        assert!(a.until_ack(id).await.0.is_positive());
    }
    let id = a.send(awareness_message(awareness(3, 1, r#"{"user":"c"}"#)));
    a.until_ack(id).await;

    let mut late = Client::connect(&server, "late");
    let id = late.send(Message::awareness("notes", AwarenessMessage::Request));
    let (_, before) = late.until_ack(id).await;
    let states: Vec<AwarenessUpdate> = before
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Awareness(AwarenessMessage::Update(u)) => AwarenessUpdate::decode(u).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [AwarenessUpdate::decode(awareness(3, 1, r#"{"user":"c"}"#)).unwrap()]
    );
}
