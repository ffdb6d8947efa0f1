//! Kill -9 in the middle of appends: everything acknowledged is there after reopen.
//!
//! The test runs its own binary again as a child writer (selected by an environment variable)
//! that appends from many tasks and prints one line per acknowledged append. The parent reads
//! acknowledgements until it has enough, kills the child with SIGKILL (no destructor, no
//! flush, no close), reopens the store and looks for every acknowledged update. Several rounds
//! run on the same directory, so recovery after a crash is itself crashed into.
//!
//! SIGKILL tests that nothing is acknowledged before its transaction committed and that a
//! killed writer leaves a store that opens and holds every commit; the OS page cache survives
//! the kill, so power loss (fsync itself) is not what this exercises.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use teleportal_sqlite::SqliteStorage;
use teleportal_storage::{AppendOptions, DocumentId, DocumentStorage};

const TEST_NAME: &str = "acknowledged_appends_survive_sigkill";
const CHILD_DIR: &str = "TELEPORTAL_SQLITE_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "TELEPORTAL_SQLITE_CRASH_CHILD_ROUND";
const WRITERS: usize = 32;
const DOCUMENTS: usize = 4;
const ACKS_PER_ROUND: usize = 2_000;
const ROUNDS: usize = 3;

/// The bytes writer `task` appends as its `i`-th update in `round`: unique and checkable.
fn payload(round: usize, task: usize, i: usize) -> Bytes {
    let mut bytes = format!("round {round} task {task} update {i} ").into_bytes();
    bytes.resize(bytes.len() + (i % 64), b'x');
    Bytes::from(bytes)
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // (doc, seq) -> bytes, for every append any child acknowledged.
    let mut acked: HashMap<(String, u64), Bytes> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Kept open until the kill: a closed pipe would stop the child's writers first.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let Some(ack) = line.strip_prefix("ack ") else {
                continue; // libtest's own output
            };
            let fields: Vec<&str> = ack.split(' ').collect();
            let [doc, seq, task, i] = fields[..] else {
                panic!("bad ack line {line:?}");
            };
            let seq: u64 = seq.parse().unwrap();
            let bytes = payload(round, task.parse().unwrap(), i.parse().unwrap());
            let earlier = acked.insert((doc.to_owned(), seq), bytes);
            assert!(earlier.is_none(), "seq {seq} of {doc} acknowledged twice");
            seen += 1;
            if seen == ACKS_PER_ROUND {
                break;
            }
        }
        assert_eq!(seen, ACKS_PER_ROUND, "the child stopped before enough acks");
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        drop(lines);
        verify(dir.path(), &acked);
    }
}

/// Reopens the store and checks every acknowledged append is there, with its bytes.
fn verify(dir: &Path, acked: &HashMap<(String, u64), Bytes>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = SqliteStorage::open(dir).expect("the store opens cleanly after a crash");
        let mut by_doc: BTreeMap<&str, Vec<(u64, &Bytes)>> = BTreeMap::new();
        for ((doc, seq), bytes) in acked {
            by_doc.entry(doc).or_default().push((*seq, bytes));
        }
        for (doc, expected) in by_doc {
            let stored = storage.load(&DocumentId::from(doc)).await.unwrap();
            let tail: HashMap<u64, &Bytes> =
                stored.tail.iter().map(|u| (u.seq, &u.update)).collect();
            for (seq, bytes) in expected {
                assert_eq!(
                    tail.get(&seq),
                    Some(&bytes),
                    "acknowledged {doc}#{seq} is missing"
                );
            }
            let seqs: Vec<u64> = stored.tail.iter().map(|u| u.seq).collect();
            assert_eq!(seqs.first(), Some(&1));
            assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{doc} has a gap");
        }
        let path = storage.path().to_owned();
        storage.close().await.unwrap();
        let integrity: String = rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    });
}

/// The child: appends forever from many tasks, printing each acknowledgement once it is Ok.
fn child(dir: &Path, round: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    runtime.block_on(async {
        let storage = Arc::new(SqliteStorage::open(dir).unwrap());
        let tasks: Vec<_> = (0..WRITERS)
            .map(|task| {
                let storage = Arc::clone(&storage);
                tokio::spawn(async move {
                    let doc = format!("doc-{}", task % DOCUMENTS);
                    let id = DocumentId::from(doc.as_str());
                    for i in 0.. {
                        let bytes = payload(round, task, i);
                        let receipt = storage
                            .append(&id, bytes, AppendOptions::default())
                            .await
                            .unwrap();
                        // One write per line, flushed before the next append: the parent
                        // never sees an ack the store has not given.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {doc} {} {task} {i}", receipt.seq).unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}
