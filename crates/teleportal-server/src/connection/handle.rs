//! Handling one message that is not in flight: pings, the size limit, dispatch by kind, RPC.

use std::sync::Arc;

use teleportal_core::{Body, Frame, Message, MessageId, RpcMessage};
use tracing::Instrument;

use crate::Access;
use crate::metrics::MessageType;
use crate::rpc::dispatch::{PendingId, dispatch};
use crate::session::Session;

use super::reply::denied;
use super::{Connection, HASH_ID_OFF_THREAD, nack, too_large};

impl Connection {
    /// Handles `frame` in a `message` span (at debug) naming its document and type.
    pub(super) async fn handle(&mut self, frame: Frame) -> Vec<Frame> {
        let span = match &frame {
            Frame::Message(m) => tracing::debug_span!(
                "message",
                document = %m.document,
                r#type = MessageType::of_body(&m.body).as_str(),
            ),
            Frame::Ping | Frame::Pong => tracing::Span::none(),
        };
        self.handle_frame(frame).instrument(span).await
    }

    async fn handle_frame(&mut self, frame: Frame) -> Vec<Frame> {
        let metrics = self.registration.server.metrics();
        let message = match frame {
            Frame::Ping => {
                metrics.message(MessageType::Ping);
                return vec![Frame::Pong];
            }
            Frame::Pong => return Vec::new(),
            Frame::Message(message) => message,
        };
        metrics.message(MessageType::of_body(&message.body));
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

    pub(super) async fn allowed(&self, document: &str, access: Access) -> bool {
        self.registration
            .server
            .allowed(&self.client, document, access)
            .await
    }

    /// The document's session for a message that only reads it (awareness, presence), or
    /// the replies refusing it: the denial, or a NACK when the session cannot open.
    pub(super) async fn readable_session(
        &mut self,
        id: MessageId,
        document: &str,
    ) -> Result<Arc<Session>, Vec<Frame>> {
        if !self.allowed(document, Access::Read).await {
            return Err(denied(id, document));
        }
        self.registration
            .session(&self.client, document)
            .await
            .map_err(|error| vec![nack(id, error.chain())])
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
