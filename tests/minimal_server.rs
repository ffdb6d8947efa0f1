//! `examples/minimal_server.rs` with an unmodified y-websocket client: an edit is served back
//! to a second client and survives a Ctrl-C and a restart on the same data directory.
#![cfg(unix)]

mod support;

use std::process::Command;

use support::{real_clients_available, run_client, start_listening};

#[test]
fn an_edit_survives_a_graceful_restart() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let args = ["127.0.0.1:0".as_ref(), data.path().as_os_str()];
    let (mut server, url) = start_listening("minimal_server", &args);
    let wrote = run_client(&url, "notes", &["insert:hello", "flush"]);
    assert_eq!(wrote["content"], "hello");
    let read = run_client(&url, "notes", &["print"]);
    assert_eq!(read["content"], "hello");

    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert!(
        server.wait().expect("wait").success(),
        "a clean exit on Ctrl-C"
    );

    let (mut server, url) = start_listening("minimal_server", &args);
    let after = run_client(&url, "notes", &["print"]);
    assert_eq!(after["content"], "hello");
    let _ = server.kill();
    let _ = server.wait();
}
