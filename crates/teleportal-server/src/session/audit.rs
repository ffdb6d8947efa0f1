//! The missed-update audit glue: checking storage for updates this node never saw, and
//! resyncing clients when it finds some (or when pub/sub lagged).

use crate::ServerError;
use crate::audit::Audit;
use crate::convert::UpdateForms;

use super::Session;

impl Session {
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
    pub(super) async fn audit(&self, audit: &mut Audit) {
        // Storage first, then the count: a publication arriving in between only makes the
        // session look less behind.
        let last_seq = match self.store.metadata(&self.doc).await {
            Ok(meta) => meta.map_or(0, |m| m.last_seq),
            Err(error) => {
                tracing::warn!(document = %self.name, error = %teleportal_core::ErrorChain::new(&error), "missed-update check failed");
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
    pub(super) async fn resync(&self) {
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
        self.broadcast_update(forms);
    }
}
