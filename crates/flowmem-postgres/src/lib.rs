//! flowmem layer 6: durable workflow runs on PostgreSQL.
//!
//! [`PgCheckpoints`] is a [`CheckpointStore`](flowmem_engine::CheckpointStore) in a PostgreSQL schema the
//! crate creates and versions ([`migrate`]): everything `FileCheckpoints` does — checkpoints of completed
//! nodes, the run's context, resume, forget — with the same guarantees, so a process can keep its runs in
//! a database it already runs instead of a file.
//!
//! - **Group commit.** A worker hands a node's checkpoint to the store's committer thread and goes on; the
//!   committer writes everything handed to it since its last commit in one transaction (one multi-row
//!   upsert per table), so many completions share one commit. A checkpoint is durable once the commit that
//!   covers it returns; a run's `wait` returns only after all of its are.
//! - **Order.** Commits are made one after the other, in the order records were handed over, so what a
//!   crash leaves is closed under dependencies, as with the file store.
//! - **A database that goes away.** A commit that fails for want of a connection (the server restarted,
//!   the connection was terminated, the network dropped) is retried on a new connection, with back-off,
//!   for [`PgOptions::retry_for`] (30 s by default): the upserts are idempotent, so a retried commit
//!   cannot double a record. After that the store fails: the run reports the error (`store_error`) and the
//!   store refuses further checkpoints; open it again to go on. Any other database error fails the store
//!   at once.
//!
//! The client is the `postgres` crate (the blocking face of `tokio-postgres`) with an `r2d2` pool: the
//! engine's store seam is synchronous (called on worker threads, waited on by a blocking `wait`), so a
//! blocking client needs no runtime of its own and no `block_on` that would panic inside an async caller.
//!
//! ```no_run
//! use std::sync::Arc;
//! use flowmem_engine::{Executor, RunId, Workflow};
//! use flowmem_postgres::{PgCheckpoints, PgOptions};
//!
//! let store = Arc::new(PgCheckpoints::open(
//!     PgOptions::new("host=127.0.0.1 user=postgres dbname=test").schema("flows"),
//! )?);
//! let mut b = Workflow::builder("nightly");
//! b.node("extract", |ctx| {
//!     ctx.set_output(42u64);
//!     Ok(())
//! });
//! let report = Executor::new(2).run_durable(&b.build()?, store, RunId::named("nightly-2026-11-30"))?;
//! assert!(report.durable);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod db;
mod error;
mod schema;
mod shared;
mod store;

pub use error::PgError;
pub use schema::{SCHEMA_VERSION, migrate, schema_version};
pub use shared::{
    Claim, ClaimInputs, Completion, SharedError, SharedNode, SharedReport, SharedRuns,
    SharedStatus, SharedWorker, WorkerOptions, WorkerStats,
};
pub use store::{PgCheckpoints, PgCheckpointsStats, PgOptions};

/// The guide's code blocks (docs/postgres.md), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/postgres.md")]
struct PostgresGuideDoctests;
