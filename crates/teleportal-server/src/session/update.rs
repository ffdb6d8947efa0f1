//! Applying an update: storing it durably, remembering its id and relaying it.

use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{DocMessage, Frame, Message, MessageId, Update, YMessage};

use crate::convert::UpdateForms;
use crate::peer::Broadcast;
use crate::{RelayMode, ServerError};

use super::early_relay::Reservation;
use super::{Session, lock};

impl Session {
    /// Whether a message with this id was applied recently.
    pub(crate) fn is_duplicate(&self, id: &MessageId) -> bool {
        lock(&self.recent).contains(id)
    }

    /// Stores an update durably and relays it to the other clients and nodes: first the relay
    /// when [`may_relay_early`](Self::may_relay_early) allows it, else once stored.
    ///
    /// # Errors
    /// The store's error; the update was relayed already only if it was relayed early.
    pub(crate) async fn apply_update(
        &self,
        from: u64,
        forms: &UpdateForms,
        id: Option<MessageId>,
    ) -> Result<(), ServerError> {
        let early = self.may_relay_early(forms).await;
        if let Some(reservation) = early {
            let pending = self.relay_early(from, forms, id);
            let result = self.store_update(forms, id, Some(reservation)).await;
            drop(pending);
            if result.is_ok() {
                self.publish_update(forms).await;
            }
            result
        } else {
            self.store_update(forms, id, None).await?;
            self.relay_update(from, forms, id).await;
            Ok(())
        }
    }

    /// Stores an update durably and remembers its id; the first half of
    /// [`apply_update`](Self::apply_update), for callers that relay in an order of their own.
    /// `reserved` is what [`may_relay_early`](Self::may_relay_early) returned for it, if it
    /// was relayed early.
    ///
    /// # Errors
    /// The store's error.
    pub(crate) async fn store_update(
        &self,
        forms: &UpdateForms,
        id: Option<MessageId>,
        reservation: Option<Reservation>,
    ) -> Result<(), ServerError> {
        let stored = forms.stored(self.store.encoding());
        // Under a hard limit, every append in flight counts against what may be relayed early.
        let reservation = match reservation {
            Some(reservation) => Some(reservation),
            None if self.store.size_limits().max_size.is_some() => {
                Some(Reservation::new(&self.size, stored.len() as u64))
            }
            None => None,
        };
        let result = self.store.append(&self.doc, stored).await;
        if let Ok(receipt) = &result {
            self.track_size(receipt);
            self.seen.record();
        }
        drop(reservation);
        result.map_err(|source| self.storage_error(source))?;
        if let Some(id) = id {
            lock(&self.recent).insert(id);
        }
        Ok(())
    }

    /// Relays an update to the other clients and nodes: the second half of
    /// [`apply_update`](Self::apply_update). With [`RelayMode::BeforeDurable`] an id relayed
    /// recently is not relayed again.
    pub(crate) async fn relay_update(&self, from: u64, forms: &UpdateForms, id: Option<MessageId>) {
        if self.relay == RelayMode::BeforeDurable
            && let Some(id) = id
            && !lock(&self.relayed).insert(id)
        {
            return;
        }
        let message = self.update_message(forms);
        self.broadcast(
            Some(from),
            Broadcast {
                frame: Some(Frame::Message(message.clone())),
                y: Some(YMessage::Sync(SyncMessage::Update(forms.v1.clone()))),
            },
        );
        self.publish(&message).await;
    }

    /// Publishes a stored update for the other nodes (after [`relay_early`](Self::relay_early)).
    pub(crate) async fn publish_update(&self, forms: &UpdateForms) {
        self.publish(&self.update_message(forms)).await;
    }

    /// Sends an update that came from elsewhere (another node, or storage after a missed
    /// one) to every local client, in both protocols.
    pub(super) fn broadcast_update(&self, forms: UpdateForms) {
        let message = self.update_message(&forms);
        self.broadcast(
            None,
            Broadcast {
                frame: Some(Frame::Message(message)),
                y: Some(YMessage::Sync(SyncMessage::Update(forms.v1))),
            },
        );
    }

    pub(super) fn update_message(&self, forms: &UpdateForms) -> Message {
        Message::doc(
            self.document.as_ref(),
            DocMessage::Update(Update {
                version: 2,
                data: forms.envelope(),
            }),
        )
    }
}
