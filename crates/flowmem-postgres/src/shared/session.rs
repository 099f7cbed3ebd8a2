//! Connections of shared runs that keep their prepared statements: the hot statements (claim, inputs,
//! completion, renewal) are parsed and planned once per connection, not at every call (which cost a
//! round trip and the server's planning each time).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use postgres::{Client, NoTls, Statement};

use crate::{
    PgError,
    db::{Backoff, Db, retryable},
};

/// A connection and the statements prepared on it, by their text.
pub(crate) struct Session {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
}

impl Session {
    /// `sql` prepared on this connection (once; then from the cache).
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Idle sessions, taken by a call and given back after it (a session whose connection failed is
/// dropped, and the next call connects anew).
pub(crate) struct Sessions {
    idle: Mutex<Vec<Session>>,
    /// Run on each new connection (session settings).
    setup: &'static str,
}

impl Sessions {
    /// Sessions whose connections run `setup` first (`""`: nothing).
    pub(crate) fn new(setup: &'static str) -> Self {
        Sessions {
            idle: Mutex::new(Vec::new()),
            setup,
        }
    }

    /// Runs `f` on a session, on a new connection while it fails for want of one, for `retry_for` at
    /// most.
    pub(crate) fn with<T>(
        &self,
        db: &Db,
        retry_for: Duration,
        what: impl Fn() -> String,
        mut f: impl FnMut(&mut Session) -> Result<T, postgres::Error>,
    ) -> Result<T, PgError> {
        let mut backoff = Backoff::new(retry_for);
        loop {
            let taken = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let session = match taken {
                Some(s) => Ok(s),
                None => db.config.connect(NoTls).and_then(|mut client| {
                    if !self.setup.is_empty() {
                        client.batch_execute(self.setup)?;
                    }
                    Ok(Session {
                        client,
                        statements: HashMap::new(),
                    })
                }),
            };
            let outcome = match session {
                Ok(mut session) => match f(&mut session) {
                    Ok(v) => {
                        self.idle
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(session);
                        return Ok(v);
                    }
                    Err(e) if retryable(&e) => Err(db.query_error(what())(e)),
                    // Another error leaves the session as it was (a failed transaction is rolled back
                    // when dropped); it is dropped all the same, to be sure.
                    Err(e) => return Err(db.query_error(what())(e)),
                },
                Err(e) if retryable(&e) => Err(PgError::Connect {
                    database: db.database.clone(),
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                }),
                Err(e) => return Err(db.query_error(what())(e)),
            };
            if !backoff.wait() {
                return outcome;
            }
            db.retried();
        }
    }
}
