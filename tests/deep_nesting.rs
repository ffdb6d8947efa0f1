//! Yjs updates whose `Y.Map` value is a lib0 `Any` nested thousands of levels deep, built byte
//! by byte (yjs cannot encode them itself) and sent to `teleportal serve` over both protocols,
//! y-websocket (V1) and Teleportal (V2 in a content envelope).
//!
//! The server must stay up, and refuse anything nested deeper than it documents (512 levels,
//! well below what JavaScript decodes): the Teleportal sender gets a NACK, the y-websocket
//! update is dropped; either way nothing is stored or relayed, so a live yjs client and a fresh
//! one both keep loading the document with its earlier content. A value 400 levels deep is
//! accepted, relayed and readable by a real yjs client.
//!
//! At 8,000 levels a decoder that recurses overflows the worker thread's stack and aborts the
//! process; at 6,000 JavaScript clients fail with `RangeError` and load the document empty.
//! The server runs as a child process, so such a crash fails the test instead of aborting it.
//!
//! Needs node and `npm ci` in `tests/js`; without them these tests skip, or fail under `CI`.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::{Client, ServerProcess, real_clients_available, run_id};
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The deepest nesting the server accepts (`teleportal_core::yjs::MAX_NESTING`, documented).
const LIMIT: usize = 512;

/// How long a node client's step may take on two busy cores.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

fn js(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/js")
        .join(script)
}

// ---------------------------------------------------------------------------------------------
// Building the updates

fn var_uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(u8::try_from(n & 0x7f).expect("7 bits") | 0x80);
        n >>= 7;
    }
    out.push(u8::try_from(n).expect("below 0x80"));
}

fn var_string(out: &mut Vec<u8>, s: &str) {
    var_uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `[[[…null…]]]`
    Arrays,
    /// `{"k": {"k": …null…}}`
    Objects,
}

/// A lib0 `Any`: `depth` arrays (tag 117, one element) or objects (tag 118, one entry "k")
/// around `null` (tag 126).
fn deep_any(shape: Shape, depth: usize) -> Vec<u8> {
    let mut any = match shape {
        Shape::Arrays => [117u8, 1].repeat(depth),
        Shape::Objects => [118u8, 1, 1, b'k'].repeat(depth),
    };
    any.push(126);
    any
}

/// The JSON yjs gives for [`deep_any`].
fn deep_json(shape: Shape, depth: usize) -> String {
    match shape {
        Shape::Arrays => format!("{}null{}", "[".repeat(depth), "]".repeat(depth)),
        Shape::Objects => format!("{}null{}", r#"{"k":"#.repeat(depth), "}".repeat(depth)),
    }
}

/// A lib0 `Any` string.
fn any_string(s: &str) -> Vec<u8> {
    let mut any = vec![119];
    var_string(&mut any, s);
    any
}

/// A V1 update by `client` (clock 0) setting the key `key` of the root `Y.Map` "m" to the
/// `Any` `any`: one client, one Item with info 0x28 (ContentAny, no origins, a parent sub),
/// parent by root name, the content one value; an empty delete set.
fn map_set_v1(client: u32, key: &str, any: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(any.len() + 32);
    var_uint(&mut out, 1); // clients
    var_uint(&mut out, 1); // structs of this client
    var_uint(&mut out, u64::from(client));
    var_uint(&mut out, 0); // first clock
    out.push(0x28); // ContentAny (8) | parentSub present (0x20)
    var_uint(&mut out, 1); // parent is a root type, named by a string
    var_string(&mut out, "m");
    var_string(&mut out, key);
    var_uint(&mut out, 1); // one value
    out.extend_from_slice(any);
    var_uint(&mut out, 0); // delete set: no clients
    out
}

/// yjs's own encodings of `m.set(key, PLACEHOLDER)` by `client`, from `deep-check.mjs`.
struct Template {
    v1: Vec<u8>,
    v2: Vec<u8>,
    placeholder: Vec<u8>,
}

fn template(client: u32, key: &str) -> Template {
    let out = Command::new("node")
        .arg(js("deep-check.mjs"))
        .args(["template", &client.to_string(), key])
        .output()
        .expect("run node deep-check.mjs");
    assert!(out.status.success(), "deep-check.mjs template failed");
    let line: Value = serde_json::from_slice(&out.stdout).expect("template JSON");
    let field = |name: &str| hex::decode(line[name].as_str().expect(name)).expect("hex");
    Template {
        v1: field("v1"),
        v2: field("v2"),
        placeholder: field("placeholder"),
    }
}

/// The V1 and V2 updates of `client` setting `key` to `any`. V1 is built byte by byte (and
/// checked against yjs's encoding of the same item with a string value); V2 is yjs's encoding
/// of that item with the string replaced: in V2 the `Any` values are written as they are,
/// after every column, just before the delete set.
fn map_set(client: u32, key: &str, any: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let template = template(client, key);
    assert_eq!(
        hex::encode(map_set_v1(client, key, &template.placeholder)),
        hex::encode(&template.v1),
        "the hand-built V1 update differs from yjs's for the same item"
    );
    let v2 = &template.v2;
    let p = &template.placeholder;
    let at = v2
        .windows(p.len())
        .position(|w| w == p.as_slice())
        .expect("the placeholder in yjs's V2 update");
    assert_eq!(
        &v2[at + p.len()..],
        &[0],
        "the placeholder is followed by the empty delete set only"
    );
    let mut deep_v2 = v2[..at].to_vec();
    deep_v2.extend_from_slice(any);
    deep_v2.push(0);
    (map_set_v1(client, key, any), deep_v2)
}

/// A client id per test case (yjs client ids are 32-bit).
fn client_id(salt: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    (nanos ^ salt.wrapping_mul(0x9e37_79b1)) | 1
}

// ---------------------------------------------------------------------------------------------
// Node clients

/// A running `identity-client.mjs` (or any script printing one JSON line per step).
struct Node {
    child: Child,
    stdout: BufReader<ChildStdout>,
    what: String,
}

impl Node {
    fn spawn(script: &str, args: &[&str]) -> Node {
        let mut child = Command::new("node")
            .arg(js(script))
            .args(args)
            .env("TIMEOUT_MS", STEP_TIMEOUT.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Node {
            child,
            stdout,
            what: format!("{script} {}", args.join(" ")),
        }
    }

    /// Reads lines until the step `step` (or an error line); panics on an error or an exit.
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

    /// The final line, after which the client exits.
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

fn keys(state: &Value) -> Vec<String> {
    let json = state["json"].as_str().expect("json");
    // The map's own keys, without parsing the (possibly very deep) values.
    let Value::Array(keys) = &state["keys"] else {
        panic!("no keys in {json:.200}");
    };
    keys.iter()
        .map(|k| k.as_str().expect("key").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sending over both protocols

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    YWebsocket,
    Teleportal,
}

/// What became of a sent update.
#[derive(Debug)]
enum Outcome {
    /// Teleportal: a positive ACK.
    Accepted,
    /// Teleportal: a NACK with this error.
    Refused(String),
    /// y-websocket has no acknowledgements: sent, and the connection still open.
    Sent,
    /// The connection closed (or failed) instead.
    Closed(String),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection of either protocol, on a runtime of its own.
struct Sender {
    runtime: tokio::runtime::Runtime,
    socket: Option<Socket>,
    protocol: Protocol,
    url: String,
    document: String,
}

impl Sender {
    fn connect(protocol: Protocol, url: &str, document: &str) -> Sender {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut sender = Sender {
            runtime,
            socket: None,
            protocol,
            url: url.to_owned(),
            document: document.to_owned(),
        };
        sender.reconnect();
        sender
    }

    fn reconnect(&mut self) {
        let address = match self.protocol {
            Protocol::YWebsocket => format!("{}/{}", self.url, self.document),
            Protocol::Teleportal => format!("{}/?token=deep", self.url),
        };
        let (socket, _) = self
            .runtime
            .block_on(tokio_tungstenite::connect_async(address))
            .expect("connect to the server");
        self.socket = Some(socket);
        if self.protocol == Protocol::Teleportal {
            // Sync first, as a client does: an empty state vector.
            let sync = Message::doc(
                &self.document,
                DocMessage::SyncStep1 {
                    state_vector: Bytes::from_static(&[0]),
                },
            );
            match self.send(sync) {
                Outcome::Accepted => {}
                other => panic!("sync-step-1 not acknowledged: {other:?}"),
            }
        }
    }

    /// Sends the update (V1 for y-websocket, V2 in an envelope for Teleportal) and says what
    /// became of it.
    fn update(&mut self, v1: &[u8], v2: &[u8]) -> Outcome {
        match self.protocol {
            Protocol::YWebsocket => {
                // messageSync (0), messageYjsUpdate (2), the update as a var-length buffer.
                let mut frame = vec![0, 2];
                var_uint(&mut frame, v1.len() as u64);
                frame.extend_from_slice(v1);
                self.send_raw(frame)
            }
            Protocol::Teleportal => self.send(Message::doc(
                &self.document,
                DocMessage::Update(Update {
                    version: 2,
                    data: ContentEnvelope::plain(Bytes::copy_from_slice(v2)).to_bytes(),
                }),
            )),
        }
    }

    /// y-websocket: sends one binary frame, then reads for a moment to see whether the
    /// connection stays open.
    fn send_raw(&mut self, frame: Vec<u8>) -> Outcome {
        let socket = self.socket.as_mut().expect("connected");
        self.runtime.block_on(async {
            if let Err(e) = socket.send(WsMessage::Binary(frame.into())).await {
                return Outcome::Closed(format!("send failed: {e}"));
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            loop {
                match tokio::time::timeout_at(deadline, socket.next()).await {
                    Err(_) => return Outcome::Sent,
                    Ok(None) => return Outcome::Closed("connection ended".to_owned()),
                    Ok(Some(Err(e))) => return Outcome::Closed(e.to_string()),
                    Ok(Some(Ok(WsMessage::Close(close)))) => {
                        return Outcome::Closed(format!("closed: {close:?}"));
                    }
                    Ok(Some(Ok(_))) => {} // sync-step-1, awareness: not needed
                }
            }
        })
    }

    /// Teleportal: sends `message` and waits for its ACK or NACK.
    fn send(&mut self, message: Message) -> Outcome {
        let id = message.id().to_string();
        let socket = self.socket.as_mut().expect("connected");
        self.runtime.block_on(async {
            if let Err(e) = socket.send(WsMessage::Binary(message.to_bytes())).await {
                return Outcome::Closed(format!("send failed: {e}"));
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
                    Err(_) => return Outcome::Closed("no ACK within 20 s".to_owned()),
                    Ok(None) => return Outcome::Closed("connection ended".to_owned()),
                    Ok(Some(Err(e))) => return Outcome::Closed(e.to_string()),
                    Ok(Some(Ok(WsMessage::Close(close)))) => {
                        return Outcome::Closed(format!("closed: {close:?}"));
                    }
                    Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
                    Ok(Some(Ok(_))) => continue,
                };
                match Frame::decode(frame).expect("the server sent a valid frame") {
                    Frame::Ping => {
                        let pong = WsMessage::Binary(Frame::Pong.to_bytes());
                        if let Err(e) = socket.send(pong).await {
                            return Outcome::Closed(format!("pong failed: {e}"));
                        }
                    }
                    Frame::Pong => {}
                    Frame::Message(reply) => match reply.body {
                        Body::Ack(ack) if ack.message_id == id => {
                            return match ack.error {
                                None => Outcome::Accepted,
                                Some(error) => Outcome::Refused(error),
                            };
                        }
                        Body::Doc(DocMessage::Auth {
                            allowed: false,
                            reason,
                        }) => return Outcome::Refused(format!("auth denied: {reason}")),
                        _ => {}
                    },
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The checks

/// Whether the server process still runs (not gone, not a zombie): a stack overflow aborts it.
fn assert_alive(server: &ServerProcess, after: &str) {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid()));
    let Ok(stat) = stat else {
        return; // no procfs: the clients' checks tell
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    assert_ne!(
        state, "Z",
        "the server process died after {after} (see its stderr above)"
    );
}

/// One update of `depth` levels of `shape` sent over `protocol` to a document of its own,
/// which already holds a few keys and has a live y-websocket client; then a marker update.
/// `accept`: whether the server must accept it.
fn case(server: &ServerProcess, protocol: Protocol, shape: Shape, depth: usize, accept: bool) {
    let what = format!("{depth} levels of {shape:?} over {protocol:?}");
    let document = format!("deep-{depth}-{shape:?}-{protocol:?}-{}", run_id()).to_lowercase();
    let url = server.url.as_str();
    let salt = u32::try_from(depth).expect("small depth");

    // Earlier content, by a real client.
    let writer = Node::spawn(
        "identity-client.mjs",
        &[
            url, &document, "write", "--index", "0", "--edits", "5", "--keys", "5",
        ],
    )
    .finish();
    let earlier: Value = serde_json::from_str(writer["json"].as_str().expect("json")).unwrap();

    // A live client, there before the deep update and still after it.
    let marker = "marker";
    let mut watcher = Node::spawn(
        "identity-client.mjs",
        &[url, &document, "read", "--wait-key", marker],
    );
    watcher.until_step("synced");

    let (v1, v2) = map_set(client_id(salt), "deep", &deep_any(shape, depth));
    eprintln!(
        "{what}: V1 update of {} bytes, V2 of {} bytes",
        v1.len(),
        v2.len()
    );
    let mut sender = Sender::connect(protocol, url, &document);
    let outcome = sender.update(&v1, &v2);
    eprintln!("{what}: {outcome:?}");
    assert_alive(server, &what);
    match (&outcome, protocol, accept) {
        (Outcome::Closed(why), _, _) => {
            panic!("{what}: the connection closed instead of an answer: {why}")
        }
        (Outcome::Accepted, _, false) => panic!("{what}: the server acknowledged it"),
        (Outcome::Refused(error), _, true) => panic!("{what}: refused: {error}"),
        (Outcome::Refused(error), _, false) => {
            assert!(!error.is_empty(), "{what}: a NACK without a reason");
        }
        (Outcome::Accepted | Outcome::Sent, _, _) => {}
    }

    // Then a small update by another client, on the same connection: once it is visible, the
    // deep one has been dealt with.
    let (m1, m2) = map_set(client_id(salt ^ 0x5555), marker, &any_string("after"));
    let marked = sender.update(&m1, &m2);
    assert!(
        matches!(marked, Outcome::Accepted | Outcome::Sent),
        "{what}: the update after it: {marked:?}"
    );
    assert_alive(server, &what);

    let reader = Node::spawn(
        "identity-client.mjs",
        &[url, &document, "read", "--wait-key", marker],
    );
    for (who, state) in [
        ("live client", watcher.finish()),
        ("fresh reader", reader.finish()),
    ] {
        let keys = keys(&state);
        for key in earlier.as_object().expect("an object").keys() {
            assert!(
                keys.contains(key),
                "{what}: the {who} lacks {key}: {keys:?}"
            );
        }
        if accept {
            assert!(keys.contains(&"deep".to_owned()), "{what}: {who}: {keys:?}");
            let json = state["json"].as_str().expect("json");
            let deep = format!(r#""deep":{}"#, deep_json(shape, depth));
            assert!(
                json.contains(&deep),
                "{what}: the {who} holds another value: {:.300}",
                json
            );
        } else {
            assert!(
                !keys.contains(&"deep".to_owned()),
                "{what}: the server stored or relayed it; the {who} holds {keys:?}"
            );
            // Everything else as it was, value for value.
            let mut seen: Value =
                serde_json::from_str(state["json"].as_str().expect("json")).unwrap();
            let seen = seen.as_object_mut().expect("an object");
            assert_eq!(seen.remove(marker), Some(Value::from("after")), "{what}");
            assert_eq!(Value::Object(seen.clone()), earlier, "{what}: {who}");
        }
    }
}

/// Every shape over every protocol at `depth`, on one server, then a bystander on another
/// document proves the server still serves.
fn all_cases(depth: usize, accept: bool) {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let mut bystander = Client::spawn_with_timeout(
        &server.url,
        &format!("bystander-{}", run_id()),
        &["stdin", "insert:still here", "flush", "print"],
        STEP_TIMEOUT,
    );
    bystander.until_step("synced");
    let started = Instant::now();
    for protocol in [Protocol::YWebsocket, Protocol::Teleportal] {
        for shape in [Shape::Arrays, Shape::Objects] {
            case(&server, protocol, shape, depth, accept);
        }
    }
    eprintln!("{depth} levels: every case in {:?}", started.elapsed());
    bystander.resume();
    let last = bystander.finish();
    assert_eq!(last["content"], "still here", "{last}");
    assert_alive(&server, "every case");
}

/// The encoder, checked with yjs: V1 and V2, both shapes, small depths (JavaScript decodes
/// them), give the value they should.
#[test]
fn hand_built_updates_decode_in_yjs_as_intended() {
    if !real_clients_available() {
        return;
    }
    let mut args: Vec<String> = vec!["check".into(), "deep".into()];
    let mut expected = Vec::new();
    for shape in [Shape::Arrays, Shape::Objects] {
        for depth in [0, 1, 2, 7, 130, 400, LIMIT] {
            let (v1, v2) = map_set(client_id(u32::try_from(depth).unwrap()), "deep", &{
                deep_any(shape, depth)
            });
            for (version, update) in [("v1", v1), ("v2", v2)] {
                args.push(version.into());
                args.push(hex::encode(update));
                expected.push((shape, depth, version));
            }
        }
    }
    let out = Command::new("node")
        .arg(js("deep-check.mjs"))
        .args(&args)
        .output()
        .expect("run node deep-check.mjs");
    assert!(out.status.success(), "deep-check.mjs check failed");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), expected.len());
    for ((shape, depth, version), line) in expected.into_iter().zip(lines) {
        let what = format!("{version} {shape:?} {depth}");
        assert!(line["error"].is_null(), "{what}: {line}");
        assert_eq!(line["depth"], depth, "{what}: {line}");
        assert_eq!(line["leaf"], "null", "{what}: {line}");
        assert_eq!(line["pending"], false, "{what}: {line}");
        assert_eq!(line["keys"], serde_json::json!(["deep"]), "{what}: {line}");
        if let Some(json) = line["json"].as_str() {
            assert_eq!(
                json,
                format!(r#"{{"deep":{}}}"#, deep_json(shape, depth)),
                "{what}"
            );
        }
    }
}

/// ~16 KB (arrays) and ~32 KB (objects) that overflow a recursive decoder's stack.
#[test]
fn updates_8000_levels_deep_are_refused_and_the_server_stays_up() {
    all_cases(8_000, false);
}

/// Stored, these would make real yjs clients load the document empty (`RangeError`).
#[test]
fn updates_6000_levels_deep_are_refused() {
    all_cases(6_000, false);
}

/// Just over the documented limit.
#[test]
fn updates_600_levels_deep_are_refused() {
    const { assert!(600 > LIMIT) };
    all_cases(600, false);
}

/// Below the limit: stored, relayed, and read by real yjs clients as sent.
#[test]
fn updates_400_levels_deep_are_accepted_and_readable() {
    const { assert!(400 < LIMIT) };
    all_cases(400, true);
}
