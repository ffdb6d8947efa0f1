//! Presence (spec §8): announcing and withdrawing roster entries.

use teleportal_core::{Frame, Message, PresenceEntry, PresenceMessage};

use crate::peer::Broadcast;

use super::{Session, lock};

impl Session {
    /// Adds a presence entry; returns the roster to send to the announcer (its own entry
    /// included) and tells the others and the other nodes (spec §8).
    pub(crate) async fn announce(&self, from: u64, entry: PresenceEntry) -> Vec<PresenceEntry> {
        let roster = {
            let mut presence = lock(&self.presence);
            presence.retain(|(conn, e)| !(*conn == from && e.awareness_id == entry.awareness_id));
            presence.push((from, entry.clone()));
            presence.iter().map(|(_, e)| e.clone()).collect()
        };
        let message = Message::presence(self.document.as_ref(), PresenceMessage::Join(entry));
        self.broadcast(Some(from), presence_broadcast(&message));
        self.publish(&message).await;
        roster
    }

    /// Withdraws an announcement and tells the others.
    pub(crate) async fn unannounce(&self, from: u64, awareness_id: u64) {
        let removed: Vec<PresenceEntry> = {
            let mut presence = lock(&self.presence);
            let (gone, kept) = std::mem::take(&mut *presence)
                .into_iter()
                .partition(|(conn, e)| *conn == from && e.awareness_id == awareness_id);
            *presence = kept;
            gone.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
        };
        for entry in removed {
            let message = Message::presence(self.document.as_ref(), PresenceMessage::Leave(entry));
            self.broadcast(Some(from), presence_broadcast(&message));
            self.publish(&message).await;
        }
    }
}

pub(super) fn presence_broadcast(message: &Message) -> Broadcast {
    Broadcast {
        frame: Some(Frame::Message(message.clone())),
        y: None,
    }
}
