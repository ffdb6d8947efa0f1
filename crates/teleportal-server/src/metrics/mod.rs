//! Prometheus metrics of the engine, registered in the application's own
//! [`Registry`](prometheus_client::registry::Registry) (no global one), with the names the
//! TypeScript reference uses where it has them, so its dashboards carry over.
//!
//! Cardinality is bounded: no label holds a document, user or client id. Counting costs an
//! atomic add per event: the labelled counters are created once, up front. The reference's
//! `teleportal_messages_total_all` is `sum(teleportal_messages_total)` here: OpenMetrics
//! wants every counter's name to end in `_total`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use teleportal_core::{Body, YMessage};

use crate::CloseReason;

mod storage;

pub(crate) use storage::{MeteredStorage, StorageMetrics};

/// The `type` label of `teleportal_messages_total`; the discriminant indexes
/// [`MessageType::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MessageType {
    Doc = 0,
    Awareness,
    Ack,
    Rpc,
    Presence,
    Ping,
    Other,
}

impl MessageType {
    const ALL: [MessageType; 7] = [
        MessageType::Doc,
        MessageType::Awareness,
        MessageType::Ack,
        MessageType::Rpc,
        MessageType::Presence,
        MessageType::Ping,
        MessageType::Other,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MessageType::Doc => "doc",
            MessageType::Awareness => "awareness",
            MessageType::Ack => "ack",
            MessageType::Rpc => "rpc",
            MessageType::Presence => "presence",
            MessageType::Ping => "ping",
            MessageType::Other => "other",
        }
    }

    /// A Teleportal message's type, as the reference labels it.
    pub(crate) fn of_body(body: &Body) -> Self {
        match body {
            Body::Doc(_) => MessageType::Doc,
            Body::Awareness(_) => MessageType::Awareness,
            Body::Ack(_) => MessageType::Ack,
            Body::Rpc(_) => MessageType::Rpc,
            Body::Presence(_) => MessageType::Presence,
            #[allow(unreachable_patterns)] // `Body` may grow
            _ => MessageType::Other,
        }
    }

    /// A y-websocket message's type: sync messages count as `doc`.
    pub(crate) fn of_y(message: &YMessage) -> Self {
        match message {
            YMessage::Sync(_) => MessageType::Doc,
            YMessage::Awareness(_) | YMessage::QueryAwareness => MessageType::Awareness,
            _ => MessageType::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why a connection ended, as `teleportal_connections_closed_total{reason}` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended<'a> {
    /// The client ended the stream.
    Client,
    /// The server closed it with this reason.
    Closed(&'a CloseReason),
    /// The transport failed (a reset, a protocol error) or refused a frame.
    Failed,
}

impl Ended<'_> {
    const REASONS: [&'static str; 9] = [
        "client",
        "transport_error",
        "shutdown",
        "send_queue_full",
        "message_too_large",
        "permission_denied",
        "encryption_mismatch",
        "failed",
        "refused",
    ];

    fn label(self) -> &'static str {
        match self {
            Ended::Client => "client",
            Ended::Failed => "transport_error",
            Ended::Closed(reason) => match reason {
                CloseReason::ShuttingDown => "shutdown",
                CloseReason::SendQueueFull => "send_queue_full",
                CloseReason::MessageTooLarge { .. } => "message_too_large",
                CloseReason::PermissionDenied { .. } => "permission_denied",
                CloseReason::EncryptionMismatch => "encryption_mismatch",
                CloseReason::Failed(_) => "failed",
                CloseReason::Other { .. } => "refused",
                #[allow(unreachable_patterns)] // `CloseReason` may grow
                _ => "refused",
            },
        }
    }
}

/// The engine's metrics. Every [`Server`](crate::Server) has them; only those built with
/// [`ServerBuilder::metrics`](crate::ServerBuilder::metrics) expose them.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    clients_active: Gauge,
    sessions_active: Gauge,
    documents_opened: Counter,
    messages: [Counter; MessageType::ALL.len()],
    closed: Family<ReasonLabel, Counter>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let closed = Family::<ReasonLabel, Counter>::default();
        for reason in Ended::REASONS {
            // Created up front, so each reason is a series from the first scrape on.
            let _ = closed.get_or_create(&ReasonLabel { reason });
        }
        ServerMetrics {
            clients_active: Gauge::default(),
            sessions_active: Gauge::default(),
            documents_opened: Counter::default(),
            messages: Default::default(),
            closed,
        }
    }
}

impl ServerMetrics {
    /// New metrics, the engine's and its storage's, registered in `registry` under the
    /// `teleportal_` prefix.
    pub(crate) fn registered(registry: &mut Registry) -> (Self, StorageMetrics) {
        let metrics = ServerMetrics::default();
        let registry = registry.sub_registry_with_prefix("teleportal");
        let storage = StorageMetrics::registered(registry);
        registry.register(
            "clients_active",
            "Connections being served, both protocols",
            metrics.clients_active.clone(),
        );
        registry.register(
            "sessions_active",
            "Documents with a session in memory",
            metrics.sessions_active.clone(),
        );
        registry.register(
            "documents_opened",
            "Document sessions opened (loaded into memory)",
            metrics.documents_opened.clone(),
        );
        let by_type = Family::<TypeLabel, Counter>::default();
        let mut messages: [Counter; MessageType::ALL.len()] = Default::default();
        for (slot, kind) in messages.iter_mut().zip(MessageType::ALL) {
            *slot = by_type
                .get_or_create(&TypeLabel {
                    r#type: kind.as_str(),
                })
                .clone();
        }
        registry.register(
            "messages",
            "Messages received from clients, by type",
            by_type,
        );
        registry.register(
            "connections_closed",
            "Connections ended, by why (client: the client left; refused: a layer or limit ended it)",
            metrics.closed.clone(),
        );
        let metrics = ServerMetrics {
            messages,
            ..metrics
        };
        (metrics, storage)
    }

    pub(crate) fn client_connected(&self) {
        self.clients_active.inc();
    }

    pub(crate) fn client_disconnected(&self) {
        self.clients_active.dec();
    }

    pub(crate) fn connection_ended(&self, ended: Ended<'_>) {
        self.closed
            .get_or_create(&ReasonLabel {
                reason: ended.label(),
            })
            .inc();
    }

    pub(crate) fn document_opened(&self) {
        self.documents_opened.inc();
    }

    pub(crate) fn sessions(&self, open: usize) {
        self.sessions_active
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Messages received so far, by type label.
    pub(crate) fn message_counts(&self) -> Vec<(&'static str, u64)> {
        MessageType::ALL
            .iter()
            .zip(&self.messages)
            .map(|(kind, counter)| (kind.as_str(), counter.get()))
            .collect()
    }

    pub(crate) fn message(&self, kind: MessageType) {
        self.messages[kind as usize].inc();
    }
}
