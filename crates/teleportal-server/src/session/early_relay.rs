//! Relaying updates before they are stored ([`RelayMode::BeforeDurable`]): the size
//! reservations that keep it under a hard limit, and the list of updates relayed but not stored
//! yet.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{Frame, MessageId, YMessage};
use teleportal_storage::{AppendReceipt, Seq};

use crate::RelayMode;
use crate::convert::UpdateForms;
use crate::peer::Broadcast;

use super::{Session, lock};

/// What the session knows of its document's stored size, for relaying early under a hard
/// size limit ([`RelayMode::BeforeDurable`]).
#[derive(Debug, Default)]
pub(super) struct SizeEstimate {
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
    pub(super) fn new(size: &Arc<Mutex<SizeEstimate>>, bytes: u64) -> Self {
        lock(size).reserved += bytes;
        Reservation {
            size: Arc::clone(size),
            bytes,
        }
    }
}

/// Updates relayed early whose append has not finished, so a client that syncs meanwhile gets
/// them too: it joined after their relay, and storage may not hold them yet.
pub(super) type Unstored = Arc<Mutex<(u64, Vec<(u64, Bytes)>)>>;

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

impl Session {
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

    /// Takes the document's size from an append's receipt, if it is the newest seen.
    pub(super) fn track_size(&self, receipt: &AppendReceipt) {
        if self.store.size_limits().max_size.is_none() {
            return;
        }
        let mut size = lock(&self.size);
        if size.known.is_none_or(|(seq, _)| seq < receipt.seq) {
            size.known = Some((receipt.seq, receipt.size));
        }
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
}
