//! Cold sync against the embedded store: load a Yjs history into a fresh store, close it,
//! reopen it, and time what a new client's first sync costs (empty state vector → the whole
//! document as one update plus the state vector).
//!
//! ```sh
//! cargo run --release --example cold_sync -- crates/teleportal-core/fixtures/yjs-history-10k.bin
//! cargo run --release --example cold_sync -- crates/teleportal-core/fixtures/yjs-history-10k.bin --repeat 10
//! ```
//!
//! The history file is a sequence of (u32 little-endian length, Yjs V1 update); the `.json`
//! beside it gives the SHA-256 of the final text. With `--repeat N` the history is replayed N
//! times under fresh client ids (N× the updates, concurrent edits of the same text) and the
//! text is checked against the same updates applied to a yrs `Doc`. Exits non-zero when the
//! synced text differs. The last line is `cold sync: <N> updates, <ms> ms, text sha256 <hex>`.

mod remap;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use teleportal::sqlite::SqliteStorage;
use teleportal::storage::{DocumentId, DocumentStore};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Transact};

type Error = Box<dyn std::error::Error>;

struct Args {
    history: PathBuf,
    repeat: u64,
}

fn parse_args() -> Result<Args, Error> {
    let mut history = None;
    let mut repeat = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => {
                repeat = args.next().ok_or("--repeat needs a number")?.parse()?;
                if repeat == 0 {
                    return Err("--repeat must be at least 1".into());
                }
            }
            _ if history.is_none() => history = Some(PathBuf::from(arg)),
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let history = history.ok_or("usage: cold_sync HISTORY.bin [--repeat N]")?;
    Ok(Args { history, repeat })
}

/// The updates of a history file: (u32 LE length, update) records.
fn read_history(path: &Path) -> Result<Vec<Bytes>, Error> {
    let data = Bytes::from(std::fs::read(path)?);
    let mut updates = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let header: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|h| h.try_into().ok())
            .ok_or("truncated length header")?;
        let len = usize::try_from(u32::from_le_bytes(header))?;
        let start = at + 4;
        let update = data
            .get(start..start + len)
            .ok_or("record longer than the file")?;
        updates.push(data.slice_ref(update));
        at = start + len;
    }
    Ok(updates)
}

/// The final text of a document holding `update`, and its SHA-256.
fn text_sha256(update: &[u8], text_name: &str) -> Result<String, Error> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text(text_name);
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(update)?)?;
    let content = text.get_string(&doc.transact());
    Ok(hex::encode(Sha256::digest(content.as_bytes())))
}

/// The SHA-256 a `--repeat` run must reach: every update applied to a yrs `Doc` directly.
fn expected_by_replay(updates: &[Bytes], text_name: &str) -> Result<String, Error> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text(text_name);
    {
        let mut txn = doc.transact_mut();
        for update in updates {
            txn.apply_update(yrs::Update::decode_v1(update)?)?;
        }
    }
    let content = text.get_string(&doc.transact());
    Ok(hex::encode(Sha256::digest(content.as_bytes())))
}

async fn load(dir: &Path, doc: &DocumentId, updates: &[Bytes]) -> Result<(), Error> {
    let store = DocumentStore::new(SqliteStorage::open(dir)?);
    // Many appends in flight share each fsync (group commit); `buffered` keeps log order.
    let mut appends = futures::stream::iter(updates.iter().cloned())
        .map(|update| store.append(doc, update))
        .buffered(256);
    while let Some(receipt) = appends.next().await {
        receipt?;
    }
    store.idle().await; // let background compaction finish before closing
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cold_sync: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Error> {
    let args = parse_args()?;
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        args.history.with_extension("json"),
    )?)?;
    let text_name = meta["text_name"].as_str().unwrap_or("content").to_owned();
    let history = read_history(&args.history)?;
    let mut updates = history.clone();
    for replay in 1..args.repeat {
        // Client ids in the fixtures are small; a replay's ids are far above all of them.
        let offset = replay * 1_000_000;
        for update in &history {
            updates.push(remap::shift_clients(update, offset)?);
        }
    }
    let expected = if args.repeat == 1 {
        meta["text_sha256"]
            .as_str()
            .ok_or("no text_sha256 beside the history")?
            .to_owned()
    } else {
        expected_by_replay(&updates, &text_name)?
    };

    let dir = tempfile::tempdir()?;
    let doc = DocumentId::from("cold-sync");
    let started = Instant::now();
    load(dir.path(), &doc, &updates).await?;
    println!(
        "loaded {} updates in {:.0} ms",
        updates.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    // Reopen: nothing cached in memory, as after a restart.
    let store = DocumentStore::new(SqliteStorage::open(dir.path())?);
    if let Some(meta) = store.metadata(&doc).await? {
        println!(
            "stored: {} bytes, snapshot through seq {}, {} updates in the tail",
            meta.size, meta.snapshot_seq, meta.tail_updates
        );
    }
    let started = Instant::now();
    let state = store.read(&doc).await?;
    let elapsed = started.elapsed();
    println!(
        "sync reply: {} bytes of update, {} bytes of state vector",
        state.update.len(),
        state.state_vector.len()
    );

    let actual = text_sha256(&state.update, &text_name)?;
    let ok = actual == expected;
    if !ok {
        eprintln!("text sha256 mismatch: expected {expected}, synced {actual}");
    }
    println!(
        "cold sync: {} updates, {:.2} ms, text sha256 {actual}",
        updates.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(ok)
}
