//! In-flight handling: updates being stored and file chunks being handled beside the reading,
//! answered in arrival order.

use std::sync::Arc;

use futures::future::BoxFuture;
use teleportal_core::{
    Body, DocMessage, Frame, Message, MessageId, RpcKind, RpcMessage, RpcPayload,
};

use crate::ServerError;
use crate::convert::UpdateForms;
use crate::rpc::dispatch::{PendingId, dispatch};
use crate::session::Session;

use super::{Connection, HASH_ID_OFF_THREAD, ack, nack, too_large};

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

/// An update whose append finished (or failed); the connection relays and acknowledges it.
pub(super) struct Stored {
    id: MessageId,
    session: Arc<Session>,
    forms: UpdateForms,
    /// Relayed before it was stored ([`RelayMode::BeforeDurable`](crate::RelayMode)).
    relayed: bool,
    result: Result<(), ServerError>,
}

/// A message handled beside the connection's reading, answered in arrival order.
pub(super) enum InFlight {
    /// An update whose append finished (or failed).
    Stored(Stored),
    /// A client's RPC `stream` part (a file chunk), with its ACK or NACK.
    Part(Vec<Frame>),
}

/// What to do with an incoming frame.
pub(super) enum Next {
    /// A valid update being stored, or a file chunk being handled; its answer waits for the
    /// messages before it.
    Storing(BoxFuture<'static, InFlight>),
    /// An update answered without storing (denied, invalid, duplicate, empty).
    Replies(Vec<Frame>),
    /// Anything else, handled once every earlier update is relayed and acknowledged.
    Other(Frame),
}

impl Connection {
    /// Starts storing a doc update, or handling a client's RPC `stream` part; anything else
    /// is returned as [`Next::Other`].
    pub(super) async fn start(&mut self, frame: Frame) -> Next {
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
    pub(super) async fn finish(&mut self, done: InFlight) -> Vec<Frame> {
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
}
