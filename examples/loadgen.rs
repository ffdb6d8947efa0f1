//! A load generator for a Teleportal server: Rust clients (yrs documents speaking the Teleportal
//! protocol) send real Y.Text updates and measure throughput, delivery latency and server memory.
//!
//! ```sh
//! # In this process, over in-memory channels (no sockets), SQLite in a temp dir:
//! cargo run --release --example loadgen -- --in-process one-doc --clients 10 --updates 2000 --burst
//! cargo run --release --example loadgen -- --in-process one-doc --clients 100 --updates 2000 --paced 200
//! cargo run --release --example loadgen -- --in-process many-docs --docs 1000 --clients-per-doc 2 --updates 10
//! # Against a running server (e.g. the `server` example), reading its memory from /proc:
//! cargo run --release --example loadgen -- --ws ws://127.0.0.1:1234 --server-pid PID one-doc --clients 10 --burst
//! # Across the nodes of a cluster (`server --pubsub …`): receivers on both, the writer on the first:
//! cargo run --release --example loadgen -- --ws ws://127.0.0.1:1234,ws://127.0.0.1:1235 one-doc --clients 10 --burst
//! ```
//!
//! Modes:
//! - `--in-process` starts a [`Server`] over `SqliteStorage` in a temp dir (`--memory`:
//!   `MemoryStorage`) with a 1 s idle timeout and drives [`serve`] over futures channels, so no
//!   socket or codec work is measured. `--websocket` instead mounts the axum router on
//!   `127.0.0.1:0` in this process and connects to it over real WebSockets.
//!   `--relay-after-durable` sets `RelayMode::AfterDurable` (relay once fsync'd) instead of
//!   the default `BeforeDurable`.
//! - `--ws URL` connects to a running server's Teleportal endpoint (`URL/?token=…`).
//!   `--ws URL1,URL2,…` spreads the clients over several nodes of one cluster: each
//!   document's clients are assigned round-robin, its writer to the first URL, so with
//!   `one-doc --clients 10` and two URLs the writer and four receivers are on the first node
//!   and five receivers on the second, which get every update through the cluster's pub/sub.
//!
//! Workloads:
//! - `one-doc --clients K --updates U (--burst | --paced RATE)`: K clients sync one new document;
//!   the first sends U single-character inserts, the other K-1 receive them. Burst sends without
//!   waiting, keeping at most `--in-flight` (default 256) updates not yet acknowledged or not
//!   yet received by every receiver; paced sends one every 1/RATE s.
//! - `many-docs --docs D --clients-per-doc C --updates U`: D documents, each with C clients of
//!   which the first sends U updates as a burst; all documents at once.
//!
//! Updates are made with yrs before timing starts. Throughput is updates over the time from
//! the first send until every receiver had every update; latency is, per update and receiver,
//! receive time minus send time (updates are matched by order: one writer's updates are relayed
//! in the order they were acknowledged). Once all receivers of a document have every update
//! (not sooner: the checks must not slow deliveries still being timed), each applies what it
//! got to its own `Doc` and must hold the writer's text.
//!
//! Memory is the server's `VmHWM` (peak) and `VmRSS` (idle: after every client left and the
//! sessions were unloaded) from `/proc/<pid>/status`. In process that is this process, so it
//! includes the clients; with `--ws` it is `--server-pid`, read `--idle-wait` seconds (default
//! 2) after the clients left — the `server` example unloads sessions after 60 s. With several
//! `--ws` URLs that is still the one server `--server-pid` names.
//!
//! The last line is exactly
//! `updates/s <N>, delivery p50 <x> ms, p99 <y> ms, server peak RSS <a> MB, idle RSS <b> MB`.
//! The exit status is non-zero when an update was NACKed, a receiver missed an update or its
//! document differs, or the run exceeds `--timeout` seconds (default 300).

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use bytes::Bytes;
use futures::future::{join_all, ready, try_join_all};
use futures::{Sink, SinkExt, Stream, StreamExt};
use teleportal::core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use teleportal::server::{ClientContext, RelayMode, Server, ServerConfig, serve};
use teleportal::sqlite::SqliteStorage;
use teleportal::storage::{DocumentStore, MemoryStorage};
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, Transact};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str =
    "usage: loadgen (--in-process [--memory] [--websocket] [--relay-after-durable] | --ws URL[,URL…] [--server-pid PID]) \
[--idle-wait SECS] [--in-flight N] [--timeout SECS]
  one-doc [--clients K] [--updates U] (--burst | --paced RATE)
  many-docs [--docs D] [--clients-per-doc C] [--updates U]";

enum Mode {
    InProcess {
        memory: bool,
        websocket: bool,
        relay: RelayMode,
    },
    Ws {
        /// One per node; clients are assigned round-robin.
        urls: Vec<String>,
    },
}

#[derive(Clone, Copy)]
enum Pace {
    Burst,
    /// Updates per second.
    Paced(f64),
}

enum Workload {
    OneDoc {
        clients: usize,
        updates: usize,
        pace: Pace,
    },
    ManyDocs {
        docs: usize,
        clients_per_doc: usize,
        updates: usize,
    },
}

struct Args {
    mode: Mode,
    workload: Workload,
    server_pid: Option<u32>,
    idle_wait: Duration,
    in_flight: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args, Error> {
    let mut mode = None;
    let mut memory = false;
    let mut websocket = false;
    let mut relay = RelayMode::BeforeDurable;
    let mut server_pid = None;
    let mut idle_wait = Duration::from_secs(2);
    let mut in_flight = 256;
    let mut timeout = Duration::from_secs(300);
    let mut workload_name: Option<String> = None;
    let (mut clients, mut docs, mut clients_per_doc) = (10, 1000, 2);
    let mut updates = None;
    let mut pace = None;
    let mut args = std::env::args().skip(1);
    fn value<T: std::str::FromStr>(
        args: &mut impl Iterator<Item = String>,
        flag: &str,
    ) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        let raw = args.next().ok_or(format!("{flag} needs a value"))?;
        raw.parse()
            .map_err(|e| format!("{flag} {raw:?}: {e}").into())
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--in-process" => {
                mode = Some(Mode::InProcess {
                    memory,
                    websocket,
                    relay,
                })
            }
            "--relay-after-durable" => relay = RelayMode::AfterDurable,
            "--memory" => memory = true,
            "--websocket" => websocket = true,
            "--ws" => {
                let list: String = value(&mut args, "--ws")?;
                let urls: Vec<String> = list
                    .split(',')
                    .map(|url| url.trim().trim_end_matches('/').to_owned())
                    .filter(|url| !url.is_empty())
                    .collect();
                if urls.is_empty() {
                    return Err("--ws needs at least one URL".into());
                }
                mode = Some(Mode::Ws { urls });
            }
            "--server-pid" => server_pid = Some(value(&mut args, "--server-pid")?),
            "--idle-wait" => idle_wait = Duration::from_secs_f64(value(&mut args, "--idle-wait")?),
            "--in-flight" => in_flight = value::<usize>(&mut args, "--in-flight")?.max(1),
            "--timeout" => timeout = Duration::from_secs_f64(value(&mut args, "--timeout")?),
            "one-doc" | "many-docs" => workload_name = Some(arg),
            "--clients" => clients = value(&mut args, "--clients")?,
            "--docs" => docs = value(&mut args, "--docs")?,
            "--clients-per-doc" => clients_per_doc = value(&mut args, "--clients-per-doc")?,
            "--updates" => updates = Some(value(&mut args, "--updates")?),
            "--burst" => pace = Some(Pace::Burst),
            "--paced" => {
                let rate: f64 = value(&mut args, "--paced")?;
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err("--paced needs a positive rate".into());
                }
                pace = Some(Pace::Paced(rate));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}").into()),
        }
    }
    // `--memory`/`--websocket` may come after `--in-process`.
    let mode = match mode.ok_or(format!("--in-process or --ws is required\n{USAGE}"))? {
        Mode::InProcess { .. } => Mode::InProcess {
            memory,
            websocket,
            relay,
        },
        ws => ws,
    };
    let workload = match workload_name.as_deref() {
        Some("one-doc") => {
            if clients < 2 {
                return Err("--clients must be at least 2 (one writer, one receiver)".into());
            }
            Workload::OneDoc {
                clients,
                updates: updates.unwrap_or(2000),
                pace: pace.ok_or("one-doc needs --burst or --paced RATE")?,
            }
        }
        Some("many-docs") => {
            if clients_per_doc < 2 || docs == 0 {
                return Err("many-docs needs --docs ≥ 1 and --clients-per-doc ≥ 2".into());
            }
            Workload::ManyDocs {
                docs,
                clients_per_doc,
                updates: updates.unwrap_or(10),
            }
        }
        _ => return Err(format!("name a workload: one-doc or many-docs\n{USAGE}").into()),
    };
    Ok(Args {
        mode,
        workload,
        server_pid,
        idle_wait,
        in_flight,
        timeout,
    })
}

type Tx = Pin<Box<dyn Sink<Frame, Error = Error> + Send>>;
type Rx = Pin<Box<dyn Stream<Item = Result<Frame, Error>> + Send>>;

/// One client connection: frames out, frames in.
struct Client {
    tx: Tx,
    rx: Rx,
}

/// Where clients connect.
enum Target {
    /// `serve` driven over in-memory channels, one task per connection.
    Channels(Server),
    /// Teleportal WebSocket endpoints, `ws://ADDR`, one per node: the client in `slot`
    /// connects to the endpoint `slot` modulo their number.
    Ws(Vec<String>),
}

impl Target {
    async fn connect(&self, name: &str, slot: usize) -> Result<Client, Error> {
        match self {
            Target::Channels(server) => {
                let (to_server, incoming) =
                    futures::channel::mpsc::unbounded::<Result<Frame, std::io::Error>>();
                let (outgoing, from_server) = futures::channel::mpsc::unbounded::<Frame>();
                let server = server.clone();
                let context = ClientContext::new(name);
                tokio::spawn(async move {
                    if let Err(e) = serve(&server, context, incoming, outgoing).await {
                        eprintln!("loadgen: connection failed: {e}");
                    }
                });
                let tx = to_server
                    .sink_map_err(|e| -> Error { Box::new(e) })
                    .with(|frame| ready(Ok::<_, Error>(Ok(frame))));
                Ok(Client {
                    tx: Box::pin(tx),
                    rx: Box::pin(from_server.map(Ok)),
                })
            }
            Target::Ws(urls) => {
                let url = &urls[slot % urls.len()];
                let (socket, _) =
                    // TCP_NODELAY, as the server sets it: no 40 ms Nagle/delayed-ACK stalls.
                    tokio_tungstenite::connect_async_with_config(
                        format!("{url}/?token={name}"),
                        None,
                        true,
                    )
                    .await?;
                let (sink, stream) = socket.split();
                let tx = sink
                    .sink_map_err(|e| -> Error { Box::new(e) })
                    .with(|frame: Frame| {
                        ready(Ok::<_, Error>(WsMessage::Binary(frame.to_bytes())))
                    });
                let rx = stream.filter_map(|message| {
                    ready(match message {
                        Ok(WsMessage::Binary(bytes)) => {
                            Some(Frame::decode(bytes).map_err(|e| -> Error { Box::new(e) }))
                        }
                        Ok(_) => None,
                        Err(e) => Some(Err(Box::new(e) as Error)),
                    })
                });
                Ok(Client {
                    tx: Box::pin(tx),
                    rx: Box::pin(rx),
                })
            }
        }
    }
}

/// Connects `name` (the document's client number `slot`, which picks the node) and syncs
/// `document` (a new, empty one): sync-step-1 with an empty state vector, then waits for the
/// ack; the server's sync-step-2 and sync-step-1 come before it.
async fn connect_synced(
    target: &Target,
    name: &str,
    slot: usize,
    document: &str,
) -> Result<Client, Error> {
    let mut client = target.connect(name, slot).await?;
    let state_vector = Bytes::from_static(&[0]);
    client
        .tx
        .send(Frame::Message(Message::doc(
            document,
            DocMessage::SyncStep1 { state_vector },
        )))
        .await?;
    loop {
        let frame = client
            .rx
            .next()
            .await
            .ok_or("connection closed during sync")??;
        if let Frame::Message(Message {
            body: Body::Ack(ack),
            ..
        }) = frame
        {
            if let Some(error) = ack.error {
                return Err(format!("sync of {document} NACKed: {error}").into());
            }
            return Ok(client);
        }
    }
}

/// The writer's `count` single-character inserts at the end of a Y.Text, as the update
/// messages a Teleportal client sends (V2 in a plaintext envelope), and the final text.
fn make_updates(document: &str, count: usize) -> (Vec<Frame>, String) {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    let mut frames = Vec::with_capacity(count);
    for i in 0..count {
        let update = {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            let letter = char::from(b'a' + u8::try_from(i % 26).unwrap_or(0));
            text.insert(&mut txn, len, letter.encode_utf8(&mut [0; 4]));
            txn.encode_update_v2()
        };
        frames.push(Frame::Message(Message::doc(
            document,
            DocMessage::Update(Update {
                version: 2,
                data: ContentEnvelope::plain(Bytes::from(update)).to_bytes(),
            }),
        )));
    }
    let content = text.get_string(&doc.transact());
    (frames, content)
}

/// What one document's run measured; times are nanoseconds since the run's base instant.
struct DocRun {
    sent: Vec<u64>,
    /// Per receiver, the receive time of each update, in order.
    received: Vec<Vec<u64>>,
}

fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The writer's window: an update leaves it once it was acknowledged and every receiver got
/// it. Bounding by acks alone would let a writer outrun slow receivers until the server's
/// per-client send queue (1024 by default) overflows and it disconnects them, by design.
struct Window {
    permits: Semaphore,
    /// Per update, how many of the ack and the receivers are done with it.
    done: Vec<AtomicUsize>,
    needed: usize,
}

impl Window {
    fn done(&self, update: usize) {
        if let Some(done) = self.done.get(update)
            && done.fetch_add(1, Ordering::AcqRel) + 1 == self.needed
        {
            self.permits.add_permits(1);
        }
    }
}

/// One writer sends `updates`; every receiver must get all of them, in order, and end with
/// `expected` as its text. Connections are dropped at the end.
async fn drive_document(
    writer: Client,
    receivers: Vec<Client>,
    updates: Vec<Frame>,
    expected: String,
    pace: Pace,
    in_flight: usize,
    base: Instant,
) -> Result<DocRun, Error> {
    let count = updates.len();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let window = Arc::new(Window {
        permits: Semaphore::new(in_flight),
        done: (0..count).map(|_| AtomicUsize::new(0)).collect(),
        needed: receivers.len() + 1,
    });
    // Receivers check their documents only once all of them have every update: a check is
    // the load generator's own work and must not slow the deliveries still being timed.
    let all_received = Arc::new(Barrier::new(receivers.len()));
    let receiving = receivers.into_iter().map(|client| {
        let expected = expected.clone();
        let window = Arc::clone(&window);
        let all_received = Arc::clone(&all_received);
        tokio::spawn(async move {
            let received = receive(client, count, base, &window).await;
            // Reached on failure too, so a failed receiver doesn't leave the others waiting.
            all_received.wait().await;
            let (times, updates) = received?;
            check_document(updates, &expected)?;
            Ok::<_, Error>(times)
        })
    });
    let receiving: Vec<_> = receiving.collect();

    let Client { mut tx, mut rx } = writer;
    let acks = {
        let window = Arc::clone(&window);
        tokio::spawn(async move {
            let mut acked = 0;
            while acked < count {
                let frame = rx.next().await.ok_or("writer's connection closed")??;
                if let Frame::Message(Message {
                    body: Body::Ack(ack),
                    ..
                }) = frame
                {
                    if let Some(error) = ack.error {
                        return Err::<_, Error>(format!("update NACKed: {error}").into());
                    }
                    window.done(acked);
                    acked += 1;
                }
            }
            Ok(rx)
        })
    };
    let sending = {
        let sent = Arc::clone(&sent);
        async move {
            let start = Instant::now();
            for (i, frame) in updates.into_iter().enumerate() {
                if let Pace::Paced(rate) = pace {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                window.permits.acquire().await?.forget();
                sent[i].store(nanos_since(base), Ordering::Relaxed);
                tx.send(frame).await?;
            }
            Ok::<_, Error>(tx)
        }
    };
    let tx = sending.await?;
    let rx = acks.await??;
    let mut received = Vec::with_capacity(receiving.len());
    for task in receiving {
        received.push(task.await??);
    }
    drop((tx, rx));
    let sent = sent.iter().map(|t| t.load(Ordering::Relaxed)).collect();
    Ok(DocRun { sent, received })
}

/// Receives `count` updates, timing each; returns the times and the updates' data.
async fn receive(
    mut client: Client,
    count: usize,
    base: Instant,
    window: &Window,
) -> Result<(Vec<u64>, Vec<Bytes>), Error> {
    let mut times = Vec::with_capacity(count);
    let mut updates = Vec::with_capacity(count);
    while times.len() < count {
        let frame = client.rx.next().await.ok_or_else(|| {
            format!(
                "a receiver's connection closed after {} of {count} updates",
                times.len()
            )
        })??;
        if let Frame::Message(Message {
            body: Body::Doc(DocMessage::Update(update)),
            ..
        }) = frame
        {
            times.push(nanos_since(base));
            window.done(updates.len());
            updates.push(update.data);
        }
    }
    drop(client);
    Ok((times, updates))
}

/// Applies received updates to a fresh document, which must then hold `expected`.
fn check_document(updates: Vec<Bytes>, expected: &str) -> Result<(), Error> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    for data in updates {
        let envelope = ContentEnvelope::decode(data)?;
        let update = yrs::Update::decode_v2(&envelope.structure_update)?;
        doc.transact_mut().apply_update(update)?;
    }
    let content = text.get_string(&doc.transact());
    if content != expected {
        return Err(format!(
            "a receiver's document differs: {} chars, expected {}",
            content.len(),
            expected.len()
        )
        .into());
    }
    Ok(())
}

/// Throughput and latency over a set of document runs.
struct Figures {
    updates: usize,
    first_send: u64,
    last_receive: u64,
    latencies_ns: Vec<u64>,
}

fn figures(runs: &[DocRun]) -> Figures {
    let mut latencies_ns = Vec::new();
    let mut first_send = u64::MAX;
    let mut last_receive = 0;
    let mut updates = 0;
    for run in runs {
        updates += run.sent.len();
        first_send = first_send.min(run.sent.first().copied().unwrap_or(u64::MAX));
        for receiver in &run.received {
            for (sent, got) in run.sent.iter().zip(receiver) {
                latencies_ns.push(got.saturating_sub(*sent));
                last_receive = last_receive.max(*got);
            }
        }
    }
    latencies_ns.sort_unstable();
    Figures {
        updates,
        first_send,
        last_receive,
        latencies_ns,
    }
}

/// The nearest-rank percentile `p` (in percent) of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (sorted.len() * p).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

/// `(VmHWM, VmRSS)` of a process in MB (MiB), from `/proc/<pid>/status`.
fn memory(pid: Option<u32>) -> Result<(f64, f64), Error> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> Result<f64, Error> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or(format!("{path} has no {name}"))?;
        let kb: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// A document name no earlier run used, so runs against a persistent server start empty.
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), now.as_millis())
}

/// Runs the workload against `target`; returns the figures and, for many-docs, the total time.
async fn run_workload(
    target: &Target,
    workload: &Workload,
    in_flight: usize,
) -> Result<(Figures, Option<Duration>), Error> {
    let id = run_id();
    let base = Instant::now();
    match *workload {
        Workload::OneDoc {
            clients,
            updates,
            pace,
        } => {
            let document = format!("loadgen-{id}");
            let connecting = (0..clients).map(|c| {
                let document = &document;
                async move { connect_synced(target, &format!("client-{c}"), c, document).await }
            });
            let mut connected = try_join_all(connecting).await?;
            let receivers = connected.split_off(1);
            let writer = connected.pop().ok_or("no writer")?;
            eprintln!(
                "loadgen: {clients} clients synced in {:.2} s",
                base.elapsed().as_secs_f64()
            );
            let (frames, expected) = make_updates(&document, updates);
            let run =
                drive_document(writer, receivers, frames, expected, pace, in_flight, base).await?;
            Ok((figures(&[run]), None))
        }
        Workload::ManyDocs {
            docs,
            clients_per_doc,
            updates,
        } => {
            let names: Vec<String> = (0..docs).map(|d| format!("loadgen-{id}-{d}")).collect();
            let prepared: Vec<_> = names.iter().map(|n| make_updates(n, updates)).collect();
            let base = Instant::now();
            let connecting = names.iter().enumerate().map(|(d, document)| {
                try_join_all((0..clients_per_doc).map(move |c| {
                    let name = format!("client-{d}-{c}");
                    async move { connect_synced(target, &name, c, document).await }
                }))
            });
            let connected = try_join_all(connecting).await?;
            eprintln!(
                "loadgen: {} clients on {docs} documents synced in {:.2} s",
                docs * clients_per_doc,
                base.elapsed().as_secs_f64()
            );
            let runs =
                connected
                    .into_iter()
                    .zip(prepared)
                    .map(|(mut clients, (frames, expected))| {
                        let receivers = clients.split_off(1);
                        let writer = clients.pop();
                        async move {
                            let writer = writer.ok_or("no writer")?;
                            drive_document(
                                writer,
                                receivers,
                                frames,
                                expected,
                                Pace::Burst,
                                in_flight,
                                base,
                            )
                            .await
                        }
                    });
            let runs: Vec<DocRun> = join_all(runs)
                .await
                .into_iter()
                .collect::<Result<_, Error>>()?;
            let total = base.elapsed();
            Ok((figures(&runs), Some(total)))
        }
    }
}

// As in the `server` example: jemalloc returns freed memory, so the in-process idle RSS is
// what the server keeps, not what glibc's arenas hold on to.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let args = parse_args()?;
    let mut temp = None;
    let mut server = None;
    let (target, pid) = match &args.mode {
        Mode::Ws { urls } => (Target::Ws(urls.clone()), args.server_pid),
        Mode::InProcess {
            memory,
            websocket,
            relay,
        } => {
            let store = if *memory {
                DocumentStore::new(MemoryStorage::new())
            } else {
                let dir = tempfile::tempdir()?;
                let store = DocumentStore::new(SqliteStorage::open(dir.path())?);
                temp = Some(dir);
                store
            };
            let config = ServerConfig::default()
                .with_idle_timeout(Duration::from_secs(1))
                .with_relay(*relay);
            let engine = Server::builder(store).config(config).build();
            server = Some(engine.clone());
            let target = if *websocket {
                let listener =
                    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
                let addr = listener.local_addr()?;
                let app = teleportal::axum::router(engine);
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).await });
                Target::Ws(vec![format!("ws://{addr}")])
            } else {
                Target::Channels(engine)
            };
            (target, None)
        }
    };
    let measure_memory = server.is_some() || pid.is_some();

    let (figures, total) = tokio::time::timeout(
        args.timeout,
        run_workload(&target, &args.workload, args.in_flight),
    )
    .await
    .map_err(|_| format!("the run took longer than {:?}", args.timeout))??;
    drop(target);
    let peak = if measure_memory {
        Some(memory(pid)?.0)
    } else {
        None
    };

    // Idle: every client is gone; wait for the sessions to unload.
    let idle = if let Some(server) = &server {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.open_documents().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.store().idle().await;
        Some(memory(None)?.1)
    } else if let Some(pid) = pid {
        tokio::time::sleep(args.idle_wait).await;
        Some(memory(Some(pid))?.1)
    } else {
        None
    };
    if let Some(server) = server
        && let Err(error) = server.shutdown(Duration::from_secs(10)).await
    {
        eprintln!("loadgen: the in-process server did not shut down cleanly: {error}");
    }
    drop(temp);

    let seconds = (figures.last_receive.saturating_sub(figures.first_send)) as f64 / 1e9;
    let rate = figures.updates as f64 / seconds.max(1e-9);
    let mb = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{} updates, {} deliveries in {seconds:.3} s",
        figures.updates,
        figures.latencies_ns.len()
    );
    if let Some(total) = total {
        println!(
            "total {:.3} s (connect, sync, updates and delivery)",
            total.as_secs_f64()
        );
    }
    println!(
        "updates/s {rate:.0}, delivery p50 {:.3} ms, p99 {:.3} ms, server peak RSS {} MB, idle RSS {} MB",
        percentile_ms(&figures.latencies_ns, 50),
        percentile_ms(&figures.latencies_ns, 99),
        mb(peak),
        mb(idle),
    );
    Ok(())
}
