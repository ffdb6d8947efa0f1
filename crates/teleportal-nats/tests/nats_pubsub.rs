//! `NatsPubSub` against real NATS servers: the machine's (`NATS_URL`, default
//! `nats://127.0.0.1:4222`, with JetStream) for the conformance suite in both modes and the
//! replay test, and a `nats-server` the restart test starts, kills and starts again on a free
//! port. Without them the tests skip with the reason, unless `CI` is set: then they fail.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use teleportal_nats::{JetStreamConfig, NatsPubSub, NatsPubSubConfig};
use teleportal_pubsub::conformance::{
    PubSubCapabilities, run_pubsub_suite, run_pubsub_suite_with, unique_topic,
};
use teleportal_pubsub::{PubSub, PubSubError, PubSubFrame, Subscription};
use tokio::process::{Child, Command};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

fn url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A handle on the machine's NATS, or `None` (after saying why) when it is absent and `CI`
/// is unset.
async fn machine_nats() -> Option<NatsPubSub> {
    match NatsPubSub::connect(&url()).await {
        Ok(bus) => Some(bus),
        Err(error) if !under_ci() => {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            eprintln!("skipping: no NATS at {}: {error}: {cause:?}", url());
            None
        }
        Err(error) => panic!("CI is set but NATS at {} is unusable: {error}", url()),
    }
}

/// A name no other run or test shares, usable as a subject token and a stream name.
fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{test}_{}_{nanos}", std::process::id())
}

/// JetStream settings of one test run: a stream and subject prefix of its own, in memory.
struct JetStreamRun {
    prefix: String,
    stream: String,
}

impl JetStreamRun {
    fn new(test: &str) -> Self {
        let name = unique(test);
        JetStreamRun {
            prefix: format!("tptest.{name}"),
            stream: format!("TPTEST_{name}"),
        }
    }

    fn config(&self, node_id: &str) -> NatsPubSubConfig {
        NatsPubSubConfig::new(url())
            .subject_prefix(&self.prefix)
            .jetstream(
                JetStreamConfig::new(node_id)
                    .stream_name(&self.stream)
                    .memory_storage(true)
                    .inactive_threshold(Duration::from_secs(120)),
            )
    }

    async fn node(&self, node_id: &str) -> NatsPubSub {
        NatsPubSub::connect_with(self.config(node_id))
            .await
            .expect("NATS with JetStream answers")
    }

    /// Runs `test`, then deletes the stream (and with it the consumers) whatever happened.
    async fn run(&self, test: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(test).catch_unwind().await;
        let client = async_nats::connect(url()).await.expect("NATS answers");
        let deleted = async_nats::jetstream::new(client)
            .delete_stream(&self.stream)
            .await;
        if let Err(payload) = outcome {
            std::panic::resume_unwind(payload);
        }
        deleted.expect("the test's stream is deleted");
    }
}

fn frame(message: impl Into<Bytes>) -> PubSubFrame {
    PubSubFrame {
        source_id: "other-node".into(),
        message: message.into(),
    }
}

async fn next(sub: &mut Subscription) -> Result<PubSubFrame, PubSubError> {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("something arrives within 20 s")
        .expect("the subscription does not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_conforms() {
    if machine_nats().await.is_none() {
        return;
    }
    run_pubsub_suite(|| async {
        NatsPubSub::connect(&url())
            .await
            .expect("NATS answered a moment ago")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_conforms() {
    if machine_nats().await.is_none() {
        return;
    }
    let run = JetStreamRun::new("conformance");
    let caps = PubSubCapabilities::new().with_replays_missed_frames(true);
    run.run(async {
        // Every handle is a node of its own: handles sharing a node id would share its
        // consumers and split the frames.
        let nodes = std::sync::atomic::AtomicU32::new(0);
        run_pubsub_suite_with(caps, || {
            let n = nodes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let run = &run;
            async move { run.node(&format!("node-{n}")).await }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_replays_what_it_missed_in_order() {
    if machine_nats().await.is_none() {
        return;
    }
    let run = JetStreamRun::new("replay");
    run.run(async {
        let topic = unique_topic("document/replay");
        let other = run.node("node-other").await;
        let node = run.node("node-a").await;
        let mut sub = node.subscribe(&topic).await.unwrap();
        other.publish(&topic, frame("before")).await.unwrap();
        assert_eq!(next(&mut sub).await.unwrap(), frame("before"));

        // The node goes away: its subscription and connection are dropped.
        drop(sub);
        drop(node);
        for n in 0..20u8 {
            other.publish(&topic, frame(vec![n])).await.unwrap();
        }

        // The node comes back with the same id: it gets what it missed, in order, then
        // what is published from now on.
        let node = run.node("node-a").await;
        let mut sub = node.subscribe(&topic).await.unwrap();
        other.publish(&topic, frame("after")).await.unwrap();
        for n in 0..20u8 {
            assert_eq!(
                next(&mut sub).await.unwrap(),
                frame(vec![n]),
                "missed frame {n}"
            );
        }
        assert_eq!(next(&mut sub).await.unwrap(), frame("after"));

        // A node that was never subscribed starts with what comes next, not the history.
        let newcomer = run.node("node-new").await;
        let mut fresh = newcomer.subscribe(&topic).await.unwrap();
        other.publish(&topic, frame("latest")).await.unwrap();
        assert_eq!(next(&mut fresh).await.unwrap(), frame("latest"));
    })
    .await;
}

#[tokio::test]
async fn an_invalid_subject_prefix_is_rejected() {
    let config = NatsPubSubConfig::new(url()).subject_prefix("bad prefix.*");
    let error = NatsPubSub::connect_with(config).await.unwrap_err();
    assert!(matches!(
        error,
        PubSubError::Backend {
            backend: "nats",
            ..
        }
    ));
}

#[tokio::test]
async fn a_message_that_is_not_a_frame_is_a_decode_error() {
    let Some(bus) = machine_nats().await else {
        return;
    };
    let topic = unique_topic("document/garbage");
    let mut sub = bus.subscribe(&topic).await.unwrap();
    // A source id length running past the end: not a §17.2 frame.
    bus.client()
        .publish(bus.subject(&topic), Bytes::from_static(&[0x7f, b'x']))
        .await
        .unwrap();
    bus.publish(&topic, frame("fine")).await.unwrap();
    assert!(matches!(next(&mut sub).await, Err(PubSubError::Decode(_))));
    assert_eq!(next(&mut sub).await.unwrap(), frame("fine"));
}

/// A `nats-server` this test owns, on a port of its own; killed when dropped.
struct OwnNats {
    port: u16,
    child: Child,
}

impl OwnNats {
    async fn start() -> Option<Self> {
        if !std::path::Path::new(NATS_SERVER).exists() {
            assert!(!under_ci(), "CI is set but {NATS_SERVER} is missing");
            eprintln!("skipping: {NATS_SERVER} is missing");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Some(Self::start_on(port).await)
    }

    async fn start_on(port: u16) -> Self {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        let server = OwnNats { port, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server on port {port} did not accept connections within 5 s");
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn kill(mut self) -> u16 {
        self.child.kill().await.expect("nats-server is killed");
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_subscriptions_survive_a_nats_restart_and_are_told_of_the_gap() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let node = NatsPubSub::connect(&nats.url()).await.unwrap();
    let other = NatsPubSub::connect(&nats.url()).await.unwrap();
    let topic = unique_topic("document/restart");
    let mut sub = node.subscribe(&topic).await.unwrap();
    other.publish(&topic, frame("before")).await.unwrap();
    assert_eq!(next(&mut sub).await.unwrap(), frame("before"));

    let port = nats.kill().await;
    let waiting = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(
        waiting.is_err(),
        "the stream yielded {waiting:?} while NATS was down"
    );
    let _nats = OwnNats::start_on(port).await;

    assert!(matches!(
        next(&mut sub).await,
        Err(PubSubError::Lagged { missed: 0 })
    ));
    // The other node's client may reconnect a little later: keep publishing until through.
    let got = loop {
        other.publish(&topic, frame("after")).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Ok(item) => break item,
            Err(_) => continue,
        }
    };
    assert_eq!(got.unwrap().unwrap(), frame("after"));
}
