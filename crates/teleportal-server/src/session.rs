//! One open document: its connected clients, awareness and presence, recent message ids, and
//! its pub/sub subscription. A session never holds the document itself: updates go to the
//! store as bytes and sync answers are read from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use teleportal_core::y_protocols::{AwarenessUpdate, SyncMessage};
use teleportal_core::{
    AwarenessMessage, Body, ContentEnvelope, DocMessage, Frame, Message, MessageId, PresenceEntry,
    PresenceMessage, Update, YMessage,
};
use teleportal_pubsub::{NodePubSub, PubSubError, Subscription, document_topic};
use teleportal_storage::{AppendReceipt, DocumentId, DocumentStore, Seq};
use tokio::task::JoinHandle;

use crate::ServerConfig;
use crate::audit::{Audit, SeenUpdates};
use crate::awareness::AwarenessStates;
use crate::convert::{self, UpdateForms};
use crate::dedup::RecentIds;
use crate::peer::{Broadcast, Peer};
use crate::{RelayMode, ServerError};

/// The encryption mode of a session did not match a message's flag.
#[derive(Debug)]
pub(crate) struct ModeMismatch;

#[derive(Debug, Default)]
struct Peers {
    by_id: HashMap<u64, Peer>,
    /// Bumped on every join, so an idle timer armed before a join knows it is stale.
    epoch: u64,
}

/// What the session knows of its document's stored size, for relaying early under a hard
/// size limit ([`RelayMode::BeforeDurable`]).
#[derive(Debug, Default)]
struct SizeEstimate {
    /// The size after the newest append seen (by sequence number), or from the metadata.
    known: Option<(Seq, u64)>,
    /// Bytes of this node's appends that have not finished (relayed early or not).
    reserved: u64,
}

/// Bytes of an append in flight, counted in [`SizeEstimate::reserved`] until dropped (also
/// when the append is cancelled).
#[derive(Debug)]
pub(crate) struct Reservation {
    size: Arc<Mutex<SizeEstimate>>,
    bytes: u64,
}

impl Reservation {
    fn new(size: &Arc<Mutex<SizeEstimate>>, bytes: u64) -> Self {
        lock(size).reserved += bytes;
        Reservation {
            size: Arc::clone(size),
            bytes,
        }
    }
}

/// Updates relayed early whose append has not finished, so a client that syncs meanwhile gets
/// them too: it joined after their relay, and storage may not hold them yet.
type Unstored = Arc<Mutex<(u64, Vec<(u64, Bytes)>)>>;

/// An update in [`Session::unstored`] until dropped: when its append ended (or was cancelled).
#[derive(Debug)]
pub(crate) struct Pending {
    unstored: Unstored,
    token: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.unstored)
            .1
            .retain(|(token, _)| *token != self.token);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut size = lock(&self.size);
        size.reserved = size.reserved.saturating_sub(self.bytes);
    }
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
        store: DocumentStore,
        pubsub: Option<NodePubSub>,
        subscription: Option<Subscription>,
        config: &ServerConfig,
        audit_from: Option<u64>,
    ) -> Arc<Session> {
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
            let task = tokio::spawn(relay_remote(
                Arc::downgrade(&session),
                subscription,
                missed_update_check,
            ));
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

    /// What a peer with `state_vector` lacks (in the store's encoding), and the stored state
    /// vector.
    ///
    /// Updates relayed early and not stored yet are included: the caller joined the session
    /// before asking, so it gets every later relay, and the updates relayed before it joined
    /// are either stored before the read below or still listed here (taken before the read).
    pub(crate) async fn sync_state(
        &self,
        state_vector: &[u8],
    ) -> Result<(Bytes, Bytes), ServerError> {
        let unstored: Vec<Bytes> = lock(&self.unstored)
            .1
            .iter()
            .map(|(_, update)| update.clone())
            .collect();
        let state = self
            .store
            .read(&self.doc)
            .await
            .map_err(|source| self.storage_error(source))?;
        let mut update = state.update;
        if !unstored.is_empty() {
            let mut all = Vec::with_capacity(unstored.len() + 1);
            all.push(update.clone());
            all.extend(unstored);
            match self.store.encoding().merge(&all) {
                Ok(merged) => update = merged,
                Err(error) => {
                    tracing::warn!(document = %self.name, %error, "unstored updates do not merge");
                }
            }
        }
        let diff = self
            .store
            .encoding()
            .diff(&update, state_vector)
            .map_err(|source| ServerError::InvalidStateVector {
                document: self.name.to_string(),
                source,
            })?;
        Ok((diff, state.state_vector))
    }

    /// The stored state vector.
    pub(crate) async fn state_vector(&self) -> Result<Bytes, ServerError> {
        let state = self
            .store
            .read(&self.doc)
            .await
            .map_err(|source| self.storage_error(source))?;
        Ok(state.state_vector)
    }

    /// A stored diff as the content envelope of a sync-step-2.
    pub(crate) fn to_envelope(&self, diff: Bytes) -> Result<Bytes, ServerError> {
        convert::stored_to_envelope(self.store.encoding(), diff)
            .map_err(|source| self.invalid_update(source))
    }

    /// A stored diff as a V1 update.
    pub(crate) fn to_v1(&self, diff: Bytes) -> Result<Bytes, ServerError> {
        convert::stored_to_v1(self.store.encoding(), diff)
            .map_err(|source| self.invalid_update(source))
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

    /// Whether an update may be relayed before it is stored ([`RelayMode::BeforeDurable`], and
    /// no hard size limit it could hit); `Some` holds what it reserves of the limit, to pass on
    /// to [`store_update`](Self::store_update).
    pub(crate) async fn may_relay_early(&self, forms: &UpdateForms) -> Option<Reservation> {
        if self.relay != RelayMode::BeforeDurable {
            return None;
        }
        let len = forms.stored(self.store.encoding()).len() as u64;
        let Some(max) = self.store.size_limits().max_size else {
            return Some(Reservation {
                size: Arc::clone(&self.size),
                bytes: 0,
            });
        };
        if lock(&self.size).known.is_none() {
            // Once per session: later appends keep it current through their receipts.
            match self.store.metadata(&self.doc).await {
                Ok(meta) => {
                    let known = meta.map_or((0, 0), |m| (m.last_seq, m.size));
                    let mut size = lock(&self.size);
                    if size.known.is_none_or(|(seq, _)| seq < known.0) {
                        size.known = Some(known);
                    }
                }
                Err(error) => {
                    let error = self.storage_error(error);
                    tracing::debug!(error = %error.chain(), "size unknown; relaying once stored");
                    return None;
                }
            }
        }
        // Checked and reserved under one lock, so concurrent connections cannot both fit.
        let mut size = lock(&self.size);
        let known = size.known.map_or(0, |(_, bytes)| bytes);
        let projected = known.saturating_add(size.reserved).saturating_add(len);
        if projected >= max {
            return None;
        }
        size.reserved += len;
        Some(Reservation {
            size: Arc::clone(&self.size),
            bytes: len,
        })
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

    /// Takes the document's size from an append's receipt, if it is the newest seen.
    fn track_size(&self, receipt: &AppendReceipt) {
        if self.store.size_limits().max_size.is_none() {
            return;
        }
        let mut size = lock(&self.size);
        if size.known.is_none_or(|(seq, _)| seq < receipt.seq) {
            size.known = Some((receipt.seq, receipt.size));
        }
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

    /// Relays an update to the other local clients before it is stored and lists it as
    /// unstored until the returned guard is dropped (once its append ended). Other nodes get it
    /// from [`publish_update`](Self::publish_update) once stored: a client joining there reads
    /// shared storage and cannot see this node's unstored list. `None` for an id relayed
    /// recently: it is not relayed again.
    pub(crate) fn relay_early(
        &self,
        from: u64,
        forms: &UpdateForms,
        id: Option<MessageId>,
    ) -> Option<Pending> {
        if let Some(id) = id
            && !lock(&self.relayed).insert(id)
        {
            return None;
        }
        let pending = {
            let mut unstored = lock(&self.unstored);
            unstored.0 += 1;
            let token = unstored.0;
            unstored
                .1
                .push((token, forms.stored(self.store.encoding())));
            Pending {
                unstored: Arc::clone(&self.unstored),
                token,
            }
        };
        // Listed before the broadcast: a client joining in between either is a peer already
        // or finds it listed (or stored).
        self.broadcast(
            Some(from),
            Broadcast {
                frame: Some(Frame::Message(self.update_message(forms))),
                y: Some(YMessage::Sync(SyncMessage::Update(forms.v1.clone()))),
            },
        );
        Some(pending)
    }

    /// Publishes a stored update for the other nodes (after [`relay_early`](Self::relay_early)).
    pub(crate) async fn publish_update(&self, forms: &UpdateForms) {
        self.publish(&self.update_message(forms)).await;
    }

    fn update_message(&self, forms: &UpdateForms) -> Message {
        Message::doc(
            self.document.as_ref(),
            DocMessage::Update(Update {
                version: 2,
                data: forms.envelope(),
            }),
        )
    }

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
                tracing::warn!(document = %self.name, %error, "undecodable pub/sub message");
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
                        let message = self.update_message(&forms);
                        self.broadcast(
                            None,
                            Broadcast {
                                frame: Some(Frame::Message(message)),
                                y: Some(YMessage::Sync(SyncMessage::Update(forms.v1))),
                            },
                        );
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

    async fn full_state(&self) -> Result<UpdateForms, ServerError> {
        let state = self
            .store
            .read(&self.doc)
            .await
            .map_err(|source| self.storage_error(source))?;
        UpdateForms::from_stored(self.store.encoding(), state.update)
            .map_err(|source| self.invalid_update(source))
    }

    /// One missed-update check (see [`crate::audit`]): resyncs the clients when updates were
    /// stored that this session never saw.
    async fn audit(&self, audit: &mut Audit) {
        // Storage first, then the count: a publication arriving in between only makes the
        // session look less behind.
        let last_seq = match self.store.metadata(&self.doc).await {
            Ok(meta) => meta.map_or(0, |m| m.last_seq),
            Err(error) => {
                tracing::warn!(document = %self.name, %error, "missed-update check failed");
                return;
            }
        };
        if audit.check(last_seq, self.seen.count()) {
            tracing::warn!(
                document = %self.name,
                "updates were stored that never reached this node; resyncing clients"
            );
            self.resync().await;
        }
    }

    /// After pub/sub dropped frames, local clients may have missed updates. Each gets the
    /// whole stored document as one update: applying it is idempotent, and it is the only
    /// answer that needs no knowledge of what each client has.
    async fn resync(&self) {
        let forms = match self.full_state().await {
            Ok(forms) => forms,
            Err(error) => {
                tracing::warn!(document = %self.name, error = %error.chain(), "resync failed");
                return;
            }
        };
        if forms.empty {
            return;
        }
        let message = self.update_message(&forms);
        self.broadcast(
            None,
            Broadcast {
                frame: Some(Frame::Message(message)),
                y: Some(YMessage::Sync(SyncMessage::Update(forms.v1))),
            },
        );
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

fn presence_broadcast(message: &Message) -> Broadcast {
    Broadcast {
        frame: Some(Frame::Message(message.clone())),
        y: None,
    }
}

/// Relays what other nodes publish; with `missed_update_check` (interval, the storage's last
/// sequence number when the subscription started) it also audits for missed updates.
async fn relay_remote(
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
                        tracing::warn!(document = %session.name, %error, "pub/sub subscription error");
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
