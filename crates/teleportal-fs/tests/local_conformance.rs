//! [`LocalFileStorage`] passes the file, upload and finish suites, on both runtime flavours
//! and under the encryption layer (whose sealed chunks are longer than `chunk_size`).
#![cfg(unix)]

use std::sync::Arc;

use teleportal_fs::LocalFileStorage;
use teleportal_storage::EncryptedStorage;
use teleportal_storage::conformance::{
    run_file_storage_suite, run_finish_upload_suite, run_upload_storage_suite,
};
use teleportal_storage::encryption::{KeyId, StaticKeys};

/// A fresh store in its own directory. The directory outlives the store (the suite owns the
/// store, not the directory), so it goes under the target dir's temp area.
async fn local() -> LocalFileStorage {
    let dir = tempfile::Builder::new()
        .prefix("teleportal-local-conformance-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
        .keep();
    LocalFileStorage::open(dir).expect("open a fresh local store")
}

async fn encrypted_local() -> EncryptedStorage<LocalFileStorage> {
    let keys = StaticKeys::generate(KeyId::new("k1").expect("valid id")).expect("random key");
    EncryptedStorage::new(local().await, Arc::new(keys))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_file_upload_and_finish_storage_conform() {
    run_file_storage_suite(local).await;
    run_upload_storage_suite(local).await;
    run_finish_upload_suite(local).await;
}

#[tokio::test]
async fn local_file_upload_and_finish_storage_conform_on_one_thread() {
    run_file_storage_suite(local).await;
    run_upload_storage_suite(local).await;
    run_finish_upload_suite(local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_local_storage_conforms() {
    run_file_storage_suite(encrypted_local).await;
    run_upload_storage_suite(encrypted_local).await;
    run_finish_upload_suite(encrypted_local).await;
}
