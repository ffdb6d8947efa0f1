//! How a connection answers an RPC message (spec §11.3): permission, handler, frames.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use teleportal_core::rpc::{UnknownMethod, requires_write};
use teleportal_core::{Any, Body, Frame, Message, MessageId, RpcKind, RpcMessage, RpcPayload};

use super::{RpcError, RpcRequest, RpcResponse};
use crate::connection::{ack, nack};
use crate::{Access, ClientContext, Server};

/// What to send for one RPC message: frames now, then (for a streamed answer) frames pulled
/// one at a time as the connection sends them.
pub(crate) struct Answer {
    pub(crate) now: Vec<Frame>,
    pub(crate) then: Option<BoxStream<'static, Frame>>,
}

impl From<Vec<Frame>> for Answer {
    fn from(now: Vec<Frame>) -> Self {
        Answer { now, then: None }
    }
}

/// Builds the frames of one answer, all with the request's method, document and flag.
#[derive(Clone)]
struct Reply {
    document: String,
    method: String,
    id: MessageId,
    encrypted: bool,
}

impl Reply {
    fn frame(&self, kind: RpcKind, payload: RpcPayload) -> Frame {
        Frame::Message(Message::new(
            self.document.as_str(),
            self.encrypted,
            Body::Rpc(RpcMessage {
                method: self.method.clone(),
                kind,
                payload,
            }),
        ))
    }

    fn response(&self, payload: RpcPayload) -> Frame {
        let kind = RpcKind::Response {
            original_request_id: self.id.to_string(),
        };
        self.frame(kind, payload)
    }

    fn part(&self, payload: Any) -> Frame {
        let kind = RpcKind::Stream {
            original_request_id: self.id.to_string(),
        };
        self.frame(kind, RpcPayload::Success(payload))
    }

    /// The error response and the NACK.
    fn failure(&self, error: &RpcError) -> Vec<Frame> {
        vec![
            self.response(error.to_payload()),
            nack(self.id, error.details.clone()),
        ]
    }
}

/// A message's id (spec §9), or the hashing of it: the id is a byte-serial hash, about a
/// millisecond per MiB, so for a large file chunk it is worked out beside the chunk's handling
/// (see `id_hashing`).
pub(crate) enum PendingId {
    Ready(MessageId),
    Hashing(tokio::sync::oneshot::Receiver<MessageId>, bytes::Bytes),
}

impl PendingId {
    /// The id of `bytes`: hashed off this task when `bytes` is at least `large` long.
    pub(crate) fn of(bytes: bytes::Bytes, large: usize) -> Self {
        if bytes.len() < large {
            return PendingId::Ready(MessageId::of(&bytes));
        }
        PendingId::Hashing(crate::id_hashing::hash(bytes.clone()), bytes)
    }

    pub(crate) async fn get(self) -> MessageId {
        match self {
            PendingId::Ready(id) => id,
            // The hashing only stops short when the runtime shuts down: hash here instead.
            PendingId::Hashing(id, bytes) => match id.await {
                Ok(id) => id,
                Err(_) => MessageId::of(&bytes),
            },
        }
    }
}

/// Answers one RPC message from `client`. A client's `stream` part (a file chunk) is handled
/// while its id is still being computed; everything else waits for the id first.
pub(crate) async fn dispatch(
    server: &Server,
    client: &ClientContext,
    id: PendingId,
    document: &str,
    encrypted: bool,
    rpc: RpcMessage,
) -> Answer {
    let RpcMessage {
        method,
        kind,
        payload,
    } = rpc;
    match (kind, payload) {
        (
            RpcKind::Stream {
                original_request_id,
            },
            RpcPayload::Success(payload),
        ) => {
            let part = RpcRequest {
                client: client.clone(),
                document: document.to_owned(),
                document_key: client.document_key(document).into_owned(),
                method,
                payload,
                encrypted,
                original_request_id: Some(original_request_id),
            };
            let (outcome, id) = tokio::join!(stream_part(server, part), id.get());
            match outcome {
                Ok(()) => vec![ack(id)],
                Err(details) => vec![nack(id, details)],
            }
            .into()
        }
        (kind, payload) => {
            let rpc = RpcMessage {
                method,
                kind,
                payload,
            };
            dispatch_with_id(server, client, id.get().await, document, encrypted, rpc).await
        }
    }
}

/// One `stream` part from a client: permission, handler, and what its NACK says if refused.
async fn stream_part(server: &Server, part: RpcRequest) -> Result<(), String> {
    let access = if requires_write(&part.method) {
        Access::Write
    } else {
        Access::Read
    };
    if !part.document.is_empty() && !server.allowed(&part.client, &part.document, access).await {
        return Err(RpcError::new(403, "Permission denied").details);
    }
    let Some(handler) = server.rpc_handler(&part.method) else {
        return Err(format!("Unknown RPC method: {}", part.method));
    };
    handler
        .handle_stream(part)
        .await
        .map_err(|error| error.details)
}

async fn dispatch_with_id(
    server: &Server,
    client: &ClientContext,
    id: MessageId,
    document: &str,
    encrypted: bool,
    rpc: RpcMessage,
) -> Answer {
    let original_request_id = match rpc.kind {
        RpcKind::Request => None,
        RpcKind::Stream {
            original_request_id,
        } => Some(original_request_id),
        // §11.3: responses from clients are ignored.
        RpcKind::Response { .. } => return vec![ack(id)].into(),
    };
    let streamed = original_request_id.is_some();
    // §11.3: a request carrying an error payload is ignored.
    let RpcPayload::Success(payload) = rpc.payload else {
        return vec![ack(id)].into();
    };
    let reply = Reply {
        document: document.to_owned(),
        method: rpc.method.clone(),
        id,
        encrypted,
    };
    let access = if requires_write(&rpc.method) {
        Access::Write
    } else {
        Access::Read
    };
    if !document.is_empty() && !server.allowed(client, document, access).await {
        let error = RpcError::new(403, "Permission denied");
        if streamed {
            return vec![nack(id, error.details)].into();
        }
        return reply.failure(&error).into();
    }
    let Some(handler) = server.rpc_handler(&rpc.method) else {
        let details = format!("Unknown RPC method: {}", rpc.method);
        if streamed {
            return vec![nack(id, details)].into();
        }
        let error = UnknownMethod { method: rpc.method };
        return vec![reply.response(error.to_error()), nack(id, details)].into();
    };
    let request = RpcRequest {
        client: client.clone(),
        document: document.to_owned(),
        document_key: client.document_key(document).into_owned(),
        method: rpc.method,
        payload,
        encrypted,
        original_request_id,
    };
    if streamed {
        return match handler.handle_stream(request).await {
            Ok(()) => vec![ack(id)],
            Err(error) => vec![nack(id, error.details)],
        }
        .into();
    }
    match handler.handle(request).await {
        Ok(response) => answer(reply, response),
        Err(error) => reply.failure(&error).into(),
    }
}

/// Parts as they come, then the response and the ACK; a failing part ends the answer with
/// its error response and a NACK instead.
fn answer(mut reply: Reply, response: RpcResponse) -> Answer {
    reply.encrypted = response.encrypted.unwrap_or(reply.encrypted);
    let RpcResponse { parts, payload, .. } = response;
    enum State {
        Parts(BoxStream<'static, Result<Any, RpcError>>, Any),
        Last(VecDeque<Frame>),
    }
    let frames = stream::unfold(State::Parts(parts, payload), move |state| {
        let reply = reply.clone();
        async move {
            let mut last = match state {
                State::Parts(mut parts, payload) => match parts.next().await {
                    Some(Ok(part)) => {
                        return Some((reply.part(part), State::Parts(parts, payload)));
                    }
                    Some(Err(error)) => VecDeque::from(reply.failure(&error)),
                    None => VecDeque::from([
                        reply.response(RpcPayload::Success(payload)),
                        ack(reply.id),
                    ]),
                },
                State::Last(last) => last,
            };
            let frame = last.pop_front()?;
            Some((frame, State::Last(last)))
        }
    });
    Answer {
        now: Vec::new(),
        then: Some(frames.boxed()),
    }
}
