//! SIGTERM under load: `teleportal serve` (embedded SQLite) with 50 Teleportal clients
//! writing as fast as their ACKs come back must exit within its shutdown deadline, and after a
//! restart hold every update it acknowledged.
#![cfg(unix)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use support::ServerProcess;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use tokio::task::block_in_place;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, Transact};

const WRITERS: usize = 50;
/// Updates a writer keeps unacknowledged at most: enough that many are being stored when the
/// signal arrives.
const WINDOW: usize = 8;
/// The example's shutdown deadline is 8 s; the process may take a little longer to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(12);

type Acked = Arc<Mutex<HashSet<String>>>;

/// One writer: its own `Doc`, appending `w<i>-<n>;` strings, counting what is ACKed.
async fn write_until_closed(url: String, writer: usize, acked: Acked) {
    let (socket, _) = tokio_tungstenite::connect_async(format!("{url}/"))
        .await
        .expect("connect");
    let (mut tx, mut rx) = socket.split();
    let doc = Doc::with_client_id(1000 + writer as u64);
    let text = doc.get_or_insert_text("content");
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut n = 0;
    loop {
        while pending.len() < WINDOW {
            let insert = format!("w{writer}-{n};");
            n += 1;
            let update = {
                let mut txn = doc.transact_mut();
                let len = text.len(&txn);
                text.insert(&mut txn, len, &insert);
                txn.encode_update_v2()
            };
            let message = Message::doc(
                "shared",
                DocMessage::Update(Update {
                    version: 2,
                    data: ContentEnvelope::plain(Bytes::from(update)).to_bytes(),
                }),
            );
            pending.insert(message.id().to_string(), insert);
            if tx
                .send(WsMessage::Binary(message.to_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
        let Some(Ok(frame)) = rx.next().await else {
            return; // closed by the shutdown
        };
        let WsMessage::Binary(bytes) = frame else {
            continue;
        };
        if let Ok(Frame::Message(Message {
            body: Body::Ack(ack),
            ..
        })) = Frame::decode(bytes)
        {
            let insert = pending.remove(&ack.message_id);
            if let (None, Some(insert)) = (ack.error, insert) {
                acked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(insert);
            }
        }
    }
}

/// The text a fresh client gets from the server's sync-step-2.
async fn stored_text(url: &str) -> String {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{url}/"))
        .await
        .expect("connect the reader");
    let sync = Message::doc(
        "shared",
        DocMessage::SyncStep1 {
            state_vector: Bytes::from_static(&[0]),
        },
    );
    socket
        .send(WsMessage::Binary(sync.to_bytes()))
        .await
        .expect("send sync-step-1");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a sync-step-2 in time")
            .expect("connection open")
            .expect("a frame");
        let WsMessage::Binary(bytes) = frame else {
            continue;
        };
        let Ok(Frame::Message(message)) = Frame::decode(bytes) else {
            continue;
        };
        if let Body::Doc(DocMessage::SyncStep2(update)) = message.body {
            let envelope = ContentEnvelope::decode(update.data).expect("an envelope");
            let doc = Doc::new();
            let text = doc.get_or_insert_text("content");
            let update = yrs::Update::decode_v2(&envelope.structure_update).expect("V2 update");
            doc.transact_mut().apply_update(update).expect("apply");
            return text.get_string(&doc.transact());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_acknowledged_update_and_exits_in_time() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = block_in_place(|| ServerProcess::start(data.path()));
    let url = server.url.clone();
    let acked: Acked = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_closed(url.clone(), w, Arc::clone(&acked))))
        .collect();
    // Let every writer get going, then signal while they write.
    let started = Instant::now();
    while acked.lock().unwrap_or_else(PoisonError::into_inner).len() < WRITERS * 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writers never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_signal = acked.lock().unwrap_or_else(PoisonError::into_inner).len();
    let signalled = Instant::now();
    let status = block_in_place(|| server.terminate());
    let took = signalled.elapsed();
    assert!(status.success(), "the server exited with {status}");
    assert!(took < EXIT_LIMIT, "shutdown took {took:?}");
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("every writer sees its connection close")
            .expect("writer task");
    }
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    eprintln!(
        "{} updates acknowledged ({before_signal} before the signal); exit took {took:?}",
        acked.len()
    );

    let restarted = block_in_place(|| ServerProcess::start(data.path()));
    let text = stored_text(&restarted.url).await;
    let missing: Vec<&String> = acked
        .iter()
        .filter(|i| !text.contains(i.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged updates lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}
