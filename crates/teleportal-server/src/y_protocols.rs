//! [`serve_y_protocols`]: drives one standard y-protocols (`y-websocket`) connection, bridged
//! into the same sessions as Teleportal clients.

use std::sync::Arc;

use futures::{Sink, Stream, StreamExt};
use teleportal_core::YMessage;
use teleportal_core::y_protocols::{AuthMessage, AwarenessUpdate, SyncMessage};
use teleportal_storage::StorageError;
use tracing::Instrument;

use crate::connection::permission_denied_reason;
use crate::convert::UpdateForms;
use crate::metrics::MessageType;
use crate::peer::{SEND_BATCH, Stop, drain_batch, send, send_batch};
use crate::permission::v1_update_access;
use crate::server::Registration;
use crate::session::Session;
use crate::{Access, ClientContext, CloseReason, Server, ServerError};

/// Drives one standard y-protocols connection (y-websocket), whose document is named by the
/// transport (URL path).
///
/// Behaves like the y-websocket server: on connect it sends sync-step-1 with the stored state
/// vector and the current awareness states; it answers sync-step-1 with sync-step-2 (V1), and
/// stores, relays and publishes sync-step-2 and update messages (V1, converted to V2 for
/// Teleportal clients), relaying before or after the durable append as
/// [`ServerConfig::relay`](crate::ServerConfig::relay) says. y-protocols has no
/// acknowledgements: a denied read closes the connection after a permission-denied auth
/// message; a denied write is dropped with a permission-denied auth message (an empty update
/// writes nothing and needs only read access); an update that is not valid Yjs is logged and
/// dropped (as yjs does); a storage failure closes the connection, so the client resyncs on
/// reconnect.
///
/// # Errors
/// [`ServerError::Transport`] when `incoming` yields an error, [`ServerError::Send`] when
/// `outgoing` refuses a message.
///
/// # Cancel safety
/// Dropping the future ends the connection as if the client left.
pub async fn serve_y_protocols<S, K, E>(
    server: &Server,
    client: ClientContext,
    document: &str,
    mut incoming: S,
    mut outgoing: K,
) -> Result<Option<CloseReason>, ServerError>
where
    S: Stream<Item = Result<YMessage, E>> + Send + Unpin,
    K: Sink<YMessage> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let Some(registration) = server.connect() else {
        return Ok(Some(CloseReason::ShuttingDown));
    };
    let span = tracing::info_span!(
        "connection",
        client = %client.client_id,
        protocol = "y-websocket",
        document,
    );
    let mut connection = YConnection {
        client,
        document: document.to_string(),
        registration,
    };
    let ended = connection
        .run(&mut incoming, &mut outgoing)
        .instrument(span)
        .await;
    Stop::outcome(ended, server.metrics())
}

struct YConnection {
    client: ClientContext,
    document: String,
    registration: Registration,
}

impl YConnection {
    async fn allowed(&self, access: Access) -> bool {
        self.registration
            .server
            .allowed(&self.client, &self.document, access)
            .await
    }

    fn denied(&self) -> YMessage {
        YMessage::Auth(AuthMessage::PermissionDenied {
            reason: permission_denied_reason(&self.document),
        })
    }

    async fn run<S, K, E>(&mut self, incoming: &mut S, outgoing: &mut K) -> Result<(), Stop>
    where
        S: Stream<Item = Result<YMessage, E>> + Send + Unpin,
        K: Sink<YMessage> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let closer = Arc::clone(&self.registration.closer);
        if !self.allowed(Access::Read).await {
            send(outgoing, self.denied(), &closer).await?;
            return Err(Stop::Closed(CloseReason::PermissionDenied {
                document: self.document.clone(),
            }));
        }
        let session = self
            .registration
            .session(&self.client, &self.document)
            .await
            .map_err(|e| Stop::Closed(CloseReason::Failed(e.chain())))?;
        if session.check_mode(false).is_err() {
            return Err(Stop::Closed(CloseReason::EncryptionMismatch));
        }
        // What the y-websocket server sends on connect: its state vector, then awareness.
        let state_vector = session
            .state_vector()
            .await
            .map_err(|e| Stop::Closed(CloseReason::Failed(e.chain())))?;
        send(
            outgoing,
            YMessage::Sync(SyncMessage::Step1(state_vector)),
            &closer,
        )
        .await?;
        if let Some(states) = session.awareness_snapshot() {
            send(outgoing, YMessage::Awareness(states), &closer).await?;
        }
        let mut batch = Vec::with_capacity(SEND_BATCH);
        loop {
            // Unbiased on purpose: a steady stream of broadcasts must not starve the client's
            // own messages, nor the other way round. A close is also seen by every `send`.
            tokio::select! {
                reason = closer.closed() => return Err(Stop::Closed(reason)),
                broadcast = self.registration.queue.recv() => {
                    drain_batch(broadcast, &mut self.registration.queue, |b| b.y.clone(), &mut batch);
                    send_batch(outgoing, &mut batch, &closer).await?;
                }
                item = incoming.next() => match item {
                    None => return Ok(()),
                    Some(Err(error)) => return Err(Stop::incoming(error)),
                    Some(Ok(message)) => {
                        if let Some(reply) = self.handle(&session, message).await? {
                            send(outgoing, reply, &closer).await?;
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

    async fn handle(
        &mut self,
        session: &Session,
        message: YMessage,
    ) -> Result<Option<YMessage>, Stop> {
        let conn = self.registration.peer.id;
        self.registration
            .server
            .metrics()
            .message(MessageType::of_y(&message));
        // y-protocols has no NACK: an oversized message ends the connection with the reason.
        let size = message.to_bytes().len();
        let max = self.registration.server.config().max_message_size;
        if size > max {
            return Err(Stop::Closed(CloseReason::MessageTooLarge { size, max }));
        }
        match message {
            YMessage::Sync(SyncMessage::Step1(state_vector)) => {
                if !self.allowed(Access::Read).await {
                    return Ok(Some(self.denied()));
                }
                let diff = session
                    .sync_state(&state_vector)
                    .await
                    .and_then(|(diff, _)| session.to_v1(diff))
                    .map_err(|e| Stop::Closed(CloseReason::Failed(e.chain())))?;
                Ok(Some(YMessage::Sync(SyncMessage::Step2(diff))))
            }
            YMessage::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) => {
                // An empty update writes nothing (a read-only client answers sync-step-1 with
                // one): it needs only read access and is dropped below, unstored.
                if !self.allowed(v1_update_access(&update)).await {
                    return Ok(Some(self.denied()));
                }
                let forms = match UpdateForms::from_v1(update) {
                    Ok(forms) => forms,
                    Err(source) => {
                        let error = ServerError::InvalidUpdate {
                            document: self.document.clone(),
                            source,
                        };
                        tracing::warn!(error = %error.chain(), "dropped y-websocket update");
                        return Ok(None);
                    }
                };
                if forms.empty {
                    return Ok(None);
                }
                match session.apply_update(conn, &forms, None).await {
                    Ok(()) => Ok(None),
                    // y-protocols has no NACK, and a close makes the provider reconnect and
                    // send the same update again, forever. Past the size limit the client is
                    // told why and stays connected (its reads still work); y-websocket logs
                    // the reason.
                    Err(ServerError::Storage {
                        source: StorageError::DocumentTooLarge { limit, .. },
                        ..
                    }) => Ok(Some(YMessage::Auth(AuthMessage::PermissionDenied {
                        reason: format!(
                            "document {} is at its size limit of {limit} bytes: the change was not stored",
                            self.document
                        ),
                    }))),
                    Err(error) => Err(Stop::Closed(CloseReason::Failed(error.chain()))),
                }
            }
            YMessage::Awareness(update) => {
                if !self.allowed(Access::Read).await {
                    return Ok(Some(self.denied()));
                }
                if let Err(error) = session.apply_awareness(conn, update, false).await {
                    tracing::warn!(error = %error.chain(), "dropped y-websocket awareness");
                }
                Ok(None)
            }
            YMessage::QueryAwareness => {
                if !self.allowed(Access::Read).await {
                    return Ok(Some(self.denied()));
                }
                let states = session
                    .awareness_snapshot()
                    .unwrap_or_else(|| AwarenessUpdate::default().to_bytes());
                Ok(Some(YMessage::Awareness(states)))
            }
            // Clients do not send auth messages that mean anything to a server.
            _ => Ok(None),
        }
    }
}
