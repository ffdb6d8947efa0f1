//! The adapter's own failures, mapped into [`PubSubError::Backend`] with backend `"redis"`.

use teleportal_pubsub::PubSubError;

/// What went wrong talking to Redis. Private: callers see it as the `source` of
/// [`PubSubError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    #[error("invalid Redis URL")]
    Url(#[source] redis::RedisError),
    #[error("connecting to Redis failed")]
    Connect(#[source] redis::RedisError),
    #[error("PUBLISH on channel {channel:?} failed")]
    Publish {
        channel: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("SUBSCRIBE to channel {channel:?} failed")]
    Subscribe {
        channel: String,
        #[source]
        source: redis::RedisError,
    },
}

impl From<RedisError> for PubSubError {
    fn from(error: RedisError) -> Self {
        PubSubError::Backend {
            backend: "redis",
            source: Box::new(error),
        }
    }
}
