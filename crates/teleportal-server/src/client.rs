//! Who is on the other end of a connection, and why the server hung up.

/// Identity of one connection, from the transport (token subject, or an anonymous id).
///
/// `client_id` is what [`PermissionChecker::check`](crate::PermissionChecker::check) receives
/// and what presence messages carry as `clientId`; `user` becomes presence's `userId` (empty
/// when absent).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientContext {
    /// The connection's identity.
    pub client_id: String,
    /// The authenticated user, if the transport knows one.
    pub user: Option<String>,
}

impl ClientContext {
    /// A context for `client_id`, with no user.
    pub fn new(client_id: impl Into<String>) -> Self {
        ClientContext {
            client_id: client_id.into(),
            user: None,
        }
    }

    /// Sets the authenticated user.
    pub fn with_user(self, user: impl Into<String>) -> Self {
        ClientContext {
            user: Some(user.into()),
            ..self
        }
    }
}

/// Why the server closed a connection (sent as a close reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason(pub String);

impl CloseReason {
    /// The reason given to a client whose send queue filled up.
    pub(crate) fn send_queue_full() -> Self {
        CloseReason("send queue full: client is not reading".into())
    }

    /// The reason given to every client when the server shuts down.
    pub(crate) fn shutdown() -> Self {
        CloseReason("server is shutting down".into())
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
