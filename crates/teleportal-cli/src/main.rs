//! `teleportal`: a Y.js sync server for Teleportal and y-websocket clients, a token minter for
//! it, and a message inspector.
//!
//! ```sh
//! teleportal serve --data ./data                 # SQLite in ./data, ws://127.0.0.1:1234
//! teleportal token --jwt-secret S --user alice --allow 'notes/*=read,write'
//! teleportal inspect 594a5301066d792d646f63000003
//! ```
//!
//! Every flag is also an environment variable (`TELEPORTAL_*`, listed by `--help`), so a
//! container or a unit file configures the server without a command line.

mod inspect;
mod jwt;
mod keygen;
mod logging;
mod serve;
mod token;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use teleportal_core::ErrorChain;

// The library leaves the allocator to the binary. glibc's malloc kept what 2,000 connections
// had freed in its per-thread arenas (idle RSS stayed at the ~65 MB peak until `malloc_trim`);
// jemalloc's background threads hand freed pages back to the OS, so an idle server shrinks to
// ~19 MB (docs/benchmarks.md, W4).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What a failed command prints and how it exits.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ABOUT: &str = "A Y.js sync server for Teleportal and y-websocket clients";

const LONG_ABOUT: &str = "A Y.js (CRDT) sync server for Teleportal and standard y-websocket \
clients, with durable storage (embedded SQLite by default, PostgreSQL, S3), clustering over \
Redis or NATS, JWT permissions and rate limits.";

const AFTER_HELP: &str = "\
Examples:
  teleportal serve --data ./data
      Serve on ws://127.0.0.1:1234, documents in ./data/teleportal.sqlite3.
  teleportal serve --jwt-secret \"$SECRET\" --rate-limit 50
      Require a token in ?token= and allow each user 50 messages a second.
  teleportal token --jwt-secret \"$SECRET\" --user alice --allow 'notes/*=read,write'
      Mint a token that `serve --jwt-secret \"$SECRET\"` accepts.
  echo 594a5301066d792d646f63000003 | teleportal inspect
      Show a message as JSON.

Exit status: 0 on success (a server that shut down on Ctrl-C or SIGTERM included), 1 when \
running failed (a store or bus unreachable, the address taken), 2 when the command line or a \
file it names is wrong.";

#[derive(Debug, Parser)]
#[command(
    name = "teleportal",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sync server.
    Serve(Box<serve::ServeArgs>),
    /// Mint a JWT for `serve --jwt-secret` (or an asymmetric key pair).
    Token(token::TokenArgs),
    /// Show Teleportal and y-protocols messages as JSON, or JSON as bytes.
    Inspect(inspect::InspectArgs),
    /// Make a key for `serve --encryption-key-file`.
    Keygen(keygen::KeygenArgs),
}

/// Why a command failed, which decides its exit status.
#[derive(Debug)]
enum Failure {
    /// The command line, or a file or variable it names, is wrong: exit status 2, as for a
    /// usage error clap reports.
    Usage(BoxError),
    /// Running failed (a store or bus unreachable, the address taken): exit status 1.
    Run(BoxError),
}

impl Failure {
    fn usage(error: impl Into<BoxError>) -> Self {
        Failure::Usage(error.into())
    }

    fn run(error: impl Into<BoxError>) -> Self {
        Failure::Run(error.into())
    }
}

/// An error with what was being done when it happened; the error stays its source, so the
/// printed chain shows both.
#[derive(Debug)]
struct Context {
    what: String,
    source: BoxError,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Wraps a running failure with what was being done: `.map_err(context("cannot listen"))`.
fn context<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> Failure {
    let what = what.into();
    move |error| {
        Failure::Run(Box::new(Context {
            what,
            source: error.into(),
        }))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::main(*args),
        Command::Token(args) => token::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Keygen(args) => keygen::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (code, error) = match &failure {
                Failure::Usage(error) => (2, error),
                Failure::Run(error) => (1, error),
            };
            eprintln!("teleportal: error: {}", ErrorChain::new(&**error));
            ExitCode::from(code)
        }
    }
}
