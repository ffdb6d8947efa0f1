//! Rate limits per user, document, user and document, or connection (spec §7 `retryAfter`).
//!
//! A [`RateLimitRule`] says what to count ([`RateLimitKey`]) and how
//! ([`RateLimitAlgorithm`]); a [`MemoryRateLimiter`] holds the counters of a set of rules for
//! one process and decides each message in O(rules). [`RateLimited`] is the transport layer
//! that asks it for every incoming message and answers an exceeded limit with the spec's
//! NACK carrying `retryAfter`, ending the connection after too many violations.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use teleportal_auth::{MemoryRateLimiter, RateLimitAlgorithm, RateLimitKey, RateLimitRule};
//!
//! // Two messages a second per user, with bursts of two.
//! let limiter = MemoryRateLimiter::new(vec![RateLimitRule::new(
//!     RateLimitKey::User,
//!     RateLimitAlgorithm::TokenBucket { capacity: 2, per_second: 2.0 },
//! )]);
//! let now = Instant::now();
//! assert!(limiter.check("alice", 1, "doc", now).is_ok());
//! assert!(limiter.check("alice", 1, "doc", now).is_ok());
//! let retry = limiter.check("alice", 1, "doc", now).unwrap_err();
//! assert_eq!(retry, Duration::from_millis(500));
//! // Other users have their own budget.
//! assert!(limiter.check("bob", 2, "doc", now).is_ok());
//! ```

#[cfg(feature = "server")]
mod connection;
mod layer;
#[cfg(feature = "redis")]
mod redis;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[cfg(feature = "server")]
pub use connection::{HeldBack, RateLimitLayer};
pub use layer::{RateLimitExceeded, RateLimited};
#[cfg(feature = "redis")]
pub use redis::RedisRateLimiter;

/// A pending rate-limit decision, from a limiter that has to ask a remote store.
pub type RateLimitFuture = Pin<Box<dyn Future<Output = Result<(), Duration>> + Send>>;

/// A decision now, or one to wait for.
#[derive(Debug)]
pub enum RateLimitCheck {
    /// Decided: `Err` holds the `retryAfter`.
    Done(Result<(), Duration>),
    /// To be awaited (a remote store); resolves like `Done`.
    Pending(DebugFuture),
}

/// A [`RateLimitFuture`] that implements `Debug`.
pub struct DebugFuture(pub RateLimitFuture);

impl std::fmt::Debug for DebugFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimitFuture")
    }
}

/// Decides whether one more message may pass; what [`RateLimited`] asks per message.
///
/// # Contract
/// `take` counts the message against every rule and returns the longest wait of the rules it
/// exceeds. An in-memory limiter answers [`RateLimitCheck::Done`] without allocating; a remote
/// one answers [`RateLimitCheck::Pending`], during which the layer reads no further message.
pub trait RateLimiter: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one message by `user` on `connection` for `document`.
    fn take(&self, user: &str, connection: u64, document: &str) -> RateLimitCheck;
}

impl RateLimiter for MemoryRateLimiter {
    fn take(&self, user: &str, connection: u64, document: &str) -> RateLimitCheck {
        RateLimitCheck::Done(self.check(user, connection, document, Instant::now()))
    }
}

/// What a rule counts messages by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitKey {
    /// All connections of one user together.
    User,
    /// All messages to one document, whoever sends them.
    Document,
    /// One user on one document.
    UserDocument,
    /// One connection (transport).
    Connection,
}

/// How a rule counts.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RateLimitAlgorithm {
    /// Up to `capacity` messages at once, refilled at `per_second`: smooth, allows bursts.
    TokenBucket {
        /// The burst size.
        capacity: u32,
        /// Tokens added per second.
        per_second: f64,
    },
    /// At most `limit` messages in any `window`, estimated from the current and previous
    /// fixed windows weighted by overlap (the sliding window counter: O(1) memory per key,
    /// no burst at window edges).
    SlidingWindow {
        /// Messages allowed per window.
        limit: u32,
        /// The window length.
        window: Duration,
    },
    /// At most `limit` messages per `window`, counted in windows aligned to the key's first
    /// message; cheapest, but allows up to twice `limit` across a window edge.
    FixedWindow {
        /// Messages allowed per window.
        limit: u32,
        /// The window length.
        window: Duration,
    },
}

/// One limit: a key kind and an algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitRule {
    /// What messages are counted by.
    pub key: RateLimitKey,
    /// How they are counted.
    pub algorithm: RateLimitAlgorithm,
}

impl RateLimitRule {
    /// A rule counting by `key` with `algorithm`.
    pub fn new(key: RateLimitKey, algorithm: RateLimitAlgorithm) -> Self {
        Self { key, algorithm }
    }

    /// `n` messages per second per user, as a token bucket with a burst of `n`: what the
    /// `teleportal serve --rate-limit N` sets.
    pub fn per_user_per_second(n: u32) -> Self {
        Self::new(
            RateLimitKey::User,
            RateLimitAlgorithm::TokenBucket {
                capacity: n,
                per_second: f64::from(n),
            },
        )
    }
}

/// Appends the counter key of `kind` for this message to `key`.
fn push_key(key: &mut String, kind: RateLimitKey, user: &str, connection: u64, document: &str) {
    match kind {
        RateLimitKey::User => key.push_str(user),
        RateLimitKey::Document => key.push_str(document),
        RateLimitKey::UserDocument => {
            // Length-prefixed so that no user/document pair can spell another.
            key.push_str(&user.len().to_string());
            key.push(':');
            key.push_str(user);
            key.push_str(document);
        }
        RateLimitKey::Connection => key.push_str(&connection.to_string()),
    }
}

/// The counter of one key under one rule.
#[derive(Debug, Clone, Copy)]
enum Counter {
    Bucket {
        tokens: f64,
        at: Instant,
    },
    Window {
        start: Instant,
        count: u32,
        previous: u32,
    },
}

impl Counter {
    fn new(algorithm: &RateLimitAlgorithm, now: Instant) -> Self {
        match *algorithm {
            RateLimitAlgorithm::TokenBucket { capacity, .. } => Counter::Bucket {
                tokens: f64::from(capacity),
                at: now,
            },
            RateLimitAlgorithm::SlidingWindow { .. } | RateLimitAlgorithm::FixedWindow { .. } => {
                Counter::Window {
                    start: now,
                    count: 0,
                    previous: 0,
                }
            }
        }
    }

    /// Takes one message, or says how long until one would be allowed.
    fn take(&mut self, algorithm: &RateLimitAlgorithm, now: Instant) -> Result<(), Duration> {
        match (self, *algorithm) {
            (
                Counter::Bucket { tokens, at },
                RateLimitAlgorithm::TokenBucket {
                    capacity,
                    per_second,
                },
            ) => {
                let elapsed = now.saturating_duration_since(*at).as_secs_f64();
                *tokens = (*tokens + elapsed * per_second).min(f64::from(capacity));
                *at = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    Ok(())
                } else if per_second > 0.0 {
                    Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
                } else {
                    Err(Duration::MAX)
                }
            }
            (
                Counter::Window {
                    start,
                    count,
                    previous,
                },
                RateLimitAlgorithm::FixedWindow { limit, window }
                | RateLimitAlgorithm::SlidingWindow { limit, window },
            ) => {
                let sliding = matches!(algorithm, RateLimitAlgorithm::SlidingWindow { .. });
                let window = window.max(Duration::from_nanos(1));
                let mut elapsed = now.saturating_duration_since(*start);
                if elapsed >= window {
                    // Whole windows passed: the last one becomes "previous" only if it was
                    // the one right before the current.
                    let passed = elapsed.as_nanos() / window.as_nanos();
                    *previous = if passed == 1 { *count } else { 0 };
                    *count = 0;
                    // `passed` windows fit in `elapsed`, itself a Duration: no overflow.
                    let advance = window.as_nanos() * passed;
                    *start += Duration::from_nanos(u64::try_from(advance).unwrap_or(u64::MAX));
                    elapsed = now.saturating_duration_since(*start);
                }
                let weight = if sliding {
                    1.0 - elapsed.as_secs_f64() / window.as_secs_f64()
                } else {
                    0.0
                };
                let estimate = f64::from(*previous) * weight + f64::from(*count);
                if estimate + 1.0 <= f64::from(limit) {
                    *count += 1;
                    Ok(())
                } else {
                    // The window's end frees the current count; for the sliding estimate that
                    // is an upper bound, which is what a client should wait.
                    Err(window - elapsed)
                }
            }
            // A counter is made from its rule's algorithm and never changes kind.
            (counter, _) => {
                *counter = Counter::new(algorithm, now);
                counter.take(algorithm, now)
            }
        }
    }

    /// Whether the counter is back at its fresh state, so dropping it changes nothing.
    fn is_idle(&self, algorithm: &RateLimitAlgorithm, now: Instant) -> bool {
        match (*self, *algorithm) {
            (
                Counter::Bucket { tokens, at },
                RateLimitAlgorithm::TokenBucket {
                    capacity,
                    per_second,
                },
            ) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                tokens + elapsed * per_second >= f64::from(capacity)
            }
            (
                Counter::Window { start, .. },
                RateLimitAlgorithm::FixedWindow { window, .. }
                | RateLimitAlgorithm::SlidingWindow { window, .. },
            ) => now.saturating_duration_since(start) >= window.saturating_mul(2),
            _ => true,
        }
    }
}

/// Counters of one rule.
#[derive(Debug)]
struct RuleState {
    rule: RateLimitRule,
    counters: Mutex<HashMap<String, Counter>>,
}

/// Above this many keys a rule's map is swept of idle counters before growing further.
const SWEEP_AT: usize = 4096;

/// In-process counters for a set of rules, shared by every connection (`Arc`) of a node.
///
/// Each rule keeps one counter per key in a map behind its own mutex, held only for one
/// lookup and update. Counters that are back at their fresh state are swept when a map
/// grows past a few thousand keys, so finished connections and idle users do not pile up.
/// A message refused by one rule still counts against the rules checked before it.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    rules: Vec<RuleState>,
}

impl MemoryRateLimiter {
    /// A limiter enforcing every rule of `rules`.
    pub fn new(rules: Vec<RateLimitRule>) -> Self {
        Self {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    counters: Mutex::new(HashMap::new()),
                })
                .collect(),
        }
    }

    /// The rules this limiter enforces.
    pub fn rules(&self) -> impl Iterator<Item = &RateLimitRule> {
        self.rules.iter().map(|state| &state.rule)
    }

    /// Takes one message by `user` on `connection` for `document` at `now` from every rule,
    /// or returns how long to wait (the longest wait of the rules that refused).
    ///
    /// # Errors
    /// The `retryAfter` to send when a rule's limit is exceeded.
    pub fn check(
        &self,
        user: &str,
        connection: u64,
        document: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut wait: Option<Duration> = None;
        let mut key = String::new();
        for state in &self.rules {
            key.clear();
            push_key(&mut key, state.rule.key, user, connection, document);
            let algorithm = &state.rule.algorithm;
            // The maps stay consistent after a panic elsewhere: each update is one write.
            let mut counters = state
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if counters.len() >= SWEEP_AT && !counters.contains_key(key.as_str()) {
                counters.retain(|_, counter| !counter.is_idle(algorithm, now));
            }
            let result = match counters.get_mut(key.as_str()) {
                Some(counter) => counter.take(algorithm, now),
                None => {
                    let mut counter = Counter::new(algorithm, now);
                    let result = counter.take(algorithm, now);
                    counters.insert(key.clone(), counter);
                    result
                }
            };
            if let Err(after) = result {
                wait = Some(wait.map_or(after, |w| w.max(after)));
            }
        }
        wait.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(key: RateLimitKey, algorithm: RateLimitAlgorithm) -> MemoryRateLimiter {
        MemoryRateLimiter::new(vec![RateLimitRule::new(key, algorithm)])
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn token_bucket_refills_over_time() {
        let l = limiter(
            RateLimitKey::User,
            RateLimitAlgorithm::TokenBucket {
                capacity: 1,
                per_second: 10.0,
            },
        );
        let t = Instant::now();
        assert!(l.check("u", 0, "d", t).is_ok());
        assert_eq!(l.check("u", 0, "d", t), Err(Duration::from_millis(100)));
        assert!(l.check("u", 0, "d", t + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn fixed_window_resets_at_the_window_end() {
        let l = limiter(
            RateLimitKey::Connection,
            RateLimitAlgorithm::FixedWindow {
                limit: 2,
                window: SECOND,
            },
        );
        let t = Instant::now();
        assert!(l.check("u", 7, "d", t).is_ok());
        assert!(l.check("u", 7, "d", t).is_ok());
        assert_eq!(
            l.check("u", 7, "d", t + Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );
        assert!(l.check("u", 8, "d", t).is_ok(), "another connection");
        assert!(l.check("u", 7, "d", t + SECOND).is_ok());
    }

    #[test]
    fn sliding_window_remembers_the_previous_window() {
        let l = limiter(
            RateLimitKey::Document,
            RateLimitAlgorithm::SlidingWindow {
                limit: 4,
                window: SECOND,
            },
        );
        let t = Instant::now();
        for _ in 0..4 {
            assert!(l.check("u", 0, "d", t).is_ok());
        }
        // A quarter into the next window, 3/4 of the previous four still count: 3 + 0 < 4.
        let later = t + Duration::from_millis(1250);
        assert!(l.check("v", 1, "d", later).is_ok());
        assert!(l.check("v", 1, "d", later).is_err(), "3 + 1 + 1 > 4");
        // A fixed window would have allowed all four again.
        assert!(l.check("v", 1, "other", later).is_ok());
    }

    #[test]
    fn user_document_keys_do_not_collide() {
        let l = limiter(
            RateLimitKey::UserDocument,
            RateLimitAlgorithm::FixedWindow {
                limit: 1,
                window: SECOND,
            },
        );
        let t = Instant::now();
        assert!(l.check("ab", 0, "c", t).is_ok());
        assert!(l.check("a", 0, "bc", t).is_ok());
        assert!(l.check("a", 0, "bc", t).is_err());
    }

    #[test]
    fn longest_wait_of_all_refusing_rules_is_returned() {
        let l = MemoryRateLimiter::new(vec![
            RateLimitRule::new(
                RateLimitKey::User,
                RateLimitAlgorithm::FixedWindow {
                    limit: 1,
                    window: SECOND,
                },
            ),
            RateLimitRule::new(
                RateLimitKey::Document,
                RateLimitAlgorithm::FixedWindow {
                    limit: 1,
                    window: 2 * SECOND,
                },
            ),
        ]);
        let t = Instant::now();
        assert!(l.check("u", 0, "d", t).is_ok());
        assert_eq!(l.check("u", 0, "d", t), Err(2 * SECOND));
    }

    #[test]
    fn idle_counters_are_swept() {
        let l = limiter(
            RateLimitKey::Connection,
            RateLimitAlgorithm::FixedWindow {
                limit: 5,
                window: SECOND,
            },
        );
        let t = Instant::now();
        for connection in 0..SWEEP_AT as u64 {
            l.check("u", connection, "d", t).unwrap();
        }
        l.check("u", u64::MAX, "d", t + 3 * SECOND).unwrap();
        let len = l.rules[0].counters.lock().unwrap().len();
        assert_eq!(len, 1);
    }
}
