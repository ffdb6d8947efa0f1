//! [`RedisRateLimiter`]: the same rules as [`MemoryRateLimiter`](super::MemoryRateLimiter),
//! with the counters in Redis so that several nodes share one budget.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{
    DebugFuture, RateLimitAlgorithm, RateLimitCheck, RateLimitRule, RateLimiter, push_key,
};
use crate::AuthError;

/// Takes one message from every rule's counter atomically and returns the longest wait in
/// milliseconds (0: allowed). The clock is the Redis server's (`TIME`), so nodes with skewed
/// clocks still share one budget. Each counter key expires once it would be back at its fresh
/// state, so idle keys cost nothing. The algorithms match the in-memory ones.
///
/// ARGV per rule, in KEYS order: kind (`bucket`, `fixed`, `sliding`), then capacity and
/// tokens per second, or limit and window in milliseconds.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local kind = ARGV[(i - 1) * 3 + 1]
  local a = tonumber(ARGV[(i - 1) * 3 + 2])
  local b = tonumber(ARGV[(i - 1) * 3 + 3])
  local w = 0
  if kind == 'bucket' then
    local s = redis.call('HMGET', key, 'tokens', 'at')
    local tokens = tonumber(s[1]) or a
    local at = tonumber(s[2]) or now
    tokens = math.min(a, tokens + math.max(0, now - at) / 1000 * b)
    if tokens >= 1 then
      tokens = tokens - 1
    elseif b > 0 then
      w = math.ceil((1 - tokens) / b * 1000)
    else
      w = 2147483647
    end
    redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
    if b > 0 then
      redis.call('PEXPIRE', key, math.ceil(a / b * 1000) + 1000)
    end
  else
    local s = redis.call('HMGET', key, 'start', 'count', 'previous')
    local start = tonumber(s[1]) or now
    local count = tonumber(s[2]) or 0
    local previous = tonumber(s[3]) or 0
    local elapsed = now - start
    if elapsed >= b then
      local passed = math.floor(elapsed / b)
      if passed == 1 then previous = count else previous = 0 end
      count = 0
      start = start + passed * b
      elapsed = now - start
    end
    local estimate = count
    if kind == 'sliding' then
      estimate = previous * (1 - elapsed / b) + count
    end
    if estimate + 1 <= a then
      count = count + 1
    else
      w = b - elapsed
    end
    redis.call('HSET', key, 'start', start, 'count', count, 'previous', previous)
    redis.call('PEXPIRE', key, 2 * b)
  end
  if w > wait then wait = w end
end
return wait
";

/// Rate limits shared by every node using the same Redis and key prefix.
///
/// One script call per message takes from every rule at once (atomic: two nodes never both
/// spend the last token), on the Redis server's clock. Counter keys are
/// `<prefix><rule index>:<key>` and expire when idle. The connection is a
/// [`ConnectionManager`], which reconnects by itself; cloning the limiter shares it.
///
/// As a [`RateLimiter`] (what [`RateLimited`](super::RateLimited) takes) it **fails open**: when
/// Redis cannot answer, the message is admitted and the error logged, so a Redis outage slows
/// nothing down but is not enforced either. Call [`check`](Self::check) to decide otherwise.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    rules: Vec<RateLimitRule>,
    script: redis::Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

fn backend(error: redis::RedisError) -> AuthError {
    AuthError::Backend {
        backend: "redis",
        source: Box::new(error),
    }
}

impl RedisRateLimiter {
    /// Connects to the Redis at `url` (`redis://127.0.0.1:6379`) and enforces `rules` on
    /// counters under `prefix`; nodes sharing a budget use the same prefix and rules.
    ///
    /// # Errors
    /// [`AuthError::Backend`] if the URL is invalid or Redis cannot be reached.
    ///
    /// # Cancel safety
    /// Cancelling only abandons the connection attempt.
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        rules: Vec<RateLimitRule>,
    ) -> Result<Self, AuthError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let connection = ConnectionManager::new(client).await.map_err(backend)?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
            rules,
            script: redis::Script::new(TAKE),
        })
    }

    /// Takes one message by `user` on `connection` for `document` from every rule: `Ok(Ok(()))`
    /// when allowed, `Ok(Err(wait))` with the `retryAfter` when a limit is exceeded.
    ///
    /// # Errors
    /// [`AuthError::Backend`] when Redis fails; whether to admit the message then (fail
    /// open) or refuse it is the caller's choice.
    ///
    /// # Cancel safety
    /// If cancelled after the script was sent, the message may have been counted.
    pub async fn check(
        &self,
        user: &str,
        connection: u64,
        document: &str,
    ) -> Result<Result<(), Duration>, AuthError> {
        let mut invocation = self.script.prepare_invoke();
        for (index, rule) in self.rules.iter().enumerate() {
            let mut key = format!("{}{index}:", self.prefix);
            push_key(&mut key, rule.key, user, connection, document);
            invocation.key(key);
            match rule.algorithm {
                RateLimitAlgorithm::TokenBucket {
                    capacity,
                    per_second,
                } => invocation.arg("bucket").arg(capacity).arg(per_second),
                RateLimitAlgorithm::FixedWindow { limit, window } => {
                    invocation.arg("fixed").arg(limit).arg(window_ms(window))
                }
                RateLimitAlgorithm::SlidingWindow { limit, window } => {
                    invocation.arg("sliding").arg(limit).arg(window_ms(window))
                }
            };
        }
        let mut connection = self.connection.clone();
        let wait: u64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(backend)?;
        Ok(if wait == 0 {
            Ok(())
        } else {
            Err(Duration::from_millis(wait))
        })
    }
}

/// A window in whole milliseconds, at least 1 (the script divides by it).
fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RateLimiter for RedisRateLimiter {
    fn take(&self, user: &str, connection: u64, document: &str) -> RateLimitCheck {
        let limiter = self.clone();
        let (user, document) = (user.to_owned(), document.to_owned());
        RateLimitCheck::Pending(DebugFuture(Box::pin(async move {
            limiter
                .check(&user, connection, &document)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "rate limit not enforced: Redis failed"
                    );
                    Ok(())
                })
        })))
    }
}
