//! A small real workflow on the flowmem executor: count the words of a text in three shards in parallel,
//! merge the counts, and print the run's report.
//!
//! `cargo run -p flowmem --example quickstart`

use std::time::Duration;

use flowmem::{
    alloc::{System, Tracking},
    engine::{ActionError, Benchmark, Executor, NodeCtx, RetryPolicy, RunStatus, Value, Workflow},
};

// Counts every allocation (a relaxed atomic add each), so the benchmark below can say how many a run
// makes; without it, it prints "unknown".
#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

const TEXT: &str = "the quick brown fox jumps over the lazy dog and the dog sleeps while the fox runs \
                    into the forest where the trees are tall and the rivers are cold";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Workflow::builder("word-count");
    builder.node("load", |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(Value::from(TEXT));
        Ok(())
    });
    for shard in 0..3u64 {
        builder
            .node(format!("count{shard}"), move |ctx: &mut NodeCtx<'_>| {
                let text = ctx
                    .input("load")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ActionError::permanent("no text"))?;
                let words = text
                    .split_whitespace()
                    .enumerate()
                    .filter(|(i, _)| *i as u64 % 3 == shard)
                    .count();
                ctx.set_output(words as u64);
                Ok(())
            })
            .after(["load"]);
    }
    // A node that fails on its first attempt (a flaky service, say) and succeeds on the retry.
    builder
        .node("merge", |ctx: &mut NodeCtx<'_>| {
            if ctx.attempt() == 1 {
                return Err(ActionError::new("the results service timed out"));
            }
            let mut total = 0;
            ctx.for_each_input(|_, v| total += v.as_u64().unwrap_or(0));
            ctx.put("total_words", total);
            ctx.set_output(total);
            Ok(())
        })
        .after(["count0", "count1", "count2"])
        .retry(RetryPolicy::exponential(3, Duration::from_millis(5)))
        .timeout(Duration::from_secs(1));
    let workflow = builder.build()?;

    let executor = Executor::new(2);
    let report = executor.run(&workflow);
    println!(
        "run {} of `{}`: {:?} in {:?}",
        report.id, report.workflow, report.status, report.duration
    );
    for node in &report.nodes {
        println!(
            "  {:<8} {:<10} attempts {}  output {:?}",
            node.name,
            format!("{:?}", node.status),
            node.attempts,
            node.output
        );
    }
    assert_eq!(report.status, RunStatus::Completed);
    let total = report.output("merge").and_then(Value::as_u64);
    assert_eq!(total, Some(TEXT.split_whitespace().count() as u64));
    println!("executor: {:?}", executor.stats());

    // Each run includes the merge's retry back-off (5 ms or less): that is what this workflow costs.
    let bench = Benchmark::new(&workflow)
        .executor(&executor)
        .iterations(100)
        .run();
    println!("{bench}");
    Ok(())
}
