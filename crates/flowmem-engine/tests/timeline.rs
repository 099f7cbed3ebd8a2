//! Attempt records and the timeline SVG: one record and one bar per attempt, outcomes as they happened,
//! lanes per worker, the critical path, and a well-formed image.

use std::time::Duration;

use flowmem_engine::{
    ActionError, ActionErrorKind, AttemptOutcome, Executor, FailurePolicy, RetryPolicy, RunOptions,
    RunStatus, Timeline, TimelineError, Workflow,
};

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// `start` → {`slow` (20 ms), `flaky` (fails twice, then completes), `fast`} → `end`; `doomed` fails for
/// good after one retry (and `after_doomed` is skipped); `late` times out once, then completes.
fn workflow() -> Workflow {
    let mut b = Workflow::builder("pictured");
    b.node("start", |_| {
        sleep_ms(2);
        Ok(())
    });
    b.node("slow", |_| {
        sleep_ms(20);
        Ok(())
    })
    .after(["start"]);
    b.node("flaky", |ctx| {
        sleep_ms(1);
        if ctx.attempt() < 3 {
            return Err(ActionError::new("not yet"));
        }
        Ok(())
    })
    .after(["start"])
    .retry(RetryPolicy::immediate(3));
    b.node("fast", |_| Ok(())).after(["start"]);
    b.node("end", |_| {
        sleep_ms(1);
        Ok(())
    })
    .after(["slow", "flaky", "fast"]);
    b.node("doomed", |_| Err(ActionError::new("always")))
        .retry(RetryPolicy::immediate(1));
    b.node("after_doomed", |_| Ok(())).after(["doomed"]);
    b.node("late", |ctx| {
        if ctx.attempt() == 1 {
            sleep_ms(15);
        }
        Ok(())
    })
    .timeout(Duration::from_millis(5))
    .retry(RetryPolicy::immediate(1));
    b.build().unwrap()
}

/// A run of `wf` on two workers that records its attempts and goes on past failures.
fn recorded_run(wf: &Workflow) -> flowmem_engine::RunReport {
    Executor::new(2).run_with(
        wf,
        RunOptions::new()
            .policy(FailurePolicy::ContinueIndependent)
            .record_attempts(true),
    )
}

#[test]
fn every_attempt_is_recorded_with_its_outcome() {
    let wf = workflow();
    let report = recorded_run(&wf);
    assert_eq!(report.status, RunStatus::Failed);
    let total: u32 = report.nodes.iter().map(|n| n.attempts).sum();
    assert_eq!(report.attempts.len(), total as usize);
    let outcomes = |name: &str| -> Vec<AttemptOutcome> {
        let i = report.nodes.iter().position(|n| &*n.name == name).unwrap();
        let mut mine: Vec<_> = report.attempts.iter().filter(|a| a.node == i).collect();
        mine.sort_by_key(|a| a.attempt);
        assert!(
            mine.iter()
                .enumerate()
                .all(|(k, a)| a.attempt == k as u32 + 1)
        );
        mine.iter().map(|a| a.outcome).collect()
    };
    let retried = AttemptOutcome::Retried(ActionErrorKind::Failed);
    assert_eq!(
        outcomes("flaky"),
        [retried, retried, AttemptOutcome::Completed]
    );
    assert_eq!(
        outcomes("doomed"),
        [retried, AttemptOutcome::Failed(ActionErrorKind::Failed)]
    );
    assert_eq!(
        outcomes("late"),
        [
            AttemptOutcome::Retried(ActionErrorKind::TimedOut),
            AttemptOutcome::Completed
        ]
    );
    assert_eq!(outcomes("after_doomed"), []);
    for a in &report.attempts {
        assert!(a.start <= a.end && a.end <= report.duration, "{a:?}");
        assert!(a.worker.is_some_and(|w| w < 2), "{a:?}");
        assert!(!a.is_async);
    }
    let slow = report
        .nodes
        .iter()
        .position(|n| &*n.name == "slow")
        .unwrap();
    let slow = report.attempts.iter().find(|a| a.node == slow).unwrap();
    assert!(slow.duration() >= Duration::from_millis(20), "{slow:?}");
}

#[test]
fn a_run_records_nothing_unless_asked() {
    let wf = workflow();
    let report = Executor::new(2).run_with(
        &wf,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    assert!(report.attempts.is_empty());
    let error = Timeline::new(&wf, &report).unwrap_err();
    assert!(
        matches!(error, TimelineError::NoAttempts { ran: 7, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("record_attempts(true)"),
        "{error}"
    );
}

#[test]
fn a_timeline_of_another_workflow_is_refused() {
    let mut b = Workflow::builder("other");
    b.node("x", |_| Ok(()));
    let other = b.build().unwrap();
    let report = Executor::new(1).run_with(&other, RunOptions::new().record_attempts(true));
    let error = Timeline::new(&workflow(), &report).unwrap_err();
    assert!(matches!(error, TimelineError::OtherWorkflow { .. }));
    assert!(error.to_string().contains("`other` (1 nodes)"), "{error}");
}

#[test]
fn the_critical_path_follows_the_last_dependency_to_end() {
    let wf = workflow();
    let report = recorded_run(&wf);
    let timeline = Timeline::new(&wf, &report).unwrap();
    let path = timeline.critical_path();
    // Whatever order a loaded machine gave the run: the path ends with the last node to end, and each
    // node before it is, of the next one's dependencies, the last to end.
    let end_of = |name: &str| {
        let i = report.nodes.iter().position(|n| &*n.name == name).unwrap();
        report
            .attempts
            .iter()
            .filter(|a| a.node == i)
            .map(|a| a.end)
            .max()
    };
    let last = report.attempts.iter().map(|a| a.end).max();
    assert_eq!(end_of(path.last().unwrap()), last, "{path:?}");
    for pair in path.windows(2) {
        let deps = wf.dependencies(pair[1]).unwrap();
        let latest = deps.iter().filter_map(|d| end_of(d).map(|e| (e, *d))).max();
        assert_eq!(latest.map(|(_, d)| d), Some(pair[0]), "{path:?}");
    }
    let first_deps = wf.dependencies(path[0]).unwrap();
    assert!(first_deps.iter().all(|d| end_of(d).is_none()), "{path:?}");
    let (on_path, span) = timeline.critical_time();
    assert!(on_path <= span);

    // A chain has one answer, on any machine.
    let mut b = Workflow::builder("chain");
    b.node("a", |_| Ok(()));
    b.node("b", |_| {
        sleep_ms(2);
        Ok(())
    })
    .after(["a"]);
    b.node("c", |_| Ok(())).after(["b"]);
    let chain = b.build().unwrap();
    let report = Executor::new(2).run_with(&chain, RunOptions::new().record_attempts(true));
    let timeline = Timeline::new(&chain, &report).unwrap();
    assert_eq!(timeline.critical_path(), ["a", "b", "c"]);
    let (on_path, _) = timeline.critical_time();
    assert!(on_path >= Duration::from_millis(2));
}

#[test]
fn the_svg_is_well_formed_with_one_bar_per_attempt() {
    let wf = workflow();
    let report = recorded_run(&wf);
    let timeline = Timeline::new(&wf, &report).unwrap();
    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let class = |n: &roxmltree::Node<'_, '_>| n.attribute("class").unwrap_or("").to_string();
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && class(n).starts_with("attempt"))
        .collect();
    assert_eq!(bars.len(), report.attempts.len());
    // Retries are visible: a bar per failed attempt of `flaky` and `doomed`, in their colours.
    let tips: Vec<String> = bars
        .iter()
        .map(|b| b.first_element_child().unwrap().text().unwrap().to_string())
        .collect();
    assert_eq!(
        tips.iter()
            // (A bar on the critical path says so after its outcome.)
            .filter(|t| t.starts_with("flaky ·") && t.contains(" · retried"))
            .count(),
        2
    );
    assert!(
        tips.iter()
            .any(|t| t.starts_with("late · attempt 1") && t.contains("timed out"))
    );
    let critical = bars
        .iter()
        .filter(|b| class(b).contains("critical"))
        .count();
    let path = timeline.critical_path();
    let on_path = report
        .attempts
        .iter()
        .filter(|a| path.contains(&&*report.nodes[a.node].name))
        .count();
    assert!(on_path >= path.len() && !path.is_empty(), "{path:?}");
    assert_eq!(critical, on_path);
    // A lane per worker that ran something.
    let lanes = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && class(n) == "lane")
        .count();
    let workers: std::collections::BTreeSet<_> = report.attempts.iter().map(|a| a.worker).collect();
    assert_eq!(lanes, workers.len());
    let path = std::env::temp_dir().join(format!("flowmem-timeline-{}.svg", std::process::id()));
    timeline.write_svg(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), svg);
    std::fs::remove_file(&path).unwrap();
    let error = timeline
        .write_svg("/nonexistent-dir/timeline.svg")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent-dir/timeline.svg: ")
    );
}

#[test]
fn async_attempts_are_recorded_and_drawn_lighter() {
    let mut b = Workflow::builder("waits");
    for i in 0..6 {
        b.node_async(format!("w{i}"), |_| async {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            std::thread::spawn(move || {
                sleep_ms(50);
                let _ = tx.send(());
            });
            rx.await.map_err(|_| ActionError::new("sender dropped"))
        });
    }
    let wf = b.build().unwrap();
    let report = Executor::new(1).run_with(&wf, RunOptions::new().record_attempts(true));
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.attempts.len(), 6);
    assert!(report.attempts.iter().all(|a| a.is_async));
    // They waited at once, holding no worker: their bars overlap in time.
    let first_end = report.attempts.iter().map(|a| a.end).min().unwrap();
    let last_start = report.attempts.iter().map(|a| a.start).max().unwrap();
    assert!(last_start < first_end, "{:?}", report.attempts);
    let svg = Timeline::new(&wf, &report).unwrap().to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let lighter = doc
        .descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.starts_with("attempt"))
                && n.attribute("fill-opacity") == Some("0.55")
        })
        .count();
    assert_eq!(lighter, 6);
}
