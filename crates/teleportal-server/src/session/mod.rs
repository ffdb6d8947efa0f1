//! One open document: its connected clients, awareness and presence, recent message ids, and
//! its pub/sub subscription. A session never holds the document itself: updates go to the
//! store as bytes and sync answers are read from it.

mod audit;
mod awareness;
mod early_relay;
mod presence;
mod remote;
mod sync;
mod update;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use teleportal_core::{AwarenessMessage, Frame, Message, PresenceEntry, PresenceMessage, YMessage};
use teleportal_pubsub::{NodePubSub, Subscription};
use teleportal_storage::{DocumentId, DocumentStore};
use tokio::task::JoinHandle;

use crate::Server;
use crate::audit::SeenUpdates;
use crate::awareness::AwarenessStates;
use crate::dedup::RecentIds;
use crate::peer::{Broadcast, Peer};
use crate::{RelayMode, ServerError};

use early_relay::{SizeEstimate, Unstored};
use presence::presence_broadcast;
pub(crate) use remote::publish;
use remote::relay_remote;

/// The encryption mode of a session did not match a message's flag.
#[derive(Debug)]
pub(crate) struct ModeMismatch;

#[derive(Debug, Default)]
struct Peers {
    by_id: HashMap<u64, Peer>,
    /// Bumped on every join, so an idle timer armed before a join knows it is stale.
    epoch: u64,
}

/// One open document.
#[derive(Debug)]
pub(crate) struct Session {
    /// The internal id: the client's namespace prefix and the document name. Storage, pub/sub
    /// topics and the session map use it.
    name: Arc<str>,
    /// The name clients use in envelopes; every client of a session shares the namespace, so
    /// they all use this one.
    document: Arc<str>,
    doc: DocumentId,
    store: DocumentStore,
    pubsub: Option<NodePubSub>,
    peers: Mutex<Peers>,
    awareness: Mutex<AwarenessStates>,
    presence: Mutex<Vec<(u64, PresenceEntry)>>,
    recent: Mutex<RecentIds>,
    relay: RelayMode,
    /// Ids relayed recently ([`RelayMode::BeforeDurable`]): a retransmission of an update
    /// relayed before its append failed is stored again but not relayed again.
    relayed: Mutex<RecentIds>,
    size: Arc<Mutex<SizeEstimate>>,
    /// Updates relayed early, in the store's encoding, until their append ends.
    unstored: Unstored,
    /// Set by the first doc or awareness message (spec §4.3).
    encrypted: Mutex<Option<bool>>,
    /// Updates seen (own appends, other nodes' publications), for the missed-update audit.
    seen: SeenUpdates,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below is a few map operations that leave the data consistent even
    // if a panic interrupted a holder elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// Opens a session; with a subscription, frames from other nodes are relayed to it.
    pub(crate) fn open(
        name: &str,
        document: &str,
        server: &Server,
        subscription: Option<Subscription>,
        audit_from: Option<u64>,
    ) -> Arc<Session> {
        let config = server.config();
        let store = server.store().clone();
        let pubsub = server.pubsub().cloned();
        let (dedup_window, relay) = (config.dedup_window, config.relay);
        let missed_update_check = config.missed_update_check.zip(audit_from);
        let session = Arc::new(Session {
            name: Arc::from(name),
            document: Arc::from(document),
            doc: DocumentId::new(name),
            store,
            pubsub,
            peers: Mutex::default(),
            awareness: Mutex::default(),
            presence: Mutex::default(),
            recent: Mutex::new(RecentIds::new(dedup_window)),
            relay,
            relayed: Mutex::new(RecentIds::new(dedup_window)),
            size: Arc::default(),
            unstored: Arc::default(),
            encrypted: Mutex::new(None),
            seen: SeenUpdates::default(),
            task: Mutex::new(None),
        });
        if let Some(subscription) = subscription {
            // The task holds a weak reference so that dropping the session ends it.
            let relay = relay_remote(Arc::downgrade(&session), subscription, missed_update_check);
            let stop = server.stop_token().clone();
            let task = server.tasks().spawn(async move {
                stop.run_until_cancelled(relay).await;
            });
            *lock(&session.task) = Some(task);
        }
        session
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn add_peer(&self, peer: Peer) {
        let mut peers = lock(&self.peers);
        peers.epoch += 1;
        peers.by_id.insert(peer.id, peer);
    }

    /// The join epoch, to arm an idle timer with.
    pub(crate) fn epoch(&self) -> u64 {
        lock(&self.peers).epoch
    }

    /// No clients, and nobody joined since `epoch`.
    pub(crate) fn is_idle_since(&self, epoch: u64) -> bool {
        let peers = lock(&self.peers);
        peers.by_id.is_empty() && peers.epoch == epoch
    }

    /// Checks a message's encrypted flag against the session's mode, fixing the mode if this
    /// is the first message.
    pub(crate) fn check_mode(&self, encrypted: bool) -> Result<(), ModeMismatch> {
        let mut mode = lock(&self.encrypted);
        match *mode {
            Some(m) if m != encrypted => Err(ModeMismatch),
            Some(_) => Ok(()),
            None => {
                *mode = Some(encrypted);
                Ok(())
            }
        }
    }

    fn storage_error(&self, source: teleportal_storage::StorageError) -> ServerError {
        ServerError::Storage {
            document: self.name.to_string(),
            source,
        }
    }

    fn invalid_update(&self, source: teleportal_storage::BoxError) -> ServerError {
        ServerError::InvalidUpdate {
            document: self.name.to_string(),
            source,
        }
    }

    /// Removes a connection: its awareness states become `null` for everyone and its presence
    /// entries leave. Returns whether the session has no clients left, and the messages to
    /// publish to other nodes (publishing is async; leaving must also work from `Drop`).
    pub(crate) fn leave(&self, conn: u64) -> (bool, Vec<Message>) {
        let empty = {
            let mut peers = lock(&self.peers);
            peers.by_id.remove(&conn);
            peers.by_id.is_empty()
        };
        let mut to_publish = Vec::new();
        let removal = lock(&self.awareness).remove_owner(conn);
        if let Some(removal) = removal {
            let bytes = removal.to_bytes();
            let message = Message::awareness(
                self.document.as_ref(),
                AwarenessMessage::Update(bytes.clone()),
            );
            self.broadcast(
                None,
                Broadcast {
                    frame: Some(Frame::Message(message.clone())),
                    y: Some(YMessage::Awareness(bytes)),
                },
            );
            to_publish.push(message);
        }
        let gone: Vec<PresenceEntry> = {
            let mut presence = lock(&self.presence);
            let (gone, kept) = std::mem::take(&mut *presence)
                .into_iter()
                .partition(|(c, _)| *c == conn);
            *presence = kept;
            gone.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
        };
        for entry in gone {
            let message = Message::presence(self.document.as_ref(), PresenceMessage::Leave(entry));
            self.broadcast(None, presence_broadcast(&message));
            to_publish.push(message);
        }
        (empty, to_publish)
    }

    /// Offers a broadcast to every client except `except`.
    fn broadcast(&self, except: Option<u64>, broadcast: Broadcast) {
        let broadcast = Arc::new(broadcast);
        let peers = lock(&self.peers);
        for (id, peer) in &peers.by_id {
            if Some(*id) != except {
                peer.offer(&broadcast);
            }
        }
    }
}
