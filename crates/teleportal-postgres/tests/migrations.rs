//! The shipped migrations: applied on connect, idempotent, safe when several stores start on
//! one fresh schema at once, and refusing a schema from a newer build.

mod common;

use bytes::Bytes;
use common::{TestSchemas, config, database_url, fresh_schema_name};
use teleportal_postgres::{PostgresConfig, PostgresStorage, SCHEMA_VERSION};
use teleportal_storage::{AppendOptions, DocumentId, DocumentStorage, StorageError};

/// A plain connection for looking at the schema from outside the store.
async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn versions(schema: &str) -> Vec<i64> {
    raw_client()
        .await
        .query(
            &format!("SELECT version FROM {schema}.teleportal_schema_version ORDER BY version"),
            &[],
        )
        .await
        .expect("version table")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_starting_together_migrate_a_fresh_schema_once() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let schema = fresh_schema_name();
    schemas.track(&schema);
    let starts: Vec<_> = (0..6)
        .map(|_| tokio::spawn(PostgresStorage::connect(config(&schema))))
        .collect();
    for start in starts {
        start
            .await
            .expect("task")
            .expect("every concurrent connect succeeds");
    }
    assert_eq!(versions(&schema).await, [SCHEMA_VERSION]);
}

#[tokio::test]
async fn migrating_again_keeps_the_data() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let storage = schemas.store().await;
    let doc = DocumentId::from("migrations/kept");
    storage
        .append(&doc, Bytes::from_static(&[0, 0]), AppendOptions::default())
        .await
        .expect("append");
    storage.migrate().await.expect("second migration");
    let again = PostgresStorage::connect(config(storage.schema()))
        .await
        .expect("reconnect");
    assert_eq!(again.load(&doc).await.expect("load").tail.len(), 1);
    assert_eq!(versions(storage.schema()).await, [SCHEMA_VERSION]);
}

#[tokio::test]
async fn connecting_without_migration_leaves_the_schema_alone() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let schema = fresh_schema_name();
    schemas.track(&schema);
    let storage = PostgresStorage::connect(config(&schema).with_migrate_on_connect(false))
        .await
        .expect("connect");
    let exists: bool = raw_client()
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await
        .expect("query")
        .get(0);
    assert!(!exists, "connect created the schema although told not to");
    storage.migrate().await.expect("explicit migration");
    assert_eq!(versions(&schema).await, [SCHEMA_VERSION]);
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let storage = schemas.store().await;
    raw_client()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.teleportal_schema_version (version, name) VALUES ($1, 'future')",
                storage.schema()
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("insert a future version");
    match PostgresStorage::connect(config(storage.schema())).await {
        Err(StorageError::Backend { backend, source }) => {
            assert_eq!(backend, "postgres");
            assert!(source.to_string().contains("newer"), "{source}");
        }
        other => panic!("a newer schema gave {other:?}"),
    }
}

#[tokio::test]
async fn schemas_keep_stores_apart() {
    let Some(schemas) = TestSchemas::new().await else {
        return;
    };
    let (a, b) = (schemas.store().await, schemas.store().await);
    let doc = DocumentId::from("migrations/same-name");
    a.append(&doc, Bytes::from_static(&[0, 0]), AppendOptions::default())
        .await
        .expect("append");
    assert!(b.load(&doc).await.expect("load").is_empty());
    assert_eq!(b.metadata(&doc).await.expect("metadata"), None);
}

#[tokio::test]
async fn a_schema_name_that_needs_quoting_is_refused() {
    // Checked before any connection: no server needed.
    let config = PostgresConfig::from_url(&database_url())
        .expect("url")
        .with_schema("Robert'); DROP TABLE students;--");
    match PostgresStorage::connect(config).await {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("an unquotable schema name gave {other:?}"),
    }
}
