//! `RedisPubSub` against real Redis servers: the machine's (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`) for the conformance suite, and a `redis-server` each restart test
//! starts, kills and starts again on a free port. Without them the tests skip with the
//! reason, unless `CI` is set: then they fail.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use teleportal_pubsub::conformance::{run_pubsub_suite, unique_topic};
use teleportal_pubsub::{PubSub, PubSubError, PubSubFrame, Subscription};
use teleportal_redis::{RedisPubSub, RedisPubSubConfig};
use tokio::process::{Child, Command};

const REDIS_SERVER: &str = "/usr/bin/redis-server";

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A handle on the machine's Redis, or `None` (after saying why) when it is absent and `CI`
/// is unset.
async fn machine_redis() -> Option<RedisPubSub> {
    match RedisPubSub::connect(&url()).await {
        Ok(bus) => Some(bus),
        Err(error) if !under_ci() => {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            eprintln!("skipping: no Redis at {}: {error}: {cause:?}", url());
            None
        }
        Err(error) => panic!("CI is set but Redis at {} is unusable: {error}", url()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_conforms() {
    if machine_redis().await.is_none() {
        return;
    }
    run_pubsub_suite(|| async {
        RedisPubSub::connect(&url())
            .await
            .expect("Redis answered a moment ago")
    })
    .await;
}

/// A `redis-server` this test owns, on a port of its own; killed when dropped.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    /// Starts one on a free port, or `None` (after saying why) when `redis-server` is missing
    /// and `CI` is unset.
    async fn start() -> Option<Self> {
        if !std::path::Path::new(REDIS_SERVER).exists() {
            assert!(!under_ci(), "CI is set but {REDIS_SERVER} is missing");
            eprintln!("skipping: {REDIS_SERVER} is missing");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Some(Self::start_on(port).await)
    }

    async fn start_on(port: u16) -> Self {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let server = OwnRedis { port, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not accept connections within 5 s");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    async fn kill(mut self) -> u16 {
        self.child.kill().await.expect("redis-server is killed");
        self.port
    }
}

fn frame(message: &'static [u8]) -> PubSubFrame {
    PubSubFrame {
        source_id: "other-node".into(),
        message: Bytes::from_static(message),
    }
}

async fn next(sub: &mut Subscription) -> Result<PubSubFrame, PubSubError> {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("something arrives within 20 s")
        .expect("the subscription does not end")
}

/// Publishes until Redis takes the frame: right after a restart the publisher's own
/// connection may still be coming back.
async fn publish_when_back(bus: &RedisPubSub, topic: &str, frame: PubSubFrame) {
    for _ in 0..100 {
        if bus.publish(topic, frame.clone()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publishing did not succeed after the restart");
}

fn config(url: String) -> RedisPubSubConfig {
    RedisPubSubConfig::new(url).reconnect_interval(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_redis_restart() {
    let Some(redis) = OwnRedis::start().await else {
        return;
    };
    let node = RedisPubSub::connect_with(config(redis.url()))
        .await
        .unwrap();
    let other = RedisPubSub::connect_with(config(redis.url()))
        .await
        .unwrap();
    let (doc_a, doc_b) = (unique_topic("document/a"), unique_topic("document/b"));
    let mut at_a = node.subscribe(&doc_a).await.unwrap();
    let mut at_a_too = node.subscribe(&doc_a).await.unwrap();
    let mut at_b = node.subscribe(&doc_b).await.unwrap();
    other.publish(&doc_a, frame(b"before")).await.unwrap();
    assert_eq!(next(&mut at_a).await.unwrap(), frame(b"before"));
    assert_eq!(next(&mut at_a_too).await.unwrap(), frame(b"before"));

    let port = redis.kill().await;
    // Down: publishing fails, and the streams wait rather than end.
    assert!(matches!(
        other.publish(&doc_a, frame(b"lost")).await,
        Err(PubSubError::Backend {
            backend: "redis",
            ..
        })
    ));
    let waiting = tokio::time::timeout(Duration::from_millis(300), at_b.next()).await;
    assert!(
        waiting.is_err(),
        "the stream yielded {waiting:?} while Redis was down"
    );

    let _redis = OwnRedis::start_on(port).await;
    // Each stream is told that frames may have been lost, once its topic is subscribed again…
    for sub in [&mut at_a, &mut at_a_too, &mut at_b] {
        assert!(
            matches!(next(sub).await, Err(PubSubError::Lagged { missed: 0 })),
            "no Lagged signal after the restart"
        );
    }
    // …and then receives what is published after the restart, on the old streams.
    publish_when_back(&other, &doc_a, frame(b"after")).await;
    publish_when_back(&other, &doc_b, frame(b"after b")).await;
    assert_eq!(next(&mut at_a).await.unwrap(), frame(b"after"));
    assert_eq!(next(&mut at_a_too).await.unwrap(), frame(b"after"));
    assert_eq!(next(&mut at_b).await.unwrap(), frame(b"after b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_long_outage() {
    // Longer than the connection manager's own retries (about 5 s with a 1 s cap): the
    // adapter's pings must keep reconnecting.
    let Some(redis) = OwnRedis::start().await else {
        return;
    };
    let node = RedisPubSub::connect_with(config(redis.url()))
        .await
        .unwrap();
    let topic = unique_topic("document/long");
    let mut sub = node.subscribe(&topic).await.unwrap();
    let port = redis.kill().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let _redis = OwnRedis::start_on(port).await;
    assert!(matches!(
        next(&mut sub).await,
        Err(PubSubError::Lagged { missed: 0 })
    ));
    publish_when_back(&node, &topic, frame(b"back")).await;
    assert_eq!(next(&mut sub).await.unwrap(), frame(b"back"));
}

#[tokio::test]
async fn a_subscription_made_after_a_restart_works() {
    let Some(redis) = OwnRedis::start().await else {
        return;
    };
    let node = RedisPubSub::connect_with(config(redis.url()))
        .await
        .unwrap();
    let port = redis.kill().await;
    let _redis = OwnRedis::start_on(port).await;
    let topic = unique_topic("document/new");
    let mut sub = loop {
        match node.subscribe(&topic).await {
            Ok(sub) => break sub,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    publish_when_back(&node, &topic, frame(b"fresh")).await;
    assert_eq!(next(&mut sub).await.unwrap(), frame(b"fresh"));
}

#[tokio::test]
async fn a_message_that_is_not_a_frame_is_a_decode_error() {
    let Some(redis) = OwnRedis::start().await else {
        return;
    };
    let node = RedisPubSub::connect(&redis.url()).await.unwrap();
    let topic = unique_topic("document/garbage");
    let mut sub = node.subscribe(&topic).await.unwrap();
    // A source id length running past the end: not a §17.2 frame.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(node.channel(&topic))
        .arg(&[0x7f_u8, b'x'][..])
        .query_async::<i64>(&mut raw)
        .await
        .unwrap();
    node.publish(&topic, frame(b"fine")).await.unwrap();
    assert!(matches!(next(&mut sub).await, Err(PubSubError::Decode(_))));
    assert_eq!(next(&mut sub).await.unwrap(), frame(b"fine"));
}

#[tokio::test]
async fn an_unreachable_redis_is_a_backend_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let error = RedisPubSub::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        PubSubError::Backend {
            backend: "redis",
            ..
        }
    ));
}
