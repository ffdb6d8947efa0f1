//! [`TokenClaims`] and [`DocumentAccess`]: what a token says, in the reference's wire form.

use serde::{Deserialize, Serialize};

/// One `documentAccess` entry: a document-name pattern and the permissions it grants.
///
/// A pattern starting with `!` is an exclusion (its permissions are ignored). Permissions are
/// kept as the strings the token carries (`read`, `write`, `comment`, `suggest`, `admin`); a
/// name this crate does not know is preserved and simply grants nothing, as in the reference,
/// which never validates them. See [`has_document_permission`](crate::has_document_permission).
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission};
///
/// let access = DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write]);
/// assert_eq!(access.permissions, ["read", "write"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentAccess {
    /// The document-name pattern (spec §15.2).
    pub pattern: String,
    /// The permissions granted on matching documents.
    pub permissions: Vec<String>,
}

impl DocumentAccess {
    /// An entry granting `permissions` on documents matching `pattern`.
    pub fn new(pattern: impl Into<String>, permissions: &[crate::Permission]) -> Self {
        Self {
            pattern: pattern.into(),
            permissions: permissions.iter().map(|p| p.as_str().to_owned()).collect(),
        }
    }
}

/// The claims of a Teleportal token, in wire order.
///
/// Serialization writes the fields in declaration order with the reference's camelCase names;
/// `documentAccess` and `iat` are left out when `None`. Deserialization ignores claims it does
/// not know (`nbf` is checked by [`TokenConfig::verify`](super::TokenConfig::verify) but not kept).
///
/// ```
/// use teleportal_auth::TokenClaims;
///
/// let claims = TokenClaims {
///     user_id: "alice".into(),
///     room: "room-1".into(),
///     document_access: None,
///     exp: 1_700_003_600,
///     iat: Some(1_700_000_000),
///     iss: "teleportal".into(),
///     aud: "teleportal".into(),
/// };
/// assert_eq!(
///     serde_json::to_string(&claims)?,
///     r#"{"userId":"alice","room":"room-1","exp":1700003600,"iat":1700000000,"iss":"teleportal","aud":"teleportal"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenClaims {
    /// Who the token was issued to.
    pub user_id: String,
    /// The room (tenant) the connection belongs to; empty for none. A non-empty room prefixes
    /// every document id inside the server (`<room>/<document>`, spec §15.3). Absent in the
    /// token reads as empty.
    #[serde(default)]
    pub room: String,
    /// Which documents the token grants what on. `None` (claim absent) allows everything;
    /// `Some(vec![])` allows nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_access: Option<Vec<DocumentAccess>>,
    /// Expiry, in seconds since the Unix epoch. Required: a token without one is refused.
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch. Informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The issuer; must equal the verifier's.
    pub iss: String,
    /// The audience; must equal the verifier's.
    pub aud: String,
}
