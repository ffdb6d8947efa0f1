//! [`serve`]: drives one Teleportal-protocol connection.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::stream::FuturesOrdered;
use futures::{Sink, Stream, StreamExt};
use teleportal_core::{
    AckMessage, AwarenessMessage, Body, ContentEnvelope, DocMessage, Frame, Message, MessageId,
    PresenceEntry, PresenceMessage, RpcKind, RpcMessage, RpcPayload, Update,
};

use crate::convert::UpdateForms;
use crate::peer::{SEND_BATCH, Stop, drain_batch, send, send_batch};
use crate::rpc::dispatch::{PendingId, dispatch};
use crate::server::Registration;
use crate::session::Session;
use crate::{Access, ClientContext, CloseReason, Server, ServerError};

/// Updates of one connection being stored at once. Each waits for durability; storing them
/// together lets the store commit them in one group instead of one fsync each.
const PIPELINE: usize = 256;

/// RPC messages at least this long (file chunks) get their id hashed on a blocking thread
/// while they are handled.
const HASH_ID_OFF_THREAD: usize = 64 * 1024;

/// Client RPC `stream` parts (file chunks) of one connection handled at once: enough to keep
/// hashing, writing and reading the next chunk busy together, few enough that a connection
/// holds a handful of chunks.
const PARTS_IN_FLIGHT: usize = 4;

/// A client's RPC `stream` part with a success payload: what `handle_stream` takes.
fn is_client_part(message: &Message) -> bool {
    matches!(
        &message.body,
        Body::Rpc(RpcMessage {
            kind: RpcKind::Stream { .. },
            payload: RpcPayload::Success(_),
            ..
        })
    )
}

/// NACK text for a message whose encrypted flag differs from the document's (spec §4.3).
pub const ENCRYPTION_MISMATCH: &str = "Message encryption and document encryption are mismatched";

/// NACK text for content-encrypted (E2EE) document messages. The server stores plaintext Yjs
/// updates; storing sidecars (spec §5.1) is not implemented yet.
pub const E2EE_UNSUPPORTED: &str = "End-to-end encrypted documents are not supported yet: this server stores plaintext updates only";

/// The auth-message reason for a denied message (spec §4.2).
pub fn permission_denied_reason(document: &str) -> String {
    format!("Insufficient permissions to access document {document}")
}

/// Drives one Teleportal-protocol connection until the client goes away or the server closes it.
///
/// Every message is checked with the server's [`PermissionChecker`](crate::PermissionChecker)
/// before it has any effect; every non-ack message is answered with an ACK once applied (for
/// updates: once the store reports them durable) or a NACK saying why not. Updates reach the
/// document's other clients before or after their append as
/// [`ServerConfig::relay`](crate::ServerConfig::relay) says: with the default
/// [`RelayMode::BeforeDurable`](crate::RelayMode), an update whose append fails is NACKed but
/// may already be with the others (the sender retransmits it; see [`RelayMode`](crate::RelayMode)). Pings get pongs.
/// Documents are multiplexed by name: the connection joins a document's session on its first
/// message for it.
///
/// Returns `Ok(None)` when the client ends the stream, `Ok(Some(reason))` when the server
/// closed the connection (send queue full, shutdown): the transport should pass the reason on.
///
/// # Errors
/// [`ServerError::Transport`] when `incoming` yields an error, [`ServerError::Send`] when
/// `outgoing` refuses a frame.
///
/// # Cancel safety
/// Dropping the future ends the connection as if the client left: it leaves its sessions and
/// its awareness states are removed. A message being handled may or may not have been stored.
pub async fn serve<S, K, E>(
    server: &Server,
    client: ClientContext,
    mut incoming: S,
    mut outgoing: K,
) -> Result<Option<CloseReason>, ServerError>
where
    S: Stream<Item = Result<Frame, E>> + Send + Unpin,
    K: Sink<Frame> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let Some(registration) = server.connect() else {
        return Ok(Some(CloseReason::shutdown()));
    };
    let mut connection = Connection {
        client,
        registration,
        storing: HashSet::new(),
        relay_late: 0,
        streaming: std::sync::Mutex::new(None),
        parts: 0,
    };
    let result = connection.run(&mut incoming, &mut outgoing).await;
    match result {
        Ok(()) => Ok(None),
        Err(Stop::Closed(reason)) => Ok(Some(reason)),
        Err(Stop::SinkFailed) => Err(ServerError::Send),
        Err(Stop::Transport(error)) => Err(ServerError::Transport(error)),
    }
}

struct Connection {
    client: ClientContext,
    registration: Registration,
    /// Ids of the updates being stored, so a retransmission waits for its original and is
    /// then recognised as a duplicate.
    storing: HashSet<MessageId>,
    /// Updates being stored whose relay waits for their append: while there are any, later
    /// updates wait too, so relays keep the order the updates came in.
    relay_late: usize,
    /// The rest of an RPC answer, sent part by part (a download) after the frames before it.
    /// In a mutex only so the connection stays `Sync`; it is never contended.
    streaming: std::sync::Mutex<Option<BoxStream<'static, Frame>>>,
    /// RPC `stream` parts being handled: at most [`PARTS_IN_FLIGHT`], as each holds a chunk.
    parts: usize,
}

/// An update whose append finished (or failed); the connection relays and acknowledges it.
struct Stored {
    id: MessageId,
    session: Arc<Session>,
    forms: UpdateForms,
    /// Relayed before it was stored ([`RelayMode::BeforeDurable`](crate::RelayMode)).
    relayed: bool,
    result: Result<(), ServerError>,
}

/// A message handled beside the connection's reading, answered in arrival order.
enum InFlight {
    /// An update whose append finished (or failed).
    Stored(Stored),
    /// A client's RPC `stream` part (a file chunk), with its ACK or NACK.
    Part(Vec<Frame>),
}

/// What to do with an incoming frame.
enum Next {
    /// A valid update being stored, or a file chunk being handled; its answer waits for the
    /// messages before it.
    Storing(BoxFuture<'static, InFlight>),
    /// An update answered without storing (denied, invalid, duplicate, empty).
    Replies(Vec<Frame>),
    /// Anything else, handled once every earlier update is relayed and acknowledged.
    Other(Frame),
}

impl Connection {
    async fn run<S, K, E>(&mut self, incoming: &mut S, outgoing: &mut K) -> Result<(), Stop>
    where
        S: Stream<Item = Result<Frame, E>> + Send + Unpin,
        K: Sink<Frame> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let closer = Arc::clone(&self.registration.closer);
        // Consecutive updates are stored concurrently (up to `PIPELINE`) but relayed and
        // acknowledged in the order they came, as if handled one by one; any other message
        // waits until the updates before it are done, so it sees them stored.
        let mut storing: FuturesOrdered<BoxFuture<'static, InFlight>> = FuturesOrdered::new();
        let mut batch = Vec::with_capacity(SEND_BATCH);
        loop {
            // Unbiased on purpose: a steady stream of broadcasts must not starve the client's
            // own messages, nor the other way round. A close is also seen by every `send`.
            tokio::select! {
                reason = closer.closed() => return Err(Stop::Closed(reason)),
                broadcast = self.registration.queue.recv() => {
                    // The registration holds a sender, so the queue never ends while we run.
                    drain_batch(broadcast, &mut self.registration.queue, |b| b.frame.clone(), &mut batch);
                    send_batch(outgoing, &mut batch, &closer).await?;
                }
                Some(done) = storing.next(), if !storing.is_empty() => {
                    for reply in self.finish(done).await {
                        send(outgoing, reply, &closer).await?;
                    }
                }
                item = incoming.next(), if storing.len() < PIPELINE && self.parts < PARTS_IN_FLIGHT => match item {
                    None => {
                        while let Some(done) = storing.next().await {
                            for reply in self.finish(done).await {
                                send(outgoing, reply, &closer).await?;
                            }
                        }
                        return Ok(());
                    }
                    Some(Err(error)) => return Err(Stop::Transport(Box::new(error))),
                    Some(Ok(frame)) => {
                        let replies = match self.start(frame).await {
                            Next::Storing(store) => {
                                storing.push_back(store);
                                Vec::new()
                            }
                            next => {
                                while let Some(done) = storing.next().await {
                                    for reply in self.finish(done).await {
                                        send(outgoing, reply, &closer).await?;
                                    }
                                }
                                match next {
                                    Next::Other(frame) => self.handle(frame).await,
                                    Next::Replies(replies) => replies,
                                    Next::Storing(_) => Vec::new(),
                                }
                            }
                        };
                        for reply in replies {
                            send(outgoing, reply, &closer).await?;
                        }
                        // A streamed answer goes out part by part: one part in memory at a
                        // time, and the sink's backpressure paces the handler.
                        let streaming = self
                            .streaming
                            .get_mut()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .take();
                        if let Some(mut frames) = streaming {
                            while let Some(frame) = frames.next().await {
                                send(outgoing, frame, &closer).await?;
                            }
                        }
                        // A client that writes without pause would otherwise keep this task
                        // busy (its stream is always ready), starving the drivers that relay its
                        // updates to others on the same worker.
                        tokio::task::coop::consume_budget().await;
                    }
                },
            }
        }
    }

    /// Starts storing a doc update, or handling a client's RPC `stream` part; anything else
    /// is returned as [`Next::Other`].
    async fn start(&mut self, frame: Frame) -> Next {
        let message = match frame {
            Frame::Message(message) if matches!(message.body, Body::Doc(DocMessage::Update(_))) => {
                message
            }
            Frame::Message(message) if is_client_part(&message) => return self.start_part(message),
            other => return Next::Other(other),
        };
        let bytes = message.to_bytes();
        let id = MessageId::of(&bytes);
        if self.storing.contains(&id) {
            return Next::Other(Frame::Message(message));
        }
        let max = self.registration.server.config().max_message_size;
        if bytes.len() > max {
            return Next::Replies(vec![nack(id, too_large(bytes.len(), max))]);
        }
        let Message {
            document,
            encrypted,
            body,
        } = message;
        let Body::Doc(doc @ DocMessage::Update(_)) = body else {
            return Next::Other(Frame::Message(Message::new(document, encrypted, body)));
        };
        if let Err(replies) = self.doc_session(id, &document, encrypted, &doc).await {
            return Next::Replies(replies);
        }
        let DocMessage::Update(update) = doc else {
            return Next::Replies(vec![nack(id, "not an update")]);
        };
        match self.prepare(id, &document, update.data).await {
            Err(text) => Next::Replies(vec![nack(id, text)]),
            Ok(None) => Next::Replies(vec![ack(id)]),
            Ok(Some((session, forms))) => {
                self.storing.insert(id);
                let early = if self.relay_late == 0 {
                    session.may_relay_early(&forms).await
                } else {
                    None
                };
                let relayed = early.is_some();
                let pending = if relayed {
                    session.relay_early(self.registration.peer.id, &forms, Some(id))
                } else {
                    self.relay_late += 1;
                    None
                };
                Next::Storing(Box::pin(async move {
                    let result = session.store_update(&forms, Some(id), early).await;
                    drop(pending);
                    InFlight::Stored(Stored {
                        id,
                        session,
                        forms,
                        relayed,
                        result,
                    })
                }))
            }
        }
    }

    /// Handles a client's RPC `stream` part beside reading the next messages: the chunks of a
    /// file upload are hashed and written while the next ones arrive.
    fn start_part(&mut self, message: Message) -> Next {
        let bytes = message.to_bytes();
        let max = self.registration.server.config().max_message_size;
        if bytes.len() > max {
            let id = MessageId::of(&bytes);
            return Next::Replies(vec![nack(id, too_large(bytes.len(), max))]);
        }
        let Message {
            document,
            encrypted,
            body: Body::Rpc(rpc),
        } = message
        else {
            return Next::Replies(Vec::new()); // `is_client_part` checked the body.
        };
        let id = PendingId::of(bytes, HASH_ID_OFF_THREAD);
        let server = self.registration.server.clone();
        let client = self.client.clone();
        self.parts += 1;
        Next::Storing(Box::pin(async move {
            let answer = dispatch(&server, &client, id, &document, encrypted, rpc).await;
            InFlight::Part(answer.now)
        }))
    }

    /// The frames that answer a message handled in flight.
    async fn finish(&mut self, done: InFlight) -> Vec<Frame> {
        match done {
            InFlight::Stored(stored) => vec![self.finish_update(stored).await],
            InFlight::Part(frames) => {
                self.parts -= 1;
                frames
            }
        }
    }

    /// Relays a stored update (unless it was relayed before storing) and returns its ACK, or
    /// the NACK of a failed one.
    async fn finish_update(&mut self, stored: Stored) -> Frame {
        self.storing.remove(&stored.id);
        if !stored.relayed {
            self.relay_late -= 1;
        }
        match stored.result {
            Ok(()) => {
                if stored.relayed {
                    stored.session.publish_update(&stored.forms).await;
                } else {
                    stored
                        .session
                        .relay_update(self.registration.peer.id, &stored.forms, Some(stored.id))
                        .await;
                }
                ack(stored.id)
            }
            Err(error) => nack(stored.id, error.chain()),
        }
    }

    async fn handle(&mut self, frame: Frame) -> Vec<Frame> {
        let message = match frame {
            Frame::Ping => return vec![Frame::Pong],
            Frame::Pong => return Vec::new(),
            Frame::Message(message) => message,
        };
        if matches!(message.body, Body::Ack(_)) {
            return Vec::new(); // Nobody acks an ack; the server tracks none of its own.
        }
        // Frames arrive decoded, so the id is that of the canonical encoding; the reference
        // client's encoder is canonical, so it equals the id of the bytes it sent.
        let bytes = message.to_bytes();
        let max = self.registration.server.config().max_message_size;
        if bytes.len() > max {
            return vec![nack(MessageId::of(&bytes), too_large(bytes.len(), max))];
        }
        let Message {
            document,
            encrypted,
            body,
        } = message;
        if let Body::Rpc(rpc) = body {
            let id = PendingId::of(bytes, HASH_ID_OFF_THREAD);
            return self.handle_rpc(id, &document, encrypted, rpc).await;
        }
        let id = MessageId::of(&bytes);
        match body {
            Body::Doc(doc) => self.handle_doc(id, &document, encrypted, doc).await,
            Body::Awareness(awareness) => {
                self.handle_awareness(id, &document, encrypted, awareness)
                    .await
            }
            Body::Presence(presence) => self.handle_presence(id, &document, presence).await,
            _ => vec![nack(id, "unsupported message type")],
        }
    }

    async fn allowed(&self, document: &str, access: Access) -> bool {
        self.registration
            .server
            .allowed(&self.client, document, access)
            .await
    }

    async fn handle_doc(
        &mut self,
        id: MessageId,
        document: &str,
        encrypted: bool,
        doc: DocMessage,
    ) -> Vec<Frame> {
        let session = match self.doc_session(id, document, encrypted, &doc).await {
            Ok(session) => session,
            Err(replies) => return replies,
        };
        match doc {
            DocMessage::SyncStep1 { state_vector } => {
                let answer = match session.sync_state(&state_vector).await {
                    Ok((diff, state_vector)) => session
                        .to_envelope(diff)
                        .map(|envelope| (envelope, state_vector)),
                    Err(error) => Err(error),
                };
                let (envelope, state_vector) = match answer {
                    Ok(answer) => answer,
                    Err(error) => return vec![nack(id, error.chain())],
                };
                let mut replies = vec![
                    doc_frame(
                        document,
                        DocMessage::SyncStep2(Update {
                            version: 2,
                            data: envelope,
                        }),
                    ),
                    doc_frame(document, DocMessage::SyncStep1 { state_vector }),
                    ack(id),
                ];
                // Not in the reference flow: the current awareness states, so a newcomer sees
                // who is there without waiting for their next awareness update (y-websocket's
                // server does the same on connect).
                if let Some(states) = session.awareness_snapshot() {
                    replies.push(Frame::Message(Message::awareness(
                        document,
                        AwarenessMessage::Update(states),
                    )));
                }
                replies
            }
            DocMessage::SyncStep2(update) => {
                let mut replies = match self.apply(id, document, update.data).await {
                    Ok(()) => vec![ack(id)],
                    Err(text) => vec![nack(id, text)],
                };
                replies.insert(0, doc_frame(document, DocMessage::SyncDone));
                replies
            }
            DocMessage::Update(update) => match self.apply(id, document, update.data).await {
                Ok(()) => vec![ack(id)],
                Err(text) => vec![nack(id, text)],
            },
            _ => vec![ack(id)],
        }
    }

    /// The session a doc message acts on, once permission and encryption mode allow it;
    /// `Err` holds the replies refusing it.
    async fn doc_session(
        &mut self,
        id: MessageId,
        document: &str,
        encrypted: bool,
        doc: &DocMessage,
    ) -> Result<Arc<Session>, Vec<Frame>> {
        let access = match doc {
            DocMessage::SyncStep1 { .. } | DocMessage::SyncDone => Access::Read,
            DocMessage::SyncStep2(_) | DocMessage::Update(_) => Access::Write,
            // Only servers send auth-messages; the reference's permission check rejects them.
            _ => return Err(vec![nack(id, "auth-messages are sent by the server only")]),
        };
        if !self.allowed(document, access).await {
            let reason = permission_denied_reason(document);
            // A denied sync-step-2 ends the sync as if it were applied (spec §4.3).
            let answer = if matches!(doc, DocMessage::SyncStep2(_)) {
                DocMessage::SyncDone
            } else {
                DocMessage::Auth {
                    allowed: false,
                    reason: reason.clone(),
                }
            };
            return Err(vec![doc_frame(document, answer), nack(id, reason)]);
        }
        let session = match self.registration.session(&self.client, document).await {
            Ok(session) => session,
            Err(error) => return Err(vec![nack(id, error.chain())]),
        };
        if session.check_mode(encrypted).is_err() {
            return Err(vec![nack(id, ENCRYPTION_MISMATCH)]);
        }
        if encrypted {
            return Err(vec![nack(id, E2EE_UNSUPPORTED)]);
        }
        Ok(session)
    }

    /// Stores one content envelope's update and relays it; `Err` is the NACK text.
    async fn apply(&mut self, id: MessageId, document: &str, data: Bytes) -> Result<(), String> {
        match self.prepare(id, document, data).await? {
            Some((session, forms)) => session
                .apply_update(self.registration.peer.id, &forms, Some(id))
                .await
                .map_err(|e| e.chain()),
            None => Ok(()),
        }
    }

    /// Decodes one content envelope's update for storing: `None` when there is nothing to
    /// store (a duplicate or an empty update), `Err` the NACK text.
    async fn prepare(
        &mut self,
        id: MessageId,
        document: &str,
        data: Bytes,
    ) -> Result<Option<(Arc<Session>, UpdateForms)>, String> {
        let session = self
            .registration
            .session(&self.client, document)
            .await
            .map_err(|e| e.chain())?;
        if session.is_duplicate(&id) {
            return Ok(None);
        }
        // The version byte is ignored, as the reference ignores it: data is always an envelope.
        let envelope = ContentEnvelope::decode(data).map_err(|source| {
            ServerError::InvalidEnvelope {
                document: document.to_string(),
                source,
            }
            .chain()
        })?;
        if !envelope.sidecars.is_empty() || envelope.compaction.is_some() {
            return Err(E2EE_UNSUPPORTED.to_string());
        }
        if envelope.structure_update.is_empty() {
            return Ok(None); // Nothing to store (spec §5.1).
        }
        let forms = UpdateForms::from_v2(envelope.structure_update).map_err(|source| {
            ServerError::InvalidUpdate {
                document: document.to_string(),
                source,
            }
            .chain()
        })?;
        if forms.empty {
            return Ok(None);
        }
        Ok(Some((session, forms)))
    }

    async fn handle_awareness(
        &mut self,
        id: MessageId,
        document: &str,
        encrypted: bool,
        awareness: AwarenessMessage,
    ) -> Vec<Frame> {
        if !self.allowed(document, Access::Read).await {
            return denied(id, document);
        }
        let session = match self.registration.session(&self.client, document).await {
            Ok(session) => session,
            Err(error) => return vec![nack(id, error.chain())],
        };
        // Awareness may fix the mode, but only doc messages are checked against it (§19.10).
        let _ = session.check_mode(encrypted);
        match awareness {
            AwarenessMessage::Update(update) => {
                match session
                    .apply_awareness(self.registration.peer.id, update, encrypted)
                    .await
                {
                    Ok(()) => vec![ack(id)],
                    Err(error) => vec![nack(id, error.chain())],
                }
            }
            AwarenessMessage::Request => {
                let mut replies = Vec::new();
                if let Some(states) = session.awareness_snapshot() {
                    replies.push(Frame::Message(Message::awareness(
                        document,
                        AwarenessMessage::Update(states),
                    )));
                }
                replies.push(ack(id));
                replies
            }
            _ => vec![nack(id, "unsupported awareness message")],
        }
    }

    async fn handle_presence(
        &mut self,
        id: MessageId,
        document: &str,
        presence: PresenceMessage,
    ) -> Vec<Frame> {
        if !self.allowed(document, Access::Read).await {
            return denied(id, document);
        }
        let session = match self.registration.session(&self.client, document).await {
            Ok(session) => session,
            Err(error) => return vec![nack(id, error.chain())],
        };
        let conn = self.registration.peer.id;
        match presence {
            PresenceMessage::Announce { awareness_id } => {
                let entry = PresenceEntry {
                    awareness_id,
                    client_id: self.client.client_id.clone(),
                    user_id: self.client.user.clone().unwrap_or_default(),
                    data: Vec::new(),
                };
                let mut replies: Vec<Frame> = session
                    .announce(conn, entry)
                    .await
                    .into_iter()
                    .map(|e| Frame::Message(Message::presence(document, PresenceMessage::Join(e))))
                    .collect();
                replies.push(ack(id));
                replies
            }
            PresenceMessage::Unannounce { awareness_id } => {
                session.unannounce(conn, awareness_id).await;
                vec![ack(id)]
            }
            _ => vec![nack(
                id,
                "presence join, leave and heartbeat are sent by servers only",
            )],
        }
    }

    async fn handle_rpc(
        &mut self,
        id: PendingId,
        document: &str,
        encrypted: bool,
        rpc: RpcMessage,
    ) -> Vec<Frame> {
        let server = self.registration.server.clone();
        let answer = dispatch(&server, &self.client, id, document, encrypted, rpc).await;
        *self
            .streaming
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answer.then;
        answer.now
    }
}

/// The NACK text for a message past [`ServerConfig::max_message_size`](crate::ServerConfig)
/// (spec §7).
pub(crate) fn too_large(size: usize, max: usize) -> String {
    format!("message-too-large: {size} > {max} bytes")
}

fn doc_frame(document: &str, doc: DocMessage) -> Frame {
    Frame::Message(Message::doc(document, doc))
}

pub(crate) fn ack(id: MessageId) -> Frame {
    Frame::Message(Message::ack(AckMessage::positive(id)))
}

pub(crate) fn nack(id: MessageId, error: impl Into<String>) -> Frame {
    Frame::Message(Message::ack(AckMessage::error(id, error)))
}

fn denied(id: MessageId, document: &str) -> Vec<Frame> {
    let reason = permission_denied_reason(document);
    vec![
        doc_frame(
            document,
            DocMessage::Auth {
                allowed: false,
                reason: reason.clone(),
            },
        ),
        nack(id, reason),
    ]
}
