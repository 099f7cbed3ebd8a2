//! `PgCheckpoints`: the engine's checkpoint store on PostgreSQL, with a committer thread that writes what
//! workers hand it in one transaction per commit.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use flowmem_engine::{
    CheckpointStore, Checkpoints, DurabilityError, RunId, Ticket, Value, Workflow,
};
use postgres::{Client, NoTls};

use crate::{
    PgError,
    db::{Backoff, Db, redacted, retryable},
};

/// Where and how [`PgCheckpoints`] keeps its records.
#[derive(Clone)]
pub struct PgOptions {
    pub(crate) config: String,
    pub(crate) schema: String,
    pub(crate) application_name: String,
    pub(crate) pool_size: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry_for: Duration,
    commit_interval: Duration,
}

impl PgOptions {
    /// Options for the database of `config`, a libpq connection string (`host=127.0.0.1 user=postgres
    /// dbname=test`) or URL (`postgresql://user@host/db`); the other options at their defaults.
    pub fn new(config: impl Into<String>) -> Self {
        PgOptions {
            config: config.into(),
            schema: "flowmem".into(),
            application_name: "flowmem".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(30),
            commit_interval: Duration::ZERO,
        }
    }

    /// The schema the tables live in (default `flowmem`): lower-case ASCII letters, digits and
    /// underscores. Created by [`PgCheckpoints::open`] if absent.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The `application_name` of the store's connections (default `flowmem`), as `pg_stat_activity`
    /// shows them to an operator.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Connections kept for `begin`, `load` and `forget` (default 8; the committer has its own).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long [`PgCheckpoints::open`] tries to connect before it gives up (default 5 s).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// How long a commit (or a `begin`, `load`, `forget`) that failed for want of a connection is retried
    /// on new connections before the store fails (default 30 s; zero: no retry).
    pub fn retry_for(mut self, limit: Duration) -> Self {
        self.retry_for = limit;
        self
    }

    /// How long the committer waits after the first record of a commit for more to join it (default 0:
    /// records handed over while a commit is in flight go into the next one, which is batching enough
    /// when commits take a round trip and a WAL flush).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("config", &redacted(&self.config))
            .field("schema", &self.schema)
            .field("application_name", &self.application_name)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_for", &self.retry_for)
            .field("commit_interval", &self.commit_interval)
            .finish()
    }
}

/// A [`CheckpointStore`] on PostgreSQL (see the crate's documentation).
pub struct PgCheckpoints {
    inner: Arc<Inner>,
    committer: Option<JoinHandle<()>>,
}

/// Counters of a [`PgCheckpoints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PgCheckpointsStats {
    /// Records handed to the store.
    pub records: Ticket,
    /// Records committed (durable).
    pub durable: Ticket,
    /// Transactions committed.
    pub commits: u64,
    /// Commits or reads retried on a new connection.
    pub retries: u64,
}

struct Inner {
    db: Db,
    options: PgOptions,
    queue: Mutex<Queue>,
    /// Wakes the committer.
    work: Condvar,
    /// Wakes those waiting for durability.
    committed: Condvar,
}

#[derive(Default)]
struct Queue {
    pending: Vec<(Ticket, Record)>,
    appended: Ticket,
    durable: Ticket,
    commits: u64,
    retries: u64,
    /// Why the store failed; it takes no more records.
    failure: Option<String>,
    shutdown: bool,
}

enum Record {
    Node {
        run: RunId,
        node: u32,
        name: String,
        value: Vec<u8>,
    },
    Context {
        run: RunId,
        key: String,
        value: Vec<u8>,
    },
}

impl PgCheckpoints {
    /// Connects, creates or migrates the schema ([`migrate`](crate::migrate)) and starts the committer.
    ///
    /// # Errors
    /// [`PgError::BadConfig`], [`PgError::BadSchemaName`], [`PgError::Connect`] if no connection could be
    /// made within the connect timeout, or the errors of [`migrate`](crate::migrate).
    pub fn open(options: PgOptions) -> Result<Self, PgError> {
        let db = Db::open(&options, 0)?;
        let inner = Arc::new(Inner {
            db,
            options,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            committed: Condvar::new(),
        });
        let committer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("flowmem-pg-committer".into())
                .spawn(move || inner.commit_loop())
                .map_err(|e| PgError::Connect {
                    database: String::new(),
                    message: format!("cannot start the committer thread: {e}"),
                    source: Some(Box::new(e)),
                })?
        };
        Ok(PgCheckpoints {
            inner,
            committer: Some(committer),
        })
    }

    /// The schema the store's tables are in.
    pub fn schema(&self) -> &str {
        &self.inner.db.schema
    }

    /// Waits until every record handed to the store so far is committed.
    ///
    /// # Errors
    /// The store's failure, if a commit failed for good.
    pub fn sync(&self) -> Result<(), DurabilityError> {
        let appended = self.inner.lock().appended;
        self.wait_durable(appended)
    }

    /// Its counters.
    pub fn stats(&self) -> PgCheckpointsStats {
        let q = self.inner.lock();
        PgCheckpointsStats {
            records: q.appended,
            durable: q.durable,
            commits: q.commits,
            retries: q.retries,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn query_error(&self, what: String) -> impl FnOnce(postgres::Error) -> PgError + '_ {
        self.db.query_error(what)
    }

    /// Runs `f` on a pooled connection, again on a new one while it fails for want of a connection, for
    /// `retry_for` at most.
    fn with_client<T>(
        &self,
        what: impl Fn() -> String,
        f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, PgError> {
        self.db
            .with_client(self.options.retry_for, what, f, || self.lock().retries += 1)
    }

    fn refuse_if_failed(&self, q: &Queue) -> Result<(), DurabilityError> {
        match &q.failure {
            None => Ok(()),
            Some(message) => Err(DurabilityError::Backend {
                store: format!("PostgreSQL at {}", self.db.database),
                message: format!(
                    "an earlier commit failed ({message}); the store refuses further checkpoints: open \
                     it again"
                ),
                source: None,
            }),
        }
    }

    fn hand_over(&self, record: Record) -> Result<Ticket, DurabilityError> {
        let mut q = self.lock();
        self.refuse_if_failed(&q)?;
        q.appended += 1;
        let ticket = q.appended;
        q.pending.push((ticket, record));
        self.work.notify_one();
        Ok(ticket)
    }

    fn commit_loop(&self) {
        let mut client: Option<Client> = None;
        loop {
            let mut q = self.lock();
            while q.pending.is_empty() && !q.shutdown {
                q = self.work.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            if q.pending.is_empty() {
                return; // shut down, everything committed
            }
            if !self.options.commit_interval.is_zero() && !q.shutdown {
                drop(q);
                std::thread::sleep(self.options.commit_interval);
                q = self.lock();
            }
            let batch = std::mem::take(&mut q.pending);
            drop(q);
            let last = batch.last().map_or(0, |(t, _)| *t);
            let outcome = self.commit_with_retries(&mut client, &batch);
            let mut q = self.lock();
            match outcome {
                Ok(retries) => {
                    q.durable = q.durable.max(last);
                    q.commits += 1;
                    q.retries += retries;
                }
                Err(e) => {
                    // What was handed over after this batch cannot be durable either: refuse it all.
                    q.failure = Some(e.to_string());
                    q.pending.clear();
                }
            }
            self.committed.notify_all();
        }
    }

    /// Commits `batch`, on a new connection while commits fail for want of one (idempotent upserts: a
    /// retried commit cannot double a record). Returns the retries made.
    fn commit_with_retries(
        &self,
        client: &mut Option<Client>,
        batch: &[(Ticket, Record)],
    ) -> Result<u64, PgError> {
        let mut backoff = Backoff::new(self.options.retry_for);
        let mut retries = 0;
        loop {
            let outcome = match client.as_mut() {
                Some(c) => self.commit(c, batch),
                None => match self.db.config.connect(NoTls) {
                    Ok(c) => self.commit(client.insert(c), batch),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(()) => return Ok(retries),
                Err(e) if retryable(&e) && backoff.wait() => {
                    *client = None;
                    retries += 1;
                }
                Err(e) => {
                    *client = None;
                    return Err(self.query_error(format!(
                        "committing {} checkpoint records in schema `{}`",
                        batch.len(),
                        self.db.schema
                    ))(e));
                }
            }
        }
    }

    /// One transaction: every node record and context record of `batch` upserted, the last of each key
    /// winning.
    fn commit(
        &self,
        client: &mut Client,
        batch: &[(Ticket, Record)],
    ) -> Result<(), postgres::Error> {
        let mut nodes: HashMap<(RunId, u32), usize> = HashMap::new();
        let mut keys: HashMap<(RunId, &str), usize> = HashMap::new();
        for (i, (_, record)) in batch.iter().enumerate() {
            match record {
                Record::Node { run, node, .. } => {
                    nodes.insert((*run, *node), i);
                }
                Record::Context { run, key, .. } => {
                    keys.insert((*run, key.as_str()), i);
                }
            }
        }
        let mut tx = client.transaction()?;
        if !nodes.is_empty() {
            let (mut runs, mut indices, mut names, mut values) = (vec![], vec![], vec![], vec![]);
            for i in nodes.into_values() {
                if let (
                    _,
                    Record::Node {
                        run,
                        node,
                        name,
                        value,
                    },
                ) = &batch[i]
                {
                    runs.push(run.to_string());
                    indices.push(*node as i32);
                    names.push(name.as_str());
                    values.push(value.as_slice());
                }
            }
            tx.execute(
                &format!(
                    "INSERT INTO {s}.checkpoints (run, node, name, value)
                     SELECT * FROM unnest($1::text[]::uuid[], $2::int4[], $3::text[], $4::bytea[])
                     ON CONFLICT (run, node) DO UPDATE SET name = EXCLUDED.name, value = EXCLUDED.value",
                    s = self.db.s
                ),
                &[&runs, &indices, &names, &values],
            )?;
        }
        if !keys.is_empty() {
            let (mut runs, mut names, mut values) = (vec![], vec![], vec![]);
            for i in keys.into_values() {
                if let (_, Record::Context { run, key, value }) = &batch[i] {
                    runs.push(run.to_string());
                    names.push(key.as_str());
                    values.push(value.as_slice());
                }
            }
            tx.execute(
                &format!(
                    "INSERT INTO {s}.context (run, key, value)
                     SELECT * FROM unnest($1::text[]::uuid[], $2::text[], $3::bytea[])
                     ON CONFLICT (run, key) DO UPDATE SET value = EXCLUDED.value",
                    s = self.db.s
                ),
                &[&runs, &names, &values],
            )?;
        }
        tx.commit()
    }

    /// The checkpoints of `run` as stored (in a transaction or on a connection).
    fn read_checkpoints(
        &self,
        client: &mut impl postgres::GenericClient,
        run: RunId,
    ) -> Result<Result<Checkpoints, DurabilityError>, postgres::Error> {
        let id = run.to_string();
        let mut checkpoints = Checkpoints::default();
        for row in client.query(
            &format!(
                "SELECT node, value FROM {}.checkpoints WHERE run = $1::text::uuid ORDER BY node",
                self.db.s
            ),
            &[&id],
        )? {
            let node: i32 = row.get(0);
            match Value::decode(row.get::<_, &[u8]>(1)) {
                Ok(v) => checkpoints.nodes.push((node as u32, v)),
                Err(e) => {
                    return Ok(Err(inconsistent(
                        run,
                        format!("node {node}'s checkpoint: {e}"),
                    )));
                }
            }
        }
        for row in client.query(
            &format!(
                "SELECT key, value FROM {}.context WHERE run = $1::text::uuid ORDER BY key",
                self.db.s
            ),
            &[&id],
        )? {
            let key: String = row.get(0);
            match Value::decode(row.get::<_, &[u8]>(1)) {
                Ok(v) => checkpoints.context.push((key, v)),
                Err(e) => {
                    return Ok(Err(inconsistent(
                        run,
                        format!("context value `{key}`: {e}"),
                    )));
                }
            }
        }
        Ok(Ok(checkpoints))
    }
}

/// `value`'s persisted form; an unpersistable value's error names it as `what` says.
fn encoded(value: &Value, what: impl FnOnce() -> String) -> Result<Vec<u8>, DurabilityError> {
    let mut bytes = Vec::new();
    value.encode(&mut bytes).map_err(|e| match e {
        DurabilityError::Unpersistable { kind, .. } => {
            DurabilityError::Unpersistable { what: what(), kind }
        }
        other => other,
    })?;
    Ok(bytes)
}

fn inconsistent(run: RunId, problem: String) -> DurabilityError {
    DurabilityError::Inconsistent { run, problem }
}

impl CheckpointStore for PgCheckpoints {
    fn is_durable(&self) -> bool {
        true
    }

    fn begin(&self, run: RunId, workflow: &Workflow) -> Result<Checkpoints, DurabilityError> {
        let inner = &self.inner;
        inner.refuse_if_failed(&inner.lock())?;
        let id = run.to_string();
        inner.with_client(
            || format!("starting run {run}"),
            |client| {
                let mut tx = client.transaction()?;
                let stored = tx.query_opt(
                    &format!(
                        "SELECT workflow, fingerprint, nodes FROM {}.runs WHERE run = $1::text::uuid",
                        inner.db.s
                    ),
                    &[&id],
                )?;
                let found = match stored {
                    Some(row) => {
                        let (name, fingerprint, nodes): (String, i64, i32) =
                            (row.get(0), row.get(1), row.get(2));
                        match workflow.check_resume(run, &name, fingerprint as u64, nodes as u32) {
                            Ok(()) => inner.read_checkpoints(&mut tx, run)?,
                            Err(e) => Err(e),
                        }
                    }
                    None => {
                        tx.execute(
                            &format!(
                                "INSERT INTO {}.runs (run, workflow, fingerprint, nodes)
                                 VALUES ($1::text::uuid, $2, $3, $4)",
                                inner.db.s
                            ),
                            &[
                                &id,
                                &workflow.name(),
                                &(workflow.fingerprint() as i64),
                                &(workflow.len() as i32),
                            ],
                        )?;
                        Ok(Checkpoints::default())
                    }
                };
                tx.commit()?;
                Ok(found)
            },
        )?
    }

    fn checkpoint(
        &self,
        run: RunId,
        node: u32,
        name: &str,
        output: &Value,
    ) -> Result<Ticket, DurabilityError> {
        let value = encoded(output, || format!("the output of node `{name}`"))?;
        self.inner.hand_over(Record::Node {
            run,
            node,
            name: name.to_string(),
            value,
        })
    }

    fn put_context(&self, run: RunId, key: &str, value: &Value) -> Result<Ticket, DurabilityError> {
        let value = encoded(value, || format!("context value `{key}`"))?;
        self.inner.hand_over(Record::Context {
            run,
            key: key.to_string(),
            value,
        })
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), DurabilityError> {
        let inner = &self.inner;
        let mut q = inner.lock();
        loop {
            if q.durable >= ticket {
                return Ok(());
            }
            inner.refuse_if_failed(&q)?;
            q = inner
                .committed
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn load(&self, run: RunId) -> Result<Option<Checkpoints>, DurabilityError> {
        let inner = &self.inner;
        let id = run.to_string();
        let outcome = inner.with_client(
            || format!("reading run {run}"),
            |client| {
                let mut tx = client.transaction()?;
                let exists = tx
                    .query_opt(
                        &format!(
                            "SELECT 1 FROM {}.runs WHERE run = $1::text::uuid",
                            inner.db.s
                        ),
                        &[&id],
                    )?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                let checkpoints = inner.read_checkpoints(&mut tx, run)?;
                tx.commit()?;
                Ok(Some(checkpoints))
            },
        )?;
        outcome.transpose()
    }

    fn forget(&self, run: RunId) -> Result<bool, DurabilityError> {
        // Records of the run still on their way would find no run row: commit them first.
        self.sync()?;
        let inner = &self.inner;
        let id = run.to_string();
        Ok(inner.with_client(
            || format!("forgetting run {run}"),
            |client| {
                client.execute(
                    &format!("DELETE FROM {}.runs WHERE run = $1::text::uuid", inner.db.s),
                    &[&id],
                )
            },
        )? > 0)
    }
}

impl Drop for PgCheckpoints {
    fn drop(&mut self) {
        // The committer commits what is pending, then stops.
        self.inner.lock().shutdown = true;
        self.inner.work.notify_all();
        if let Some(h) = self.committer.take() {
            let _ = h.join();
        }
    }
}

impl fmt::Debug for PgCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCheckpoints")
            .field("database", &self.inner.db.database)
            .field("schema", &self.inner.db.schema)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("host=db user=me password=secret dbname=x"),
            "host=db user=me password=*** dbname=x"
        );
        assert_eq!(
            redacted("postgresql://me:secret@db:5432/x"),
            "postgresql://me:***@db:5432/x"
        );
        assert_eq!(redacted("postgresql://me@db/x"), "postgresql://me@db/x");
        let options = PgOptions::new("host=db password=secret");
        assert!(!format!("{options:?}").contains("secret"));
    }
}
