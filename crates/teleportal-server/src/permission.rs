//! The permission hook every incoming message passes before anything happens.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use teleportal_core::ContentEnvelope;
use teleportal_storage::UpdateEncoding;

use crate::ClientContext;

/// What a message needs on its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Reading: sync-step-1, awareness, presence, read-class RPCs.
    Read,
    /// Writing: updates, sync-step-2, write-class RPCs. An update or sync-step-2 that adds
    /// no structs and deletes nothing (as yjs or yrs encodes it) writes nothing and needs
    /// only [`Access::Read`].
    Write,
}

/// Decides whether a client may read or write a document.
///
/// Called for every incoming message, before the message has any effect. Return `false` to
/// deny: the server answers as the spec says (an auth-message with a reason, or sync-done for
/// a denied sync-step-2) and changes nothing.
#[async_trait]
pub trait PermissionChecker: Send + Sync + 'static {
    /// Whether `client` (the connection: its id, user and whatever the transport verified,
    /// see [`ClientContext::identity`]) may have `access` to `document`, the plain name the
    /// client sent.
    async fn check(&self, client: &ClientContext, document: &str, access: Access) -> bool;
}

/// Allows everything: the default until a checker (e.g. JWT tokens) is configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl PermissionChecker for AllowAll {
    async fn check(&self, _client: &ClientContext, _document: &str, _access: Access) -> bool {
        true
    }
}

#[async_trait]
impl<P: PermissionChecker + ?Sized> PermissionChecker for Arc<P> {
    async fn check(&self, client: &ClientContext, document: &str, access: Access) -> bool {
        (**self).check(client, document, access).await
    }
}

/// The access a y-websocket update or sync-step-2 (Yjs V1) needs.
///
/// An update that adds no structs and deletes nothing is not a write: a read-only client
/// answers the server's sync-step-1 with one, and denying it would show every viewer a
/// permission error although they wrote nothing. It is recognised by its bytes, without
/// decoding (a read-only client must not reach the update decoder): the empty update yjs and
/// yrs encode, `00 00`. Any other encoding is checked as a write, the safe side.
pub(crate) fn v1_update_access(update: &[u8]) -> Access {
    if update == UpdateEncoding::V1.empty_update() {
        Access::Read
    } else {
        Access::Write
    }
}

/// The access a Teleportal update or sync-step-2 needs, `data` being its content envelope:
/// [`Access::Read`] for an envelope with no sidecars and no compaction around an empty
/// structure update (no bytes, or the empty V2 update yjs and yrs encode), as for
/// [`v1_update_access`]; [`Access::Write`] otherwise, an envelope that does not decode
/// included.
pub(crate) fn envelope_update_access(data: &Bytes) -> Access {
    let Ok(envelope) = ContentEnvelope::decode(data.clone()) else {
        return Access::Write;
    };
    let structure = &envelope.structure_update;
    let nothing = envelope.sidecars.is_empty()
        && envelope.compaction.is_none()
        && (structure.is_empty() || *structure == UpdateEncoding::V2.empty_update());
    if nothing { Access::Read } else { Access::Write }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_updates_need_no_write_access() {
        // What yjs 13.6 encodes for an empty diff: `Y.encodeStateAsUpdate(doc, sv)` and
        // `Y.encodeStateAsUpdateV2(doc, sv)` when the client has nothing the server lacks.
        let empty_v2: &[u8] = &[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(v1_update_access(&[0, 0]), Access::Read);
        assert_eq!(v1_update_access(&[0, 1, 1, 0]), Access::Write);
        assert_eq!(v1_update_access(&[]), Access::Write);
        let envelope =
            |structure: &[u8]| ContentEnvelope::plain(Bytes::copy_from_slice(structure)).to_bytes();
        assert_eq!(envelope_update_access(&envelope(&[])), Access::Read);
        assert_eq!(envelope_update_access(&envelope(empty_v2)), Access::Read);
        assert_eq!(
            envelope_update_access(&Bytes::from_static(&[1, 0, 0, 0])),
            Access::Read
        );
        assert_eq!(envelope_update_access(&envelope(&[0, 0])), Access::Write);
        assert_eq!(
            envelope_update_access(&Bytes::from_static(&[2, 0, 0, 0])),
            Access::Write,
            "not an envelope"
        );
    }
}
