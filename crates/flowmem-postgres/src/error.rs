//! The crate's errors: each names the database (host, port, database, user — never the password) and
//! what was being done.

use flowmem_engine::DurabilityError;

/// An error of [`PgCheckpoints`](crate::PgCheckpoints) or [`migrate`](crate::migrate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection string does not parse.
    #[error("`{text}` is not a PostgreSQL connection string: {source}")]
    BadConfig {
        /// The text, with any password replaced by `***`.
        text: String,
        /// The parser's error.
        #[source]
        source: postgres::Error,
    },
    /// A schema name that is not a plain lower-case identifier.
    #[error(
        "`{name}` is not a schema name flowmem-postgres accepts: use 1 to 63 lower-case ASCII letters, \
         digits and underscores, not starting with a digit"
    )]
    BadSchemaName {
        /// The name given.
        name: String,
    },
    /// No connection could be made or taken from the pool.
    #[error("PostgreSQL at {database}: cannot connect: {message}")]
    Connect {
        /// The database (`host:port/dbname as user`).
        database: String,
        /// Why.
        message: String,
        /// The client's or pool's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A statement failed.
    #[error("PostgreSQL at {database}: {what}: {source}")]
    Query {
        /// The database.
        database: String,
        /// What was being done (`creating schema flows`, `reading run 6f1c...`).
        what: String,
        /// The server's or client's error.
        #[source]
        source: postgres::Error,
    },
    /// The schema was made by a newer version of this crate.
    #[error(
        "PostgreSQL at {database}: schema `{schema}` is at version {found}; this flowmem-postgres knows \
         versions up to {supported}: use a newer flowmem-postgres, or another schema"
    )]
    SchemaTooNew {
        /// The database.
        database: String,
        /// The schema.
        schema: String,
        /// Its version.
        found: i32,
        /// The newest version this crate knows.
        supported: i32,
    },
}

impl From<PgError> for DurabilityError {
    fn from(e: PgError) -> Self {
        let store = match &e {
            PgError::Connect { database, .. }
            | PgError::Query { database, .. }
            | PgError::SchemaTooNew { database, .. } => format!("PostgreSQL at {database}"),
            PgError::BadConfig { .. } | PgError::BadSchemaName { .. } => "PostgreSQL".to_string(),
        };
        DurabilityError::Backend {
            store,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}
