//! The engine's errors: a workflow that cannot be built, and an action that failed.

use std::{fmt, time::Duration};

/// Why a workflow definition was refused by [`WorkflowBuilder::build`](crate::WorkflowBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The workflow has no node.
    #[error("workflow `{workflow}` has no node")]
    Empty {
        /// The workflow's name.
        workflow: String,
    },
    /// Two nodes have the same name.
    #[error("workflow `{workflow}`: two nodes are named `{node}`")]
    DuplicateNode {
        /// The workflow's name.
        workflow: String,
        /// The name used twice.
        node: String,
    },
    /// A node depends on a name no node has.
    #[error(
        "workflow `{workflow}`: node `{node}` depends on `{dependency}`, which is not a node of it"
    )]
    UnknownDependency {
        /// The workflow's name.
        workflow: String,
        /// The node.
        node: String,
        /// The missing name.
        dependency: String,
    },
    /// The dependencies form a cycle (no order runs them all).
    #[error("workflow `{workflow}` has a cycle: {}", cycle_text(nodes))]
    Cycle {
        /// The workflow's name.
        workflow: String,
        /// The nodes of one cycle, each depending on the next, the last on the first.
        nodes: Vec<String>,
    },
}

fn cycle_text(nodes: &[String]) -> String {
    let mut text = String::new();
    for n in nodes {
        text.push_str(&format!("`{n}` depends on "));
    }
    match nodes.first() {
        Some(first) => text.push_str(&format!("`{first}`")),
        None => text.push_str("nothing"),
    }
    text
}

/// How an action failed (returned by the action, or recorded by the engine for a panic or a timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    kind: ActionErrorKind,
    message: String,
}

/// The kind of an [`ActionError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ActionErrorKind {
    /// The action returned an error; retries apply.
    Failed,
    /// The action returned an error that retrying cannot fix; no retry.
    Permanent,
    /// The action panicked.
    Panicked,
    /// The action ran past its node's timeout.
    TimedOut,
    /// The run was cancelled.
    Cancelled,
    /// The node's output or a context value could not be recorded by the run's store (a value a durable
    /// store cannot persist, a store failure); no retry.
    Persistence,
}

impl ActionError {
    /// A failure worth retrying (if the node has retries).
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            kind: ActionErrorKind::Failed,
            message: message.to_string(),
        }
    }

    /// A failure no retry can fix (bad input, say): the node fails at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            kind: ActionErrorKind::Permanent,
            message: message.to_string(),
        }
    }

    /// An error of `kind` (as read back from a report).
    #[cfg(feature = "serde")]
    pub(crate) fn with_kind(kind: ActionErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    pub(crate) fn panicked(message: String) -> Self {
        Self {
            kind: ActionErrorKind::Panicked,
            message,
        }
    }

    pub(crate) fn timed_out(limit: Duration) -> Self {
        Self {
            kind: ActionErrorKind::TimedOut,
            message: format!("ran past its timeout of {limit:?}"),
        }
    }

    pub(crate) fn persistence(error: &crate::DurabilityError) -> Self {
        Self {
            kind: ActionErrorKind::Persistence,
            message: error.to_string(),
        }
    }

    pub(crate) fn cancelled() -> Self {
        Self {
            kind: ActionErrorKind::Cancelled,
            message: "the run was cancelled".to_string(),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ActionErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ActionErrorKind::Failed | ActionErrorKind::Panicked | ActionErrorKind::TimedOut
        )
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ActionErrorKind::Failed => "failed",
            ActionErrorKind::Permanent => "failed permanently",
            ActionErrorKind::Panicked => "panicked",
            ActionErrorKind::TimedOut => "timed out",
            ActionErrorKind::Cancelled => "cancelled",
            ActionErrorKind::Persistence => "not recorded",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for ActionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_reads_as_a_chain_back_to_its_start() {
        let e = DefinitionError::Cycle {
            workflow: "w".into(),
            nodes: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "workflow `w` has a cycle: `a` depends on `b` depends on `a`"
        );
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ActionError::new("io").is_retryable());
        assert!(!ActionError::permanent("bad input").is_retryable());
        assert!(!ActionError::cancelled().is_retryable());
        assert!(ActionError::timed_out(Duration::from_secs(1)).is_retryable());
        assert_eq!(
            ActionError::panicked("boom".into()).to_string(),
            "panicked: boom"
        );
    }
}
