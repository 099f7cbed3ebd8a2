//! Run inputs, the context and outputs after a run, and values of any serde type — in memory and through
//! a file store and a resumed run.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use flowmem_engine::{
    ActionError, ActionErrorKind, CheckpointStore, Executor, FileCheckpoints, NodeStatus, RunId,
    RunOptions, RunStatus, Value, Workflow,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    lines: Vec<(String, f64)>,
    note: Option<String>,
}

fn order() -> Order {
    Order {
        id: 7,
        lines: vec![("tea".into(), 2.5), ("cake".into(), 4.0)],
        note: None,
    }
}

fn temp_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowmem-values-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `load` reads the order from the run's input `order`, `total` sums it; `audit` puts a typed context value.
fn shop() -> Workflow {
    let mut b = Workflow::builder("shop");
    b.node("load", |ctx| {
        let order: Order = ctx
            .fetch_as("order")?
            .ok_or_else(|| ActionError::permanent("no order"))?;
        ctx.set_output_serde(&order)
    });
    b.node("total", |ctx| {
        let order: Order = ctx.input_as("load")?;
        ctx.set_output(order.lines.iter().map(|(_, p)| p).sum::<f64>());
        Ok(())
    })
    .after(["load"]);
    b.node("audit", |ctx| {
        let order: Order = ctx.input_as("load")?;
        ctx.put_serde("audited", &[order.id])?;
        Ok(())
    })
    .after(["load"]);
    b.build().unwrap()
}

#[test]
fn inputs_seed_the_context_and_the_report_has_the_context_and_typed_outputs() {
    let input = Value::serde(&order()).unwrap();
    let report = Executor::new(2).run_with(
        &shop(),
        RunOptions::new()
            .input("order", Value::Unit)
            .input("order", input.clone()) // the last one wins
            .input("region", "eu"),
    );
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.output_as::<Order>("load").unwrap(), order());
    assert_eq!(report.output("total").and_then(Value::as_f64), Some(6.5));
    assert_eq!(report.context_value("order"), Some(&input));
    assert_eq!(
        report.context_value("region").and_then(Value::as_str),
        Some("eu")
    );
    assert_eq!(
        report
            .context_value("audited")
            .unwrap()
            .to_serde::<Vec<u32>>()
            .unwrap(),
        [7]
    );
    let keys: Vec<&str> = report.context.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["audited", "order", "region"]);
    let wrong = report.output_as::<Vec<String>>("load").unwrap_err();
    assert!(
        wrong.to_string().contains("node `load`")
            && wrong.to_string().contains("Vec<alloc::string::String>"),
        "{wrong}"
    );
    assert!(report.output_as::<u64>("nope").is_err());
}

#[test]
fn an_output_of_the_wrong_type_fails_the_reader_naming_the_node_and_the_type() {
    let mut b = Workflow::builder("mismatch");
    b.node("text", |ctx| {
        ctx.set_output("not an order");
        Ok(())
    });
    b.node("reader", |ctx| {
        let _: Order = ctx.input_as("text")?;
        Ok(())
    })
    .after(["text"]);
    b.node("stranger", |ctx| {
        let _: u64 = ctx.input_as("text")?; // not a dependency of this node
        Ok(())
    });
    let report = Executor::new(1).run_with(
        &b.build().unwrap(),
        RunOptions::new().policy(flowmem_engine::FailurePolicy::ContinueIndependent),
    );
    let reader = report.node("reader").unwrap();
    assert_eq!(reader.status, NodeStatus::Failed);
    let e = reader.error.as_ref().unwrap();
    assert_eq!(e.kind(), ActionErrorKind::Permanent);
    assert!(
        e.message()
            .contains("node `reader`: the output of `text` does not decode as `values::Order`"),
        "{e}"
    );
    let stranger = report.node("stranger").unwrap().error.as_ref().unwrap();
    assert!(
        stranger.message().contains("not one of its dependencies"),
        "{stranger}"
    );
    // A value with no JSON form is a clear error too.
    let bad = Value::serde(&std::collections::HashMap::from([((1, 2), 3)])).unwrap_err();
    assert!(
        bad.to_string().contains("cannot be encoded as JSON"),
        "{bad}"
    );
}

/// A durable run keeps its inputs and typed outputs in the file: a resumed run sees the stored inputs
/// (not ones given again), and the outputs are read back from the store by node name.
#[test]
fn a_durable_run_keeps_inputs_and_typed_outputs_across_a_resume() {
    let dir = temp_dir("durable");
    let path = dir.join("shop.fms");
    let w = shop();
    let run = RunId::named("order-7");
    // The first attempt fails in `total` after `load` completed.
    let attempts = Arc::new(AtomicU32::new(0));
    let mut flaky = Workflow::builder("shop");
    {
        let a = Arc::clone(&attempts);
        flaky.node("load", |ctx| {
            let order: Order = ctx.fetch_as("order")?.unwrap();
            ctx.set_output_serde(&order)
        });
        flaky
            .node("total", move |_| {
                a.fetch_add(1, Ordering::SeqCst);
                Err(ActionError::permanent("down for maintenance"))
            })
            .after(["load"]);
        flaky.node("audit", |_| Ok(())).after(["load"]);
    }
    let flaky = flaky.build().unwrap();
    assert_eq!(flaky.fingerprint(), w.fingerprint());
    let first = Executor::new(2)
        .submit_durable(
            &flaky,
            Arc::new(FileCheckpoints::open(&path).unwrap()),
            run,
            RunOptions::new().input("order", Value::serde(&order()).unwrap()),
        )
        .unwrap()
        .wait();
    assert_eq!(first.status, RunStatus::Failed);
    // Resumed from the reopened file, given another order: the stored one is used.
    let store = Arc::new(FileCheckpoints::open(&path).unwrap());
    let mut other = order();
    other.id = 8;
    let resumed = Executor::new(2)
        .submit_durable(
            &w,
            store.clone(),
            run,
            RunOptions::new().input("order", Value::serde(&other).unwrap()),
        )
        .unwrap()
        .wait();
    assert_eq!(resumed.status, RunStatus::Completed, "{resumed:?}");
    assert!(resumed.node("load").unwrap().restored);
    assert_eq!(resumed.output_as::<Order>("load").unwrap(), order());
    let saved = store.load(run).unwrap().unwrap();
    assert_eq!(
        saved
            .output(&w, "load")
            .unwrap()
            .to_serde::<Order>()
            .unwrap(),
        order()
    );
    assert_eq!(saved.output(&w, "total").and_then(Value::as_f64), Some(6.5));
    assert_eq!(
        saved
            .context_value("order")
            .unwrap()
            .to_serde::<Order>()
            .unwrap(),
        order()
    );
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
