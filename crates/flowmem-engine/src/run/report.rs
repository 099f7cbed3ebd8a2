//! What a run did: its report, node by node, and (when asked for) every attempt.

use std::{sync::Arc, time::Duration};

use crate::{ActionError, ActionErrorKind, DurabilityError, RunId, Value};

use super::{NodeStatus, RunStatus};

/// What a run did, node by node.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id: for a durable run, the id it was submitted with
    /// ([`Executor::submit_durable`](crate::Executor::submit_durable)); for another run, an id the
    /// executor made for it (a random base per executor and the run's number: unique, never reused).
    pub id: RunId,
    /// Whether the run was durable (its checkpoints are in a store, under `id`).
    pub durable: bool,
    /// Why a durable run's checkpoints could not be made durable (the run then counts as failed).
    pub store_error: Option<Arc<DurabilityError>>,
    /// The workflow's name.
    pub workflow: Arc<str>,
    /// How it ended.
    pub status: RunStatus,
    /// From submission to the end.
    pub duration: Duration,
    /// Every node, in the order the workflow lists them.
    pub nodes: Vec<NodeReport>,
    /// The run's context at its end (inputs and values nodes put), sorted by key.
    pub context: Vec<(String, Value)>,
    /// Every attempt of every node, in the order they ended, if the run recorded them
    /// ([`RunOptions::record_attempts`](crate::RunOptions::record_attempts)); empty otherwise. A
    /// [`Timeline`](crate::Timeline) draws them.
    pub attempts: Vec<AttemptRecord>,
}

/// One attempt of a node, as a run that records its attempts keeps it
/// ([`RunOptions::record_attempts`](crate::RunOptions::record_attempts)).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The node: its index in [`RunReport::nodes`] (the workflow's order).
    pub node: usize,
    /// The attempt's number (1 for the first).
    pub attempt: u32,
    /// The executor's worker that ran it (numbered from 0): for an async node, the worker that ended it
    /// (its future may have been polled by others, and held none while it waited). `None` for an
    /// attempt ended off the workers (an async node woken by its own timeout on another thread).
    pub worker: Option<usize>,
    /// When it started, from the run's submission.
    pub start: Duration,
    /// When it ended, from the run's submission.
    pub end: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Whether the node is async (its attempt held a worker only while it was polled).
    pub is_async: bool,
}

impl AttemptRecord {
    /// How long it took.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The node completed.
    Completed,
    /// It failed, and the node was tried again (after its back-off).
    Retried(ActionErrorKind),
    /// It failed, and the node failed.
    Failed(ActionErrorKind),
    /// The run was cancelled or stopped while it ran.
    Cancelled,
}

impl AttemptOutcome {
    /// A word for it: `completed`, `retried`, `failed`, `timed out` (failed or retried after its
    /// timeout), `cancelled`.
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Retried(ActionErrorKind::TimedOut)
            | AttemptOutcome::Failed(ActionErrorKind::TimedOut) => "timed out",
            AttemptOutcome::Retried(_) => "retried",
            AttemptOutcome::Failed(_) => "failed",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// One node in a [`RunReport`].
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node's name.
    pub name: Arc<str>,
    /// Its final status.
    pub status: NodeStatus,
    /// Attempts made (0 if it never ran).
    pub attempts: u32,
    /// Time spent in its action, all attempts together.
    pub duration: Duration,
    /// The error of its last attempt, if it failed.
    pub error: Option<ActionError>,
    /// Its output, if it completed.
    pub output: Option<Value>,
    /// Whether it completed in an earlier attempt of this durable run and was restored from the store
    /// (not run in this one).
    pub restored: bool,
}

impl RunReport {
    /// The output of node `name` as a `T` (see [`Value::to_serde`]).
    ///
    /// # Errors
    /// [`DecodeError`](crate::DecodeError) naming the node and `T`: no such node, no output, or an output
    /// that does not decode as `T`.
    pub fn output_as<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<T, crate::DecodeError> {
        let what = format!("the output of node `{name}`");
        match self.output(name) {
            Some(v) => v.decode_as(&what),
            None => Err(crate::DecodeError {
                what,
                type_name: std::any::type_name::<T>(),
                message: "there is none (no such node, or it did not complete)".into(),
            }),
        }
    }

    /// The value under `key` in the run's context at its end.
    pub fn context_value(&self, key: &str) -> Option<&Value> {
        self.context
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.context[i].1)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| &*n.name == name)
    }

    /// The output of node `name`, if it completed.
    pub fn output(&self, name: &str) -> Option<&Value> {
        self.node(name)?.output.as_ref()
    }

    /// How many nodes were restored from the store (durable runs) rather than run.
    pub fn restored(&self) -> usize {
        self.nodes.iter().filter(|n| n.restored).count()
    }

    /// How many nodes ended with `status`.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.nodes.iter().filter(|n| n.status == status).count()
    }
}
