//! Three `teleportal serve` processes as one cluster: documents in one PostgreSQL schema
//! (`--storage`, a fresh schema per test, dropped at the end), edits relayed between the nodes
//! over Redis or NATS (`--pubsub`). Teleportal clients (a yrs `Doc` over tokio-tungstenite)
//! and unmodified y-websocket clients, spread over the nodes, edit one document at once and
//! must converge; a node SIGKILLed under load must lose no acknowledged update.
//!
//! Needs PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`), Redis
//! (`REDIS_URL`), NATS with JetStream (`NATS_URL`), node and `npm ci` in `tests/js`. Without
//! one of them a test skips and says why, unless `CI` is set: then it fails.
#![cfg(all(unix, feature = "postgres", feature = "redis", feature = "nats"))]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use support::{
    Client, ServerProcess, TestSchema, database_url, nats_url, real_clients_available, redis_url,
    run_id, service_reachable,
};
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use tokio::sync::{mpsc, watch};
use tokio::task::block_in_place;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, TextRef, Transact};

/// How long a y-websocket client's step may take: a client on a killed node waits for it to
/// come back, and two cores run three servers and several node processes.
const Y_STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long clients get to converge, or to see what they must see.
const CONVERGE: Duration = Duration::from_secs(30);

/// Checks every service the test needs; returns its schema, or `None` to skip.
fn prepare(run: &str, bus: &str, bus_url: &str) -> Option<TestSchema> {
    if !real_clients_available() || !service_reachable(bus, bus_url) {
        return None;
    }
    block_in_place(|| TestSchema::new(&format!("teleportal_cluster_{run}")))
}

/// Three nodes on one schema and one bus; killed when dropped.
struct Cluster {
    nodes: Vec<ServerProcess>,
    _data: tempfile::TempDir,
}

impl Cluster {
    fn start(schema: &str, bus_url: &str, run: &str) -> Cluster {
        let data = tempfile::tempdir().expect("temp dir");
        let database = database_url();
        let nodes = (1..=3)
            .map(|n| {
                // Node ids are unique per run: with JetStream a node id names durable
                // consumers, which earlier runs must not hand over.
                let node_id = format!("n{n}-{run}");
                block_in_place(|| {
                    ServerProcess::start_with(
                        data.path(),
                        &[
                            "--storage",
                            &database,
                            "--schema",
                            schema,
                            "--pubsub",
                            bus_url,
                            "--node-id",
                            &node_id,
                        ],
                    )
                })
            })
            .collect();
        Cluster { nodes, _data: data }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }
}

/// What a [`RustClient`]'s task shares with the test.
#[derive(Debug, Default)]
struct Observed {
    /// The text of the client's document.
    content: String,
    /// Inserted strings whose update the server acknowledged.
    acked: HashSet<String>,
    /// Inserted strings, in order (sent, or to be sent on the next connection's sync).
    inserted: Vec<String>,
    /// Updates sent on the current connection and not acknowledged yet.
    unacked: usize,
    /// NACKs received: each is a failure.
    nacks: Vec<String>,
    /// Connections made so far, and the URL of the last.
    connections: usize,
    url: String,
    /// Whether the current connection's sync-step-1 was acknowledged.
    synced: bool,
}

/// A Teleportal client in a task of its own: a yrs `Doc` synced with one node, applying what
/// it gets and inserting what it is told at the end of the text. When its connection drops it
/// waits for the reconnect gate to open, then connects to the node `stride` places further
/// along the list (`0`: the same node again) and syncs both ways, which also sends the server
/// whatever it lacks of this client's edits (un-ACKed ones included).
struct RustClient {
    name: String,
    inserts: Option<mpsc::UnboundedSender<String>>,
    observed: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

/// How a session with one node ended.
enum SessionEnd {
    /// The connection failed or closed.
    Lost,
    /// The test dropped the client.
    Done,
}

impl RustClient {
    fn start(
        name: &str,
        document: &str,
        urls: &[String],
        first: usize,
        stride: usize,
        gate: watch::Receiver<bool>,
    ) -> RustClient {
        let (inserts, receiver) = mpsc::unbounded_channel();
        let observed = Arc::new(Mutex::new(Observed::default()));
        let task = tokio::spawn(run_client(
            name.to_owned(),
            document.to_owned(),
            urls.to_vec(),
            first,
            stride,
            gate,
            receiver,
            Arc::clone(&observed),
        ));
        RustClient {
            name: name.to_owned(),
            inserts: Some(inserts),
            observed,
            task,
        }
    }

    /// Inserts `text` at the end of the document (sent at once when connected).
    fn insert(&self, text: &str) {
        self.inserts
            .as_ref()
            .expect("client running")
            .send(text.to_owned())
            .expect("client task running");
    }

    fn observed(&self) -> MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn content(&self) -> String {
        self.observed().content.clone()
    }

    /// The inserted strings `content` lacks.
    fn missing<'a>(&self, expected: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
        let content = self.content();
        expected
            .into_iter()
            .filter(|t| !content.contains(t.as_str()))
            .collect()
    }

    fn describe(&self) -> String {
        let o = self.observed();
        format!(
            "{} (connection {} to {}, synced {}, {} inserted, {} acked, {} unacked, {} chars)",
            self.name,
            o.connections,
            o.url,
            o.synced,
            o.inserted.len(),
            o.acked.len(),
            o.unacked,
            o.content.len()
        )
    }
}

impl Drop for RustClient {
    fn drop(&mut self) {
        self.inserts = None;
        self.task.abort();
    }
}

#[allow(clippy::too_many_arguments)] // one task's whole configuration, passed once
async fn run_client(
    name: String,
    document: String,
    urls: Vec<String>,
    mut index: usize,
    stride: usize,
    mut gate: watch::Receiver<bool>,
    mut inserts: mpsc::UnboundedReceiver<String>,
    observed: Arc<Mutex<Observed>>,
) {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    let lock = || observed.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let url = &urls[index % urls.len()];
        match tokio_tungstenite::connect_async(format!("{url}/?token={name}")).await {
            Ok((socket, _)) => {
                {
                    let mut o = lock();
                    o.connections += 1;
                    o.url.clone_from(url);
                    o.synced = false;
                    o.unacked = 0;
                }
                let end = session(&document, &doc, &text, socket, &mut inserts, &observed).await;
                if let SessionEnd::Done = end {
                    return;
                }
                lock().synced = false;
                // Wait until the test lets clients of a lost node reconnect.
                if gate.wait_for(|open| *open).await.is_err() {
                    return;
                }
            }
            // The node is down (killed, not restarted yet): try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        index += stride;
    }
}

/// Syncs with one node and runs until the connection is lost or the test is done.
async fn session(
    document: &str,
    doc: &Doc,
    text: &TextRef,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    inserts: &mut mpsc::UnboundedReceiver<String>,
    observed: &Mutex<Observed>,
) -> SessionEnd {
    let lock = || observed.lock().unwrap_or_else(PoisonError::into_inner);
    let (mut tx, mut rx) = socket.split();
    let state_vector = Bytes::from(doc.transact().state_vector().encode_v1());
    let sync = Message::doc(document, DocMessage::SyncStep1 { state_vector });
    let sync_id = sync.id().to_string();
    if tx.send(binary(&sync)).await.is_err() {
        return SessionEnd::Lost;
    }
    // Message id → inserted string, for the updates sent on this connection.
    let mut pending: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            insert = inserts.recv() => {
                let Some(insert) = insert else {
                    return SessionEnd::Done;
                };
                let update = {
                    let mut txn = doc.transact_mut();
                    let len = text.len(&txn);
                    text.insert(&mut txn, len, &insert);
                    txn.encode_update_v2()
                };
                let message = update_message(document, update);
                pending.insert(message.id().to_string(), insert.clone());
                {
                    let mut o = lock();
                    o.inserted.push(insert);
                    o.unacked += 1;
                    o.content = text.get_string(&doc.transact());
                }
                if tx.send(binary(&message)).await.is_err() {
                    return SessionEnd::Lost;
                }
            }
            frame = rx.next() => {
                let Some(Ok(frame)) = frame else {
                    return SessionEnd::Lost;
                };
                let WsMessage::Binary(bytes) = frame else {
                    continue;
                };
                let reply = match Frame::decode(bytes).expect("the server sent a valid frame") {
                    Frame::Ping => Some(WsMessage::Binary(Frame::Pong.to_bytes())),
                    Frame::Pong => None,
                    Frame::Message(message) => match message.body {
                        Body::Doc(DocMessage::SyncStep2(update) | DocMessage::Update(update)) => {
                            apply(doc, &update);
                            None
                        }
                        Body::Doc(DocMessage::SyncStep1 { state_vector }) => {
                            let sv = StateVector::decode_v1(&state_vector).expect("state vector");
                            let diff = doc.transact().encode_state_as_update_v2(&sv);
                            let reply = Message::doc(
                                document,
                                DocMessage::SyncStep2(Update {
                                    version: 2,
                                    data: ContentEnvelope::plain(Bytes::from(diff)).to_bytes(),
                                }),
                            );
                            Some(binary(&reply))
                        }
                        Body::Ack(ack) => {
                            let mut o = lock();
                            if let Some(error) = ack.error {
                                o.nacks.push(error);
                            } else if ack.message_id == sync_id {
                                o.synced = true;
                            } else if let Some(insert) = pending.remove(&ack.message_id) {
                                o.acked.insert(insert);
                                o.unacked -= 1;
                            }
                            None
                        }
                        _ => None,
                    },
                };
                lock().content = text.get_string(&doc.transact());
                if let Some(reply) = reply
                    && tx.send(reply).await.is_err()
                {
                    return SessionEnd::Lost;
                }
            }
        }
    }
}

/// What a Teleportal client sends for a local change: a V2 update in a plaintext envelope.
fn update_message(document: &str, update_v2: Vec<u8>) -> Message {
    Message::doc(
        document,
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update_v2)).to_bytes(),
        }),
    )
}

fn binary(message: &Message) -> WsMessage {
    WsMessage::Binary(message.to_bytes())
}

/// Applies the Yjs update inside a sync-step-2 or update from the server.
fn apply(doc: &Doc, update: &Update) {
    assert_eq!(
        update.version, 2,
        "the server sends V2 updates to Teleportal clients"
    );
    let envelope = ContentEnvelope::decode(update.data.clone()).expect("server sent an envelope");
    if envelope.structure_update.is_empty() {
        return;
    }
    let update = yrs::Update::decode_v2(&envelope.structure_update).expect("a V2 update");
    doc.transact_mut()
        .apply_update(update)
        .expect("apply update");
}

/// Polls `done` until it holds or `limit` passes; returns whether it held.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every client's sync was acknowledged.
async fn all_synced(clients: &[&RustClient]) {
    let synced = eventually(CONVERGE, || clients.iter().all(|c| c.observed().synced)).await;
    assert!(
        synced,
        "not every Teleportal client synced: {:#?}",
        clients.iter().map(|c| c.describe()).collect::<Vec<_>>()
    );
}

/// Waits until every client holds every string of `expected`, then asserts they hold the same
/// text; returns it.
async fn converged(clients: &[&RustClient], expected: &[String]) -> String {
    let all = eventually(CONVERGE, || {
        clients.iter().all(|c| c.missing(expected).is_empty())
    })
    .await;
    if !all {
        let report: Vec<String> = clients
            .iter()
            .map(|c| format!("{} lacks {:?}", c.describe(), c.missing(expected)))
            .collect();
        // Say so when the server has the missing inserts (some client got them all): then they
        // were stored but never delivered to the clients that lack them, e.g. a node killed
        // after committing an update and before publishing it to the other nodes.
        let complete: Vec<&str> = clients
            .iter()
            .filter(|c| c.missing(expected).is_empty())
            .map(|c| c.name.as_str())
            .collect();
        let hint = if complete.is_empty() {
            String::new()
        } else {
            format!(
                "\n{complete:?} hold every insert: the cluster has them but never delivered \
                 them to the others"
            )
        };
        panic!("Teleportal clients did not converge within {CONVERGE:?}:\n{report:#?}{hint}");
    }
    let reference = clients[0].content();
    for client in clients {
        assert_eq!(
            client.content(),
            reference,
            "{} holds all {} inserts but a different text than {}",
            client.describe(),
            expected.len(),
            clients[0].describe()
        );
    }
    reference
}

/// Steps for a y-websocket client: optionally wait for a go on stdin, insert `mine`, then
/// wait for every string of `all` and print.
fn y_steps(go_on_stdin: bool, mine: &[String], all: &[String]) -> Vec<String> {
    let mut steps = Vec::new();
    if go_on_stdin {
        steps.push("stdin".to_owned());
    }
    steps.extend(mine.iter().map(|m| format!("insert:{m}")));
    steps.extend(all.iter().map(|m| format!("wait:{m}")));
    steps.push("print".to_owned());
    steps
}

fn spawn_y_client(url: &str, document: &str, steps: &[String]) -> Client {
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    Client::spawn_with_timeout(url, document, &steps, Y_STEP_TIMEOUT)
}

/// Several y-websocket and Teleportal clients, spread over three nodes, insert distinct
/// strings at once; every client must end with the same text, holding every insert.
async fn clients_on_three_nodes_converge(bus: &str, bus_url: &str) {
    const Y_CLIENTS: usize = 3;
    const Y_INSERTS: usize = 2;
    const RUST_CLIENTS: usize = 6;
    const RUST_INSERTS: usize = 5;
    let run = run_id();
    let Some(schema) = prepare(&run, bus, bus_url) else {
        return;
    };
    let cluster = Cluster::start(&schema.name, bus_url, &run);
    let urls = cluster.urls();
    let document = format!("cluster-{run}");
    let tags = |prefix: &str, clients: usize, inserts: usize| -> Vec<Vec<String>> {
        (0..clients)
            .map(|c| (0..inserts).map(|k| format!("<{prefix}{c}-{k}>")).collect())
            .collect()
    };
    let y_tags = tags("y", Y_CLIENTS, Y_INSERTS);
    let rust_tags = tags("r", RUST_CLIENTS, RUST_INSERTS);
    let all: Vec<String> = y_tags.iter().chain(&rust_tags).flatten().cloned().collect();

    let mut y_clients: Vec<Client> = y_tags
        .iter()
        .enumerate()
        .map(|(c, mine)| {
            spawn_y_client(&urls[c % urls.len()], &document, &y_steps(true, mine, &all))
        })
        .collect();
    block_in_place(|| {
        for y in &mut y_clients {
            y.until_step("synced");
        }
    });
    let (_gate, gate) = watch::channel(true);
    let rust: Vec<RustClient> = (0..RUST_CLIENTS)
        .map(|c| RustClient::start(&format!("rust{c}"), &document, &urls, c, 1, gate.clone()))
        .collect();
    let rust_refs: Vec<&RustClient> = rust.iter().collect();
    all_synced(&rust_refs).await;

    // Go: every client edits at once.
    block_in_place(|| y_clients.iter_mut().for_each(Client::resume));
    for k in 0..RUST_INSERTS {
        for (client, mine) in rust.iter().zip(&rust_tags) {
            client.insert(&mine[k]);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let text = converged(&rust_refs, &all).await;
    for (c, y) in y_clients.into_iter().enumerate() {
        let last = block_in_place(|| y.finish());
        assert_eq!(
            last["content"].as_str(),
            Some(text.as_str()),
            "y-websocket client {c} on {} diverged from the Teleportal clients",
            urls[c % urls.len()]
        );
    }
    for client in &rust {
        assert!(
            client.observed().nacks.is_empty(),
            "{}: NACKed",
            client.describe()
        );
    }
    drop(cluster);
    drop(schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_three_nodes_converge_over_redis() {
    clients_on_three_nodes_converge("Redis", &redis_url()).await;
}

/// JetStream, not core NATS: each node's durable consumers are named after its node id, which
/// is unique per run, and the document is too, so frames of earlier runs kept in the shared
/// `TELEPORTAL` stream never reach this run's sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_three_nodes_converge_over_nats_jetstream() {
    let url = nats_url();
    let jetstream = url.replacen("nats://", "nats+jetstream://", 1);
    clients_on_three_nodes_converge("NATS", &jetstream).await;
}

/// Writers on every node send a stream of updates; one node is SIGKILLed mid-stream and later
/// restarted (a new process, same node id, same port). No update the server acknowledged may
/// be lost, and the clients of the killed node reconnect and catch up.
///
/// Until the check for acknowledged updates is done, no client of the killed node may
/// reconnect: its sync would hand the server back whatever it had seen, hiding a lost write.
/// So the Teleportal clients wait for a gate, and the killed node (where a y-websocket client
/// keeps retrying) comes back only after the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_update_is_lost_when_a_node_is_killed_under_load() {
    killed_node_loses_nothing("Redis", &redis_url()).await;
}

/// The same over NATS JetStream: the restarted node (same node id) also resumes its durable
/// consumers where the killed process left them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_update_is_lost_when_a_node_is_killed_under_load_over_nats() {
    let url = nats_url().replacen("nats://", "nats+jetstream://", 1);
    killed_node_loses_nothing("NATS", &url).await;
}

async fn killed_node_loses_nothing(bus: &str, bus_url: &str) {
    const WRITERS: usize = 3;
    const INSERTS: usize = 80;
    const KILL_AFTER: usize = 30;
    const VICTIM: usize = 1;
    let run = run_id();
    let bus_url = bus_url.to_owned();
    let Some(schema) = prepare(&run, bus, &bus_url) else {
        return;
    };
    let mut cluster = Cluster::start(&schema.name, &bus_url, &run);
    let urls = cluster.urls();
    let document = format!("cluster-kill-{run}");
    let tag = |w: usize, k: usize| format!("<w{w}-{k}>");
    let all: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..INSERTS).map(move |k| tag(w, k)))
        .collect();

    let (gate_open, gate) = watch::channel(true);
    // Writer w on node w; after losing it, the next node along.
    let writers: Vec<RustClient> = (0..WRITERS)
        .map(|w| RustClient::start(&format!("writer{w}"), &document, &urls, w, 1, gate.clone()))
        .collect();
    // On the victim; reconnects to the same address, so to the restarted node.
    let observer = RustClient::start("observer", &document, &urls, VICTIM, 0, gate.clone());
    let mut y_clients: Vec<(usize, Client)> = [VICTIM, 0]
        .into_iter()
        .map(|n| {
            (
                n,
                spawn_y_client(&urls[n], &document, &y_steps(false, &[], &all)),
            )
        })
        .collect();
    block_in_place(|| {
        for (_, y) in &mut y_clients {
            y.until_step("synced");
        }
    });
    let mut everyone: Vec<&RustClient> = writers.iter().chain([&observer]).collect();
    all_synced(&everyone).await;

    let started = Instant::now();
    for k in 0..INSERTS {
        for (w, writer) in writers.iter().enumerate() {
            writer.insert(&tag(w, k));
        }
        if k == KILL_AFTER {
            gate_open.send_replace(false);
            block_in_place(|| cluster.nodes[VICTIM].kill());
            eprintln!("killed node {VICTIM} after {:?}", started.elapsed());
        }
        // Pacing the stream, not waiting for a condition.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The surviving writers' updates are all acknowledged in the end.
    let survivors: Vec<&RustClient> = writers
        .iter()
        .enumerate()
        .filter(|&(w, _)| w != VICTIM)
        .map(|(_, writer)| writer)
        .collect();
    let done = eventually(CONVERGE, || {
        survivors.iter().all(|w| {
            let o = w.observed();
            o.inserted.len() == INSERTS && o.unacked == 0
        })
    })
    .await;
    assert!(
        done,
        "writers on surviving nodes still wait for acks: {:#?}",
        survivors.iter().map(|w| w.describe()).collect::<Vec<_>>()
    );
    let victim_acked = writers[VICTIM].observed().acked.len();
    assert!(
        victim_acked > 0,
        "the writer on the killed node had no update acknowledged before the kill: {}",
        writers[VICTIM].describe()
    );
    let acked: Vec<String> = writers
        .iter()
        .flat_map(|w| w.observed().acked.iter().cloned().collect::<Vec<_>>())
        .collect();
    eprintln!(
        "{} updates acknowledged ({victim_acked} by the killed node) after {:?}",
        acked.len(),
        started.elapsed()
    );

    // Fresh clients on the surviving nodes see every acknowledged update.
    let check_fresh_reader = |node: usize, name: &str| {
        let reader = RustClient::start(name, &document, &urls, node, 0, gate.clone());
        let acked = &acked;
        async move {
            let seen = eventually(CONVERGE, || {
                let o = reader.observed();
                o.synced && acked.iter().all(|t| o.content.contains(t.as_str()))
            })
            .await;
            assert!(
                seen,
                "acknowledged updates lost: a fresh client on node {node} lacks {:?}; {}",
                reader.missing(acked),
                reader.describe()
            );
            reader
        }
    };
    let mut readers = Vec::new();
    for node in (0..urls.len()).filter(|&n| n != VICTIM) {
        readers.push(check_fresh_reader(node, &format!("reader{node}")).await);
    }

    // Bring the victim back; a fresh client there must see them too.
    block_in_place(|| cluster.nodes[VICTIM].restart());
    eprintln!("restarted node {VICTIM} after {:?}", started.elapsed());
    readers.push(check_fresh_reader(VICTIM, "reader-restarted").await);

    // Let the victim's clients reconnect: they catch up, and the writer sends the rest.
    gate_open.send_replace(true);
    everyone.extend(&readers);
    let text = converged(&everyone, &all).await;
    {
        let writer = writers[VICTIM].observed();
        assert_eq!(
            (writer.connections, writer.url.as_str()),
            (2, urls[VICTIM + 1].as_str()),
            "the killed node's writer reconnected to the next node"
        );
    }
    assert!(
        observer.observed().connections >= 2,
        "the killed node's observer reconnected: {}",
        observer.describe()
    );
    for (node, y) in y_clients {
        let last = block_in_place(|| y.finish());
        assert_eq!(
            last["content"].as_str(),
            Some(text.as_str()),
            "y-websocket client on node {node} diverged from the Teleportal clients"
        );
    }
    for client in &everyone {
        assert!(
            client.observed().nacks.is_empty(),
            "{}: NACKed",
            client.describe()
        );
    }
    eprintln!("converged after {:?}", started.elapsed());
    drop(cluster);
    drop(schema);
}
