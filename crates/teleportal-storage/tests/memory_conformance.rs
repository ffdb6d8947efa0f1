//! [`MemoryStorage`] passes every conformance suite, on both runtime flavours: current-thread
//! interleaves tasks at await points only, multi-thread races them for real.
#![cfg(feature = "test-util")]

use teleportal_storage::MemoryStorage;
use teleportal_storage::conformance::{
    run_document_storage_suite, run_file_storage_suite, run_finish_upload_suite,
    run_milestone_storage_suite, run_upload_storage_suite,
};

async fn memory() -> MemoryStorage {
    MemoryStorage::new()
}

#[tokio::test]
async fn memory_document_storage_conforms() {
    run_document_storage_suite(memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_document_storage_conforms_on_many_threads() {
    run_document_storage_suite(memory).await;
}

#[tokio::test]
async fn memory_file_storage_conforms() {
    run_file_storage_suite(memory).await;
}

#[tokio::test]
async fn memory_milestone_storage_conforms() {
    run_milestone_storage_suite(memory).await;
}

#[tokio::test]
async fn memory_upload_storage_conforms() {
    run_upload_storage_suite(memory).await;
    run_finish_upload_suite(memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stores_conform_on_many_threads() {
    run_file_storage_suite(memory).await;
    run_milestone_storage_suite(memory).await;
    run_upload_storage_suite(memory).await;
    run_finish_upload_suite(memory).await;
}
