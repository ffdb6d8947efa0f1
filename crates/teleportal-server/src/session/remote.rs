//! Between nodes: publishing to the document's topic and relaying what other nodes publish.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use teleportal_core::y_protocols::AwarenessUpdate;
use teleportal_core::{
    AwarenessMessage, Body, ContentEnvelope, DocMessage, Frame, Message, PresenceMessage, YMessage,
};
use teleportal_pubsub::{NodePubSub, PubSubError, Subscription, document_topic};

use crate::ServerError;
use crate::audit::Audit;
use crate::convert::UpdateForms;
use crate::peer::Broadcast;

use super::{Session, lock};

impl Session {
    /// Publishes a message for the other nodes. A failure is logged: the message is already
    /// applied here, and other nodes catch up from storage on their next sync.
    pub(crate) async fn publish(&self, message: &Message) {
        publish(self.pubsub.as_ref(), &self.name, message).await;
    }

    /// Handles a message another node published: relays it to local clients. Updates are not
    /// stored again (the other node stored them; storage is shared).
    fn on_remote(&self, bytes: Bytes) {
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(document = %self.name, error = %teleportal_core::ErrorChain::new(&error), "undecodable pub/sub message");
                return;
            }
        };
        match message.body {
            Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)) if !message.encrypted => {
                let forms = ContentEnvelope::decode(u.data)
                    .ok()
                    .filter(|e| e.sidecars.is_empty())
                    .and_then(|e| UpdateForms::from_v2(e.structure_update).ok());
                match forms {
                    Some(forms) if !forms.empty => {
                        self.seen.record();
                        self.broadcast_update(forms);
                    }
                    Some(_) => {}
                    None => {
                        tracing::warn!(document = %self.name, "unusable update from pub/sub");
                    }
                }
            }
            Body::Awareness(AwarenessMessage::Update(update)) => {
                if !message.encrypted {
                    match AwarenessUpdate::decode(update.clone()) {
                        Ok(decoded) => lock(&self.awareness).apply(&decoded, None),
                        Err(_) => return,
                    }
                }
                let y = (!message.encrypted).then(|| YMessage::Awareness(update.clone()));
                let frame = Frame::Message(Message::new(
                    self.document.as_ref(),
                    message.encrypted,
                    Body::Awareness(AwarenessMessage::Update(update)),
                ));
                self.broadcast(
                    None,
                    Broadcast {
                        frame: Some(frame),
                        y,
                    },
                );
            }
            Body::Presence(PresenceMessage::Join(_) | PresenceMessage::Leave(_)) => {
                self.broadcast(
                    None,
                    Broadcast {
                        frame: Some(Frame::Message(message)),
                        y: None,
                    },
                );
            }
            _ => {}
        }
    }
}

/// Publishes `message` on the document's topic, if there is a bus.
pub(crate) async fn publish(pubsub: Option<&NodePubSub>, document: &str, message: &Message) {
    let Some(pubsub) = pubsub else { return };
    if let Err(error) = pubsub
        .publish(&document_topic(document), message.to_bytes())
        .await
    {
        let error = ServerError::PubSub {
            document: document.to_string(),
            source: error,
        };
        tracing::warn!(error = %error.chain(), "publish failed");
    }
}

/// Relays what other nodes publish; with `missed_update_check` (interval, the storage's last
/// sequence number when the subscription started) it also audits for missed updates.
pub(super) async fn relay_remote(
    session: Weak<Session>,
    mut subscription: Subscription,
    missed_update_check: Option<(Duration, u64)>,
) {
    let mut ticks = missed_update_check.map(|(every, _)| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut audit = Audit::default();
    if let Some((_, last_seq)) = missed_update_check {
        audit.restart(last_seq, 0);
    }
    loop {
        tokio::select! {
            item = subscription.next() => {
                let Some(item) = item else { return };
                let Some(session) = session.upgrade() else {
                    return;
                };
                match item {
                    Ok(frame) => session.on_remote(frame.message),
                    Err(PubSubError::Lagged { missed }) => {
                        tracing::warn!(document = %session.name, missed, "pub/sub lagged; resyncing clients");
                        session.resync().await;
                    }
                    Err(error) => {
                        tracing::warn!(document = %session.name, error = %teleportal_core::ErrorChain::new(&error), "pub/sub subscription error");
                    }
                }
            }
            _ = next_tick(ticks.as_mut()) => {
                let Some(session) = session.upgrade() else {
                    return;
                };
                session.audit(&mut audit).await;
            }
        }
    }
}

/// The next tick, or never without a ticker.
async fn next_tick(ticks: Option<&mut tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}
