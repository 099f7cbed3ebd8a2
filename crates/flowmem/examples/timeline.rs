//! A picture of a run: run a small ETL workflow on two workers, recording every attempt, and draw its
//! timeline (one lane per worker, a bar per attempt, the critical path outlined) as an SVG image.
//!
//! `cargo run -p flowmem --example timeline -- [OUT.svg]` (default `timeline.svg`); open the file in a
//! browser and hover a bar for its node, attempt, worker, start, duration and outcome.

use std::time::Duration;

use flowmem::engine::{
    ActionError, Executor, FailurePolicy, RetryPolicy, RunOptions, Timeline, Workflow,
};

/// Stands in for real work: `ms` milliseconds of sleeping.
fn work(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "timeline.svg".into());
    let mut b = Workflow::builder("nightly-etl");
    b.node("plan", |_| {
        work(3);
        Ok(())
    });
    // Four sources extracted in parallel, of different sizes.
    for (source, ms) in [
        ("orders", 18),
        ("customers", 7),
        ("stock", 11),
        ("prices", 5),
    ] {
        b.node(format!("extract_{source}"), move |_| {
            work(ms);
            Ok(())
        })
        .after(["plan"]);
    }
    // A service that fails twice before it answers: its retries show as orange bars.
    b.node("fetch_rates", |ctx| {
        work(4);
        if ctx.attempt() < 3 {
            return Err(ActionError::new("rates service: 503"));
        }
        Ok(())
    })
    .after(["plan"])
    .retry(RetryPolicy::exponential(4, Duration::from_millis(2)));
    // An async node: it waits 12 ms holding no worker (a lighter bar).
    b.node_async("notify_start", |_| async {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            work(12);
            let _ = tx.send(());
        });
        rx.await.map_err(|_| ActionError::new("notifier gone"))
    })
    .after(["plan"]);
    b.node("join_orders", |_| {
        work(9);
        Ok(())
    })
    .after(["extract_orders", "extract_customers"]);
    b.node("price_stock", |_| {
        work(6);
        Ok(())
    })
    .after(["extract_stock", "extract_prices", "fetch_rates"]);
    // A step over its time limit on the first try: purple, then retried.
    b.node("dedupe", |ctx| {
        work(if ctx.attempt() == 1 { 12 } else { 3 });
        Ok(())
    })
    .after(["join_orders"])
    .timeout(Duration::from_millis(8))
    .retry(RetryPolicy::immediate(1));
    b.node("load_warehouse", |_| {
        work(10);
        Ok(())
    })
    .after(["dedupe", "price_stock"]);
    // A report that fails for good (red); the rest of the run goes on.
    b.node("email_report", |_| {
        work(2);
        Err(ActionError::permanent("SMTP relay refused the message"))
    })
    .after(["load_warehouse"]);
    let workflow = b.build()?;

    let report = Executor::new(2).run_with(
        &workflow,
        RunOptions::new()
            .policy(FailurePolicy::ContinueIndependent)
            .record_attempts(true),
    );
    let timeline = Timeline::new(&workflow, &report)?;
    timeline.write_svg(&out)?;
    let (on_path, span) = timeline.critical_time();
    println!(
        "{:?} in {:?}: {} attempts of {} nodes; critical path {} ({:?} of {:?}); wrote {out}",
        report.status,
        report.duration,
        report.attempts.len(),
        report.nodes.len(),
        timeline.critical_path().join(" -> "),
        on_path,
        span
    );
    Ok(())
}
