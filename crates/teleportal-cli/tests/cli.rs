//! The `teleportal` binary as an operator runs it: its help, its exit statuses, tokens from
//! `teleportal token` against `teleportal serve`, the log lines a refusal and a failed store
//! leave, and encryption at rest on the files it writes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

const BIN: &str = env!("CARGO_BIN_EXE_teleportal");

fn teleportal(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run teleportal")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_help_lists_every_setting_with_its_environment_variable() {
    let output = teleportal(&["serve", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    // Each option's entry runs from its `--flag` line to the next one; all but help and
    // version name their variable.
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        // An option's own line is indented 2 (`-h, --help`) or 6 (`--flag`) spaces, its
        // description 10.
        let trimmed = line.trim_start();
        if line.starts_with("      --") || line.starts_with("  -") && !line.starts_with("   ") {
            let flag = trimmed
                .split([' ', '=', ','])
                .find(|w| w.starts_with("--"))
                .unwrap_or(trimmed)
                .to_owned();
            entries.push((flag, String::new()));
        }
        if let Some((_, text)) = entries.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let names: Vec<&str> = entries.iter().map(|(f, _)| f.as_str()).collect();
    for expected in [
        "--listen",
        "--data",
        "--storage",
        "--files",
        "--pubsub",
        "--node-id",
        "--jwt-secret",
        "--jwt-public-key",
        "--rate-limit",
        "--max-message-size",
        "--document-size-warning",
        "--document-size-limit",
        "--idle-timeout",
        "--encryption-key-file",
        "--write-batching",
        "--log-format",
        "--shutdown-timeout",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from:\n{help}"
        );
    }
    for (flag, text) in &entries {
        if flag == "--help" || flag == "--version" {
            continue;
        }
        assert!(
            text.contains("[env: TELEPORTAL_"),
            "{flag} has no TELEPORTAL_* variable in:\n{text}"
        );
    }
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn a_wrong_value_is_a_usage_error_that_says_what_to_write() {
    let output = teleportal(&["serve", "--max-message-size", "12 parsecs"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unknown size unit"),
        "{}",
        stderr(&output)
    );

    let output = teleportal(&["serve", "--storage", "mysql://db"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("expected postgres://"),
        "{}",
        stderr(&output)
    );

    let output = teleportal(&["serve", "--encryption-key-file", "/nonexistent/keys.txt"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("/nonexistent/keys.txt"),
        "{}",
        stderr(&output)
    );
}

/// A `teleportal serve` on a free port, with its stderr kept for the test to read.
struct Serve {
    child: Child,
    addr: String,
    stderr: Option<ChildStderr>,
    // Kept open: the server writes a second line with --admin-listen.
    stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    fn start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start teleportal serve");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line).expect("read the first line");
        let Some(addr) = line.trim_end().strip_prefix("listening on ws://") else {
            let mut err = String::new();
            let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
            panic!("serve did not start: {line:?}\n{err}");
        };
        Serve {
            addr: addr.to_owned(),
            stderr: child.stderr.take(),
            stdout,
            child,
        }
    }

    /// The admin address from the second stdout line (`admin on http://ADDR`).
    fn admin_addr(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the second line");
        line.trim_end()
            .strip_prefix("admin on http://")
            .unwrap_or_else(|| panic!("not the admin line: {line:?}"))
            .to_owned()
    }

    /// SIGTERM, then everything it logged.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll") {
                break status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut log = String::new();
        let _ = self.stderr.take().expect("piped").read_to_string(&mut log);
        assert!(status.success(), "serve exited with {status}:\n{log}");
        log
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP status of a WebSocket upgrade to `url` (101 when it is accepted).
async fn upgrade_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("connecting to {url}: {other}"),
    }
}

#[tokio::test]
async fn tokens_from_teleportal_token_open_serve_and_refusals_are_logged() {
    let data = tempfile::tempdir().unwrap();
    let secret = "a-test-secret-of-some-length";
    let server = Serve::start(
        data.path(),
        &[],
        &[("TELEPORTAL_JWT_SECRET", secret), ("RUST_LOG", "info")],
    );
    let minted = teleportal(&[
        "token",
        "--jwt-secret",
        secret,
        "--user",
        "alice",
        "--allow",
        "notes/*=read,write",
    ]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWT: {token}");

    let base = format!("ws://{}", server.addr);
    assert_eq!(
        upgrade_status(&format!("{base}/notes/today?token={token}")).await,
        101
    );
    assert_eq!(upgrade_status(&format!("{base}/?token={token}")).await, 101);
    assert_eq!(
        upgrade_status(&format!("{base}/drafts/x?token={token}")).await,
        403,
        "the token does not grant drafts/*"
    );
    let forged = teleportal(&[
        "token",
        "--jwt-secret",
        "another-secret",
        "--user",
        "mallory",
        "--allow",
        "*=admin",
    ]);
    let forged = stdout(&forged).trim().to_owned();
    assert_eq!(
        upgrade_status(&format!("{base}/notes/today?token={forged}")).await,
        401
    );
    assert_eq!(upgrade_status(&format!("{base}/notes/today")).await, 401);

    let log = server.stop();
    assert!(log.contains("created a new SQLite store"), "{log}");
    assert!(
        log.contains("refused a connection: invalid token")
            && log.contains("signature verification failed"),
        "the refusal and its reason:\n{log}"
    );
    assert!(log.contains("missing token"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn a_damaged_database_stops_the_start_with_its_cause() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("teleportal.sqlite3"),
        b"this is not an SQLite database, not even its header".repeat(100),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start teleportal serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started on a damaged database");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("its output");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(stdout(&output).is_empty(), "it never listened");
    assert!(err.contains("cannot open the SQLite store"), "{err}");
    assert!(
        err.contains("not a database"),
        "the cause from SQLite itself:\n{err}"
    );
}

/// A y-protocols sync-step-2 carrying `update` (message type 0, sync type 2, var-length data).
fn y_update(update: &[u8]) -> Vec<u8> {
    let mut message = vec![0, 2];
    let mut len = update.len();
    loop {
        let byte = u8::try_from(len & 0x7f).expect("seven bits");
        len >>= 7;
        if len == 0 {
            message.push(byte);
            break;
        }
        message.push(byte | 0x80);
    }
    message.extend_from_slice(update);
    message
}

/// The y-websocket URL of document `notes`.
fn notes(addr: &str) -> String {
    format!("ws://{addr}/notes")
}

/// Writes `text` into document `notes` as a y-websocket client, then reads the document back
/// on a second connection until the text arrives, so the server has it before it is stopped.
/// A Yjs update from a new client inserting `text` at the start of root text `t`.
fn text_update(text: &str) -> Vec<u8> {
    use yrs::{Doc, Text, Transact};
    let doc = Doc::new();
    let root = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    root.insert(&mut txn, 0, text);
    txn.encode_update_v1()
}

async fn write_and_read_back(addr: &str, text: &str) {
    let (mut writer, _) = tokio_tungstenite::connect_async(notes(addr)).await.unwrap();
    writer
        .send(Message::Binary(y_update(&text_update(text)).into()))
        .await
        .unwrap();
    read_back(addr, text).await;
}

/// Connects to `notes` until the document the server sends holds `text`.
async fn read_back(addr: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if document_text(addr).await.is_some_and(|t| t.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never served {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `notes` as the server's sync-step-2 answer has it, if one came within 2 s.
async fn document_text(addr: &str) -> Option<String> {
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, Transact, Update};
    let (mut reader, _) = tokio_tungstenite::connect_async(notes(addr)).await.ok()?;
    // Sync step 1 with an empty state vector: "send me everything".
    reader
        .send(Message::Binary(vec![0, 0, 1, 0].into()))
        .await
        .ok()?;
    let answer = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(message)) = reader.next().await {
            if let Message::Binary(bytes) = message
                && bytes.starts_with(&[0, 1])
            {
                return Some(bytes);
            }
        }
        None
    })
    .await
    .ok()??;
    let (len, at) = read_var_uint(&answer[2..])?;
    let update = Update::decode_v1(answer.get(2 + at..2 + at + len)?).ok()?;
    let copy = Doc::new();
    let root = copy.get_or_insert_text("t");
    copy.transact_mut().apply_update(update).ok()?;
    let text = root.get_string(&copy.transact());
    Some(text)
}

/// A lib0 var-uint at the start of `bytes`: its value and its length.
fn read_var_uint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(9) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Every byte under `dir` (the database, its WAL, files).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn with_a_key_file_nothing_stored_holds_the_plaintext() {
    const SECRET_TEXT: &str = "the-quarterly-numbers-nobody-may-read";
    let keys = tempfile::NamedTempFile::new().unwrap();
    let keygen = teleportal(&["keygen", "--id", "k1"]);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    std::fs::write(keys.path(), stdout(&keygen)).unwrap();

    // The control: without a key the text is in the files, so the search below can find it.
    let plain = tempfile::tempdir().unwrap();
    let server = Serve::start(plain.path(), &[], &[]);
    write_and_read_back(&server.addr, SECRET_TEXT).await;
    server.stop();
    assert!(contains(&all_bytes(plain.path()), SECRET_TEXT));

    let sealed = tempfile::tempdir().unwrap();
    let key_file = keys.path().to_str().unwrap();
    let server = Serve::start(
        sealed.path(),
        &["--encryption-key-file", key_file],
        &[("RUST_LOG", "info")],
    );
    write_and_read_back(&server.addr, SECRET_TEXT).await;
    let log = server.stop();
    assert!(log.contains("encryption at rest on"), "{log}");
    assert!(!contains(&all_bytes(sealed.path()), SECRET_TEXT));

    // The same key reads it back after a restart.
    let server = Serve::start(sealed.path(), &["--encryption-key-file", key_file], &[]);
    read_back(&server.addr, SECRET_TEXT).await;
    server.stop();
}

/// The value of `series` (its name and labels, then a space) in a scrape.
fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{scrape}"))
}

/// `GET path` on `addr`: the status code and the body.
async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_with(addr, path, "").await
}

/// `GET path` on `addr` with `headers` (each ending in CRLF): the status code and the body.
async fn http_get_with(addr: &str, path: &str, headers: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (code, body.unwrap_or_default())
}

#[tokio::test]
async fn the_admin_listener_answers_health_ready_and_status_with_real_traffic() {
    let data = tempfile::tempdir().unwrap();
    let limits = [
        "--admin-listen",
        "127.0.0.1:0",
        "--document-size-warning",
        "1KiB",
        "--document-size-limit",
        "8KiB",
    ];
    let mut server = Serve::start(data.path(), &limits, &[]);
    let admin = server.admin_addr();
    assert_eq!(http_get(&admin, "/health").await.0, 200);
    let (code, body) = http_get(&admin, "/ready").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""ready":true"#), "{body}");

    let (_first, _) = tokio_tungstenite::connect_async(notes(&server.addr))
        .await
        .unwrap();
    let (_second, _) = tokio_tungstenite::connect_async(format!("ws://{}/drafts", server.addr))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, body) = http_get(&admin, "/status").await;
        assert_eq!(code, 200);
        if body.contains(r#""connections":2"#) && body.contains(r#""openDocuments":2"#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the two clients: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A write through y-websocket and the two connections, in Prometheus's terms.
    write_and_read_back(&server.addr, "counted").await;
    let (code, metrics) = http_get(&admin, "/metrics").await;
    assert_eq!(code, 200);
    let value = |series: &str| metric(&metrics, series);
    // The writer and the reader that saw it, beside the two idle clients (more readers may
    // have come and gone while the reader polled).
    assert!(value("teleportal_clients_active ") >= 2.0, "{metrics}");
    assert_eq!(
        value("teleportal_sessions_active "),
        2.0,
        "notes and drafts"
    );
    assert!(
        value(r#"teleportal_messages_total{type="doc"} "#) >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        value("teleportal_documents_opened_total "),
        2.0,
        "each opened once"
    );
    // Every reason is a series from the start, so alerts need no `absent()`.
    value(r#"teleportal_connections_closed_total{reason="send_queue_full"} "#);
    promtool_accepts(&metrics);
    assert_eq!(value("teleportal_document_size_warning_total "), 0.0);
    // Clients may see an update before it is durable (relay before durable): the append's
    // count follows.
    let appends_ok = r#"teleportal_storage_operations_total{operation="append",result="ok"} "#;
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&http_get(&admin, "/metrics").await.1, appends_ok) < 1.0 {
        assert!(Instant::now() < deadline, "the append was never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 2 KiB crosses the warning once; 10 KiB more would pass the limit and is refused.
    write_and_read_back(&server.addr, &"w".repeat(2048)).await;
    let (mut writer, _) = tokio_tungstenite::connect_async(notes(&server.addr))
        .await
        .unwrap();
    writer
        .send(Message::Binary(
            y_update(&text_update(&"x".repeat(10240))).into(),
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = http_get(&admin, "/metrics").await;
        let value = |series: &str| metric(&metrics, series);
        // The two appends come from two connections: either may be counted first.
        if value("teleportal_document_size_limit_exceeded_total ") == 1.0
            && value("teleportal_document_size_warning_total ") == 1.0
        {
            let rejected =
                r#"teleportal_storage_operations_total{operation="append",result="rejected"} "#;
            assert_eq!(value(rejected), 1.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refusal was never counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !metrics.contains("# EOF"),
        "the classic text format by default"
    );
    let accept = "Accept: application/openmetrics-text; version=1.0.0\r\n";
    let (_, openmetrics) = http_get_with(&admin, "/metrics", accept).await;
    assert!(openmetrics.trim_end().ends_with("# EOF"), "{openmetrics}");

    let (_, status) = http_get(&admin, "/status").await;
    assert!(
        !status.contains(r#""doc":0"#) && status.contains(r#""messages":{"#),
        "the doc messages are counted: {status}"
    );

    // Not on the clients' listener: a document may be called `status`.
    let (code, _) = http_get(&server.addr, "/status").await;
    assert_ne!(code, 200);
    server.stop();
}

/// `promtool check metrics` (Debian's `prometheus` package) finds nothing wrong in `scrape`.
/// Without promtool the check is skipped with a note, except under `CI`, where it fails.
fn promtool_accepts(scrape: &str) {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is required under CI (apt-get install prometheus): {error}"
            );
            eprintln!("skipping the promtool check: promtool is not installed ({error})");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(scrape.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("run promtool");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{scrape}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The test key pairs teleportal-auth's tests use.
fn key(name: &str) -> String {
    format!(
        "{}/../teleportal-auth/tests/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test]
async fn asymmetric_tokens_verify_with_the_public_key_alone_and_the_algorithm_is_read_off_it() {
    for (public, private) in [
        ("ec-public", "ec-private"),
        ("ed25519-public", "ed25519-private"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let server = Serve::start(data.path(), &["--jwt-public-key", &key(public)], &[]);
        let minted = teleportal(&[
            "token",
            "--jwt-public-key",
            &key(public),
            "--jwt-private-key",
            &key(private),
            "--user",
            "ci",
            "--allow",
            "*=admin",
        ]);
        assert!(minted.status.success(), "{public}: {}", stderr(&minted));
        let token = stdout(&minted).trim().to_owned();
        let url = format!("ws://{}/notes?token={token}", server.addr);
        assert_eq!(upgrade_status(&url).await, 101, "{public}");
        server.stop();
    }
    // A private key that is not the public key's pair would mint tokens the server refuses.
    let mismatched = teleportal(&[
        "token",
        "--jwt-public-key",
        &key("rsa-public"),
        "--jwt-private-key",
        &key("rsa-other-private"),
        "--user",
        "ci",
        "--allow",
        "*=read",
    ]);
    assert_eq!(mismatched.status.code(), Some(2), "{}", stderr(&mismatched));
    assert!(
        stderr(&mismatched).contains("a pair"),
        "{}",
        stderr(&mismatched)
    );
    assert!(stdout(&mismatched).is_empty(), "no token printed");
}
