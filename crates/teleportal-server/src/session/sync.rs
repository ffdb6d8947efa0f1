//! Answering a sync: what a peer lacks, read from storage plus what was relayed early.

use bytes::Bytes;

use crate::ServerError;
use crate::convert;

use super::{Session, lock};

impl Session {
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
                    tracing::warn!(document = %self.name, error = %teleportal_core::ErrorChain::new(&*error), "unstored updates do not merge");
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
}
