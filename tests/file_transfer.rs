//! The `file_transfer` example against `teleportal serve`: a multi-chunk file goes up over a
//! real WebSocket, comes back with a proof per chunk, and is checked byte for byte.

mod support;

use std::process::Command;

use support::ServerProcess;

fn run_transfer(url: &str, extra: &[&str]) -> std::process::Output {
    Command::new(support::example("file_transfer"))
        .args(["--server", url])
        .args(extra)
        .output()
        .expect("run the file_transfer example")
}

#[test]
fn a_generated_file_round_trips_through_teleportal_serve() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(data.path());
    // Three full 1 MiB chunks and a short one.
    let output = run_transfer(&server.url, &["--size", "3145733", "--seed", "7"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "file_transfer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("upload ") && last.contains(" MB/s, download ") && last.ends_with(" MB"),
        "unexpected last line: {last:?}"
    );
    // The same file again is a dedup hit, and still downloads intact.
    let again = run_transfer(&server.url, &["--size", "3145733", "--seed", "7"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn an_unreachable_server_is_a_clear_failure() {
    let output = run_transfer("ws://127.0.0.1:9", &["--size", "10"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("file_transfer: "));
}
