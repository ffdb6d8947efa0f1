//! Runs the `server` example and real y-websocket clients (`tests/js/client.mjs`) for the
//! real-client tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses its own part of the helpers

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

fn server_example() -> PathBuf {
    example("server")
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
        "{} is missing: run through `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// The `server` example on a free port; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `ws://127.0.0.1:<port>`.
    pub url: String,
    // Kept open so the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts the server on port 0 with its data in `data`, and waits for its
    /// `listening on ws://<addr>` line.
    pub fn start(data: &Path) -> ServerProcess {
        let mut child = Command::new(server_example())
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the server's first line");
        let url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line is not `listening on ws://…`: {line:?}"))
            .to_owned();
        assert!(url.starts_with("ws://"), "{url}");
        ServerProcess {
            child,
            url,
            _stdout: stdout,
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
        let mut child = Command::new("node")
            .arg(js_dir().join("client.mjs"))
            .arg(url)
            .arg(document)
            .args(steps)
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
