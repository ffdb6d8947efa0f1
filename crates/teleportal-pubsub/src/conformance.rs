//! The conformance suite every [`PubSub`] backend runs (feature `test-util`).
//!
//! [`run_pubsub_suite`] takes `make`, which gives a new handle (a client, a connection) onto
//! **one shared bus**: the checks that play several nodes call it once per node, and expect a
//! frame published through one handle to reach subscriptions made through the others. Every
//! check works on topics of its own with a random suffix, so backends on a shared server (the
//! machine's Redis or NATS) do not see each other's traffic, nor that of an earlier run.
//!
//! ```no_run
//! use teleportal_pubsub::MemoryPubSub;
//! use teleportal_pubsub::conformance::run_pubsub_suite;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     // Clones share the bus: each is one node's handle on it.
//!     let bus = MemoryPubSub::new();
//!     run_pubsub_suite(|| {
//!         let bus = bus.clone();
//!         async move { bus }
//!     })
//!     .await;
//! }
//! ```
//!
//! A check waits at most [`RECEIVE_TIMEOUT`] for each frame it expects, so the runtime needs
//! its timer (`#[tokio::test]` enables it). Checks never sleep to prove that something did
//! *not* arrive: they publish a marker after it and expect the marker first.

use std::any::Any as PanicPayload;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};

use crate::{NodePubSub, PubSub, PubSubFrame, Subscription};

/// How long a check waits for one frame it expects before failing.
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs each check on handles from `make`, one check after the other, naming it on failure.
macro_rules! run_checks {
    ($caps:ident, $make:ident, $($check:path),* $(,)?) => {
        $(run_check(stringify!($check), $check($caps, &$make)).await;)*
    };
}

/// How a backend legitimately differs from the default, for [`run_pubsub_suite_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubCapabilities {
    /// A handle that subscribes to a topic again gets, first and in order, the frames published
    /// on it while it had no subscription (a durable consumer per node, as in NATS
    /// JetStream). Without it, a new subscription starts with frames published after it.
    pub replays_missed_frames: bool,
}

impl PubSubCapabilities {
    /// The default: no replay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`replays_missed_frames`](Self::replays_missed_frames).
    pub fn with_replays_missed_frames(mut self, replays: bool) -> Self {
        self.replays_missed_frames = replays;
        self
    }
}

/// Runs the [`PubSub`] suite: order per publisher, echo suppression under [`NodePubSub`],
/// fanout to many subscribers, topic isolation (including topics that differ only in
/// characters brokers treat specially), unsubscribing by drop, and frames that come back
/// byte for byte (empty, binary, about 1 MB).
///
/// `make` gives a new handle on one shared bus (see the [module docs](self)).
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_pubsub_suite<P, F, Fut>(make: F)
where
    P: PubSub,
    F: Fn() -> Fut,
    Fut: Future<Output = P>,
{
    run_pubsub_suite_with(PubSubCapabilities::default(), make).await;
}

/// As [`run_pubsub_suite`], for a backend with the given [`PubSubCapabilities`].
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_pubsub_suite_with<P, F, Fut>(caps: PubSubCapabilities, make: F)
where
    P: PubSub,
    F: Fn() -> Fut,
    Fut: Future<Output = P>,
{
    run_checks!(
        caps,
        make,
        frames_from_one_publisher_arrive_in_order,
        a_raw_subscription_receives_its_own_handles_frames,
        a_node_does_not_receive_its_own_frames,
        every_subscriber_on_a_topic_receives,
        topics_are_isolated,
        dropping_a_subscription_unsubscribes,
        dropping_one_subscription_keeps_the_others,
        frames_come_back_unchanged,
    );
}

/// Runs one check; a panic inside it is re-raised with the check's name, so a backend author
/// sees which rule broke without reading the suite.
async fn run_check(name: &str, check: impl Future<Output = ()>) {
    if let Err(payload) = AssertUnwindSafe(check).catch_unwind().await {
        let check = name.rsplit("::").next().unwrap_or(name);
        panic!(
            "PubSub conformance check `{check}` failed: {}",
            panic_message(&*payload)
        );
    }
}

fn panic_message(payload: &(dyn PanicPayload + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(panic without a message)")
}

/// A topic no other check, run or process uses: `base` plus a suffix from the clock, the
/// process id and a counter.
pub fn unique_topic(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{base}/{}-{nanos:x}-{n}", std::process::id())
}

fn frame(source: &str, message: impl Into<Bytes>) -> PubSubFrame {
    PubSubFrame {
        source_id: source.to_owned(),
        message: message.into(),
    }
}

async fn subscribe(bus: &impl PubSub, topic: &str) -> Subscription {
    bus.subscribe(topic)
        .await
        .unwrap_or_else(|e| panic!("subscribing to {topic:?} failed: {e}"))
}

async fn publish(bus: &impl PubSub, topic: &str, frame: PubSubFrame) {
    bus.publish(topic, frame)
        .await
        .unwrap_or_else(|e| panic!("publishing on {topic:?} failed: {e}"));
}

/// The next frame of `sub`, which must come within [`RECEIVE_TIMEOUT`] and not be an error.
async fn next(sub: &mut Subscription, what: &str) -> PubSubFrame {
    match tokio::time::timeout(RECEIVE_TIMEOUT, sub.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) => panic!("{what}: the subscription yielded an error: {e}"),
        Ok(None) => panic!("{what}: the subscription ended"),
        Err(_) => panic!("{what}: nothing arrived within {RECEIVE_TIMEOUT:?}"),
    }
}

async fn frames_from_one_publisher_arrive_in_order<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let (publisher, subscriber) = (make().await, make().await);
    let topic = unique_topic("conformance/order");
    let mut sub = subscribe(&subscriber, &topic).await;
    for n in 0..200u32 {
        publish(&publisher, &topic, frame("p", n.to_be_bytes().to_vec())).await;
    }
    for n in 0..200u32 {
        let got = next(&mut sub, &format!("frame {n}")).await;
        assert_eq!(
            got.message,
            Bytes::from(n.to_be_bytes().to_vec()),
            "frame {n} arrived out of order"
        );
    }
}

async fn a_raw_subscription_receives_its_own_handles_frames<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    // The contract: echo suppression is NodePubSub's job, so the backend itself delivers a
    // handle's frames to that handle's own subscriptions.
    let bus = make().await;
    let topic = unique_topic("conformance/own");
    let mut sub = subscribe(&bus, &topic).await;
    publish(&bus, &topic, frame("self", &b"mine"[..])).await;
    assert_eq!(
        next(&mut sub, "own frame").await,
        frame("self", &b"mine"[..])
    );
}

async fn a_node_does_not_receive_its_own_frames<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let a = NodePubSub::new("node-a", make().await);
    let b = NodePubSub::new("node-b", make().await);
    let c = NodePubSub::new("node-c", make().await);
    let topic = unique_topic("conformance/echo");
    let mut at_a = a.subscribe(&topic).await.expect("node a subscribes");
    let mut at_b = b.subscribe(&topic).await.expect("node b subscribes");
    let mut at_c = c.subscribe(&topic).await.expect("node c subscribes");

    a.publish(&topic, Bytes::from_static(b"from a"))
        .await
        .expect("node a publishes");
    for (sub, node) in [(&mut at_b, "node b"), (&mut at_c, "node c")] {
        let got = next(sub, &format!("{node} waiting for a's frame")).await;
        assert_eq!(got, frame("node-a", &b"from a"[..]), "at {node}");
    }
    // Had a's frame come back to a, it would arrive before b's.
    b.publish(&topic, Bytes::from_static(b"from b"))
        .await
        .expect("node b publishes");
    let got = next(&mut at_a, "node a waiting for b's frame").await;
    assert_eq!(
        got,
        frame("node-b", &b"from b"[..]),
        "node a received its own frame"
    );
}

async fn every_subscriber_on_a_topic_receives<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let topic = unique_topic("conformance/fanout");
    let shared = make().await;
    let mut handles = Vec::new();
    let mut subs = Vec::new();
    // Several subscriptions through one handle, and one through each of several handles.
    for _ in 0..4 {
        subs.push(subscribe(&shared, &topic).await);
    }
    for _ in 0..4 {
        let handle = make().await;
        subs.push(subscribe(&handle, &topic).await);
        handles.push(handle);
    }
    let publisher = make().await;
    for n in 0..3u8 {
        publish(&publisher, &topic, frame("p", vec![n])).await;
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        for n in 0..3u8 {
            let got = next(sub, &format!("subscriber {i}, frame {n}")).await;
            assert_eq!(got.message, Bytes::from(vec![n]), "subscriber {i}");
        }
    }
}

async fn topics_are_isolated<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let bus = make().await;
    let base = unique_topic("conformance/isolation");
    // Topics differing only in characters that brokers treat as separators or wildcards: an
    // encoding that maps two of them to one channel or subject fails here.
    let suffixes = [
        "doc", "doc/x", "doc.x", "doc_x", "doc x", "doc*", "doc>", "doc/*", "Doc", "dóc", "",
    ];
    let topics: Vec<String> = suffixes.iter().map(|s| format!("{base}/{s}")).collect();
    let mut subs = Vec::new();
    for topic in &topics {
        subs.push(subscribe(&bus, topic).await);
    }
    // Subscribed to the prefix only: must get nothing from the topics below it.
    let mut parent = subscribe(&bus, &base).await;
    for topic in &topics {
        publish(&bus, topic, frame("p", topic.clone().into_bytes())).await;
    }
    publish(&bus, &base, frame("p", &b"parent marker"[..])).await;
    for (topic, sub) in topics.iter().zip(&mut subs) {
        let got = next(sub, &format!("topic {topic:?}")).await;
        assert_eq!(
            got.message,
            Bytes::from(topic.clone().into_bytes()),
            "topic {topic:?} received another topic's frame"
        );
    }
    let got = next(&mut parent, "the parent topic").await;
    assert_eq!(
        got.message,
        Bytes::from_static(b"parent marker"),
        "a subscription to {base:?} received a frame of a topic below it"
    );
    // Nothing else is queued for any topic: a second marker on each comes next.
    for topic in &topics {
        publish(&bus, topic, frame("p", &b"marker"[..])).await;
    }
    for (topic, sub) in topics.iter().zip(&mut subs) {
        let got = next(sub, &format!("marker on {topic:?}")).await;
        assert_eq!(
            got.message,
            Bytes::from_static(b"marker"),
            "topic {topic:?} received a frame twice or from another topic"
        );
    }
}

async fn dropping_a_subscription_unsubscribes<P: PubSub, Fut: Future<Output = P>>(
    caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let (bus, publisher) = (make().await, make().await);
    let topic = unique_topic("conformance/drop");
    let mut sub = subscribe(&bus, &topic).await;
    publish(&publisher, &topic, frame("p", &b"before"[..])).await;
    assert_eq!(
        next(&mut sub, "before the drop").await.message,
        &b"before"[..]
    );
    drop(sub);
    // Nobody listens now: publishing is still fine (no node has the document open).
    for _ in 0..3 {
        publish(&publisher, &topic, frame("p", &b"nobody"[..])).await;
    }
    // A new subscription works. A replaying backend first gives exactly what this handle
    // missed, in order. Others may or may not deliver frames published just before the
    // subscription (a broker that queues publishes client-side, like core NATS, can see them
    // after the new SUB), but no more of them than were published, and nothing after "after".
    let mut again = subscribe(&bus, &topic).await;
    publish(&publisher, &topic, frame("p", &b"after"[..])).await;
    let mut early = 0;
    loop {
        let got = next(&mut again, "a new subscription after the drop").await;
        if got.message == b"after"[..] {
            break;
        }
        assert_eq!(got.message, &b"nobody"[..], "unexpected frame {early}");
        early += 1;
        assert!(early <= 3, "more frames than were published");
    }
    if caps.replays_missed_frames {
        assert_eq!(
            early, 3,
            "a replaying backend gave {early} of the 3 missed frames"
        );
    }
}

async fn dropping_one_subscription_keeps_the_others<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    // Backends that share one broker subscription between local subscribers must not
    // unsubscribe the topic while a subscriber is left.
    let (bus, publisher) = (make().await, make().await);
    let topic = unique_topic("conformance/drop-one");
    let first = subscribe(&bus, &topic).await;
    let mut second = subscribe(&bus, &topic).await;
    drop(first);
    // Let a backend's asynchronous clean-up run before publishing.
    tokio::task::yield_now().await;
    publish(&publisher, &topic, frame("p", &b"still here"[..])).await;
    let got = next(&mut second, "the remaining subscription").await;
    assert_eq!(got.message, &b"still here"[..]);
}

async fn frames_come_back_unchanged<P: PubSub, Fut: Future<Output = P>>(
    _caps: PubSubCapabilities,
    make: &impl Fn() -> Fut,
) {
    let (publisher, subscriber) = (make().await, make().await);
    let topic = unique_topic("conformance/bytes");
    let mut sub = subscribe(&subscriber, &topic).await;
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    // About 1 MB, patterned so that a shifted or truncated copy differs.
    let large: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24).to_le_bytes()[0])
        .collect();
    let frames = [
        frame("node-1", Bytes::new()),
        frame("", &b"no source id"[..]),
        frame("nöde/ü ✓ with spaces.and.dots", every_byte),
        frame(&"long-id-".repeat(40), &b"YJS\x01"[..]),
        frame("node-1", large),
    ];
    for f in &frames {
        publish(&publisher, &topic, f.clone()).await;
    }
    for (i, want) in frames.iter().enumerate() {
        let got = next(&mut sub, &format!("frame {i}")).await;
        assert!(
            got.source_id == want.source_id,
            "frame {i}: source id {:?}, want {:?}",
            got.source_id,
            want.source_id
        );
        assert!(
            got.message == want.message,
            "frame {i}: message of {} bytes differs from the {} published",
            got.message.len(),
            want.message.len()
        );
    }
}
