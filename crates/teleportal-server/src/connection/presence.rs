//! Presence messages: announcing and withdrawing a client's roster entry (spec §8).

use teleportal_core::{Frame, Message, MessageId, PresenceEntry, PresenceMessage};

use super::{Connection, ack, nack};

impl Connection {
    pub(super) async fn handle_presence(
        &mut self,
        id: MessageId,
        document: &str,
        presence: PresenceMessage,
    ) -> Vec<Frame> {
        let session = match self.readable_session(id, document).await {
            Ok(session) => session,
            Err(replies) => return replies,
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
}
