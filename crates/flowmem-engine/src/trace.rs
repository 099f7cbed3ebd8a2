//! `tracing` (feature `tracing`): a span per run and per node attempt, events for retries, failures,
//! timeouts and cancellation. Without the feature every item here is empty and inlined away: nothing of
//! it is compiled into the executor's path.
//!
//! | span / event | level | fields |
//! |---|---|---|
//! | span `run` | INFO | `workflow`, `run` |
//! | span `node` (one per attempt, child of `run`) | INFO | `node`, `attempt`, `worker` (absent for an async node polled off the workers) |
//! | event: an attempt failed and the node will be retried | WARN | `node`, `attempt`, `kind`, `error`, `delay_ms` |
//! | event: a node failed (retries spent, a permanent error, a timeout) | ERROR | `node`, `attempts`, `kind`, `error` |
//! | event: a node was cancelled | INFO | `node` |
//! | event: the run ended | INFO | `status`, `duration_us` |
//!
//! With the feature on and no subscriber interested, a span costs a look at its callsite's interest (no
//! allocation: `E2.tracing` in the counts).

#[cfg(feature = "tracing")]
mod on {
    use std::time::Duration;

    use crate::{ActionError, RunId, RunStatus};

    /// A run's span (a `tracing::Span`).
    pub(crate) type RunSpan = tracing::Span;
    /// An attempt's span.
    pub(crate) type AttemptSpan = tracing::Span;
    /// An entered span: left when dropped.
    pub(crate) type Entered<'a> = tracing::span::Entered<'a>;

    #[inline]
    pub(crate) fn run_span(workflow: &str, run: RunId) -> RunSpan {
        tracing::info_span!("run", workflow = %workflow, run = %run)
    }

    /// `worker` is called only if a subscriber wants the span.
    #[inline]
    pub(crate) fn attempt_span(
        run: &RunSpan,
        node: &str,
        attempt: u32,
        worker: impl FnOnce() -> Option<usize>,
    ) -> AttemptSpan {
        tracing::info_span!(parent: run, "node", node = %node, attempt, worker = worker())
    }

    #[inline]
    pub(crate) fn enter(span: &AttemptSpan) -> Entered<'_> {
        span.enter()
    }

    pub(crate) fn retrying(
        run: &RunSpan,
        node: &str,
        attempt: u32,
        error: &ActionError,
        delay: Duration,
    ) {
        tracing::warn!(
            parent: run,
            node = %node,
            attempt,
            kind = ?error.kind(),
            error = %error.message(),
            delay_ms = delay.as_secs_f64() * 1e3,
            "attempt failed; retrying"
        );
    }

    pub(crate) fn failed(run: &RunSpan, node: &str, attempts: u32, error: &ActionError) {
        tracing::error!(
            parent: run,
            node = %node,
            attempts,
            kind = ?error.kind(),
            error = %error.message(),
            "node failed"
        );
    }

    pub(crate) fn cancelled(run: &RunSpan, node: &str) {
        tracing::info!(parent: run, node = %node, "node cancelled");
    }

    /// `status` is called only if a subscriber wants the event.
    pub(crate) fn run_ended(run: &RunSpan, status: impl FnOnce() -> RunStatus, duration: Duration) {
        tracing::info!(
            parent: run,
            status = ?status(),
            duration_us = duration.as_micros() as u64,
            "run ended"
        );
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use std::time::Duration;

    use crate::{ActionError, RunId, RunStatus};

    /// No span: the feature is off.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct RunSpan;
    /// No span.
    pub(crate) type AttemptSpan = RunSpan;
    /// Nothing entered (its empty `Drop` marks where a span would be left, and compiles to nothing).
    pub(crate) struct Entered<'a>(std::marker::PhantomData<&'a RunSpan>);

    impl Drop for Entered<'_> {
        #[inline(always)]
        fn drop(&mut self) {}
    }

    #[inline(always)]
    pub(crate) fn run_span(_: &str, _: RunId) -> RunSpan {
        RunSpan
    }

    #[inline(always)]
    pub(crate) fn attempt_span(
        _: &RunSpan,
        _: &str,
        _: u32,
        _: impl FnOnce() -> Option<usize>,
    ) -> AttemptSpan {
        RunSpan
    }

    #[inline(always)]
    pub(crate) fn enter(_: &AttemptSpan) -> Entered<'_> {
        Entered(std::marker::PhantomData)
    }

    #[inline(always)]
    pub(crate) fn retrying(_: &RunSpan, _: &str, _: u32, _: &ActionError, _: Duration) {}

    #[inline(always)]
    pub(crate) fn failed(_: &RunSpan, _: &str, _: u32, _: &ActionError) {}

    #[inline(always)]
    pub(crate) fn cancelled(_: &RunSpan, _: &str) {}

    #[inline(always)]
    pub(crate) fn run_ended(_: &RunSpan, _: impl FnOnce() -> RunStatus, _: Duration) {}
}

pub(crate) use on::*;
