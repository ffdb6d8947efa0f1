//! [`PostgresConfig`]: where the store connects and how.

use std::fmt;
use std::str::FromStr;

use teleportal_storage::StorageError;

use crate::pg_error;

/// The schema a store uses unless told otherwise.
///
/// ```
/// use teleportal_postgres::{DEFAULT_SCHEMA, PostgresConfig};
///
/// let config = PostgresConfig::from_url("postgres://postgres@localhost/test")?;
/// assert_eq!(config.schema(), DEFAULT_SCHEMA);
/// assert!(config.migrate_on_connect());
/// # Ok::<(), teleportal_storage::StorageError>(())
/// ```
pub const DEFAULT_SCHEMA: &str = "teleportal";

/// Where [`PostgresStorage`](crate::PostgresStorage) connects, in which schema, with how many
/// pooled connections.
///
/// ```
/// use teleportal_postgres::PostgresConfig;
///
/// let config = PostgresConfig::from_url("postgres://postgres@127.0.0.1:5432/test")?
///     .with_schema("collab")
///     .with_max_connections(8);
/// assert_eq!(config.schema(), "collab");
/// assert_eq!(config.max_connections(), 8);
/// # Ok::<(), teleportal_storage::StorageError>(())
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) pg: tokio_postgres::Config,
    schema: String,
    max_connections: usize,
    migrate: bool,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres' own Debug redacts the password.
        f.debug_struct("PostgresConfig")
            .field("pg", &self.pg)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl PostgresConfig {
    /// A configuration from a connection URL (`postgres://user:password@host:port/database`)
    /// or a `key=value` connection string, as libpq takes them. Schema
    /// [`DEFAULT_SCHEMA`], 16 connections, migrating on connect.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the URL does not parse.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        tokio_postgres::Config::from_str(url)
            .map(Self::from)
            .map_err(pg_error)
    }

    /// Uses `schema` for every table (created by the migration if missing). Several stores, or
    /// several tests, can share one database in separate schemas. The name must be a plain
    /// lowercase identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes), checked on connect.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the pool opens (at least 1).
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// Whether [`PostgresStorage::connect`](crate::PostgresStorage::connect) brings the schema
    /// up to date (the default) or leaves that to an explicit
    /// [`migrate`](crate::PostgresStorage::migrate), e.g. from a deploy step.
    pub fn with_migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The most pooled connections.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Whether connecting migrates.
    pub fn migrate_on_connect(&self) -> bool {
        self.migrate
    }

    /// The driver configuration with `search_path` pinned to the schema, so every pooled
    /// connection (and every cached statement) resolves table names there and nowhere else.
    pub(crate) fn session_config(&self) -> Result<tokio_postgres::Config, StorageError> {
        check_schema_name(&self.schema)?;
        let mut pg = self.pg.clone();
        // The name is a checked plain identifier: no quoting or escaping is needed, and
        // `pg_catalog` stays implicitly first, as always.
        let search_path = format!("-c search_path={}", self.schema);
        let options = match pg.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {search_path}"),
            _ => search_path,
        };
        pg.options(options);
        Ok(pg)
    }
}

impl From<tokio_postgres::Config> for PostgresConfig {
    /// A configuration from a driver configuration; defaults as in
    /// [`from_url`](PostgresConfig::from_url).
    ///
    /// ```
    /// use teleportal_postgres::PostgresConfig;
    ///
    /// let mut pg = tokio_postgres::Config::new();
    /// pg.host("127.0.0.1").user("postgres").dbname("test");
    /// let config = PostgresConfig::from(pg).with_schema("collab");
    /// assert_eq!(config.schema(), "collab");
    /// ```
    fn from(pg: tokio_postgres::Config) -> Self {
        PostgresConfig {
            pg,
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 16,
            migrate: true,
        }
    }
}

/// Accepts the names that need no quoting anywhere: lowercase ASCII letters, digits and `_`,
/// not starting with a digit, within PostgreSQL's 63-byte identifier limit.
fn check_schema_name(schema: &str) -> Result<(), StorageError> {
    let mut bytes = schema.bytes();
    let plain = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && schema.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(StorageError::InvalidRequest {
            reason: format!(
                "schema name {schema:?} is not a plain lowercase identifier ([a-z_][a-z0-9_]*, at most 63 bytes)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["teleportal", "_x", "teleportal_test_0af3", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Caps",
            "a-b",
            "a b",
            "x;drop",
            "\"q\"",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_path_is_added_to_existing_options() {
        let config = PostgresConfig::from_url(
            "postgres://u@localhost/db?options=-c%20statement_timeout%3D5000",
        )
        .unwrap()
        .with_schema("s1");
        let session = config.session_config().unwrap();
        assert_eq!(
            session.get_options(),
            Some("-c statement_timeout=5000 -c search_path=s1")
        );
        let bad = config.with_schema("S;");
        assert!(matches!(
            bad.session_config(),
            Err(StorageError::InvalidRequest { .. })
        ));
    }
}
