//! Every shared vector (the repository's copy) passes through the `vectors` example, as a user would run it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_vector_files() -> Vec<PathBuf> {
    // The repository's copy of the shared vectors (`.ci/run` compares it with the originals).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/teleportal-core/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-v1.json"))
        .collect();
    files.sort();
    files
}

/// `cargo test` builds the examples next to the test binaries: target/<profile>/examples.
fn example(name: &str) -> PathBuf {
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

#[test]
fn every_shared_vector_passes_through_the_vectors_example() {
    let files = shared_vector_files();
    assert!(
        files.len() >= 2,
        "expected the wire and y-protocols vector files, found {files:?}"
    );
    let output = Command::new(example("vectors"))
        .args(&files)
        .output()
        .expect("run the vectors example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success(),
        "vectors example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| {
            Some((
                p.parse::<usize>().ok()?,
                f.strip_suffix(" failed")?.parse::<usize>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("last line is not `N passed, N failed`: {last:?}"));
    assert_eq!(failed, 0, "{stdout}");
    // 292 wire vectors + 27 y-protocols vectors in the v1 files.
    assert!(passed >= 319, "only {passed} vectors checked");
}

#[test]
fn vectors_example_reports_a_wrong_vector_as_a_failure() {
    let dir = std::env::temp_dir().join(format!("teleportal-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("broken-v1.json");
    // sync-done with a hex that is really sync-step-1, and a negative vector that decodes fine.
    std::fs::write(
        &file,
        r#"{"format":"teleportal-wire-vectors","format_version":1,"count":2,"vectors":[
        {"name":"wrong","category":"message","fields":{"type":"doc","document":"my-doc","encrypted":false,"payload":{"type":"sync-done"}},"hex":"594a5301066d792d646f630000000100","roundtrip":"ok"},
        {"name":"accepted_negative","category":"negative","fields":{"decoder":"message"},"hex":"594a5301066d792d646f63000003"}]}"#,
    )
    .expect("write vector file");
    let output = Command::new(example("vectors"))
        .arg(&file)
        .output()
        .expect("run the vectors example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains("FAIL") && stdout.contains("wrong"),
        "{stdout}"
    );
    assert!(stdout.contains("accepted_negative"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("0 passed, 2 failed"));
    std::fs::remove_dir_all(&dir).ok();
}
