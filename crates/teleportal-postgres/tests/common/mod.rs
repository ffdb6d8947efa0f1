//! Shared by the tests against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a server the tests skip with the
//! reason, unless `CI` is set: then they fail.
#![allow(dead_code, unreachable_pub)] // Each test binary uses its own part of this module.

use std::sync::Mutex;

use teleportal_postgres::{PostgresConfig, PostgresStorage};

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test or run shares.
pub fn fresh_schema_name() -> String {
    format!("teleportal_test_{:016x}", rand::random::<u64>())
}

/// The configuration of a store in `schema`, with a small pool (tests run side by side, and
/// every suite check opens a store of its own).
pub fn config(schema: &str) -> PostgresConfig {
    PostgresConfig::from_url(&database_url())
        .expect("DATABASE_URL parses")
        .with_schema(schema)
        .with_max_connections(4)
}

/// Fresh schemas for one test, each dropped when this is dropped (also when the test panics).
#[derive(Debug)]
pub struct TestSchemas {
    created: Mutex<Vec<String>>,
}

impl TestSchemas {
    /// `Some` when PostgreSQL answers; `None` (after saying why) when it does not and `CI` is
    /// unset. Under `CI` a missing server fails the test.
    pub async fn new() -> Option<Self> {
        let probe = PostgresConfig::from_url(&database_url())
            .expect("DATABASE_URL parses")
            .with_schema(fresh_schema_name())
            .with_migrate_on_connect(false)
            .with_max_connections(1);
        match PostgresStorage::connect(probe).await {
            Ok(_) => Some(TestSchemas {
                created: Mutex::new(Vec::new()),
            }),
            Err(error) if std::env::var_os("CI").is_none() => {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                eprintln!(
                    "skipping: no PostgreSQL at {}: {error}: {cause:?}",
                    database_url()
                );
                None
            }
            Err(error) => panic!(
                "CI is set but PostgreSQL at {} is unusable: {error:?}",
                database_url()
            ),
        }
    }

    /// Records a schema to drop at the end.
    pub fn track(&self, schema: &str) {
        self.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(schema.to_owned());
    }

    /// A fresh, empty, migrated store in a schema of its own: the conformance suites' `make`.
    pub async fn store(&self) -> PostgresStorage {
        let schema = fresh_schema_name();
        self.track(&schema);
        PostgresStorage::connect(config(&schema))
            .await
            .unwrap_or_else(|e| panic!("connect to a fresh schema {schema}: {e:?}"))
    }
}

impl Drop for TestSchemas {
    fn drop(&mut self) {
        let schemas = std::mem::take(
            self.created
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if schemas.is_empty() {
            return;
        }
        // Drop may run inside the test's runtime, which cannot be blocked on: clean up from a
        // thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(drop_schemas(schemas));
        });
        if cleanup.join().is_err() {
            eprintln!("warning: dropping the test schemas failed");
        }
    }
}

async fn drop_schemas(schemas: Vec<String>) {
    let (client, connection) =
        match tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await {
            Ok(pair) => pair,
            Err(error) => {
                eprintln!("warning: cannot drop test schemas {schemas:?}: {error}");
                return;
            }
        };
    let driver = tokio::spawn(connection);
    // A store's connection still inside a transaction (its runtime is blocked on this very
    // drop) would hold locks forever: give up on such a schema rather than hang the test.
    if let Err(error) = client.batch_execute("SET lock_timeout = '10s'").await {
        eprintln!("warning: cannot set a lock timeout for dropping test schemas: {error}");
    }
    for schema in schemas {
        // Names come from `fresh_schema_name`: plain identifiers.
        if let Err(error) = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
        {
            eprintln!("warning: cannot drop test schema {schema}: {error}");
        }
    }
    drop(client);
    let _ = driver.await;
}
