//! A [`PermissionChecker`] that decides from the verified token of each connection.

use async_trait::async_trait;
use teleportal_server::{Access, ClientContext, PermissionChecker};

use crate::{Permission, TokenClaims, has_document_permission, split_document_key};

/// Grants what each connection's token grants (spec §15.2), nothing without a token.
///
/// The transport verifies the token on connect and attaches the claims to the connection with
/// [`ClientContext::with_identity`]; this checker reads them back for every message and asks
/// [`has_document_permission`] for `read` (sync-step-1, sync-done, awareness, read RPCs) or
/// `write` (sync-step-2, updates, write RPCs), as the engine classifies messages. A
/// connection without [`TokenClaims`] is denied everything, so a transport that forgot to
/// verify fails closed.
///
/// Rooms: a transport gives a connection whose token has a `room` the namespace
/// [`room_prefix`](crate::room_prefix) (as `router_with_auth` does), so its documents live apart
/// from every other room's. Room-less connections keep plain names; so that one cannot spell
/// another room's internal id, this checker denies them any document name that reads as one
/// ([`split_document_key`] succeeds, e.g. `4:acme/notes`).
///
/// A read-only token therefore syncs and receives broadcasts, while its writes are answered
/// as the spec says and change nothing; a token whose patterns miss a document gets nothing
/// of it.
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission, TokenConfig, TokenPermissionChecker};
/// use teleportal_server::{Access, ClientContext, PermissionChecker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let config = TokenConfig::new("secret");
/// let access = vec![DocumentAccess::new("notes/*", &[Permission::Read])];
/// let claims = config.claims("alice", "", Some(access), 0);
/// let client = ClientContext::new("alice").with_identity(claims);
///
/// let checker = TokenPermissionChecker;
/// assert!(checker.check(&client, "notes/a", Access::Read).await);
/// assert!(!checker.check(&client, "notes/a", Access::Write).await);
/// assert!(!checker.check(&ClientContext::new("anonymous-0"), "notes/a", Access::Read).await);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenPermissionChecker;

impl TokenPermissionChecker {
    /// The decision without the async wrapper, for callers on a hot path (and benches).
    pub fn allows(client: &ClientContext, document: &str, access: Access) -> bool {
        let Some(claims) = client.identity::<TokenClaims>() else {
            return false;
        };
        if claims.room.is_empty() && split_document_key(document).is_some() {
            return false;
        }
        let required = match access {
            Access::Read => Permission::Read,
            Access::Write => Permission::Write,
            // An access kind this crate does not know yet: deny rather than guess.
            _ => return false,
        };
        has_document_permission(claims, document, required)
    }
}

#[async_trait]
impl PermissionChecker for TokenPermissionChecker {
    async fn check(&self, client: &ClientContext, document: &str, access: Access) -> bool {
        Self::allows(client, document, access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocumentAccess, TokenConfig};

    fn client(access: Option<Vec<DocumentAccess>>) -> ClientContext {
        let claims = TokenConfig::new("s").claims("u", "", access, 0);
        ClientContext::new("u").with_identity(claims)
    }

    #[test]
    fn connection_without_claims_is_denied_everything() {
        let client = ClientContext::new("anonymous-1").with_identity("not claims");
        assert!(!TokenPermissionChecker::allows(&client, "d", Access::Read));
    }

    #[test]
    fn read_only_token_reads_but_does_not_write() {
        let c = client(Some(vec![DocumentAccess::new("*", &[Permission::Read])]));
        assert!(TokenPermissionChecker::allows(&c, "d", Access::Read));
        assert!(!TokenPermissionChecker::allows(&c, "d", Access::Write));
    }

    #[test]
    fn room_less_token_cannot_name_a_room_key() {
        let c = client(None);
        assert!(TokenPermissionChecker::allows(&c, "notes", Access::Write));
        assert!(!TokenPermissionChecker::allows(
            &c,
            "4:acme/notes",
            Access::Read
        ));
    }

    #[test]
    fn unmatched_document_is_denied_both_ways() {
        let c = client(Some(vec![DocumentAccess::new("a/*", &[Permission::Admin])]));
        assert!(!TokenPermissionChecker::allows(&c, "b/x", Access::Read));
        assert!(!TokenPermissionChecker::allows(&c, "b/x", Access::Write));
        assert!(TokenPermissionChecker::allows(&c, "a/x", Access::Write));
    }
}
