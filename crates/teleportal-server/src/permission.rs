//! The permission hook every incoming message passes before anything happens.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ClientContext;

/// What a message needs on its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Reading: sync-step-1, awareness, presence, read-class RPCs.
    Read,
    /// Writing: updates, sync-step-2, write-class RPCs.
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
