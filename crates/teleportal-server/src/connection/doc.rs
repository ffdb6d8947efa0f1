//! Doc messages: sync steps and updates, with their permission and encryption-mode checks.

use std::sync::Arc;

use bytes::Bytes;
use teleportal_core::{
    AwarenessMessage, ContentEnvelope, DocMessage, Frame, Message, MessageId, Update,
};

use crate::convert::UpdateForms;
use crate::permission::envelope_update_access;
use crate::session::Session;
use crate::{Access, ServerError};

use super::reply::doc_frame;
use super::{
    Connection, E2EE_UNSUPPORTED, ENCRYPTION_MISMATCH, ack, nack, permission_denied_reason,
};

impl Connection {
    pub(super) async fn handle_doc(
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
    pub(super) async fn doc_session(
        &mut self,
        id: MessageId,
        document: &str,
        encrypted: bool,
        doc: &DocMessage,
    ) -> Result<Arc<Session>, Vec<Frame>> {
        let access = match doc {
            DocMessage::SyncStep1 { .. } | DocMessage::SyncDone => Access::Read,
            // An empty one writes nothing: a read-only client's sync-step-2 is accepted
            // silently (and stores nothing) instead of showing it a denial.
            DocMessage::SyncStep2(update) | DocMessage::Update(update) => {
                envelope_update_access(&update.data)
            }
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
    pub(super) async fn prepare(
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
}
