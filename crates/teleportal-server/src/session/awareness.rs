//! Awareness: recording and relaying clients' awareness updates.

use bytes::Bytes;
use teleportal_core::y_protocols::AwarenessUpdate;
use teleportal_core::{AwarenessMessage, Body, Frame, Message, YMessage};

use crate::ServerError;
use crate::peer::Broadcast;

use super::{Session, lock};

impl Session {
    /// Records and relays an awareness update. Encrypted updates are relayed unread.
    ///
    /// # Errors
    /// An unencrypted update that does not decode; nothing is relayed then.
    pub(crate) async fn apply_awareness(
        &self,
        from: u64,
        update: Bytes,
        encrypted: bool,
    ) -> Result<(), ServerError> {
        if !encrypted {
            let decoded = AwarenessUpdate::decode(update.clone()).map_err(|source| {
                ServerError::InvalidAwareness {
                    document: self.name.to_string(),
                    source,
                }
            })?;
            lock(&self.awareness).apply(&decoded, Some(from));
        }
        let message = Message::new(
            self.document.as_ref(),
            encrypted,
            Body::Awareness(AwarenessMessage::Update(update.clone())),
        );
        self.broadcast(
            Some(from),
            Broadcast {
                frame: Some(Frame::Message(message.clone())),
                y: (!encrypted).then_some(YMessage::Awareness(update)),
            },
        );
        self.publish(&message).await;
        Ok(())
    }

    /// Every known awareness state as one update, if there is any.
    pub(crate) fn awareness_snapshot(&self) -> Option<Bytes> {
        lock(&self.awareness)
            .snapshot()
            .map(|update| update.to_bytes())
    }
}
