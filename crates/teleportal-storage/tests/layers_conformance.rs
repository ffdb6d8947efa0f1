//! The layers keep the storage contract: batching (in its durable mode) and encryption at rest
//! pass the same conformance suites as the stores they wrap, alone and stacked.
#![cfg(feature = "test-util")]

use std::sync::Arc;
use std::time::Duration;

use teleportal_storage::MemoryStorage;
use teleportal_storage::batching::BatchConfig;
use teleportal_storage::conformance::{
    run_document_storage_suite, run_file_storage_suite, run_finish_upload_suite,
    run_milestone_storage_suite, run_upload_storage_suite,
};
use teleportal_storage::encryption::{KeyId, StaticKeys};
use teleportal_storage::{EncryptedStorage, VirtualStorage};

fn keys() -> Arc<StaticKeys> {
    Arc::new(StaticKeys::generate(KeyId::new("k1").expect("valid id")).expect("random key"))
}

async fn batched() -> VirtualStorage<MemoryStorage> {
    // Durable acks; a short interval keeps the suite's sequential appends quick while
    // concurrent ones still share flushes.
    let config = BatchConfig::default()
        .with_max_updates(16)
        .with_interval(Duration::from_millis(1));
    VirtualStorage::with_config(MemoryStorage::new(), config)
}

async fn encrypted() -> EncryptedStorage<MemoryStorage> {
    EncryptedStorage::new(MemoryStorage::new(), keys())
}

async fn encrypted_over_batched() -> EncryptedStorage<VirtualStorage<MemoryStorage>> {
    EncryptedStorage::new(batched().await, keys())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_document_storage_conforms() {
    run_document_storage_suite(batched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_document_storage_conforms() {
    run_document_storage_suite(encrypted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_over_batched_document_storage_conforms() {
    run_document_storage_suite(encrypted_over_batched).await;
}

#[tokio::test]
async fn encrypted_file_milestone_and_upload_storage_conform() {
    run_file_storage_suite(encrypted).await;
    run_milestone_storage_suite(encrypted).await;
    run_upload_storage_suite(encrypted).await;
    run_finish_upload_suite(encrypted).await;
}
