//! Runs the `teleportal` binary's server and real y-websocket clients (`tests/js/client.mjs`) for the
//! real-client tests, and finds the services (PostgreSQL, Redis, NATS) the cluster tests use.
#![allow(dead_code, unreachable_pub)] // each test binary uses its own part of the helpers

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn js_dir() -> PathBuf {
    repository().join("tests/js")
}

/// Whether node and the npm packages of `tests/js` are there. Without them the test is
/// skipped (returns `false`) and says why, unless `CI` is set: then it fails.
pub fn real_clients_available() -> bool {
    let why = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            if js_dir().join("node_modules/y-websocket").is_dir() {
                return true;
            }
            "tests/js/node_modules is missing: run `npm ci` in tests/js".to_owned()
        }
        Ok(out) => format!("`node --version` failed with {}", out.status),
        Err(e) => format!("node is not installed ({e})"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "real y-websocket clients are required under CI: {why}"
    );
    eprintln!("skipping: {why}");
    false
}

/// The `teleportal` binary (crates/teleportal-cli): `cargo test --workspace` builds it, for
/// the CLI's own integration tests, into target/<profile>, beside the test binaries' `deps`.
pub fn teleportal_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(format!("teleportal{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test --workspace` (which builds it for the CLI's \
         tests) or `cargo build -p teleportal-cli` first",
        path.display()
    );
    path
}

/// The example `name`: `cargo test` builds the examples next to the test binaries, in
/// target/<profile>/examples.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test` (which builds the examples when it builds \
         every test) or `cargo build --all-features --examples` first",
        path.display()
    );
    path
}

/// Starts the example `name` with `args` and reads its first line, which must be
/// `listening on <url>`; returns the process (its stdout read no further) and the URL.
pub fn start_listening(name: &str, args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {name} example: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read its first line");
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

/// `teleportal serve` on a free port; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `ws://127.0.0.1:<port>`.
    pub url: String,
    data: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    // Kept open so the server never writes into a closed pipe; read by `admin_addr`.
    stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts the server on port 0 with its data in `data`, and waits for its
    /// `listening on ws://<addr>` line.
    pub fn start(data: &Path) -> ServerProcess {
        ServerProcess::start_with(data, &[])
    }

    /// As [`ServerProcess::start`], with `extra` arguments (anything but `--listen`) after
    /// `--data DIR`.
    pub fn start_with(data: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_with_env(data, extra, &[])
    }

    /// As [`ServerProcess::start_with`], with environment variables for the server (kept for
    /// restarts).
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let extra: Vec<String> = extra.iter().map(|&a| a.to_owned()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (child, url, stdout) = spawn_server(data, &extra, &env, "127.0.0.1:0")
            .unwrap_or_else(|why| panic!("server {extra:?} did not start: {why}"));
        ServerProcess {
            child,
            url,
            data: data.to_owned(),
            extra,
            env,
            stdout,
        }
    }

    /// The address of the admin endpoints, from the line `--admin-listen` makes the server
    /// print after its first (`admin on http://ADDR`).
    pub fn admin_addr(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the server's second line");
        line.trim_end()
            .strip_prefix("admin on http://")
            .unwrap_or_else(|| panic!("not the admin line: {line:?}"))
            .to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the server abruptly with SIGKILL (no graceful shutdown, connections drop
    /// without a close frame) and waits for it to be gone.
    pub fn kill(&mut self) {
        // `Child::kill` is SIGKILL on Unix; an error means it had exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new process with the same arguments on the same address, so clients that
    /// reconnect to [`ServerProcess::url`] find it again; kills the old one first if it still
    /// runs. Retries for a few seconds while the port is not free yet.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self
            .url
            .strip_prefix("ws://")
            .expect("ws:// URL")
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn_server(&self.data, &self.extra, &self.env, &addr) {
                Ok((child, url, stdout)) => {
                    assert_eq!(url, self.url, "restarted on another address");
                    self.child = child;
                    self.stdout = stdout;
                    return;
                }
                Err(why) if Instant::now() < deadline => {
                    eprintln!("restarting the server on {addr}: {why}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => panic!("server {:?} did not restart on {addr}: {why}", self.extra),
            }
        }
    }

    /// Sends SIGTERM and waits for the graceful shutdown to finish.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        wait_with_deadline(&mut self.child, Duration::from_secs(20))
    }
}

/// Starts the server listening on `listen`; returns it, its URL and its stdout once it
/// printed `listening on ws://<addr>`, or why it did not.
fn spawn_server(
    data: &Path,
    extra: &[String],
    env: &[(String, String)],
    listen: &str,
) -> Result<(Child, String, BufReader<ChildStdout>), String> {
    let mut child = Command::new(teleportal_binary())
        .args(["serve", "--data"])
        .arg(data)
        .args(extra)
        // Warnings only, unless the test asks: the server's log goes to the test's stderr.
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["--listen", listen])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start teleportal serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read the server's first line");
    let Some(url) = line.trim_end().strip_prefix("listening on ") else {
        let status = child.wait().expect("wait for the server");
        return Err(format!(
            "first line is not `listening on ws://…` but {line:?}; it exited with {status} \
             (see its stderr above)"
        ));
    };
    assert!(url.starts_with("ws://"), "{url}");
    Ok((child, url.to_owned(), stdout))
}

/// Whether the TCP service named by `url` (`scheme://[user@]host:port[/…]`) accepts
/// connections. When it does not, the test is skipped (returns `false`) and says why, unless
/// `CI` is set: then it fails.
pub fn service_reachable(what: &str, url: &str) -> bool {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let reached = host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_owned()))
        .and_then(|addr| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())
        });
    match reached {
        Ok(_) => true,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {what} at {url} is unreachable: {why}"
            );
            eprintln!("skipping: no {what} at {url}: {why}");
            false
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `client.mjs`: its steps print one JSON line each.
#[derive(Debug)]
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    document: String,
}

impl Client {
    /// Starts a y-websocket client on `document` that runs `steps` (see `tests/js/client.mjs`).
    pub fn spawn(url: &str, document: &str, steps: &[&str]) -> Client {
        Client::spawn_with_timeout(url, document, steps, Duration::from_secs(10))
    }

    /// As [`Client::spawn`], with `timeout` for each step instead of 10 s (`TIMEOUT_MS`).
    pub fn spawn_with_timeout(
        url: &str,
        document: &str,
        steps: &[&str],
        timeout: Duration,
    ) -> Client {
        let mut child = Command::new("node")
            .arg(js_dir().join("client.mjs"))
            .arg(url)
            .arg(document)
            .args(steps)
            .env("TIMEOUT_MS", timeout.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Client {
            child,
            stdin,
            stdout,
            document: document.to_owned(),
        }
    }

    /// Reads step lines until the step named `step` finished; returns its line.
    pub fn until_step(&mut self, step: &str) -> Value {
        loop {
            let mut line = String::new();
            let read = self
                .stdout
                .read_line(&mut line)
                .expect("read client output");
            assert!(
                read > 0,
                "client on {} exited before step {step}: {:?}",
                self.document,
                self.child.wait()
            );
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("client printed {line:?}: {e}"));
            if value["step"] == step {
                return value;
            }
        }
    }

    /// Lets a client waiting in its `stdin` step go on.
    pub fn resume(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(b"\n").expect("write to client");
        stdin.flush().expect("flush client stdin");
    }

    /// Ends the client abruptly (SIGKILL): its connection drops without a goodbye.
    pub fn kill(mut self) {
        self.child.kill().expect("kill client");
        let _ = self.child.wait();
    }

    /// Waits for the client to run all its steps and exit; returns its last line.
    pub fn finish(mut self) -> Value {
        let mut last = None;
        let mut line = String::new();
        while self
            .stdout
            .read_line(&mut line)
            .expect("read client output")
            > 0
        {
            last = Some(line.clone());
            line.clear();
        }
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(30));
        assert!(
            status.success(),
            "client on {} failed ({status}); see its stderr above",
            self.document
        );
        let last = last.expect("client printed nothing");
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("client printed {last:?}: {e}"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client to the end and returns its last line.
pub fn run_client(url: &str, document: &str, steps: &[&str]) -> Value {
    Client::spawn(url, document, steps).finish()
}

/// PostgreSQL for the cluster tests: `DATABASE_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Redis: `REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// NATS (with JetStream): `NATS_URL`, default `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Lowercase hex no other run or test shares: for schemas, documents and node ids.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Runs `future` to completion on a runtime of its own, in a thread of its own: callable from
/// plain tests, from inside a test's runtime (which must not be blocked on) and from `Drop`.
/// `Err` if it panicked.
fn on_own_runtime<F>(future: F) -> std::thread::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for PostgreSQL")
            .block_on(future)
    })
    .join()
}

/// A PostgreSQL schema for one test, named by the test (the servers create it), dropped when
/// this is dropped, also when the test panics. Drop it after the servers using it.
#[derive(Debug)]
pub struct TestSchema {
    /// A plain identifier: lowercase letters, digits and `_`.
    pub name: String,
}

impl TestSchema {
    /// `Some` when PostgreSQL answers; `None` (after saying why) when it does not and `CI` is
    /// unset. Under `CI` a missing server fails the test.
    pub fn new(name: &str) -> Option<TestSchema> {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "schema name {name:?} is not a plain identifier"
        );
        let probe = on_own_runtime(async {
            tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
                .await
                .map(drop)
        })
        .expect("the PostgreSQL probe panicked");
        match probe {
            Ok(()) => Some(TestSchema {
                name: name.to_owned(),
            }),
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: no PostgreSQL at {}: {error}", database_url());
                None
            }
            Err(error) => panic!(
                "CI is set but PostgreSQL at {} is unusable: {error}",
                database_url()
            ),
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let schema = self.name.clone();
        let dropped = on_own_runtime(async move {
            let (client, connection) =
                match tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await {
                    Ok(pair) => pair,
                    Err(error) => {
                        eprintln!("warning: cannot drop test schema {schema}: {error}");
                        return;
                    }
                };
            let driver = tokio::spawn(connection);
            // A server still holding a lock (not dropped first) must not hang the test.
            // `schema` was checked to be a plain identifier.
            let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
            if let Err(error) = client.batch_execute(&sql).await {
                eprintln!("warning: cannot drop test schema {schema}: {error}");
            }
            drop(client);
            let _ = driver.await;
        });
        // No panic here: this may run while the test unwinds.
        if dropped.is_err() {
            eprintln!("warning: dropping test schema {} panicked", self.name);
        }
    }
}
