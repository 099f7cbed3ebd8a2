//! The connection to the database shared by the crate's stores: the parsed configuration, the name used
//! in messages (never the password), the pool, and the retries on a new connection.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::{PgError, PgOptions, schema};

/// A pool of connections to one database, its schema migrated.
pub(crate) struct Db {
    pub(crate) config: postgres::Config,
    /// The database, for messages (`host:port/dbname as user`).
    pub(crate) database: String,
    pub(crate) schema: String,
    /// The schema, quoted.
    pub(crate) s: String,
    pub(crate) pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    /// Statements retried on a new connection (the old one lost, or the server away).
    retries: AtomicU64,
}

impl Db {
    /// Parses `options`' connection string, makes the pool (`extra` connections beyond the options'
    /// pool size), connects once and creates or migrates the schema.
    pub(crate) fn open(options: &PgOptions, extra: u32) -> Result<Db, PgError> {
        let mut config: postgres::Config =
            options
                .config
                .parse()
                .map_err(|source| PgError::BadConfig {
                    text: redacted(&options.config),
                    source,
                })?;
        config.application_name(&options.application_name);
        let database = describe(&config);
        let s = schema::quoted(&options.schema)?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size + extra)
            .min_idle(Some(0))
            // A dead connection shows at its first statement, which is retried on a new one: no round
            // trip of its own to check each connection handed out.
            .test_on_check_out(false)
            .connection_timeout(options.connect_timeout)
            .build_unchecked(manager);
        let mut client = pool.get().map_err(|e| PgError::Connect {
            database: database.clone(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        })?;
        schema::migrate(&mut client, &options.schema, &database)?;
        Ok(Db {
            config,
            database,
            schema: options.schema.clone(),
            s,
            pool,
            retries: AtomicU64::new(0),
        })
    }

    /// The error of statement `what` on this database.
    pub(crate) fn query_error(&self, what: String) -> impl FnOnce(postgres::Error) -> PgError + '_ {
        move |source| PgError::Query {
            database: self.database.clone(),
            what,
            source,
        }
    }

    /// Runs `f` on a pooled connection, again on a new one while it fails for want of a connection, for
    /// `retry_for` at most; `retried` is called before each new attempt.
    pub(crate) fn with_client<T>(
        &self,
        retry_for: Duration,
        what: impl Fn() -> String,
        mut f: impl FnMut(&mut postgres::Client) -> Result<T, postgres::Error>,
        mut retried: impl FnMut(),
    ) -> Result<T, PgError> {
        let mut backoff = Backoff::new(retry_for);
        loop {
            let outcome = match self.pool.get() {
                Ok(mut client) => match f(&mut client) {
                    Ok(v) => return Ok(v),
                    Err(e) if retryable(&e) => Err(self.query_error(what())(e)),
                    Err(e) => return Err(self.query_error(what())(e)),
                },
                Err(e) => Err(PgError::Connect {
                    database: self.database.clone(),
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                }),
            };
            if !backoff.wait() {
                return outcome;
            }
            self.retried();
            retried();
        }
    }

    /// Counts a statement retried on a new connection.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Statements retried on a new connection since the pool was made.
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// `config` with its password replaced by `***`.
pub(crate) fn redacted(config: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in config.split_whitespace() {
        match part.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                out.push(format!("{key}=***"))
            }
            _ => out.push(part.to_string()),
        }
    }
    let joined = out.join(" ");
    // A URL: user:password@host.
    match (joined.find("://"), joined.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &joined[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &joined[..scheme + 3], &joined[at..]),
                None => joined,
            }
        }
        _ => joined,
    }
}

/// `host:port/dbname as user` for messages.
pub(crate) fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("(default database)"),
        config.get_user().unwrap_or("(default user)")
    )
}

/// The waits between attempts on a new connection: 10 ms doubling to 1 s, while the next wait ends
/// before `retry_for` from the first attempt.
pub(crate) struct Backoff {
    deadline: Instant,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(retry_for: Duration) -> Self {
        Backoff {
            deadline: Instant::now() + retry_for,
            next: Duration::from_millis(10),
        }
    }

    /// Waits before the next attempt; `false` (without waiting) if that would pass the deadline.
    pub(crate) fn wait(&mut self) -> bool {
        if Instant::now() + self.next > self.deadline {
            return false;
        }
        std::thread::sleep(self.next);
        self.next = (self.next * 2).min(Duration::from_secs(1));
        true
    }
}

/// Whether `e` is the loss of a connection (or a server that is restarting): worth a new connection.
pub(crate) fn retryable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}
