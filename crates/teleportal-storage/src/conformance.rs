//! The conformance suite every backend runs (feature `test-util`).
//!
//! One suite per trait. Each takes `make`, which gives a fresh, empty store (a new database,
//! schema or key prefix on server backends), and runs named checks through the public traits
//! only; a failing check panics with its name and what went wrong. A backend's test is then one
//! call per trait it implements:
//!
//! ```no_run
//! use teleportal_storage::MemoryStorage;
//! use teleportal_storage::conformance::run_document_storage_suite;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     run_document_storage_suite(|| async { MemoryStorage::new() }).await;
//! }
//! ```
//!
//! The suites spawn tasks with [`tokio::spawn`] to write concurrently, and work on a
//! current-thread runtime (`#[tokio::test]`) as on a multi-thread one; run both, since only the
//! latter races for real. The upload suite sleeps briefly, so the runtime needs its timer
//! (`#[tokio::test]` enables it).
//!
//! Documents are checked against yrs's `Doc` as a stand-in client: content read back from a
//! store must equal what replaying the same updates into a `Doc` gives.
// The suite plays clients with yrs documents; the stores under test never build one.
#![allow(clippy::disallowed_types)]

use std::any::Any as PanicPayload;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::FutureExt;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Doc, GetString, Map, MapRef, ReadTxn, StateVector, Text, TextRef, Transact, Update,
};

use crate::{DocumentStorage, FileStorage, FinishUpload, MilestoneStorage, TemporaryUploadStorage};

mod document;
mod file;
mod finish;
mod milestone;
mod store;
mod upload;

/// Runs each check on a fresh store from `make`, one after the other, naming it on failure.
macro_rules! run_checks {
    ($suite:expr, $make:ident, $($check:path),* $(,)?) => {
        $(run_check($suite, stringify!($check), async { $check($make().await).await }).await;)*
    };
}

/// Runs the [`DocumentStorage`] suite: the raw trait's contract (order, sequence numbers,
/// isolation, metadata, compaction, delete, size limits), then the same backend under a
/// [`DocumentStore`](crate::DocumentStore) (concurrent appends, diffs, compaction racing
/// appends, limits, invalid updates, cold reads of a long history).
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_document_storage_suite<S, F, Fut>(make: F)
where
    S: DocumentStorage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks!(
        "DocumentStorage",
        make,
        document::appends_read_back_in_order,
        document::documents_are_isolated,
        document::unknown_document_has_no_metadata,
        document::metadata_counts_snapshot_and_tail,
        document::compaction_keeps_later_updates,
        document::stale_compaction_changes_nothing,
        document::deleted_document_reads_empty,
        document::deleted_document_starts_afresh,
        document::compaction_loaded_before_delete_cannot_resurrect,
        document::append_past_max_size_stores_nothing,
        store::store_reads_what_was_appended,
        store::concurrent_appends_all_arrive,
        store::diff_gives_exactly_the_missing_content,
        store::diff_rejects_a_bad_state_vector,
        store::compaction_during_appends_loses_nothing,
        store::deleted_document_reads_empty_through_store,
        store::size_limits_warn_once_and_reject_past_max,
        store::invalid_update_is_rejected_and_not_stored,
        store::cold_read_after_long_history_is_compacted,
    );
}

/// Runs the [`FileStorage`] suite: round trips, not-found and bad-request errors, listing by
/// document, idempotent puts and deletes.
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_file_storage_suite<S, F, Fut>(make: F)
where
    S: FileStorage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks!(
        "FileStorage",
        make,
        file::file_round_trips_metadata_and_chunks,
        file::missing_files_and_chunks_are_not_found,
        file::wrong_chunk_count_is_rejected,
        file::files_of_document_lists_only_its_files,
        file::putting_an_existing_file_changes_nothing,
        file::deleted_file_is_gone,
        file::streamed_file_is_stored_whole_or_not_at_all,
    );
}

/// Runs the [`MilestoneStorage`] suite: creation order, duplicates, soft delete and restore,
/// rename, hard delete, isolation between documents.
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_milestone_storage_suite<S, F, Fut>(make: F)
where
    S: MilestoneStorage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks!(
        "MilestoneStorage",
        make,
        milestone::milestones_list_in_creation_order,
        milestone::duplicate_milestone_is_rejected,
        milestone::soft_deleted_milestone_is_listed_only_on_request,
        milestone::restored_milestone_is_listed_again,
        milestone::renamed_milestone_keeps_its_snapshot,
        milestone::updating_an_unknown_milestone_is_not_found,
        milestone::hard_deleted_milestone_is_gone,
        milestone::milestones_are_isolated_between_documents,
    );
}

/// Runs the [`TemporaryUploadStorage`] suite: progress, resume, conflicting sessions, chunk
/// indexes, take, abort and expiry.
///
/// # Panics
/// When a check fails, naming the check. Needs a runtime with its timer enabled.
pub async fn run_upload_storage_suite<S, F, Fut>(make: F)
where
    S: TemporaryUploadStorage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks!(
        "TemporaryUploadStorage",
        make,
        upload::new_upload_has_no_chunks,
        upload::received_chunks_are_listed_in_order,
        upload::received_chunks_read_back,
        upload::interrupted_upload_resumes,
        upload::conflicting_upload_is_rejected,
        upload::chunk_outside_the_upload_is_rejected,
        upload::incomplete_upload_cannot_be_taken,
        upload::complete_upload_is_taken_in_index_order,
        upload::aborted_upload_is_gone,
        upload::expire_removes_only_older_sessions,
    );
}

/// Runs the [`FinishUpload`] suite: a finished upload is the file (metadata, chunks, listing
/// by document) and its session is gone; incomplete and unknown uploads are refused; finishing
/// an upload of a stored file keeps the file.
///
/// # Panics
/// When a check fails, naming the check.
pub async fn run_finish_upload_suite<S, F, Fut>(make: F)
where
    S: FinishUpload,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks!(
        "FinishUpload",
        make,
        finish::finished_upload_becomes_the_file,
        finish::incomplete_upload_is_not_finished,
        finish::finishing_a_stored_file_keeps_it,
    );
}

/// Runs one check; a panic inside it (or inside a task it joined) is re-raised with the check's
/// name, so a backend author sees which rule broke without reading the suite.
async fn run_check(suite: &str, name: &str, check: impl Future<Output = ()>) {
    if let Err(payload) = AssertUnwindSafe(check).catch_unwind().await {
        let check = name.rsplit("::").next().unwrap_or(name);
        panic!(
            "{suite} conformance check `{check}` failed: {}",
            panic_message(&*payload)
        );
    }
}

fn panic_message(payload: &(dyn PanicPayload + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(panic without a message)")
}

/// Waits for a spawned task, re-raising its panic (with its own message) in the check.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) => match error.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(error) => panic!("a task of the check did not finish: {error}"),
        },
    }
}

// The names the shared history uses; the suite's own writers edit the same types.
const TEXT: &str = "content";
const MAP: &str = "meta";
const ARRAY: &str = "events";

/// The shared Yjs history (1000 V1 updates from 8 clients typing into `content`, setting keys
/// of `meta`, pushing to `events`; replaying them in order gives the final document). Embedded
/// so that backends outside this repository run the same suite.
const HISTORY: &[u8] = include_bytes!("../fixtures/yjs-history-1k.bin");

/// The shared history's updates, in order.
fn history() -> Vec<Bytes> {
    let mut updates = Vec::new();
    let mut rest = HISTORY;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = usize::try_from(u32::from_le_bytes(*len)).expect("u32 fits in usize");
        let (update, tail) = tail
            .split_at_checked(len)
            .expect("the embedded history is well formed");
        updates.push(Bytes::copy_from_slice(update));
        rest = tail;
    }
    assert!(rest.is_empty(), "the embedded history has trailing bytes");
    updates
}

/// A yrs client that edits the text and map the checks compare, and hands out each edit as
/// an encoded V1 update (as a client sends it).
struct Writer {
    doc: Doc,
    text: TextRef,
    map: MapRef,
    client: u64,
    edits: u32,
}

impl Writer {
    fn new(client: u64) -> Self {
        let doc = Doc::with_client_id(client);
        let text = doc.get_or_insert_text(TEXT);
        let map = doc.get_or_insert_map(MAP);
        Writer {
            doc,
            text,
            map,
            client,
            edits: 0,
        }
    }

    /// Applies an update this client received (e.g. a history), so its edits build on it.
    fn receive(&self, update: &[u8]) {
        apply(&self.doc, update, "a writer's received update");
    }

    /// One edit: an insertion into the text (and every fifth edit a deletion) plus a map key;
    /// returns the update it produced.
    fn edit(&mut self) -> Bytes {
        let before = self.doc.transact().state_vector();
        {
            let mut txn = self.doc.transact_mut();
            let len = self.text.len(&txn);
            let n = self.edits;
            let at = n.wrapping_mul(7919).wrapping_add(len) % (len + 1);
            self.text
                .insert(&mut txn, at, &format!("<{}.{n}>", self.client));
            if n % 5 == 4 {
                self.text.remove_range(&mut txn, 0, 1);
            }
            self.map.insert(
                &mut txn,
                format!("writer-{}", self.client),
                format!("edit {n}"),
            );
        }
        self.edits += 1;
        Bytes::from(self.doc.transact().encode_diff_v1(&before))
    }

    /// `count` edits.
    fn edits(&mut self, count: usize) -> Vec<Bytes> {
        (0..count).map(|_| self.edit()).collect()
    }
}

/// What the checks compare between a store's document and a client's: the shared types'
/// values and the state vector.
#[derive(Debug, PartialEq)]
struct Content {
    text: String,
    map: Any,
    array: Any,
    state_vector: StateVector,
}

impl Content {
    fn of_doc(doc: &Doc) -> Self {
        let text = doc.get_or_insert_text(TEXT);
        let map = doc.get_or_insert_map(MAP);
        let array = doc.get_or_insert_array(ARRAY);
        let txn = doc.transact();
        Content {
            text: text.get_string(&txn),
            map: map.to_json(&txn),
            array: array.to_json(&txn),
            state_vector: txn.state_vector(),
        }
    }

    /// The content of one encoded V1 update applied to an empty document.
    fn of_update(update: &[u8]) -> Self {
        Content::of_doc(&replay([update]))
    }

    /// The content of updates replayed in order into an empty document.
    fn of_updates<'a>(updates: impl IntoIterator<Item = &'a Bytes>) -> Self {
        Content::of_doc(&replay(updates.into_iter().map(Bytes::as_ref)))
    }
}

/// A fresh client document with `updates` applied in order.
fn replay<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> Doc {
    let doc = Doc::new();
    for update in updates {
        apply(&doc, update, "a replayed update");
    }
    doc
}

/// Applies one V1 update, which must decode and leave nothing pending: a store's answer that
/// depends on updates the client never got is missing content.
fn apply(doc: &Doc, update: &[u8], what: &str) {
    let decoded =
        Update::decode_v1(update).unwrap_or_else(|e| panic!("{what} does not decode: {e}"));
    let mut txn = doc.transact_mut();
    txn.apply_update(decoded)
        .unwrap_or_else(|e| panic!("{what} does not apply: {e}"));
    assert!(
        !txn.has_missing_updates(),
        "{what} depends on updates the client does not have"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_history_is_the_shared_one() {
        // The core crate keeps the repository's copy of the shared vectors (`.ci/run` compares
        // it with the shared material when that is beside the clone).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../teleportal-core/fixtures/yjs-history-1k.bin"
        );
        let shared = std::fs::read(path).expect("the core crate's history fixture");
        assert!(
            shared == HISTORY,
            "fixtures/yjs-history-1k.bin drifted from the shared vector"
        );
        assert_eq!(history().len(), 1000);
    }

    #[test]
    fn replaying_the_history_gives_its_recorded_text_length() {
        // From yjs-history-1k.json: `text_length` 1762, `array_length` 34.
        let content = Content::of_updates(&history());
        assert_eq!(content.text.chars().count(), 1762);
        match content.array {
            Any::Array(items) => assert_eq!(items.len(), 34),
            other => panic!("events is not an array: {other:?}"),
        }
    }
}
