//! The engine's `tracing` spans and events (feature `tracing`; this test's dev-dependencies turn it on),
//! caught by a subscriber layer of the test's own: a `run` span, a `node` span per attempt with its
//! fields, and events for a retry, a failure, a timeout and a cancellation.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

// The engine crate itself (a dev-dependency with `tracing`), so that the test builds with any feature set
// of the facade (`cargo xtask features`).
use flowmem_engine::{
    ActionError, Executor, FailurePolicy, RetryPolicy, RunOptions, RunStatus, Workflow,
};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id},
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

/// A span or an event as seen: its name (a span's) or message (an event's), its fields, its level and
/// the names of the spans it is in.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    level: String,
    fields: BTreeMap<String, String>,
    scope: Vec<String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
}

#[derive(Clone, Default)]
struct Catch {
    spans: Arc<Mutex<Vec<Seen>>>,
    events: Arc<Mutex<Vec<Seen>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Catch {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let scope = ctx
            .span(id)
            .map(|s| s.scope().skip(1).map(|p| p.name().to_string()).collect())
            .unwrap_or_default();
        self.spans.lock().unwrap().push(Seen {
            name: attrs.metadata().name().to_string(),
            level: attrs.metadata().level().to_string(),
            fields: fields.0,
            scope,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let scope = ctx
            .event_scope(event)
            .map(|s| s.map(|p| p.name().to_string()).collect())
            .unwrap_or_default();
        self.events.lock().unwrap().push(Seen {
            name: fields.0.remove("message").unwrap_or_default(),
            level: event.metadata().level().to_string(),
            fields: fields.0,
            scope,
        });
    }
}

#[test]
fn runs_and_attempts_are_spans_and_their_ends_are_events() {
    let catch = Catch::default();
    tracing_subscriber::registry().with(catch.clone()).init();

    let mut b = Workflow::builder("traced");
    b.node("fetch", |ctx| {
        if ctx.attempt() == 1 {
            return Err(ActionError::new("503"));
        }
        Ok(())
    })
    .retry(RetryPolicy::immediate(2));
    b.node("parse", |_| Err(ActionError::permanent("bad row 7")))
        .after(["fetch"]);
    b.node("slow", |ctx| {
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    })
    .timeout(Duration::from_millis(20));
    let workflow = b.build().unwrap();
    let executor = Executor::new(2);
    let report = executor.run_with(
        &workflow,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    assert_eq!(report.status, RunStatus::Failed);

    let spans = catch.spans.lock().unwrap().clone();
    let runs: Vec<&Seen> = spans.iter().filter(|s| s.name == "run").collect();
    assert_eq!(runs.len(), 1, "{spans:#?}");
    assert_eq!(runs[0].fields["workflow"], "traced");
    assert_eq!(runs[0].fields["run"], report.id.to_string());
    let attempts: Vec<&Seen> = spans.iter().filter(|s| s.name == "node").collect();
    // fetch twice, parse once, slow once.
    assert_eq!(attempts.len(), 4, "{attempts:#?}");
    for a in &attempts {
        assert_eq!(
            a.scope,
            ["run"],
            "an attempt's span is a child of its run's: {a:?}"
        );
        assert_eq!(a.level, "INFO");
        assert!(a.fields["worker"].parse::<usize>().unwrap() < 2, "{a:?}");
    }
    let fetch: Vec<&str> = attempts
        .iter()
        .filter(|a| a.fields["node"] == "fetch")
        .map(|a| a.fields["attempt"].as_str())
        .collect();
    assert_eq!(fetch, ["1", "2"]);

    let events = catch.events.lock().unwrap().clone();
    let find = |message: &str, node: &str| {
        events
            .iter()
            .find(|e| e.name == message && e.fields.get("node").is_some_and(|n| n == node))
            .unwrap_or_else(|| panic!("no `{message}` event of `{node}` in {events:#?}"))
    };
    let retry = find("attempt failed; retrying", "fetch");
    assert_eq!(retry.level, "WARN");
    assert_eq!(retry.fields["error"], "503");
    assert_eq!(retry.scope, ["run"]);
    let failed = find("node failed", "parse");
    assert_eq!(failed.level, "ERROR");
    assert_eq!(failed.fields["kind"], "Permanent");
    let timed_out = find("node failed", "slow");
    assert_eq!(timed_out.fields["kind"], "TimedOut");
    let ended = events.iter().find(|e| e.name == "run ended").unwrap();
    assert_eq!(ended.fields["status"], "Failed");

    // A cancelled run: the running node's attempt ends in a cancellation event.
    let mut b = Workflow::builder("cancelled");
    b.node("waits", |ctx| {
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(ActionError::new("stopped"))
    });
    let workflow = b.build().unwrap();
    let handle = executor.submit(&workflow);
    std::thread::sleep(Duration::from_millis(20));
    handle.cancel();
    assert_eq!(handle.wait().status, RunStatus::Cancelled);
    let events = catch.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e.name == "node cancelled" && e.fields["node"] == "waits"),
        "{events:#?}"
    );
}
