//! Shared runs: a run's nodes in PostgreSQL, claimed by any number of worker processes (on any number of
//! machines) with `FOR UPDATE SKIP LOCKED` under leases, completed in one fenced transaction each.
//!
//! - [`SharedRuns::submit`] records a run (its workflow's name and fingerprint, one row per node with its
//!   count of unfinished dependencies, its inputs) from any process.
//! - [`SharedRuns::claim`] hands out ready nodes in a batch: each is leased to the claimer until a time
//!   the database's clock sets (`now() + lease`: workers' clocks never decide), under a fresh *lease
//!   token*; a node whose lease expired (its worker stalled, lost its connection, was killed) is ready to
//!   be claimed again. [`SharedRuns::claim_with_inputs`] reads the nodes' inputs in the same statement.
//! - [`SharedRuns::complete`] stores a node's output and context values, marks it done and makes its
//!   dependents ready, in one transaction, *fenced* by the lease token: a worker whose lease expired and
//!   was taken over can never overwrite the node ([`Completion::LeaseLost`]). A failure is retried after
//!   the node's back-off or fails the run (fail-fast: what had not started is skipped).
//! - [`SharedWorker`] does all of it on threads of its own: claim, run each node's action
//!   ([`Workflow::invoke`]), complete (a completer thread writes every thread's batches in one call),
//!   renew the leases of the nodes it holds, and sleep on `LISTEN` (a completion that readies nodes
//!   `NOTIFY`s) with a slow poll as fallback.
//!
//! Every node runs at least once; a node runs more than once only if a worker lost its lease while it
//! ran (killed, stalled past its lease, cut off): then its action ran twice, but one completion is
//! recorded. Sync and async nodes both run in shared runs: a worker thread runs its batch's sync nodes
//! one after the other and polls its async nodes' futures together ([`Workflow::invoke_all`]), so their
//! waits overlap; give the worker a tokio runtime (`WorkerOptions::tokio`, feature `tokio`) for futures
//! that use tokio's timers and I/O.

mod session;
mod worker;

use std::{collections::HashMap, fmt, time::Duration};

use flowmem_engine::{ActionError, Invoked, RunId, Value, Workflow};

use crate::{PgError, PgOptions, db::Db};

use self::session::Sessions;

pub use worker::{SharedWorker, WorkerOptions, WorkerStats};

/// An error of shared runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// The database.
    #[error(transparent)]
    Db(#[from] PgError),
    /// A run id already submitted with another workflow (or another version of it).
    #[error(
        "run {run} was submitted with workflow `{stored}` (fingerprint {stored_fingerprint:016x}), not `{given}` (fingerprint {given_fingerprint:016x})"
    )]
    WorkflowMismatch {
        /// The run.
        run: RunId,
        /// The workflow it has.
        stored: String,
        /// Its fingerprint.
        stored_fingerprint: u64,
        /// The workflow given.
        given: String,
        /// Its fingerprint.
        given_fingerprint: u64,
    },
    /// No run of that id.
    #[error("no shared run {run}")]
    UnknownRun {
        /// The run.
        run: RunId,
    },
    /// A node's output or a context value that cannot be stored (an `Opaque` value).
    #[error("{what}: {message}")]
    Unpersistable {
        /// The node or key.
        what: String,
        /// Why.
        message: String,
    },
    /// A stored value that does not decode.
    #[error("{what} in the database does not decode: {message}")]
    Decode {
        /// The node or key.
        what: String,
        /// Why.
        message: String,
    },
    /// A worker has no workflow of the claimed run's name and fingerprint (claims ask only for those it
    /// has, so this means the table was changed by hand).
    #[error(
        "a claimed node of run {run} belongs to workflow `{workflow}`, which this worker does not have"
    )]
    UnknownWorkflow {
        /// The run.
        run: RunId,
        /// The workflow named.
        workflow: String,
    },
}

/// Whether `e` is a deadlock or a serialization failure, after which the transaction is done again.
fn deadlocked(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(db.code().code(), "40P01" | "40001"))
}

/// Shared runs in a PostgreSQL schema (see the module's documentation).
pub struct SharedRuns {
    db: Db,
    retry_for: Duration,
    /// Sessions for claims and renewals, which need not wait for the disk (`synchronous_commit` off:
    /// one lost in a server crash costs at most a re-execution, as a lost lease does).
    fast: Sessions,
    /// Sessions for completions, which are durable when they return.
    durable: Sessions,
}

impl fmt::Debug for SharedRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRuns")
            .field("database", &self.db.database)
            .field("schema", &self.db.schema)
            .finish_non_exhaustive()
    }
}

/// A node handed out by [`SharedRuns::claim`], leased to its claimer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The run.
    pub run: RunId,
    /// The run's workflow.
    pub workflow: String,
    /// The node's index in the workflow.
    pub node: usize,
    /// The node's name.
    pub name: String,
    /// This attempt's number (1 for the first; a lease that expired counts as an attempt).
    pub attempt: u32,
    /// The lease's token: only a completion carrying it is accepted.
    pub token: i64,
}

/// What a claimed node reads ([`SharedRuns::inputs`]).
#[derive(Debug, Clone)]
pub struct ClaimInputs {
    /// Its dependencies' outputs, by name, in the order it lists them.
    pub outputs: Vec<(String, Value)>,
    /// The run's context, sorted by key.
    pub context: Vec<(String, Value)>,
}

/// What [`SharedRuns::complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The node is done; `readied` dependents became ready.
    Done {
        /// Dependents whose last dependency this was (for a batch, the batch's count, given with its
        /// first completion).
        readied: usize,
    },
    /// The attempt failed; the node will be claimable again after its back-off.
    Retrying,
    /// The node failed for good, and with it the run.
    Failed,
    /// The lease had expired and another claim took the node (or the run ended): nothing was written.
    LeaseLost,
}

/// How a shared run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedStatus {
    /// Nodes are still to run.
    Running,
    /// Every node is done.
    Completed,
    /// A node failed.
    Failed,
}

/// A node of a [`SharedReport`].
#[derive(Debug, Clone)]
pub struct SharedNode {
    /// Its name.
    pub name: String,
    /// `waiting`, `ready`, `leased`, `done`, `failed` or `skipped`.
    pub state: String,
    /// Attempts claimed.
    pub attempts: u32,
    /// The worker that claimed it last.
    pub worker: Option<String>,
    /// Its output, once done.
    pub output: Option<Value>,
    /// The error of its last failed attempt.
    pub error: Option<String>,
}

/// A shared run as the database has it, readable from any process ([`SharedRuns::report`]).
#[derive(Debug, Clone)]
pub struct SharedReport {
    /// The run.
    pub run: RunId,
    /// Its workflow.
    pub workflow: String,
    /// How it stands.
    pub status: SharedStatus,
    /// Every node, in the workflow's order.
    pub nodes: Vec<SharedNode>,
    /// Its context, sorted by key.
    pub context: Vec<(String, Value)>,
}

impl SharedReport {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&SharedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn encode(what: impl Fn() -> String, value: &Value) -> Result<Vec<u8>, SharedError> {
    let mut out = Vec::new();
    value
        .encode(&mut out)
        .map_err(|e| SharedError::Unpersistable {
            what: what(),
            message: e.to_string(),
        })?;
    Ok(out)
}

fn decode(what: impl Fn() -> String, bytes: &[u8]) -> Result<Value, SharedError> {
    Value::decode(bytes).map_err(|e| SharedError::Decode {
        what: what(),
        message: e.to_string(),
    })
}

/// Node `node`'s dependencies' outputs, by name in the order the node lists them, decoded: those
/// `stored(position, dependency)` finds (a dependency without a stored output is left out).
fn dependency_outputs<'a>(
    workflow: &Workflow,
    node: usize,
    mut stored: impl FnMut(usize, u32) -> Option<&'a [u8]>,
) -> Result<Vec<(String, Value)>, SharedError> {
    let mut outputs = Vec::new();
    for (position, d) in workflow.dependencies_of(node).iter().enumerate() {
        let Some(bytes) = stored(position, *d) else {
            continue;
        };
        let name = workflow.node_name(*d as usize).unwrap_or_default();
        outputs.push((
            name.to_string(),
            decode(|| format!("the output of node `{name}`"), bytes)?,
        ));
    }
    Ok(outputs)
}

impl SharedRuns {
    /// Connects and creates or migrates the schema ([`migrate`](crate::migrate)).
    ///
    /// # Errors
    /// As [`PgCheckpoints::open`](crate::PgCheckpoints::open).
    pub fn open(options: PgOptions) -> Result<Self, PgError> {
        let retry_for = options.retry_for;
        Ok(SharedRuns {
            db: Db::open(&options, 0)?,
            retry_for,
            fast: Sessions::new("SET synchronous_commit TO off"),
            durable: Sessions::new(""),
        })
    }

    /// Statements retried on a new connection since `open` (a connection lost, the server restarting):
    /// each waited out with a backoff of 10 ms doubling to 1 s, for [`PgOptions::retry_for`] at most.
    pub fn retries(&self) -> u64 {
        self.db.retries()
    }

    /// The `NOTIFY` channel of this schema's shared runs.
    pub(crate) fn channel(&self) -> String {
        format!("flowmem_{}", self.db.schema)
    }

    /// Runs `f` on a pooled connection, on a new one while the connection fails (for `retry_for`).
    fn with_client<T>(
        &self,
        what: impl Fn() -> String,
        f: impl FnMut(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, PgError> {
        self.db.with_client(self.retry_for, what, f, || {})
    }

    /// Records run `run` of `workflow` with `inputs` in its context: its root nodes are ready for any
    /// worker that has `workflow` (by name and fingerprint). Returns `false` if the run was already
    /// submitted with the same workflow (nothing changes: submitting is idempotent).
    ///
    /// # Errors
    /// [`SharedError::WorkflowMismatch`] if the run id was submitted with another workflow; an input that
    /// cannot be stored; the database's errors.
    pub fn submit(
        &self,
        workflow: &Workflow,
        run: RunId,
        inputs: &[(String, Value)],
    ) -> Result<bool, SharedError> {
        let s = &self.db.s;
        let names: Vec<String> = workflow.nodes().map(str::to_string).collect();
        let waiting: Vec<i32> = (0..names.len())
            .map(|i| workflow.dependencies_of(i).len() as i32)
            .collect();
        let inputs: Vec<(String, Vec<u8>)> = inputs
            .iter()
            .map(|(k, v)| Ok((k.clone(), encode(|| format!("input `{k}`"), v)?)))
            .collect::<Result<_, SharedError>>()?;
        let fingerprint = workflow.fingerprint() as i64;
        let run_text = run.to_string();
        let channel = self.channel();
        let existing = self.with_client(
            || format!("submitting run {run}"),
            |client| {
                let mut tx = client.transaction()?;
                let found = tx.query_opt(
                    &format!(
                        "SELECT workflow, fingerprint FROM {s}.shared_runs WHERE run = $1::text::uuid"
                    ),
                    &[&run_text],
                )?;
                if let Some(row) = found {
                    return Ok(Some((row.get::<_, String>(0), row.get::<_, i64>(1))));
                }
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.shared_runs (run, workflow, fingerprint, nodes)
                         VALUES ($1::text::uuid, $2, $3, $4)"
                    ),
                    &[&run_text, &workflow.name(), &fingerprint, &(names.len() as i32)],
                )?;
                let indices: Vec<i32> = (0..names.len() as i32).collect();
                // Each node's dependencies, as a slice [start, end) of one flat array.
                let mut deps_flat: Vec<i32> = Vec::new();
                let mut deps_end: Vec<i32> = Vec::with_capacity(names.len());
                for i in 0..names.len() {
                    deps_flat.extend(workflow.dependencies_of(i).iter().map(|d| *d as i32));
                    deps_end.push(deps_flat.len() as i32);
                }
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.shared_nodes (run, node, name, waiting, state, ready_at, deps)
                         SELECT $1::text::uuid, n, name, w,
                                CASE WHEN w = 0 THEN 'ready' ELSE 'waiting' END, now(),
                                ($5::int4[])[e - w + 1 : e]
                         FROM unnest($2::int4[], $3::text[], $4::int4[], $6::int4[]) AS t (n, name, w, e)"
                    ),
                    &[&run_text, &indices, &names, &waiting, &deps_flat, &deps_end],
                )?;
                let keys: Vec<&str> = inputs.iter().map(|(k, _)| k.as_str()).collect();
                let values: Vec<&[u8]> = inputs.iter().map(|(_, v)| v.as_slice()).collect();
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.shared_context (run, key, value)
                         SELECT $1::text::uuid, k, v FROM unnest($2::text[], $3::bytea[]) AS t (k, v)"
                    ),
                    &[&run_text, &keys, &values],
                )?;
                tx.execute("SELECT pg_notify($1, '')", &[&channel])?;
                tx.commit()?;
                Ok(None)
            },
        )?;
        match existing {
            None => Ok(true),
            Some((stored, stored_fp)) if stored == workflow.name() && stored_fp == fingerprint => {
                Ok(false)
            }
            Some((stored, stored_fp)) => Err(SharedError::WorkflowMismatch {
                run,
                stored,
                stored_fingerprint: stored_fp as u64,
                given: workflow.name().to_string(),
                given_fingerprint: workflow.fingerprint(),
            }),
        }
    }

    /// Leases up to `batch` ready nodes of runs of `workflows` (by name and fingerprint) to `owner` for
    /// `lease` (from the database's clock), oldest ready first; nodes locked by another claim in flight
    /// are skipped, not waited for (`FOR UPDATE SKIP LOCKED`). A node whose lease expired counts as
    /// ready.
    ///
    /// # Errors
    /// The database's.
    pub fn claim(
        &self,
        owner: &str,
        workflows: &[&Workflow],
        batch: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, SharedError> {
        Ok(self
            .claim_with_inputs(owner, workflows, batch, lease)?
            .into_iter()
            .map(|(claim, _)| claim)
            .collect())
    }

    /// [`claim`](Self::claim), with each claimed node's inputs ([`inputs`](Self::inputs)) read in the
    /// same statement: one round trip where a claim and a read took two.
    ///
    /// # Errors
    /// The database's; a stored value that does not decode.
    pub fn claim_with_inputs(
        &self,
        owner: &str,
        workflows: &[&Workflow],
        batch: usize,
        lease: Duration,
    ) -> Result<Vec<(Claim, ClaimInputs)>, SharedError> {
        let s = &self.db.s;
        let names: Vec<&str> = workflows.iter().map(|w| w.name()).collect();
        let prints: Vec<i64> = workflows.iter().map(|w| w.fingerprint() as i64).collect();
        let seconds = lease.as_secs_f64();
        let limit = batch.max(1) as i64;
        // The outputs and contexts are read from the statement's snapshot, taken before its update:
        // the dependencies are done rows this statement does not change.
        let sql = format!(
            "WITH c AS (
                 SELECT n.run, n.node FROM {s}.shared_nodes n
                 JOIN {s}.shared_runs r ON r.run = n.run
                 WHERE r.status = 'running'
                   AND (r.workflow, r.fingerprint) IN (SELECT * FROM unnest($2::text[], $3::int8[]))
                   AND ((n.state = 'ready' AND n.ready_at <= now())
                        OR (n.state = 'leased' AND n.lease_expires < now()))
                 ORDER BY n.ready_at NULLS FIRST
                 LIMIT $1
                 FOR UPDATE OF n SKIP LOCKED),
             claimed AS (
                 UPDATE {s}.shared_nodes n
                 SET state = 'leased', lease_owner = $4, worker = $4,
                     lease_token = nextval('{s}.lease_tokens'),
                     lease_expires = now() + make_interval(secs => $5),
                     attempts = n.attempts + 1, started_at = now()
                 FROM c
                 WHERE n.run = c.run AND n.node = c.node
                 RETURNING n.run, n.node, n.name, n.attempts, n.lease_token, n.deps)
             SELECT k.run::text, k.node, k.name, k.attempts, k.lease_token,
                    (SELECT workflow FROM {s}.shared_runs r WHERE r.run = k.run),
                    ARRAY(SELECT (SELECT d.output FROM {s}.shared_nodes d
                                  WHERE d.run = k.run AND d.node = u.node)
                          FROM unnest(k.deps) WITH ORDINALITY AS u (node, i) ORDER BY u.i),
                    ARRAY(SELECT x.key FROM {s}.shared_context x WHERE x.run = k.run ORDER BY x.key),
                    ARRAY(SELECT x.value FROM {s}.shared_context x WHERE x.run = k.run ORDER BY x.key)
             FROM claimed k"
        );
        // A claim need not wait for the disk (a fast session): if the server crashed before it reached
        // the disk, the claim is forgotten, the node is claimable again, and the claimer's completion
        // is refused by the fence — a re-execution, as after any lost lease.
        let rows = self.fast.with(
            &self.db,
            self.retry_for,
            || format!("claiming nodes for `{owner}`"),
            |session| {
                let claim = session.prepare(&sql)?;
                session
                    .client
                    .query(&claim, &[&limit, &names, &prints, &owner, &seconds])
            },
        )?;
        rows.iter()
            .map(|row| {
                let run: String = row.get(0);
                let claim = Claim {
                    run: run.parse().map_err(|e| SharedError::Decode {
                        what: "a run id".into(),
                        message: format!("{e}"),
                    })?,
                    node: row.get::<_, i32>(1) as usize,
                    name: row.get(2),
                    attempt: row.get::<_, i32>(3) as u32,
                    token: row.get(4),
                    workflow: row.get(5),
                };
                // The dependencies' outputs in the order the node lists them (as stored at submission,
                // from the same workflow: its fingerprint matched the claim's).
                let dep_outputs: Vec<Option<&[u8]>> = row.get(6);
                let outputs = match workflows.iter().find(|w| w.name() == claim.workflow) {
                    Some(workflow) => dependency_outputs(workflow, claim.node, |position, _| {
                        dep_outputs.get(position).copied().flatten()
                    })?,
                    None => Vec::new(),
                };
                let keys: Vec<String> = row.get(7);
                let values: Vec<&[u8]> = row.get(8);
                let context = keys
                    .into_iter()
                    .zip(values)
                    .map(|(key, value)| {
                        let value = decode(|| format!("context value `{key}`"), value)?;
                        Ok((key, value))
                    })
                    .collect::<Result<_, SharedError>>()?;
                Ok((claim, ClaimInputs { outputs, context }))
            })
            .collect()
    }

    /// Extends the leases of `tokens` (held by `owner`) to `lease` from now; returns how many were
    /// still held.
    ///
    /// # Errors
    /// The database's.
    pub fn renew(&self, owner: &str, tokens: &[i64], lease: Duration) -> Result<u64, SharedError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        let s = &self.db.s;
        let seconds = lease.as_secs_f64();
        let sql = format!(
            "UPDATE {s}.shared_nodes SET lease_expires = now() + make_interval(secs => $3)
             WHERE lease_owner = $1 AND state = 'leased' AND lease_token = ANY($2)"
        );
        // Like a claim, a renewal lost in a server crash costs at most a re-execution.
        Ok(self.fast.with(
            &self.db,
            self.retry_for,
            || format!("renewing the leases of `{owner}`"),
            |session| {
                let renew = session.prepare(&sql)?;
                session.client.execute(&renew, &[&owner, &tokens, &seconds])
            },
        )?)
    }

    /// The inputs of a claimed node: its dependencies' outputs (by name) and the run's context.
    ///
    /// # Errors
    /// The database's; a stored value that does not decode.
    pub fn inputs(&self, workflow: &Workflow, claim: &Claim) -> Result<ClaimInputs, SharedError> {
        let mut all = self.inputs_batch(&[(workflow, claim)])?;
        Ok(all.pop().expect("one claim, one set of inputs"))
    }

    /// [`inputs`](Self::inputs) of many claims in two queries (their dependencies' outputs, their runs'
    /// contexts), in the order of `claims`.
    ///
    /// # Errors
    /// The database's; a stored value that does not decode.
    pub fn inputs_batch(
        &self,
        claims: &[(&Workflow, &Claim)],
    ) -> Result<Vec<ClaimInputs>, SharedError> {
        let s = &self.db.s;
        let mut dep_runs: Vec<String> = Vec::new();
        let mut dep_nodes: Vec<i32> = Vec::new();
        let mut runs: Vec<String> = Vec::new();
        for (workflow, claim) in claims {
            let run = claim.run.to_string();
            for d in workflow.dependencies_of(claim.node) {
                dep_runs.push(run.clone());
                dep_nodes.push(*d as i32);
            }
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
        let outputs_sql = format!(
            "SELECT n.run::text, n.node, n.output FROM {s}.shared_nodes n
             JOIN unnest($1::text[]::uuid[], $2::int4[]) AS t (run, node)
               ON n.run = t.run AND n.node = t.node
             WHERE n.output IS NOT NULL"
        );
        let contexts_sql = format!(
            "SELECT run::text, key, value FROM {s}.shared_context
             WHERE run = ANY($1::text[]::uuid[]) ORDER BY key"
        );
        let (outputs, contexts) = self.fast.with(
            &self.db,
            self.retry_for,
            || format!("reading the inputs of {} claimed nodes", claims.len()),
            |session| {
                let outputs = session.prepare(&outputs_sql)?;
                let contexts = session.prepare(&contexts_sql)?;
                Ok((
                    session.client.query(&outputs, &[&dep_runs, &dep_nodes])?,
                    session.client.query(&contexts, &[&runs])?,
                ))
            },
        )?;
        let mut output_of: HashMap<(String, i32), &[u8]> = HashMap::new();
        for r in &outputs {
            output_of.insert((r.get(0), r.get(1)), r.get(2));
        }
        let mut context_of: HashMap<String, Vec<(String, Value)>> = HashMap::new();
        for r in &contexts {
            let key: String = r.get(1);
            let value = decode(|| format!("context value `{key}`"), r.get::<_, &[u8]>(2))?;
            context_of.entry(r.get(0)).or_default().push((key, value));
        }
        claims
            .iter()
            .map(|(workflow, claim)| {
                let run = claim.run.to_string();
                let outputs = dependency_outputs(workflow, claim.node, |_, d| {
                    output_of.get(&(run.clone(), d as i32)).copied()
                })?;
                Ok(ClaimInputs {
                    outputs,
                    context: context_of.get(&run).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Records how a claimed node's attempt ended, in one transaction fenced by the claim's lease token:
    /// done (output and context values stored, dependents whose last dependency it was made ready, the
    /// run completed if it was the last node, waiting workers notified), retried after the node's
    /// back-off, or failed with its run (nodes not started are skipped). If the lease was lost, nothing
    /// is written ([`Completion::LeaseLost`]).
    ///
    /// # Errors
    /// The database's (a lost connection is retried on a new one: the fence makes a retried completion
    /// harmless); an output that cannot be stored.
    pub fn complete(
        &self,
        workflow: &Workflow,
        claim: &Claim,
        invoked: &Invoked,
    ) -> Result<Completion, SharedError> {
        let mut all = self.complete_batch(&[(workflow, claim, invoked)])?;
        Ok(all.pop().expect("one claim, one completion"))
    }

    /// [`complete`](Self::complete) for many claims: the successful attempts together in one
    /// transaction (a handful of statements whatever their number: outputs, context values,
    /// dependents, runs), each still fenced by its own lease token; failed attempts one by one. Returns
    /// the completions in the order of `done`.
    ///
    /// # Errors
    /// As [`complete`](Self::complete).
    pub fn complete_batch(
        &self,
        done: &[(&Workflow, &Claim, &Invoked)],
    ) -> Result<Vec<Completion>, SharedError> {
        let mut out = vec![Completion::LeaseLost; done.len()];
        let ok: Vec<usize> = (0..done.len())
            .filter(|i| done[*i].2.result.is_ok())
            .collect();
        if !ok.is_empty() {
            let completed = self.complete_successes(done, &ok)?;
            for (i, c) in ok.iter().zip(completed) {
                out[*i] = c;
            }
        }
        let channel = self.channel();
        for (i, (workflow, claim, invoked)) in done.iter().enumerate() {
            let Err(error) = &invoked.result else {
                continue;
            };
            let policy = workflow
                .node_policy(&claim.name)
                .map_or(flowmem_engine::RetryPolicy::NONE, |(p, _)| p);
            let retry = error.is_retryable() && claim.attempt <= policy.max_retries();
            let delay = policy.delay(claim.attempt, claim.token as u64);
            out[i] = self.with_client(
                || {
                    format!(
                        "recording the failure of node `{}` of run {}",
                        claim.name, claim.run
                    )
                },
                |client| {
                    self.record_failure(client, claim, error, retry.then_some(delay), &channel)
                },
            )?;
        }
        Ok(out)
    }

    /// The successful attempts `ok` (indices into `done`) in one statement — one round trip, one
    /// commit: the fenced update of the nodes, then, for those that passed their fence only, their
    /// context values (the last put of a key winning), their dependents' counters, their runs' counts of
    /// done nodes (on the runs' rows, whose locks order concurrent completions, so exactly one sees a
    /// run end) and a notification if nodes became ready.
    fn complete_successes(
        &self,
        done: &[(&Workflow, &Claim, &Invoked)],
        ok: &[usize],
    ) -> Result<Vec<Completion>, SharedError> {
        let s = &self.db.s;
        let channel = self.channel();
        let (mut runs, mut nodes, mut outputs, mut tokens) = (vec![], vec![], vec![], vec![]);
        let (mut put_runs, mut put_nodes, mut put_keys, mut put_values) =
            (vec![], vec![], vec![], vec![]);
        let (mut dep_runs, mut dep_nodes, mut dep_targets) = (vec![], vec![], vec![]);
        for &i in ok {
            let (workflow, claim, invoked) = done[i];
            let run = claim.run.to_string();
            runs.push(run.clone());
            nodes.push(claim.node as i32);
            outputs.push(encode(
                || format!("the output of node `{}`", claim.name),
                &invoked.output,
            )?);
            tokens.push(claim.token);
            for (key, value) in &invoked.puts {
                put_runs.push(run.clone());
                put_nodes.push(claim.node as i32);
                put_keys.push(key.clone());
                put_values.push(encode(|| format!("context value `{key}`"), value)?);
            }
            for d in workflow.dependents_of(claim.node) {
                dep_runs.push(run.clone());
                dep_nodes.push(claim.node as i32);
                dep_targets.push(*d as i32);
            }
        }
        // One statement, one round trip, one commit: the function (schema versions 3 and 4, `schema.rs`) locks
        // the dependents' rows first, in one order — two completions that share dependents take them in
        // turn, never in opposite orders (one statement's parts lock rows in whatever order its plan
        // takes, which could deadlock them) — then does the fenced update and the rest.
        let mut shared_deps: Vec<(String, i32)> = dep_runs
            .iter()
            .cloned()
            .zip(dep_targets.iter().copied())
            .collect();
        shared_deps.sort();
        shared_deps.dedup();
        let (lock_runs, lock_nodes): (Vec<String>, Vec<i32>) = shared_deps.into_iter().unzip();
        let sql = format!(
            "SELECT * FROM {s}.complete_nodes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        let rows = self.durable.with(
            &self.db,
            self.retry_for,
            || format!("completing {} nodes", ok.len()),
            |session| {
                let complete = session.prepare(&sql)?;
                let params: [&(dyn postgres::types::ToSql + Sync); 14] = [
                    &runs,
                    &nodes,
                    &outputs,
                    &tokens,
                    &put_runs,
                    &put_nodes,
                    &put_keys,
                    &put_values,
                    &dep_runs,
                    &dep_nodes,
                    &dep_targets,
                    &lock_runs,
                    &lock_nodes,
                    &channel,
                ];
                loop {
                    match session.client.query(&complete, &params) {
                        Ok(rows) => return Ok(rows),
                        // Should the server still find a deadlock, it aborts one statement: that one
                        // is done again (nothing of it was written).
                        Err(e) if deadlocked(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
            },
        )?;
        let readied = rows.first().map_or(0, |r| r.get::<_, i64>(2)) as usize;
        // The claims that passed their fence, as (run, node).
        let completed: std::collections::HashSet<(String, i32)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        self.end_runs(done, ok, &completed)?;
        // The count of nodes made ready is the batch's; it comes with its first completion.
        let mut readied = Some(readied);
        Ok(ok
            .iter()
            .map(|&i| {
                let c = done[i].1;
                if completed.contains(&(c.run.to_string(), c.node as i32)) {
                    Completion::Done {
                        readied: readied.take().unwrap_or(0),
                    }
                } else {
                    Completion::LeaseLost
                }
            })
            .collect())
    }

    /// Marks completed the runs of which this batch completed a sink (a node no other depends on) and
    /// whose every sink is now done (then every node is: each is an ancestor of a sink). Run after the
    /// batch committed, by every completion of a sink: of two completions that end a run together, the
    /// later check sees both committed, so a run's end is never missed; and no completion waits on a
    /// run-wide row.
    fn end_runs(
        &self,
        done: &[(&Workflow, &Claim, &Invoked)],
        ok: &[usize],
        completed: &std::collections::HashSet<(String, i32)>,
    ) -> Result<(), SharedError> {
        let s = &self.db.s;
        let mut checks: Vec<(String, Vec<i32>)> = Vec::new();
        for &i in ok {
            let (workflow, claim, _) = done[i];
            let run = claim.run.to_string();
            let is_sink = workflow.dependents_of(claim.node).is_empty();
            let kept = completed.contains(&(run.clone(), claim.node as i32));
            if is_sink && kept && !checks.iter().any(|(r, _)| *r == run) {
                let sinks = (0..workflow.len())
                    .filter(|n| workflow.dependents_of(*n).is_empty())
                    .map(|n| n as i32)
                    .collect();
                checks.push((run, sinks));
            }
        }
        if checks.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {s}.shared_runs SET status = 'completed', ended_at = now()
             WHERE run = $1::text::uuid AND status = 'running'
               AND NOT EXISTS (SELECT 1 FROM {s}.shared_nodes
                               WHERE run = $1::text::uuid AND node = ANY($2) AND state <> 'done')"
        );
        self.durable.with(
            &self.db,
            self.retry_for,
            || "marking ended runs".to_string(),
            |session| {
                let end = session.prepare(&sql)?;
                for (run, sinks) in &checks {
                    session.client.execute(&end, &[run, sinks])?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    fn record_failure(
        &self,
        client: &mut postgres::Client,
        claim: &Claim,
        error: &ActionError,
        retry_after: Option<Duration>,
        channel: &str,
    ) -> Result<Completion, postgres::Error> {
        let s = &self.db.s;
        let run_text = claim.run.to_string();
        let node = claim.node as i32;
        let message = format!("{:?}: {}", error.kind(), error.message());
        let mut tx = client.transaction()?;
        let fence =
            "WHERE run = $1::text::uuid AND node = $2 AND state = 'leased' AND lease_token = $3";
        let completion = match retry_after {
            Some(delay) => {
                let seconds = delay.as_secs_f64();
                let n = tx.execute(
                    &format!(
                        "UPDATE {s}.shared_nodes SET state = 'ready', error = $4,
                             ready_at = now() + make_interval(secs => $5),
                             lease_owner = NULL, lease_expires = NULL {fence}"
                    ),
                    &[&run_text, &node, &claim.token, &message, &seconds],
                )?;
                if n > 0 {
                    tx.execute("SELECT pg_notify($1, '')", &[&channel])?;
                }
                if n == 0 {
                    Completion::LeaseLost
                } else {
                    Completion::Retrying
                }
            }
            None => {
                let n = tx.execute(
                    &format!(
                        "UPDATE {s}.shared_nodes SET state = 'failed', error = $4, ended_at = now(),
                             lease_owner = NULL, lease_expires = NULL {fence}"
                    ),
                    &[&run_text, &node, &claim.token, &message],
                )?;
                if n > 0 {
                    tx.execute(
                        &format!(
                            "UPDATE {s}.shared_runs SET status = 'failed', ended_at = now()
                             WHERE run = $1::text::uuid AND status = 'running'"
                        ),
                        &[&run_text],
                    )?;
                    tx.execute(
                        &format!(
                            "UPDATE {s}.shared_nodes SET state = 'skipped'
                             WHERE run = $1::text::uuid AND state IN ('waiting', 'ready')"
                        ),
                        &[&run_text],
                    )?;
                }
                if n == 0 {
                    Completion::LeaseLost
                } else {
                    Completion::Failed
                }
            }
        };
        tx.commit()?;
        Ok(completion)
    }

    /// The run as the database has it now, from any process.
    ///
    /// # Errors
    /// [`SharedError::UnknownRun`]; the database's; a stored value that does not decode.
    pub fn report(&self, run: RunId) -> Result<SharedReport, SharedError> {
        let s = &self.db.s;
        let run_text = run.to_string();
        let (head, nodes, context) = self.with_client(
            || format!("reading run {run}"),
            |client| {
                let head = client.query_opt(
                    &format!("SELECT workflow, status FROM {s}.shared_runs WHERE run = $1::text::uuid"),
                    &[&run_text],
                )?;
                let nodes = client.query(
                    &format!(
                        "SELECT name, state, attempts, worker, output, error FROM {s}.shared_nodes
                         WHERE run = $1::text::uuid ORDER BY node"
                    ),
                    &[&run_text],
                )?;
                let context = client.query(
                    &format!(
                        "SELECT key, value FROM {s}.shared_context WHERE run = $1::text::uuid ORDER BY key"
                    ),
                    &[&run_text],
                )?;
                Ok((head, nodes, context))
            },
        )?;
        let head = head.ok_or(SharedError::UnknownRun { run })?;
        let status = status_of(head.get(1));
        let nodes = nodes
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                let output = r
                    .get::<_, Option<&[u8]>>(4)
                    .map(|b| decode(|| format!("the output of node `{name}`"), b))
                    .transpose()?;
                Ok(SharedNode {
                    state: r.get(1),
                    attempts: r.get::<_, i32>(2) as u32,
                    worker: r.get(3),
                    output,
                    error: r.get(5),
                    name,
                })
            })
            .collect::<Result<_, SharedError>>()?;
        let context = context
            .iter()
            .map(|r| {
                let key: String = r.get(0);
                let value = decode(|| format!("context value `{key}`"), r.get::<_, &[u8]>(1))?;
                Ok((key, value))
            })
            .collect::<Result<_, SharedError>>()?;
        Ok(SharedReport {
            run,
            workflow: head.get(0),
            status,
            nodes,
            context,
        })
    }

    /// Waits until run `run` has ended (completed or failed), looking every `every`, for `limit` at
    /// most; the report, or `None` if it is still running.
    ///
    /// # Errors
    /// As [`report`](Self::report).
    pub fn wait(
        &self,
        run: RunId,
        every: Duration,
        limit: Duration,
    ) -> Result<Option<SharedReport>, SharedError> {
        let until = std::time::Instant::now() + limit;
        // Each poll reads the run's one row; the report (every node's row) is read once, at the end.
        while self.status(run)? == SharedStatus::Running {
            if std::time::Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(every);
        }
        self.report(run).map(Some)
    }

    /// The run's status as the database has it now (one row read: cheaper than a [`report`](Self::report)).
    ///
    /// # Errors
    /// [`SharedError::UnknownRun`]; the database's.
    pub fn status(&self, run: RunId) -> Result<SharedStatus, SharedError> {
        let sql = format!(
            "SELECT status FROM {}.shared_runs WHERE run = $1::text::uuid",
            self.db.s
        );
        let run_text = run.to_string();
        let status: Option<String> = self.fast.with(
            &self.db,
            self.retry_for,
            || format!("reading the status of run {run}"),
            |session| {
                let query = session.prepare(&sql)?;
                Ok(session
                    .client
                    .query_opt(&query, &[&run_text])?
                    .map(|r| r.get(0)))
            },
        )?;
        match status.as_deref() {
            None => Err(SharedError::UnknownRun { run }),
            Some(text) => Ok(status_of(text)),
        }
    }

    /// The connection configuration (for a worker's `LISTEN` connection).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// A run's status from its `status` column.
fn status_of(text: &str) -> SharedStatus {
    match text {
        "completed" => SharedStatus::Completed,
        "failed" => SharedStatus::Failed,
        _ => SharedStatus::Running,
    }
}
