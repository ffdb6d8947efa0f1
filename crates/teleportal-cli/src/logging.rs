//! The server's log: `tracing` events on stderr, filtered by `RUST_LOG` (default `info`),
//! as readable lines or as one JSON object per line.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line per event for a person at a terminal (colours when stderr is one).
    Human,
    /// One JSON object per event, for a log collector.
    Json,
}

/// What `RUST_LOG` means when it is not set: the server's own events at `info`, and only
/// warnings from the libraries under it (HTTP, the database drivers).
const DEFAULT_FILTER: &str = "warn,teleportal=info,teleportal_server=info,teleportal_axum=info,\
teleportal_storage=info,teleportal_sqlite=info,teleportal_fs=info,teleportal_postgres=info,\
teleportal_s3=info,teleportal_redis=info,teleportal_nats=info,teleportal_auth=info,\
teleportal_pubsub=info";

/// Installs the subscriber. A `RUST_LOG` that does not parse is reported and the default
/// used, rather than refusing to start a server over its logging.
pub(crate) fn init(format: LogFormat) {
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(DEFAULT_FILTER), Some((directives, error))),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    if let Some((directives, error)) = bad_filter {
        tracing::warn!(%directives, %error, "RUST_LOG does not parse; logging at the default levels");
    }
}
