//! `--pubsub URL`: which bus a node joins, each behind its cargo feature.

use std::fmt;

use teleportal_pubsub::NodePubSub;

use crate::{Failure, context};

/// Which bus `--pubsub URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PubSubUrl {
    /// `redis://…` (or `rediss://…`).
    Redis(String),
    /// `nats://…`: core NATS.
    Nats(String),
    /// `nats+jetstream://…`: NATS with a JetStream stream, so a restarted node replays what it
    /// missed. Holds the `nats://` URL the client connects to.
    JetStream(String),
}

impl PubSubUrl {
    /// Reads a `--pubsub` value.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(PubSubUrl::Redis(url.to_owned()))
        } else if let Some(rest) = url.strip_prefix("nats+jetstream://") {
            Ok(PubSubUrl::JetStream(format!("nats://{rest}")))
        } else if url.starts_with("nats://") {
            Ok(PubSubUrl::Nats(url.to_owned()))
        } else {
            Err(format!(
                "{url:?}: expected redis://…, nats://… or nats+jetstream://…"
            ))
        }
    }
}

impl fmt::Display for PubSubUrl {
    /// The URL without its password, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, url) = match self {
            PubSubUrl::Redis(url) => ("", url.as_str()),
            PubSubUrl::Nats(url) => ("", url.as_str()),
            PubSubUrl::JetStream(url) => ("jetstream on ", url.as_str()),
        };
        write!(f, "{scheme}{}", super::redact(url))
    }
}

/// Connects the bus and wraps it with this node's id.
pub(super) async fn connect(url: &PubSubUrl, node_id: &str) -> Result<NodePubSub, Failure> {
    let failed = || context(format!("cannot connect to the bus at {url}"));
    match url {
        #[cfg(feature = "redis")]
        PubSubUrl::Redis(address) => {
            let bus = teleportal_redis::RedisPubSub::connect(address)
                .await
                .map_err(failed())?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[cfg(feature = "nats")]
        PubSubUrl::Nats(address) => {
            let bus = teleportal_nats::NatsPubSub::connect(address)
                .await
                .map_err(failed())?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[cfg(feature = "nats")]
        PubSubUrl::JetStream(address) => {
            let bus = teleportal_nats::NatsPubSub::jetstream(address, node_id)
                .await
                .map_err(failed())?;
            Ok(NodePubSub::new(node_id, bus))
        }
        #[allow(unreachable_patterns)] // every bus built in
        other => {
            let _ = (node_id, failed);
            Err(super::missing_feature(match other {
                PubSubUrl::Redis(_) => "redis",
                PubSubUrl::Nats(_) | PubSubUrl::JetStream(_) => "nats",
            }))
        }
    }
}

/// A node id for this process when `--node-id` is not given: host name and process id.
pub(super) fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_bus() {
        assert_eq!(
            PubSubUrl::parse("redis://127.0.0.1:6379").unwrap(),
            PubSubUrl::Redis("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            PubSubUrl::parse("nats+jetstream://127.0.0.1:4222").unwrap(),
            PubSubUrl::JetStream("nats://127.0.0.1:4222".into())
        );
        assert!(
            PubSubUrl::parse("kafka://x")
                .unwrap_err()
                .contains("expected")
        );
    }

    #[test]
    fn logs_never_show_the_password() {
        let url = PubSubUrl::parse("redis://:hunter2@cache:6379").unwrap();
        assert_eq!(url.to_string(), "redis://:***@cache:6379");
    }
}
