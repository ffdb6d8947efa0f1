//! The `loadgen` example runs a tiny workload in process and reports every update delivered;
//! with several `--ws` URLs, across the nodes of a cluster (PostgreSQL and Redis: without them
//! that test skips, or fails under `CI`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Runs loadgen with `args`; returns its stdout, asserting it exited 0.
fn loadgen(args: &[&str]) -> String {
    let output = Command::new(example("loadgen"))
        .args(args)
        .output()
        .expect("run the loadgen example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "loadgen {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The numbers of `updates/s N, delivery p50 X ms, p99 Y ms, server peak RSS A MB, idle RSS B MB`.
fn last_line_figures(stdout: &str) -> [f64; 5] {
    let last = stdout.lines().last().unwrap_or_default();
    let parse = || -> Option<[f64; 5]> {
        let rest = last.strip_prefix("updates/s ")?;
        let (rate, rest) = rest.split_once(", delivery p50 ")?;
        let (p50, rest) = rest.split_once(" ms, p99 ")?;
        let (p99, rest) = rest.split_once(" ms, server peak RSS ")?;
        let (peak, rest) = rest.split_once(" MB, idle RSS ")?;
        let idle = rest.strip_suffix(" MB")?;
        Some([
            rate.parse().ok()?,
            p50.parse().ok()?,
            p99.parse().ok()?,
            peak.parse().ok()?,
            idle.parse().ok()?,
        ])
    };
    parse().unwrap_or_else(|| panic!("unexpected last line: {last:?}"))
}

#[test]
fn one_document_burst_delivers_every_update_to_every_receiver() {
    let stdout = loadgen(&[
        "--in-process",
        "--timeout",
        "60",
        "one-doc",
        "--clients",
        "3",
        "--updates",
        "50",
        "--burst",
    ]);
    // 50 updates, each to the 2 receivers.
    assert!(
        stdout.contains("50 updates, 100 deliveries in "),
        "{stdout}"
    );
    let [rate, p50, p99, peak, idle] = last_line_figures(&stdout);
    assert!(rate > 0.0 && p50 >= 0.0 && p99 >= p50, "{stdout}");
    assert!(peak > 0.0 && idle > 0.0, "{stdout}");
}

#[test]
fn many_documents_deliver_every_update() {
    let stdout = loadgen(&[
        "--in-process",
        "--memory",
        "--timeout",
        "60",
        "many-docs",
        "--docs",
        "5",
        "--clients-per-doc",
        "2",
        "--updates",
        "4",
    ]);
    assert!(stdout.contains("20 updates, 20 deliveries in "), "{stdout}");
    assert!(stdout.contains("\ntotal "), "{stdout}");
    last_line_figures(&stdout);
}

#[test]
fn loadgen_rejects_a_missing_workload() {
    let output = Command::new(example("loadgen"))
        .arg("--in-process")
        .output()
        .expect("run the loadgen example");
    assert!(!output.status.success());
}

/// Two `server` nodes on one PostgreSQL schema and Redis pub/sub; `--ws A,B` puts the writer
/// and two receivers on A, two receivers on B, which get every update through Redis.
#[cfg(all(unix, feature = "postgres", feature = "redis"))]
#[test]
fn one_document_across_two_nodes_delivers_every_update() {
    use support::{ServerProcess, TestSchema, database_url, redis_url, run_id, service_reachable};

    if !service_reachable("Redis", &redis_url()) {
        return;
    }
    let run = run_id();
    let Some(schema) = TestSchema::new(&format!("teleportal_loadgen_{run}")) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let nodes: Vec<ServerProcess> = (1..=2)
        .map(|n| {
            ServerProcess::start_with(
                data.path(),
                &[
                    "--storage",
                    &database_url(),
                    "--schema",
                    &schema.name,
                    "--pubsub",
                    &redis_url(),
                    "--node-id",
                    &format!("loadgen{n}-{run}"),
                ],
            )
        })
        .collect();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let stdout = loadgen(&[
        "--ws",
        &urls.join(","),
        "--server-pid",
        &nodes[0].pid().to_string(),
        "--idle-wait",
        "0",
        "--timeout",
        "60",
        "one-doc",
        "--clients",
        "5",
        "--updates",
        "50",
        "--burst",
    ]);
    // 50 updates, each to the 4 receivers.
    assert!(
        stdout.contains("50 updates, 200 deliveries in "),
        "{stdout}"
    );
    last_line_figures(&stdout);
    drop(nodes);
    drop(schema);
}
