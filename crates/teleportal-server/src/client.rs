//! Who is on the other end of a connection, and why the server hung up.

use std::any::Any;
use std::sync::Arc;

use crate::PermissionChecker;

/// Identity of one connection, from the transport (token subject, or an anonymous id).
///
/// [`PermissionChecker::check`](crate::PermissionChecker::check) receives the whole context;
/// `client_id` is what presence messages carry as `clientId`, `user` becomes presence's
/// `userId` (empty when absent), and `identity` holds whatever the transport verified on
/// connect (e.g. token claims) for the permission checker to read back with
/// [`identity`](Self::identity). The engine never looks inside it. `permissions`, set by the
/// transport that authenticated the connection (a token's grants), is checked beside the
/// server's own [`PermissionChecker`](crate::PermissionChecker): both must allow.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientContext {
    /// The connection's identity.
    pub client_id: String,
    /// The authenticated user, if the transport knows one.
    pub user: Option<String>,
    /// What the transport verified about the connection, typed by the transport; shared,
    /// because the context is cloned into every session the connection joins.
    pub identity: Option<Arc<dyn Any + Send + Sync>>,
    /// Put before every document name to make the internal id the connection's sessions,
    /// storage and pub/sub topics use (spec §15.3 rooms); empty for none. Envelopes keep the
    /// plain name. The prefix must make ids of different namespaces distinct whatever the
    /// names, e.g. `teleportal_auth::room_prefix` (`<len>:<room>/`), never a bare `room/`.
    pub namespace: String,
    /// A checker for this connection only, asked after the server's: a message passes only
    /// if both allow it. `None` leaves the server's checker alone.
    pub permissions: Option<Arc<dyn PermissionChecker>>,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext")
            .field("client_id", &self.client_id)
            .field("user", &self.user)
            .field("identity", &self.identity.is_some())
            .field("namespace", &self.namespace)
            .field("permissions", &self.permissions.is_some())
            .finish()
    }
}

impl ClientContext {
    /// A context for `client_id`, with no user.
    pub fn new(client_id: impl Into<String>) -> Self {
        ClientContext {
            client_id: client_id.into(),
            user: None,
            identity: None,
            namespace: String::new(),
            permissions: None,
        }
    }

    /// Adds a checker for this connection, asked beside the server's (see
    /// [`Self::permissions`]): how a transport that verified a token enforces its grants
    /// without replacing the application's own rules.
    ///
    /// ```
    /// use teleportal_server::{Access, ClientContext, PermissionChecker};
    ///
    /// struct ReadOnly;
    /// #[teleportal_server::async_trait]
    /// impl PermissionChecker for ReadOnly {
    ///     async fn check(&self, _: &ClientContext, _: &str, access: Access) -> bool {
    ///         access == Access::Read
    ///     }
    /// }
    /// let viewer = ClientContext::new("bob").with_permissions(ReadOnly);
    /// assert!(viewer.permissions.is_some());
    /// ```
    pub fn with_permissions(self, permissions: impl PermissionChecker) -> Self {
        ClientContext {
            permissions: Some(Arc::new(permissions)),
            ..self
        }
    }

    /// Sets the namespace prefix of the connection's documents (see [`Self::namespace`]).
    ///
    /// ```
    /// use teleportal_server::ClientContext;
    ///
    /// let client = ClientContext::new("alice").with_namespace("4:acme/");
    /// assert_eq!(client.document_key("notes"), "4:acme/notes");
    /// assert_eq!(ClientContext::new("bob").document_key("notes"), "notes");
    /// ```
    pub fn with_namespace(self, prefix: impl Into<String>) -> Self {
        ClientContext {
            namespace: prefix.into(),
            ..self
        }
    }

    /// The internal id of `document` for this connection: the namespace, then the name.
    pub fn document_key<'a>(&self, document: &'a str) -> std::borrow::Cow<'a, str> {
        if self.namespace.is_empty() {
            std::borrow::Cow::Borrowed(document)
        } else {
            std::borrow::Cow::Owned(format!("{}{document}", self.namespace))
        }
    }

    /// Attaches what the transport verified (e.g. token claims), for the permission checker.
    ///
    /// ```
    /// use teleportal_server::ClientContext;
    ///
    /// let client = ClientContext::new("alice").with_identity(42_u32);
    /// assert_eq!(client.identity::<u32>(), Some(&42));
    /// assert_eq!(client.identity::<String>(), None);
    /// ```
    pub fn with_identity(self, identity: impl Any + Send + Sync) -> Self {
        ClientContext {
            identity: Some(Arc::new(identity)),
            ..self
        }
    }

    /// The identity attached with [`with_identity`](Self::with_identity), if it is a `T`.
    pub fn identity<T: Any>(&self) -> Option<&T> {
        self.identity.as_deref()?.downcast_ref()
    }

    /// Sets the authenticated user.
    pub fn with_user(self, user: impl Into<String>) -> Self {
        ClientContext {
            user: Some(user.into()),
            ..self
        }
    }
}

/// Why the server closed a connection: what the client is told (its [`Display`] form, the
/// close reason) and the WebSocket close code a transport sends with it ([`code`](Self::code)).
///
/// ```
/// use teleportal_server::CloseReason;
///
/// let reason = CloseReason::MessageTooLarge { size: 70_000, max: 65_536 };
/// assert_eq!(reason.code(), 1009);
/// assert_eq!(reason.to_string(), "message-too-large: 70000 > 65536 bytes");
/// assert_eq!(CloseReason::ShuttingDown.code(), 1001);
/// ```
///
/// [`Display`]: std::fmt::Display
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server is shutting down (1001, going away): clients reconnect elsewhere or later.
    ShuttingDown,
    /// The client's send queue filled up: it is not reading (1013, try again later).
    SendQueueFull,
    /// A message was larger than [`ServerConfig::max_message_size`](crate::ServerConfig)
    /// (1009, message too big); y-protocols has no NACK to refuse one message with.
    MessageTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The client may not read the connection's document (1008, policy violation).
    PermissionDenied {
        /// The document.
        document: String,
    },
    /// The connection's encryption does not match the document's (1008).
    EncryptionMismatch,
    /// Serving the connection failed, e.g. the store did (1011, internal error); the text is
    /// the error and its causes.
    Failed(String),
    /// Another reason, with its own close code: for transports and layers that end
    /// connections themselves.
    Other {
        /// The WebSocket close code.
        code: u16,
        /// The reason.
        reason: String,
    },
}

impl CloseReason {
    /// The WebSocket close code (RFC 6455 §7.4) for this reason.
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::ShuttingDown => 1001,
            CloseReason::SendQueueFull => 1013,
            CloseReason::MessageTooLarge { .. } => 1009,
            CloseReason::PermissionDenied { .. } | CloseReason::EncryptionMismatch => 1008,
            CloseReason::Failed(_) => 1011,
            CloseReason::Other { code, .. } => *code,
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ShuttingDown => f.write_str("server is shutting down"),
            CloseReason::SendQueueFull => f.write_str("send queue full: client is not reading"),
            CloseReason::MessageTooLarge { size, max } => {
                write!(f, "message-too-large: {size} > {max} bytes")
            }
            CloseReason::PermissionDenied { document } => {
                f.write_str(&crate::permission_denied_reason(document))
            }
            CloseReason::EncryptionMismatch => f.write_str(crate::ENCRYPTION_MISMATCH),
            CloseReason::Failed(reason) | CloseReason::Other { reason, .. } => f.write_str(reason),
        }
    }
}
