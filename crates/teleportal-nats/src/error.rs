//! The adapter's own failures, mapped into [`PubSubError::Backend`] with backend `"nats"`.

use teleportal_pubsub::{BoxError, PubSubError};

/// What went wrong talking to NATS. Private: callers see it as the `source` of
/// [`PubSubError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum NatsError {
    #[error("invalid subject prefix {prefix:?}: it must be a literal NATS subject")]
    Prefix { prefix: String },
    #[error("connecting to NATS failed")]
    Connect(#[source] BoxError),
    #[error("creating the JetStream stream {stream:?} failed")]
    Stream {
        stream: String,
        #[source]
        source: BoxError,
    },
    #[error("publishing on {subject:?} failed")]
    Publish {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("subscribing to {subject:?} failed")]
    Subscribe {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("the JetStream consumer {consumer:?} stopped delivering")]
    ConsumerEnded { consumer: String },
}

impl NatsError {
    pub(crate) fn boxed(source: impl std::error::Error + Send + Sync + 'static) -> BoxError {
        Box::new(source)
    }
}

impl From<NatsError> for PubSubError {
    fn from(error: NatsError) -> Self {
        PubSubError::Backend {
            backend: "nats",
            source: Box::new(error),
        }
    }
}
