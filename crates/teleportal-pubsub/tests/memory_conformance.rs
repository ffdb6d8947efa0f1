//! [`MemoryPubSub`] passes the conformance suite, on both runtime flavours.
#![cfg(feature = "test-util")]

use teleportal_pubsub::MemoryPubSub;
use teleportal_pubsub::conformance::run_pubsub_suite;

/// Each call is one node's handle on the same bus: clones share it.
fn handles() -> impl Fn() -> std::future::Ready<MemoryPubSub> {
    let bus = MemoryPubSub::new();
    move || std::future::ready(bus.clone())
}

#[tokio::test]
async fn memory_pubsub_conforms() {
    run_pubsub_suite(handles()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pubsub_conforms_on_a_multi_thread_runtime() {
    run_pubsub_suite(handles()).await;
}
