//! [`PostgresStorage`] passes every conformance suite of `teleportal-storage` against a real
//! PostgreSQL, on a current-thread runtime and on a multi-thread one (where the suite's
//! concurrent writers race for real), alone and under the encryption layer. Each check gets a
//! fresh schema, dropped when the test ends.

mod common;

use std::sync::Arc;

use common::TestSchemas;
use teleportal_storage::EncryptedStorage;
use teleportal_storage::conformance::{
    run_document_storage_suite, run_file_storage_suite, run_finish_upload_suite,
    run_milestone_storage_suite, run_upload_storage_suite,
};
use teleportal_storage::encryption::{KeyId, StaticKeys};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_document_storage_conforms() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    run_document_storage_suite(|| schemas.store()).await;
}

#[tokio::test]
async fn postgres_document_storage_conforms_on_one_thread() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    run_document_storage_suite(|| schemas.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_milestone_file_and_upload_storage_conform() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    run_milestone_storage_suite(|| schemas.store()).await;
    run_file_storage_suite(|| schemas.store()).await;
    run_upload_storage_suite(|| schemas.store()).await;
    run_finish_upload_suite(|| schemas.store()).await;
}

#[tokio::test]
async fn postgres_milestone_file_and_upload_storage_conform_on_one_thread() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    run_milestone_storage_suite(|| schemas.store()).await;
    run_file_storage_suite(|| schemas.store()).await;
    run_upload_storage_suite(|| schemas.store()).await;
    run_finish_upload_suite(|| schemas.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_postgres_document_storage_conforms() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let keys = Arc::new(StaticKeys::generate(KeyId::new("k1").expect("valid id")).expect("key"));
    run_document_storage_suite(|| {
        let keys = Arc::clone(&keys);
        let schemas = &schemas;
        async move { EncryptedStorage::new(schemas.store().await, keys) }
    })
    .await;
}
