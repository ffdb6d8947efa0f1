//! The `cold_sync` example, as a user runs it: it loads a real Yjs history into the embedded
//! store, reopens it, syncs from an empty state vector and checks the text's SHA-256.
#![cfg(feature = "storage")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `cargo test` builds the examples next to the test binaries: target/<profile>/examples.
fn cold_sync() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("cold_sync{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test`",
        path.display()
    );
    path
}

fn shared_history() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/teleportal-core/fixtures/yjs-history-1k.bin")
}

fn run(args: &[&Path]) -> Output {
    Command::new(cold_sync())
        .args(args)
        .output()
        .expect("run the cold_sync example")
}

#[test]
fn cold_sync_reproduces_the_histories_text() {
    let history = shared_history();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(history.with_extension("json")).expect("history json"),
    )
    .expect("valid json");
    let output = run(&[&history]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let expected_hash = meta["text_sha256"].as_str().expect("text_sha256");
    assert!(
        last.starts_with("cold sync: 1000 updates, ") && last.ends_with(expected_hash),
        "last line: {last:?}"
    );
}

#[test]
fn cold_sync_fails_on_a_text_mismatch() {
    // The same history beside a .json that promises a different text.
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.bin");
    std::fs::copy(shared_history(), &history).expect("copy history");
    std::fs::write(
        dir.path().join("history.json"),
        r#"{"text_name":"content","text_sha256":"00"}"#,
    )
    .expect("write json");
    let output = run(&[&history]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("mismatch"));
}
