//! Every flag of `teleportal serve`, each with its `TELEPORTAL_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::pubsub::PubSubUrl;
use crate::jwt::JwtArgs;
use crate::logging::LogFormat;
use crate::units::{self, OrOff};

pub(super) const AFTER_HELP: &str = "\
Clients: Teleportal clients connect to ws://ADDR/ (one binary frame per message), y-websocket \
clients to ws://ADDR/<document>, e.g. new WebsocketProvider('ws://127.0.0.1:1234', 'notes', doc).

Once it accepts connections the server prints one line to stdout, `listening on ws://ADDR`, \
with the real port (--listen 127.0.0.1:0 picks a free one); logs go to stderr (RUST_LOG, e.g. \
RUST_LOG=debug or RUST_LOG=teleportal_server=debug). On Ctrl-C or SIGTERM it stops accepting, \
stores and acknowledges what clients sent, closes every client with a reason and closes the \
stores.

Examples:
  teleportal serve --data ./data
      One node, documents in ./data/teleportal.sqlite3, files under ./data/files.
  TELEPORTAL_JWT_SECRET=change-me teleportal serve --rate-limit 50
      Tokens required (mint one with `teleportal token`), 50 messages a second per user.
  teleportal serve --storage postgres://postgres@127.0.0.1/app --pubsub redis://127.0.0.1 --node-id a
      One node of a cluster: every node shares the database and the bus.
  teleportal serve --files 's3://bucket/files?endpoint=http://127.0.0.1:9000&region=us-east-1'
      Finished files in S3 (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
  teleportal serve --encryption-key-file keys.txt
      Everything stored encrypted with AES-256-GCM (make the file with `teleportal keygen`).";

/// `teleportal serve [OPTIONS]`
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(
        long,
        env = "TELEPORTAL_LISTEN",
        default_value = "127.0.0.1:1234",
        value_name = "ADDR"
    )]
    pub(super) listen: SocketAddr,

    /// Serve the operator's endpoints (GET /health, /ready, /status, /metrics) on this address;
    /// /ready answers 503 once a shutdown starts. Printed as a second stdout line,
    /// `admin on http://ADDR`.
    #[arg(long, env = "TELEPORTAL_ADMIN_LISTEN", value_name = "ADDR")]
    pub(super) admin_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub(super) storage: StorageArgs,

    #[command(flatten)]
    pub(super) cluster: ClusterArgs,

    #[command(flatten)]
    pub(super) jwt: JwtArgs,
    /// How far apart the server's and the token issuer's clocks may be when checking `exp`.
    #[arg(
        long,
        env = "TELEPORTAL_JWT_LEEWAY",
        default_value = "0s",
        value_parser = units::duration,
        value_name = "DURATION",
        help_heading = "Tokens (JWT)"
    )]
    pub(super) jwt_leeway: Duration,

    #[command(flatten)]
    pub(super) limits: LimitArgs,

    #[command(flatten)]
    pub(super) sessions: SessionArgs,

    /// How log lines look (RUST_LOG sets which ones; default: the server's own at info).
    #[arg(long, env = "TELEPORTAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, help_heading = "Process")]
    pub(super) log_format: LogFormat,
    /// How long a shutdown may take to store what is queued and close clients before it gives
    /// up; within the 10 s most process managers wait before SIGKILL.
    #[arg(long, env = "TELEPORTAL_SHUTDOWN_TIMEOUT", default_value = "8s", value_parser = units::duration, value_name = "DURATION", help_heading = "Process")]
    pub(super) shutdown_timeout: Duration,
}

/// Where data lives, and the layers over it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Storage")]
pub(crate) struct StorageArgs {
    /// The data directory: the SQLite database (teleportal.sqlite3) and files (files/), created if
    /// missing. With --storage s3://… milestones and uploads in progress stay here.
    #[arg(
        long,
        env = "TELEPORTAL_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub(super) data: PathBuf,
    /// Keep documents elsewhere: postgres://user@host:port/db (documents, milestones and files,
    /// shared by a cluster's nodes) or s3://BUCKET[/PREFIX]?endpoint=…&region=… (documents).
    #[arg(long, env = "TELEPORTAL_STORAGE", value_name = "URL")]
    pub(super) storage: Option<String>,
    /// The PostgreSQL schema, created and migrated if missing.
    #[arg(
        long,
        env = "TELEPORTAL_POSTGRES_SCHEMA",
        default_value = "teleportal",
        value_name = "NAME"
    )]
    pub(super) schema: String,
    /// Keep finished files in S3: s3://BUCKET[/PREFIX]?endpoint=…&region=… (uploads in
    /// progress stay with the other stores).
    #[arg(long, env = "TELEPORTAL_FILES", value_name = "URL")]
    pub(super) files: Option<String>,
    /// Encrypt everything stored (AES-256-GCM) with the keys in FILE: one `ID:HEX` per line,
    /// the first encrypts new records, the others still decrypt old ones (rotation: put a new
    /// key first). Use it from a store's first start: records written without it do not read.
    #[arg(long, env = "TELEPORTAL_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub(super) encryption_key_file: Option<PathBuf>,
    /// The same keys as --encryption-key-file, inline (`ID:HEX`, separated by commas or
    /// newlines), for a secret store that sets environment variables.
    #[arg(
        long,
        env = "TELEPORTAL_ENCRYPTION_KEYS",
        hide_env_values = true,
        value_name = "KEYS",
        conflicts_with = "encryption_key_file"
    )]
    pub(super) encryption_keys: Option<String>,
    /// Buffer appends per document and write them in batches (helps PostgreSQL and S3; SQLite
    /// already commits in groups). An update is still acknowledged only once it is stored.
    #[arg(long, env = "TELEPORTAL_WRITE_BATCHING")]
    pub(super) write_batching: bool,
    /// With --write-batching: the longest an update waits before its batch is written.
    #[arg(
        long,
        env = "TELEPORTAL_WRITE_BATCH_INTERVAL",
        default_value = "10ms",
        value_parser = units::duration,
        value_name = "DURATION",
        requires = "write_batching"
    )]
    pub(super) write_batch_interval: Duration,
    /// With --write-batching: write a document's batch once it holds this many updates.
    #[arg(
        long,
        env = "TELEPORTAL_WRITE_BATCH_MAX_UPDATES",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N",
        requires = "write_batching"
    )]
    pub(super) write_batch_max_updates: u32,
}

/// Several nodes serving the same documents.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cluster")]
pub(crate) struct ClusterArgs {
    /// Join a cluster over a bus: redis://…, nats://… (core NATS) or nats+jetstream://… (a
    /// restarted node replays what it missed). Every node must share the storage.
    #[arg(long, env = "TELEPORTAL_PUBSUB", value_name = "URL", value_parser = PubSubUrl::parse)]
    pub(super) pubsub: Option<PubSubUrl>,
    /// This node's name on the bus, different on every node [default: host name and process
    /// id]. With JetStream it also names the node's durable consumer: keep it across restarts.
    #[arg(long, env = "TELEPORTAL_NODE_ID", value_name = "NAME", value_parser = non_empty)]
    pub(super) node_id: Option<String>,
}

/// What one client or one document may take.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub(crate) struct LimitArgs {
    /// Messages a second each user may send (each connection when anonymous), in bursts of up
    /// to N; acks and pings are free. Over it: a NACK with retryAfter (y-websocket: held back).
    #[arg(long, env = "TELEPORTAL_RATE_LIMIT", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) rate_limit: Option<u32>,
    /// With --rate-limit: refused messages a connection may send before it is closed (1008).
    #[arg(
        long,
        env = "TELEPORTAL_RATE_LIMIT_VIOLATIONS",
        default_value_t = 50,
        value_name = "N",
        requires = "rate_limit"
    )]
    pub(super) rate_limit_violations: u32,
    /// The largest message a client may send; a larger one is refused and its connection closed.
    #[arg(long, env = "TELEPORTAL_MAX_MESSAGE_SIZE", default_value = "16MiB", value_parser = units::memory_bytes, value_name = "SIZE")]
    pub(super) max_message_size: usize,
    /// Log a warning when a document's stored size reaches SIZE (`off`: never).
    #[arg(long, env = "TELEPORTAL_DOCUMENT_SIZE_WARNING", default_value = "10MiB", value_parser = units::optional_bytes, value_name = "SIZE")]
    pub(super) document_size_warning: OrOff<u64>,
    /// Refuse writes that would take a document past SIZE; the document is unchanged and the
    /// writer told (`off`: no limit).
    #[arg(long, env = "TELEPORTAL_DOCUMENT_SIZE_LIMIT", default_value = "100MiB", value_parser = units::optional_bytes, value_name = "SIZE")]
    pub(super) document_size_limit: OrOff<u64>,
}

/// How the engine keeps documents and clients.
#[derive(Debug, Args)]
#[command(next_help_heading = "Sessions")]
pub(crate) struct SessionArgs {
    /// Unload a document from memory this long after its last client left.
    #[arg(long, env = "TELEPORTAL_IDLE_TIMEOUT", default_value = "60s", value_parser = units::duration, value_name = "DURATION")]
    pub(super) idle_timeout: Duration,
    /// Messages queued for one client; a client this far behind is disconnected.
    #[arg(long, env = "TELEPORTAL_SEND_QUEUE", default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) send_queue: u32,
    /// When an update is relayed to the document's other clients: before it is stored (lowest
    /// latency) or after.
    #[arg(long, env = "TELEPORTAL_RELAY", value_enum, default_value_t = Relay::BeforeDurable, value_name = "WHEN")]
    pub(super) relay: Relay,
    /// With --pubsub: how often a document compares its state with the store to catch updates
    /// the bus lost (`off`: never).
    #[arg(long, env = "TELEPORTAL_MISSED_UPDATE_CHECK", default_value = "5s", value_parser = units::optional_duration, value_name = "DURATION")]
    pub(super) missed_update_check: OrOff<Duration>,
    /// Remove uploads left unfinished this long (`off`: keep them).
    #[arg(long, env = "TELEPORTAL_UPLOAD_MAX_AGE", default_value = "24h", value_parser = units::optional_duration, value_name = "DURATION")]
    pub(super) upload_max_age: OrOff<Duration>,
    /// How many recent message ids each document remembers, so a retransmitted message is
    /// acknowledged but applied once.
    #[arg(long, env = "TELEPORTAL_DEDUP_WINDOW", default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) dedup_window: u32,
}

/// [`teleportal_server::RelayMode`], as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Relay {
    /// Relay at once, store in parallel; the writer's ACK still waits for the store.
    BeforeDurable,
    /// Relay only what was stored.
    AfterDurable,
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(text.to_owned())
    }
}
