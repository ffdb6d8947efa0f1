//! [`SqliteStorage`], the embedded default, passes every conformance suite, alone and under the
//! encryption layer.

use std::sync::Arc;

use teleportal_sqlite::SqliteStorage;
use teleportal_storage::EncryptedStorage;
use teleportal_storage::conformance::{
    run_document_storage_suite, run_file_storage_suite, run_finish_upload_suite,
    run_milestone_storage_suite, run_upload_storage_suite,
};
use teleportal_storage::encryption::{KeyId, StaticKeys};

/// A fresh store in its own temporary directory. The directory outlives the store (the suite
/// owns the store, not the directory), so it goes under the target dir's temp area.
async fn sqlite() -> SqliteStorage {
    let dir = tempfile::Builder::new()
        .prefix("teleportal-sqlite-conformance-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
        .keep();
    SqliteStorage::open(dir).expect("open a fresh SQLite store")
}

async fn encrypted_sqlite() -> EncryptedStorage<SqliteStorage> {
    let keys = StaticKeys::generate(KeyId::new("k1").expect("valid id")).expect("random key");
    EncryptedStorage::new(sqlite().await, Arc::new(keys))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_document_storage_conforms() {
    run_document_storage_suite(sqlite).await;
}

#[tokio::test]
async fn sqlite_document_storage_conforms_on_one_thread() {
    run_document_storage_suite(sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_milestone_and_upload_storage_conform() {
    run_file_storage_suite(sqlite).await;
    run_milestone_storage_suite(sqlite).await;
    run_upload_storage_suite(sqlite).await;
    run_finish_upload_suite(sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_sqlite_document_storage_conforms() {
    run_document_storage_suite(encrypted_sqlite).await;
}
