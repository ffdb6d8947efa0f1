//! `RedisRateLimiter` against a real Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`).
//! Without one the tests skip with the reason, unless `CI` is set: then they fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use teleportal_auth::{RateLimitAlgorithm, RateLimitKey, RateLimitRule, RedisRateLimiter};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A prefix no other run or test shares.
fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("teleportal-test:{test}:{}:{nanos}:", std::process::id())
}

/// The limiter, or `None` (after saying why) when Redis is absent and `CI` is unset.
async fn limiter(prefix: &str, rules: Vec<RateLimitRule>) -> Option<RedisRateLimiter> {
    match RedisRateLimiter::connect(&url(), prefix, rules).await {
        Ok(limiter) => Some(limiter),
        Err(error) if std::env::var_os("CI").is_none() => {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            eprintln!("skipping: no Redis at {}: {error}: {cause:?}", url());
            None
        }
        Err(error) => panic!("CI is set but Redis at {} is unusable: {error}", url()),
    }
}

fn bucket(capacity: u32, per_second: f64) -> RateLimitRule {
    RateLimitRule::new(
        RateLimitKey::User,
        RateLimitAlgorithm::TokenBucket {
            capacity,
            per_second,
        },
    )
}

#[tokio::test]
async fn two_nodes_share_one_budget() {
    let prefix = prefix("shared");
    let Some(node_a) = limiter(&prefix, vec![bucket(3, 1.0)]).await else {
        return;
    };
    let Some(node_b) = limiter(&prefix, vec![bucket(3, 1.0)]).await else {
        return;
    };
    assert_eq!(node_a.check("alice", 1, "d").await.unwrap(), Ok(()));
    assert_eq!(node_b.check("alice", 2, "d").await.unwrap(), Ok(()));
    assert_eq!(node_a.check("alice", 1, "d").await.unwrap(), Ok(()));
    let wait = node_b.check("alice", 2, "d").await.unwrap().unwrap_err();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    // Another user has a budget of its own.
    assert_eq!(node_b.check("bob", 3, "d").await.unwrap(), Ok(()));
}

#[tokio::test]
async fn fixed_window_refuses_past_the_limit_until_the_window_ends() {
    let rule = RateLimitRule::new(
        RateLimitKey::Document,
        RateLimitAlgorithm::FixedWindow {
            limit: 2,
            window: Duration::from_millis(300),
        },
    );
    let Some(limiter) = limiter(&prefix("fixed"), vec![rule]).await else {
        return;
    };
    assert_eq!(limiter.check("u", 1, "doc").await.unwrap(), Ok(()));
    assert_eq!(limiter.check("v", 2, "doc").await.unwrap(), Ok(()));
    let wait = limiter.check("w", 3, "doc").await.unwrap().unwrap_err();
    assert!(wait <= Duration::from_millis(300), "{wait:?}");
    assert_eq!(limiter.check("w", 3, "other").await.unwrap(), Ok(()));
    tokio::time::sleep(Duration::from_millis(310)).await;
    assert_eq!(limiter.check("w", 3, "doc").await.unwrap(), Ok(()));
}

#[tokio::test]
async fn sliding_window_counts_the_previous_window() {
    let rule = RateLimitRule::new(
        RateLimitKey::UserDocument,
        RateLimitAlgorithm::SlidingWindow {
            limit: 2,
            window: Duration::from_millis(400),
        },
    );
    let Some(limiter) = limiter(&prefix("sliding"), vec![rule]).await else {
        return;
    };
    assert_eq!(limiter.check("u", 1, "doc").await.unwrap(), Ok(()));
    assert_eq!(limiter.check("u", 1, "doc").await.unwrap(), Ok(()));
    assert!(limiter.check("u", 1, "doc").await.unwrap().is_err());
    // Just into the next window most of the previous two still count: 2 × ~0.9 + 0 > 1.
    tokio::time::sleep(Duration::from_millis(430)).await;
    assert!(limiter.check("u", 1, "doc").await.unwrap().is_err());
}

#[tokio::test]
async fn unreachable_redis_is_a_backend_error() {
    let err = RedisRateLimiter::connect("redis://127.0.0.1:1", "p:", vec![bucket(1, 1.0)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        teleportal_auth::AuthError::Backend {
            backend: "redis",
            ..
        }
    ));
}
