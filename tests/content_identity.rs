//! Content identity with real yjs clients: what a client reads back from `teleportal serve`
//! must be exactly what the writers hold, `JSON.stringify` for `JSON.stringify` (the keys of
//! object values in their order, every number as it was written), as through the y-websocket
//! reference server, which keeps the clients' bytes.
//!
//! Eight y-websocket writers (`tests/js/identity-client.mjs`) edit one `Y.Map` at once, each
//! 200 times, with small object values (some nested, keys out of alphabetical order). Then:
//! a late joiner; readers after a graceful restart (SIGTERM) and after SIGKILL; the same over
//! two nodes sharing PostgreSQL and Redis; and a Teleportal (V2) client beside a y-websocket
//! (V1) one, the Teleportal client's document held by yjs too (`tests/js/ydoc-pipe.mjs`, the
//! test carries the updates between the server and it).
//!
//! The map's own keys are compared sorted (`sorted` in the clients' output): their order in
//! `toJSON()` is the order a client integrated them, which differs between live writers with
//! any server. The values inside are compared byte for byte, and the state vectors too.
//!
//! Needs node and `npm ci` in `tests/js`; the cluster test also PostgreSQL and Redis (and the
//! features `postgres` and `redis`). Without them a test skips and says why, unless `CI` is
//! set: then it fails.
#![cfg(unix)] // the server is stopped with SIGTERM and SIGKILL

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::{ServerProcess, real_clients_available, run_id};
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Writers, edits each, and the keys each writes in turn (`${writer}-${edit % KEYS}`).
const WRITERS: usize = 8;
const EDITS: usize = 200;
const KEYS: usize = 40;

/// How long a node client's step may take: eight of them and the server share two cores.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn js(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/js")
        .join(script)
}

// ---------------------------------------------------------------------------------------------
// y-websocket clients

/// A running `identity-client.mjs`.
struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    what: String,
}

impl Node {
    fn spawn(url: &str, document: &str, args: &[&str]) -> Node {
        let mut child = Command::new("node")
            .arg(js("identity-client.mjs"))
            .args([url, document])
            .args(args)
            .env("TIMEOUT_MS", STEP_TIMEOUT.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Node {
            child,
            stdin,
            stdout,
            what: format!("identity-client.mjs {url} {document} {}", args.join(" ")),
        }
    }

    /// A writer: index `index`, `edits` edits with `base` added to their numbers; it waits
    /// for [`Node::resume`] to start, and then for the last edits of `writers` writers.
    fn writer(url: &str, document: &str, index: usize, edits: usize, base: usize) -> Node {
        let (index, edits, base) = (index.to_string(), edits.to_string(), base.to_string());
        let writers = WRITERS.to_string();
        let keys = KEYS.to_string();
        Node::spawn(
            url,
            document,
            &[
                "write",
                "--index",
                &index,
                "--edits",
                &edits,
                "--base",
                &base,
                "--keys",
                &keys,
                "--writers",
                &writers,
                "--go",
            ],
        )
    }

    /// A reader that waits for the last edits of `WRITERS` writers (`edits` each).
    fn reader(url: &str, document: &str, edits: usize, base: usize) -> Node {
        let (edits, base) = (edits.to_string(), base.to_string());
        let writers = WRITERS.to_string();
        let keys = KEYS.to_string();
        Node::spawn(
            url,
            document,
            &[
                "read",
                "--edits",
                &edits,
                "--base",
                &base,
                "--keys",
                &keys,
                "--writers",
                &writers,
            ],
        )
    }

    fn until_step(&mut self, step: &str) -> Value {
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).expect("read node output");
            assert!(
                read > 0,
                "{} exited before step {step}: {:?}",
                self.what,
                self.child.wait()
            );
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{} printed {line:?}: {e}", self.what));
            assert_ne!(
                value["step"], "error",
                "{} failed: {}",
                self.what, value["message"]
            );
            if value["step"] == step {
                return value;
            }
        }
    }

    fn resume(&mut self) {
        self.stdin.write_all(b"\n").expect("write to node");
        self.stdin.flush().expect("flush node stdin");
    }

    /// The final line; the client exits after it.
    fn finish(mut self) -> Value {
        let last = self.until_step("final");
        let status = self.child.wait().expect("wait for node");
        assert!(status.success(), "{} exited with {status}", self.what);
        last
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writers `0..WRITERS` on `urls` (writer i on `urls[i % len]`), all started at once once
/// every one has synced; returns their final states once each has flushed its edits and sees
/// everyone's.
fn write_round(urls: &[String], document: &str, edits: usize, base: usize) -> Vec<Value> {
    let started = Instant::now();
    let mut writers: Vec<Node> = (0..WRITERS)
        .map(|i| Node::writer(&urls[i % urls.len()], document, i, edits, base))
        .collect();
    for writer in &mut writers {
        writer.until_step("synced");
    }
    for writer in &mut writers {
        writer.resume();
    }
    let finals: Vec<Value> = writers.into_iter().map(Node::finish).collect();
    eprintln!(
        "{WRITERS} writers × {edits} edits on {document}: {:?}",
        started.elapsed()
    );
    finals
}

// ---------------------------------------------------------------------------------------------
// Comparing

/// Where two strings first differ, with some context around it.
fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let around = |s: &str| {
        let bytes = s.as_bytes();
        let (start, end) = (at.saturating_sub(80), (at + 80).min(bytes.len()));
        String::from_utf8_lossy(&bytes[start.min(end)..end]).into_owned()
    };
    format!(
        "at byte {at} (lengths {} and {}):\n  expected …{}…\n  got      …{}…",
        a.len(),
        b.len(),
        around(a),
        around(b)
    )
}

/// Asserts that every state of `others` holds exactly `expected`'s content (sorted JSON and
/// state vector), naming `who` on failure.
fn assert_identical(expected: &Value, expected_who: &str, others: &[(String, Value)]) {
    let sorted = expected["sorted"].as_str().expect("sorted JSON");
    let sv = expected["sv"].as_str().expect("state vector");
    assert_eq!(
        expected["size"],
        WRITERS * KEYS,
        "{expected_who} holds another number of keys"
    );
    for (who, state) in others {
        let theirs = state["sorted"].as_str().expect("sorted JSON");
        assert!(
            theirs == sorted,
            "the content {who} holds differs from what {expected_who} holds, {}",
            first_difference(sorted, theirs)
        );
        assert_eq!(
            state["sv"].as_str(),
            Some(sv),
            "the state vector of {who} differs from that of {expected_who}"
        );
    }
}

/// The writers agree with each other; returns the first one's state.
fn writers_agree(finals: &[Value]) -> Value {
    let others: Vec<(String, Value)> = finals
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, v)| (format!("writer {i}"), v.clone()))
        .collect();
    assert_identical(&finals[0], "writer 0", &others);
    finals[0].clone()
}

/// A fresh reader on `url`: it must hold everything as soon as it has synced, identical to
/// `expected`.
fn fresh_reader_agrees(url: &str, document: &str, edits: usize, base: usize, expected: &Value) {
    let seen = Node::reader(url, document, edits, base).finish();
    assert_eq!(
        seen["completeAtSync"], true,
        "a fresh reader on {url} lacked edits at its first sync"
    );
    assert_identical(
        expected,
        "the writers",
        &[(format!("a fresh reader on {url}"), seen)],
    );
}

// ---------------------------------------------------------------------------------------------
// The tests

/// Eight concurrent writers, then two late joiners: they hold the writers' JSON, and (they
/// got the same sync-step-2) the same raw JSON as each other.
#[test]
fn late_joiner_holds_the_writers_json() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let document = format!("identity-{}", run_id());
    let urls = [server.url.clone()];
    let finals = write_round(&urls, &document, EDITS, 0);
    let expected = writers_agree(&finals);

    let first = Node::reader(&server.url, &document, EDITS, 0).finish();
    let second = Node::reader(&server.url, &document, EDITS, 0).finish();
    for late in [&first, &second] {
        assert_eq!(late["completeAtSync"], true, "a late joiner lacked edits");
    }
    assert_identical(
        &expected,
        "the writers",
        &[
            ("the first late joiner".to_owned(), first.clone()),
            ("the second late joiner".to_owned(), second.clone()),
        ],
    );
    let (a, b) = (first["json"].as_str(), second["json"].as_str());
    assert!(
        a == b,
        "two late joiners hold different JSON {}",
        first_difference(a.unwrap_or_default(), b.unwrap_or_default())
    );
}

/// The writers' content after a graceful restart (SIGTERM), then after a second round of edits
/// and SIGKILL: a reader of the restarted server holds exactly what the writers held.
#[test]
fn readers_after_sigterm_and_sigkill_hold_the_writers_json() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let document = format!("identity-restart-{}", run_id());

    let finals = write_round(std::slice::from_ref(&server.url), &document, EDITS, 0);
    let expected = writers_agree(&finals);
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown failed: {status}");
    let mut server = ServerProcess::start(data.path());
    fresh_reader_agrees(&server.url, &document, EDITS, 0, &expected);

    // Round two on the same keys; every writer has flushed (a fresh client saw its edits)
    // before the kill.
    const SECOND: usize = 120;
    const BASE: usize = 1000;
    let finals = write_round(std::slice::from_ref(&server.url), &document, SECOND, BASE);
    let expected = writers_agree(&finals);
    server.kill();
    server.restart();
    fresh_reader_agrees(&server.url, &document, SECOND, BASE, &expected);
}

/// Two nodes sharing PostgreSQL and Redis: four writers on each; every writer (live on either
/// node) and a late joiner on each node hold identical content.
#[cfg(all(feature = "postgres", feature = "redis"))]
#[test]
fn two_nodes_hold_identical_json() {
    use support::{TestSchema, database_url, redis_url, service_reachable};
    if !real_clients_available() || !service_reachable("Redis", &redis_url()) {
        return;
    }
    let run = run_id();
    let Some(schema) = TestSchema::new(&format!("teleportal_identity_{run}")) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let database = database_url();
    let redis = redis_url();
    let nodes: Vec<ServerProcess> = (1..=2)
        .map(|n| {
            let node_id = format!("identity-n{n}-{run}");
            ServerProcess::start_with(
                data.path(),
                &[
                    "--storage",
                    &database,
                    "--schema",
                    &schema.name,
                    "--pubsub",
                    &redis,
                    "--node-id",
                    &node_id,
                ],
            )
        })
        .collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let document = format!("identity-cluster-{run}");

    let finals = write_round(&urls, &document, EDITS, 0);
    let expected = writers_agree(&finals);
    for url in &urls {
        fresh_reader_agrees(url, &document, EDITS, 0, &expected);
    }
    drop(nodes);
    drop(schema);
}

// ---------------------------------------------------------------------------------------------
// A Teleportal client whose document is a real yjs Y.Doc

/// `ydoc-pipe.mjs`: one command, one JSON line back.
struct Pipe {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Pipe {
    fn start() -> Pipe {
        let mut child = Command::new("node")
            .arg(js("ydoc-pipe.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node ydoc-pipe.mjs");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Pipe {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, command: &str) -> Value {
        writeln!(self.stdin, "{command}").expect("write to ydoc-pipe.mjs");
        self.stdin.flush().expect("flush ydoc-pipe.mjs");
        let mut line = String::new();
        let read = self
            .stdout
            .read_line(&mut line)
            .expect("read ydoc-pipe.mjs");
        assert!(read > 0, "ydoc-pipe.mjs exited: {:?}", self.child.wait());
        let reply: Value = serde_json::from_str(&line).expect("a JSON line");
        let name = command.split(' ').next().unwrap_or_default();
        assert!(
            reply["error"].is_null(),
            "ydoc-pipe.mjs {name}: {}",
            reply["error"]
        );
        reply
    }

    fn hex(&mut self, command: &str, field: &str) -> Vec<u8> {
        let reply = self.call(command);
        hex::decode(reply[field].as_str().expect(field)).expect("hex")
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Teleportal-protocol client on one document: V2 updates in plaintext envelopes, applied
/// to and made by yjs in a [`Pipe`].
struct Teleportal {
    runtime: tokio::runtime::Runtime,
    socket: Socket,
    pipe: Pipe,
    document: String,
    sync_id: String,
    synced: bool,
    /// Ids of sent updates not acknowledged yet.
    pending: HashSet<String>,
    nacks: Vec<String>,
}

impl Teleportal {
    fn connect(url: &str, document: &str, token: &str) -> Teleportal {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(format!(
                "{url}/?token={token}"
            )))
            .expect("connect the Teleportal client");
        let mut pipe = Pipe::start();
        let state_vector = Bytes::from(pipe.hex("sv", "sv"));
        let sync = Message::doc(document, DocMessage::SyncStep1 { state_vector });
        let mut client = Teleportal {
            runtime,
            socket,
            pipe,
            document: document.to_owned(),
            sync_id: sync.id().to_string(),
            synced: false,
            pending: HashSet::new(),
            nacks: Vec::new(),
        };
        client.send(&sync);
        client
    }

    fn send(&mut self, message: &Message) {
        self.runtime
            .block_on(self.socket.send(WsMessage::Binary(message.to_bytes())))
            .expect("send to the server");
    }

    fn envelope(update_v2: Vec<u8>) -> Update {
        Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update_v2)).to_bytes(),
        }
    }

    /// Handles what the server sends for up to `limit`.
    fn pump(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let socket = &mut self.socket;
            let frame = self
                .runtime
                .block_on(async { tokio::time::timeout_at(deadline, socket.next()).await });
            let bytes = match frame {
                Err(_) => return,
                Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
                Ok(Some(Ok(WsMessage::Close(close)))) => panic!("the server closed: {close:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!("the connection failed: {e}"),
                Ok(None) => panic!("the connection ended"),
            };
            let message = match Frame::decode(bytes).expect("the server sent a valid frame") {
                Frame::Ping => {
                    let pong = WsMessage::Binary(Frame::Pong.to_bytes());
                    self.runtime.block_on(self.socket.send(pong)).expect("pong");
                    continue;
                }
                Frame::Pong => continue,
                Frame::Message(message) => message,
            };
            match message.body {
                Body::Doc(DocMessage::SyncStep2(update) | DocMessage::Update(update)) => {
                    assert_eq!(update.version, 2, "Teleportal clients get V2 updates");
                    let envelope =
                        ContentEnvelope::decode(update.data).expect("the server sent an envelope");
                    if !envelope.structure_update.is_empty() {
                        let update = hex::encode(&envelope.structure_update);
                        self.pipe.call(&format!("apply {update}"));
                    }
                }
                Body::Doc(DocMessage::SyncStep1 { state_vector }) => {
                    let sv = hex::encode(&state_vector);
                    let diff = self.pipe.hex(&format!("diff {sv}"), "update");
                    let reply = Message::doc(
                        &self.document,
                        DocMessage::SyncStep2(Teleportal::envelope(diff)),
                    );
                    self.send(&reply);
                }
                Body::Doc(DocMessage::Auth {
                    allowed: false,
                    reason,
                }) => self.nacks.push(format!("denied: {reason}")),
                Body::Ack(ack) => {
                    if let Some(error) = ack.error {
                        self.nacks.push(error);
                    } else if ack.message_id == self.sync_id {
                        self.synced = true;
                    }
                    self.pending.remove(&ack.message_id);
                }
                _ => {}
            }
        }
    }

    /// Pumps until `done` holds; panics after `limit`.
    fn until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "Teleportal client: timed out after {limit:?} waiting for {what}"
            );
            self.pump(Duration::from_millis(50));
        }
        assert!(self.nacks.is_empty(), "NACKed: {:?}", self.nacks);
    }

    /// The writer `index`'s edits (as `identity-client.mjs` makes them), sent one update a
    /// message, handling the server's messages in between; waits for every ACK.
    fn write(&mut self, index: usize, edits: usize) {
        let reply = self.pipe.call(&format!("edit {index} {edits} {KEYS}"));
        let updates = reply["updates"].as_array().expect("updates").clone();
        assert_eq!(updates.len(), edits, "one update an edit");
        for (i, update) in updates.iter().enumerate() {
            let update = hex::decode(update.as_str().expect("hex")).expect("hex");
            let message = Message::doc(
                &self.document,
                DocMessage::Update(Teleportal::envelope(update)),
            );
            self.pending.insert(message.id().to_string());
            self.send(&message);
            if i % 8 == 7 {
                self.pump(Duration::from_millis(2));
            }
        }
        self.until("the ACKs of its updates", STEP_TIMEOUT, |c| {
            c.pending.is_empty()
        });
    }

    /// Waits until the map holds the last edit of `writers` writers (`edits` each).
    fn wait_complete(&mut self, writers: usize, edits: usize) {
        let command = format!("complete {writers} {edits} {KEYS}");
        self.until("every writer's last edit", STEP_TIMEOUT, |c| {
            c.pipe.call(&command)["complete"] == true
        });
    }

    fn state(&mut self) -> Value {
        self.pipe.call("state")
    }
}

/// A Teleportal writer (V2) and a y-websocket writer (V1) on one document at once; then a
/// late joiner of each protocol. All four hold identical content.
#[test]
fn teleportal_and_y_websocket_clients_hold_identical_json() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let document = format!("identity-mixed-{}", run_id());
    let url = server.url.as_str();

    // Writer 0 speaks Teleportal, writer 1 y-websocket; each waits for both writers' edits.
    let mut teleportal = Teleportal::connect(url, &document, "writer0");
    teleportal.until("the sync", STEP_TIMEOUT, |c| c.synced);
    let (edits, keys) = (EDITS.to_string(), KEYS.to_string());
    let mut y_writer = Node::spawn(
        url,
        &document,
        &[
            "write",
            "--index",
            "1",
            "--edits",
            &edits,
            "--keys",
            &keys,
            "--writers",
            "2",
            "--go",
        ],
    );
    y_writer.until_step("synced");
    y_writer.resume();
    teleportal.write(0, EDITS);
    teleportal.wait_complete(2, EDITS);
    let y_final = y_writer.finish();
    let tp_final = teleportal.state();

    let y_late = Node::spawn(
        url,
        &document,
        &["read", "--edits", &edits, "--keys", &keys, "--writers", "2"],
    )
    .finish();
    assert_eq!(
        y_late["completeAtSync"], true,
        "the late y-websocket client"
    );
    let mut tp_late = Teleportal::connect(url, &document, "late");
    tp_late.until("the sync", STEP_TIMEOUT, |c| c.synced);
    tp_late.wait_complete(2, EDITS);
    let tp_late = tp_late.state();

    assert_eq!(
        tp_final["size"],
        2 * KEYS,
        "the Teleportal writer's key count"
    );
    let sorted = tp_final["sorted"].as_str().expect("sorted");
    for (who, state) in [
        ("the y-websocket writer", &y_final),
        ("the late y-websocket client", &y_late),
        ("the late Teleportal client", &tp_late),
    ] {
        let theirs = state["sorted"].as_str().expect("sorted");
        assert!(
            theirs == sorted,
            "the content {who} holds differs from what the Teleportal writer holds, {}",
            first_difference(sorted, theirs)
        );
        assert_eq!(
            state["sv"], tp_final["sv"],
            "the state vector of {who} differs from the Teleportal writer's"
        );
    }
}
