//! [`serve`]: drives one Teleportal-protocol connection.

mod awareness;
mod doc;
mod handle;
mod in_flight;
mod presence;
mod reply;
mod run;

use std::collections::HashSet;

use futures::stream::BoxStream;
use futures::{Sink, Stream};
use teleportal_core::{Frame, MessageId};
use tracing::Instrument;

use crate::peer::Stop;
use crate::server::Registration;
use crate::{ClientContext, CloseReason, Server, ServerError};

pub(crate) use reply::{ack, nack, too_large};

/// Updates of one connection being stored at once. Each waits for durability; storing them
/// together lets the store commit them in one group instead of one fsync each.
const PIPELINE: usize = 256;

/// RPC messages at least this long (file chunks) get their id hashed on a blocking thread
/// while they are handled.
const HASH_ID_OFF_THREAD: usize = 64 * 1024;

/// Client RPC `stream` parts (file chunks) of one connection handled at once: enough to keep
/// hashing, writing and reading the next chunk busy together, few enough that a connection
/// holds a handful of chunks.
const PARTS_IN_FLIGHT: usize = 4;

/// NACK text for a message whose encrypted flag differs from the document's (spec §4.3).
pub const ENCRYPTION_MISMATCH: &str = "Message encryption and document encryption are mismatched";

/// NACK text for content-encrypted (E2EE) document messages. The server stores plaintext Yjs
/// updates; storing sidecars (spec §5.1) is not implemented yet.
pub const E2EE_UNSUPPORTED: &str = "End-to-end encrypted documents are not supported yet: this server stores plaintext updates only";

/// The auth-message reason for a denied message (spec §4.2).
pub fn permission_denied_reason(document: &str) -> String {
    format!("Insufficient permissions to access document {document}")
}

/// Drives one Teleportal-protocol connection until the client goes away or the server closes it.
///
/// Every message is checked with the server's [`PermissionChecker`](crate::PermissionChecker)
/// before it has any effect; every non-ack message is answered with an ACK once applied (for
/// updates: once the store reports them durable) or a NACK saying why not. Updates reach the
/// document's other clients before or after their append as
/// [`ServerConfig::relay`](crate::ServerConfig::relay) says: with the default
/// [`RelayMode::BeforeDurable`](crate::RelayMode), an update whose append fails is NACKed but
/// may already be with the others (the sender retransmits it; see [`RelayMode`](crate::RelayMode)). Pings get pongs.
/// Documents are multiplexed by name: the connection joins a document's session on its first
/// message for it.
///
/// Returns `Ok(None)` when the client ends the stream, `Ok(Some(reason))` when the server
/// closed the connection (send queue full, shutdown): the transport should pass the reason on.
///
/// # Errors
/// [`ServerError::Transport`] when `incoming` yields an error, [`ServerError::Send`] when
/// `outgoing` refuses a frame.
///
/// # Cancel safety
/// Dropping the future ends the connection as if the client left: it leaves its sessions and
/// its awareness states are removed. A message being handled may or may not have been stored.
pub async fn serve<S, K, E>(
    server: &Server,
    client: ClientContext,
    mut incoming: S,
    mut outgoing: K,
) -> Result<Option<CloseReason>, ServerError>
where
    S: Stream<Item = Result<Frame, E>> + Send + Unpin,
    K: Sink<Frame> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let Some(registration) = server.connect() else {
        return Ok(Some(CloseReason::ShuttingDown));
    };
    // Everything the engine logs for this connection carries who it is.
    let span =
        tracing::info_span!("connection", client = %client.client_id, protocol = "teleportal");
    let mut connection = Connection {
        client,
        registration,
        storing: HashSet::new(),
        relay_late: 0,
        streaming: std::sync::Mutex::new(None),
        parts: 0,
    };
    let ended = connection
        .run(&mut incoming, &mut outgoing)
        .instrument(span)
        .await;
    Stop::outcome(ended, server.metrics())
}

struct Connection {
    client: ClientContext,
    registration: Registration,
    /// Ids of the updates being stored, so a retransmission waits for its original and is
    /// then recognised as a duplicate.
    storing: HashSet<MessageId>,
    /// Updates being stored whose relay waits for their append: while there are any, later
    /// updates wait too, so relays keep the order the updates came in.
    relay_late: usize,
    /// The rest of an RPC answer, sent part by part (a download) after the frames before it.
    /// In a mutex only so the connection stays `Sync`; it is never contended.
    streaming: std::sync::Mutex<Option<BoxStream<'static, Frame>>>,
    /// RPC `stream` parts being handled: at most [`PARTS_IN_FLIGHT`], as each holds a chunk.
    parts: usize,
}
