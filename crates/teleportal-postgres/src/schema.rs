//! Migrations shipped with the crate, applied under an advisory lock.

use deadpool_postgres::GenericClient;
use teleportal_storage::StorageError;

use crate::pg_error;

/// The schema version this build migrates to; each store's schema records the versions it
/// has in its `teleportal_schema_version` table.
///
/// ```
/// assert!(teleportal_postgres::SCHEMA_VERSION >= 1);
/// ```
pub const SCHEMA_VERSION: i64 = 1;

/// One step of the schema, in the order applied.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first; a new version appends one (never edits a shipped one).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("../migrations/0001_initial.sql"),
}];

/// The advisory-lock class of migrations ("tpmg"); the schema name's hash is the second key,
/// so stores in different schemas migrate independently.
const MIGRATION_LOCK_CLASS: i32 = 0x7470_6d67;

/// Brings `schema` to [`SCHEMA_VERSION`] in one transaction, under a transaction-scoped advisory
/// lock: processes starting together take turns, and the later ones find the work done. A
/// failed step rolls everything back (PostgreSQL's DDL is transactional), and the lock is
/// released with the transaction, so an interrupted migration never leaves a lock or half a
/// schema behind.
pub(crate) async fn migrate(
    client: &mut deadpool_postgres::Object,
    schema: &str,
) -> Result<(), StorageError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK_CLASS, &schema],
    )
    .await
    .map_err(pg_error)?;
    // `schema` was checked to be a plain identifier (`PostgresConfig::session_config`).
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.teleportal_schema_version (
             version BIGINT PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg_error)?;
    let current: i64 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.teleportal_schema_version"),
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if current > SCHEMA_VERSION {
        // Awaited, not left to the drop: the pool may be dropped right after this error.
        tx.rollback().await.map_err(pg_error)?;
        return Err(StorageError::backend(
            "postgres",
            NewerSchema {
                schema: schema.to_owned(),
                found: current,
                supported: SCHEMA_VERSION,
            },
        ));
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(step.sql).await.map_err(pg_error)?;
        tx.execute(
            &format!(
                "INSERT INTO {schema}.teleportal_schema_version (version, name) VALUES ($1, $2)"
            ),
            &[&step.version, &step.name],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

/// The schema was migrated by a build newer than this one.
#[derive(Debug, thiserror::Error)]
#[error(
    "schema {schema} is at version {found}, newer than this build knows (it supports up to {supported})"
)]
struct NewerSchema {
    schema: String,
    found: i64,
    supported: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i as i64 + 1, "{}", step.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
