//! `examples/own_server.rs` (a server assembled from the crates: its own identity hook, its
//! own permission rule beside the token's grants, a storage decorator, rate limits) driven by
//! unmodified y-websocket clients: a reader cannot write, a writer's edit persists across a
//! restart, a write under the forbidden `archive/` prefix is refused, and a document the token
//! does not grant is refused before the upgrade.
#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

use support::{real_clients_available, run_client, start_listening};
use teleportal_auth::{DocumentAccess, Permission, TokenConfig};

const SECRET: &str = "own-server-test-secret";
const READ_WRITE: &[Permission] = &[Permission::Read, Permission::Write];

/// The example on a free port; killed when dropped.
struct OwnServer {
    child: Child,
    url: String,
}

impl OwnServer {
    fn start(data: &Path) -> OwnServer {
        let (child, url) = start_listening(
            "own_server",
            &["127.0.0.1:0".as_ref(), data.as_os_str(), SECRET.as_ref()],
        );
        OwnServer { child, url }
    }

    /// Ctrl-C, as a person would stop it; waits for the graceful shutdown.
    fn interrupt(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "own_server exited with {exit}");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(user: &str, grants: &[(&str, &[Permission])]) -> String {
    let tokens = TokenConfig::new(SECRET);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access = grants
        .iter()
        .map(|(pattern, permissions)| DocumentAccess::new(*pattern, permissions))
        .collect();
    tokens
        .mint(&tokens.claims(user, "", Some(access), now))
        .expect("mint")
}

/// The document name y-websocket puts in the path, with the token as the query.
fn room(document: &str, token: &str) -> String {
    format!("{document}?token={token}")
}

fn content(value: &serde_json::Value) -> &str {
    value["content"].as_str().expect("content")
}

#[test]
fn readers_writers_and_forbidden_prefixes_behave_as_the_rules_say() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = OwnServer::start(data.path());
    let writer = token(
        "writer",
        &[("notes", READ_WRITE), ("archive/*", READ_WRITE)],
    );
    let reader = token("reader", &[("notes", &[Permission::Read])]);

    let wrote = run_client(
        &server.url,
        &room("notes", &writer),
        &["insert:kept", "flush"],
    );
    assert_eq!(content(&wrote), "kept");
    // The reader's edit stays local: the server answers permission-denied and stores nothing.
    let read = run_client(
        &server.url,
        &room("notes", &reader),
        &["insert:NOPE", "sleep:300", "print"],
    );
    assert!(content(&read).contains("kept"), "{read}");
    // The token grants `archive/*`; the application's own rule refuses writes there.
    run_client(
        &server.url,
        &room("archive/2025", &writer),
        &["insert:OLD", "sleep:300"],
    );

    let notes = run_client(&server.url, &room("notes", &writer), &["print"]);
    assert_eq!(content(&notes), "kept", "the reader's write was refused");
    let archive = run_client(&server.url, &room("archive/2025", &writer), &["print"]);
    assert_eq!(content(&archive), "", "the archive write was refused");

    // A document the token does not grant: refused before the upgrade (HTTP 403).
    let drafts = format!("{}/{}", server.url, room("drafts", &reader));
    match tungstenite_status(&drafts) {
        Some(403) => {}
        other => panic!("expected 403 for an ungranted document, got {other:?}"),
    }

    // The writer's edit survives a graceful restart.
    server.interrupt();
    let server = OwnServer::start(data.path());
    let after = run_client(&server.url, &room("notes", &reader), &["print"]);
    assert_eq!(content(&after), "kept");
}

/// The HTTP status a WebSocket handshake to `url` was refused with, `None` if it upgraded.
fn tungstenite_status(url: &str) -> Option<u16> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => None,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Some(response.status().as_u16())
            }
            Err(other) => panic!("handshake failed otherwise: {other}"),
        }
    })
}
