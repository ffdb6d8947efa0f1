//! Unmodified y-websocket clients (npm `yjs` + `y-websocket`, see `tests/js`) against
//! `teleportal serve`, as a user would run it.
//!
//! Needs node and `npm ci` in `tests/js`; without them these tests skip, or fail under `CI`.
#![cfg(unix)] // the server is stopped with SIGTERM

mod support;

use support::{Client, ServerProcess, real_clients_available, run_client};

fn content(line: &serde_json::Value) -> &str {
    line["content"].as_str().expect("content is a string")
}

#[test]
fn three_clients_converge_after_concurrent_edits() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let markers = ["<ann>", "<bob>", "<cid>"];
    let clients: Vec<Client> = markers
        .iter()
        .map(|mine| {
            let mut steps = vec![format!("insert:{mine}")];
            steps.extend(markers.iter().map(|m| format!("wait:{m}")));
            steps.push("print".to_owned());
            let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
            Client::spawn(&server.url, "converge", &steps)
        })
        .collect();
    let finals: Vec<String> = clients
        .into_iter()
        .map(|c| content(&c.finish()).to_owned())
        .collect();
    for marker in markers {
        assert!(finals[0].contains(marker), "{marker} missing: {finals:?}");
    }
    assert!(
        finals.iter().all(|text| *text == finals[0]),
        "clients diverged: {finals:?}"
    );
}

#[test]
fn text_survives_a_server_restart() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    run_client(
        &server.url,
        "notes/restart",
        &["insert:kept across restarts", "flush"],
    );
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown failed: {status}");

    let server = ServerProcess::start(data.path());
    let seen = run_client(&server.url, "notes/restart", &["print"]);
    assert_eq!(content(&seen), "kept across restarts");
}

#[test]
fn awareness_appears_then_disappears_when_its_client_leaves() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let mut alice = Client::spawn(
        &server.url,
        "presence",
        &[r#"awareness:{"name":"alice"}"#, "stdin"],
    );
    alice.until_step("awareness");
    // Bob joins after alice's state was sent: the server must hand it to newcomers.
    let mut bob = Client::spawn(&server.url, "presence", &["peer:alice", "peer-gone:alice"]);
    bob.until_step("peer");
    // No goodbye from alice: the server notices the closed connection and tells bob, well
    // before y-protocols' 30 s timeout would remove the state on bob's side.
    alice.kill();
    bob.finish();
}

#[test]
fn reconnecting_client_catches_up_both_ways() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let mut roamer = Client::spawn(
        &server.url,
        "roaming",
        &[
            "insert:[before]",
            "flush",
            "disconnect",
            "insert:[offline]",
            "stdin",
            "connect",
            "wait:[meanwhile]",
            "flush",
            "print",
        ],
    );
    roamer.until_step("disconnect");
    run_client(
        &server.url,
        "roaming",
        &["wait:[before]", "insert:[meanwhile]", "flush"],
    );
    roamer.resume();
    let roamer = roamer.finish();
    assert!(content(&roamer).contains("[offline]"), "{roamer}");

    // What the roamer wrote offline reached the server on reconnect.
    let fresh = run_client(&server.url, "roaming", &["print"]);
    for part in ["[before]", "[offline]", "[meanwhile]"] {
        assert!(content(&fresh).contains(part), "{part} missing: {fresh}");
    }
}

#[test]
fn connected_client_is_told_why_on_shutdown() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());
    let mut client = Client::spawn(&server.url, "open", &["closed"]);
    client.until_step("synced");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown failed: {status}");
    let closed = client.finish();
    // 1001 "going away": y-websocket reconnects, to this server once it is back.
    assert_eq!(closed["code"], 1001, "{closed}");
    let reason = closed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("shutting down"), "{closed}");
}

/// `GET /metrics` on the admin address; the value of `series` (name and labels, then a space).
fn metric(admin: &str, series: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(admin).expect("connect to the admin address");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    let mut scrape = String::new();
    stream.read_to_string(&mut scrape).expect("read the scrape");
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{scrape}"))
}

#[test]
fn a_write_past_the_size_limit_is_refused_without_a_reconnect_loop() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let limits = [
        "--document-size-limit",
        "4KiB",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let mut server = ServerProcess::start_with(data.path(), &limits);
    let admin = server.admin_addr();
    let big = format!("insert:{}", "x".repeat(8192));
    // The client keeps its edit locally and stays connected for two seconds: long enough for
    // y-websocket to reconnect and resend several times if the server closed it.
    let writer = run_client(&server.url, "big", &[&big, "sleep:2000", "print"]);
    assert_eq!(
        content(&writer).len(),
        8192,
        "the writer keeps its own edit"
    );
    let refused = metric(&admin, "teleportal_document_size_limit_exceeded_total ");
    assert!(
        (1.0..=2.0).contains(&refused),
        "refused once as an update (and at most once more in its sync), not in a loop: {refused}"
    );
    let failed = metric(
        &admin,
        r#"teleportal_connections_closed_total{reason="failed"} "#,
    );
    assert_eq!(failed, 0.0, "the writer was not disconnected");
    let reader = run_client(&server.url, "big", &["print"]);
    assert_eq!(content(&reader), "", "nothing past the limit was stored");
}
