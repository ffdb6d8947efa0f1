//! Awareness messages: updates and requests for the current states.

use teleportal_core::{AwarenessMessage, Frame, Message, MessageId};

use super::{Connection, ack, nack};

impl Connection {
    pub(super) async fn handle_awareness(
        &mut self,
        id: MessageId,
        document: &str,
        encrypted: bool,
        awareness: AwarenessMessage,
    ) -> Vec<Frame> {
        let session = match self.readable_session(id, document).await {
            Ok(session) => session,
            Err(replies) => return replies,
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
}
