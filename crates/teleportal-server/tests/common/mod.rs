//! A scripted Teleportal client over channel pairs, with a `yrs::Doc` as its document.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]
// `pub` lets every test file reach the helpers; the module itself is private to each test crate.
#![allow(unreachable_pub)]
// Tests need a real document to play the client's part.
#![allow(clippy::disallowed_types)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use teleportal_core::{
    AckMessage, Body, ContentEnvelope, DocMessage, Frame, Message, MessageId, Update,
};
use teleportal_server::{ClientContext, CloseReason, Server, ServerError, serve};
use tokio::task::JoinHandle;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

/// How long a test waits for a frame it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// One connected client: what it sends goes to `serve`, what `serve` sends comes back.
pub struct Client {
    pub tx: mpsc::UnboundedSender<Result<Frame, Infallible>>,
    pub rx: mpsc::UnboundedReceiver<Frame>,
    pub driver: JoinHandle<Result<Option<CloseReason>, ServerError>>,
}

impl Client {
    pub fn connect(server: &Server, client_id: &str) -> Self {
        Self::connect_with(server, ClientContext::new(client_id))
    }

    /// Connects with a prepared context (namespace, user, identity).
    pub fn connect_with(server: &Server, context: ClientContext) -> Self {
        let (tx, incoming) = mpsc::unbounded();
        let (outgoing, rx) = mpsc::unbounded();
        let server = server.clone();
        let driver = tokio::spawn(async move { serve(&server, context, incoming, outgoing).await });
        Client { tx, rx, driver }
    }

    /// Sends a message; returns its id (what the ack names).
    pub fn send(&self, message: Message) -> MessageId {
        let id = message.id();
        self.tx
            .unbounded_send(Ok(Frame::Message(message)))
            .expect("driver alive");
        id
    }

    pub fn send_frame(&self, frame: Frame) {
        self.tx.unbounded_send(Ok(frame)).expect("driver alive");
    }

    pub async fn recv(&mut self) -> Frame {
        tokio::time::timeout(WAIT, self.rx.next())
            .await
            .expect("a frame in time")
            .expect("connection open")
    }

    pub async fn recv_message(&mut self) -> Message {
        match self.recv().await {
            Frame::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Receives until the ack of `id`, returning it and the messages before it.
    pub async fn until_ack(&mut self, id: MessageId) -> (AckMessage, Vec<Message>) {
        let mut before = Vec::new();
        loop {
            let message = self.recv_message().await;
            if let Body::Ack(ack) = &message.body
                && ack.message_id == id.to_string()
            {
                return (ack.clone(), before);
            }
            before.push(message);
        }
    }

    /// Nothing arrives within `wait`.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(frame) = tokio::time::timeout(wait, self.rx.next()).await {
            panic!("expected nothing, got {frame:?}");
        }
    }
}

/// A stand-in client document.
pub struct Replica {
    pub doc: Doc,
}

impl Replica {
    pub fn new(client_id: u64) -> Self {
        Replica {
            doc: Doc::with_client_id(client_id),
        }
    }

    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text("content");
        text.get_string(&self.doc.transact())
    }

    pub fn state_vector(&self) -> Bytes {
        Bytes::from(self.doc.transact().state_vector().encode_v1())
    }

    /// Inserts at the end; returns the V2 update of the edit.
    pub fn type_text(&self, s: &str) -> Bytes {
        let before = self.doc.transact().state_vector();
        let text = self.doc.get_or_insert_text("content");
        {
            let mut txn = self.doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, s);
        }
        Bytes::from(self.doc.transact().encode_state_as_update_v2(&before))
    }

    /// V1 update of everything this replica holds.
    pub fn full_v1(&self) -> Bytes {
        Bytes::from(
            self.doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        )
    }

    /// V1 update of everything a peer with `state_vector` lacks.
    pub fn diff_v1(&self, state_vector: &[u8]) -> Bytes {
        let sv = StateVector::decode_v1(state_vector).expect("state vector");
        Bytes::from(self.doc.transact().encode_state_as_update_v1(&sv))
    }

    /// Inserts at the end; returns the V1 update of the edit (what y-websocket sends).
    pub fn type_text_v1(&self, s: &str) -> Bytes {
        let before = self.doc.transact().state_vector();
        self.type_text(s);
        Bytes::from(self.doc.transact().encode_state_as_update_v1(&before))
    }

    /// V2 update of everything a peer with `state_vector` lacks.
    pub fn diff_v2(&self, state_vector: &[u8]) -> Bytes {
        let sv = StateVector::decode_v1(state_vector).expect("state vector");
        Bytes::from(self.doc.transact().encode_state_as_update_v2(&sv))
    }

    pub fn apply_v2(&self, update: &[u8]) {
        let update = yrs::Update::decode_v2(update).expect("V2 update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("applies");
    }

    pub fn apply_v1(&self, update: &[u8]) {
        let update = yrs::Update::decode_v1(update).expect("V1 update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("applies");
    }

    /// Applies a Teleportal envelope (structure update may be empty).
    pub fn apply_envelope(&self, data: &Bytes) {
        let envelope = ContentEnvelope::decode(data.clone()).expect("envelope");
        if !envelope.structure_update.is_empty() {
            self.apply_v2(&envelope.structure_update);
        }
    }

    /// Applies a received doc update or sync-step-2, ignoring everything else.
    pub fn apply_message(&self, message: &Message) {
        if let Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)) = &message.body {
            self.apply_envelope(&u.data);
        }
    }
}

pub fn update_message(document: &str, v2: Bytes) -> Message {
    Message::doc(
        document,
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(v2).to_bytes(),
        }),
    )
}

pub fn sync_step_1(document: &str, state_vector: Bytes) -> Message {
    Message::doc(document, DocMessage::SyncStep1 { state_vector })
}

/// Runs the whole sync of spec §4.3 for one client: step 1 → step 2 + server step 1 → the
/// client's step 2 → sync-done + ack.
pub async fn sync(client: &mut Client, replica: &Replica, document: &str) {
    let id = client.send(sync_step_1(document, replica.state_vector()));
    let (ack, before) = client.until_ack(id).await;
    assert!(ack.is_positive(), "{ack:?}");
    let mut server_sv = None;
    for message in &before {
        replica.apply_message(message);
        if let Body::Doc(DocMessage::SyncStep1 { state_vector }) = &message.body {
            server_sv = Some(state_vector.clone());
        }
    }
    let server_sv = server_sv.expect("server sync-step-1");
    let step2 = Message::doc(
        document,
        DocMessage::SyncStep2(Update {
            version: 2,
            data: ContentEnvelope::plain(replica.diff_v2(&server_sv)).to_bytes(),
        }),
    );
    let id = client.send(step2);
    let (ack, before) = client.until_ack(id).await;
    assert!(ack.is_positive(), "{ack:?}");
    assert!(
        before
            .iter()
            .any(|m| matches!(m.body, Body::Doc(DocMessage::SyncDone))),
        "sync-done before the ack"
    );
    for message in &before {
        replica.apply_message(message);
    }
}

/// Applies every update that arrives until the client's text equals `expected`.
pub async fn converge(client: &mut Client, replica: &Replica, expected: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while replica.text() != expected {
        let frame = tokio::time::timeout_at(deadline, client.rx.next())
            .await
            .unwrap_or_else(|_| panic!("converged to {:?}, want {expected:?}", replica.text()))
            .expect("connection open");
        if let Frame::Message(message) = frame {
            replica.apply_message(&message);
        }
    }
}

/// The stored document as text (reads the store with a fresh replica).
pub async fn stored_text(server: &Server, document: &str) -> String {
    let state = server
        .store()
        .read(&teleportal_storage::DocumentId::from(document))
        .await
        .expect("read");
    let replica = Replica::new(999);
    replica.apply_v1(&state.update);
    replica.text()
}

pub fn memory_server() -> Server {
    memory_builder().build()
}

/// A server over memory storage, to configure before building.
pub fn memory_builder() -> teleportal_server::ServerBuilder {
    Server::builder(teleportal_storage::DocumentStore::new(
        teleportal_storage::MemoryStorage::new(),
    ))
}

/// Storage whose appends wait for a permit: what "durable" looks like when it is slow. With
/// `fail` set, an append that got its permit fails instead of storing.
pub struct GatedStorage {
    pub inner: teleportal_storage::MemoryStorage,
    pub gate: std::sync::Arc<tokio::sync::Semaphore>,
    pub fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GatedStorage {
    pub fn new(gate: std::sync::Arc<tokio::sync::Semaphore>) -> Self {
        GatedStorage {
            inner: teleportal_storage::MemoryStorage::new(),
            gate,
            fail: std::sync::Arc::default(),
        }
    }
}

#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl teleportal_storage::DocumentStorage for GatedStorage {
    async fn append(
        &self,
        doc: &teleportal_storage::DocumentId,
        update: Bytes,
        options: teleportal_storage::AppendOptions,
    ) -> Result<teleportal_storage::AppendReceipt, teleportal_storage::StorageError> {
        self.gate.acquire().await.expect("gate open").forget();
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(teleportal_storage::StorageError::backend(
                "disk",
                std::io::Error::other("disk full"),
            ));
        }
        self.inner.append(doc, update, options).await
    }
    async fn load(
        &self,
        doc: &teleportal_storage::DocumentId,
    ) -> Result<teleportal_storage::StoredDocument, teleportal_storage::StorageError> {
        self.inner.load(doc).await
    }
    async fn metadata(
        &self,
        doc: &teleportal_storage::DocumentId,
    ) -> Result<Option<teleportal_storage::DocumentMetadata>, teleportal_storage::StorageError>
    {
        self.inner.metadata(doc).await
    }
    async fn compact(
        &self,
        doc: &teleportal_storage::DocumentId,
        upto: teleportal_storage::Seq,
        snapshot: Bytes,
    ) -> Result<(), teleportal_storage::StorageError> {
        self.inner.compact(doc, upto, snapshot).await
    }
    async fn delete(
        &self,
        doc: &teleportal_storage::DocumentId,
    ) -> Result<(), teleportal_storage::StorageError> {
        self.inner.delete(doc).await
    }
    async fn close(&self) -> Result<(), teleportal_storage::StorageError> {
        self.inner.close().await
    }
}
