//! Async nodes in shared runs, against a real server: their waits overlap on one worker thread, a timeout
//! drops the future, tokio timers and a loopback TCP socket work with `WorkerOptions::tokio`, and a tokio
//! future without a runtime fails its node with a message instead of hanging.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::Schema;
use flowmem_engine::{ActionError, RunId, Value, Workflow};
use flowmem_postgres::{SharedReport, SharedRuns, SharedStatus, SharedWorker, WorkerOptions};

/// A future ready after `ms`, completed by a thread of its own (no runtime needed).
fn after(ms: u64) -> futures::channel::oneshot::Receiver<()> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = tx.send(());
    });
    rx
}

/// Runs `workflow` once on one worker of `options`; the report.
fn run(schema: &Schema, workflow: &Workflow, options: WorkerOptions) -> SharedReport {
    let runs = Arc::new(SharedRuns::open(schema.options()).unwrap());
    let run = RunId::named(workflow.name());
    runs.submit(workflow, run, &[("base".into(), Value::from(100u64))])
        .unwrap();
    let worker =
        SharedWorker::start(Arc::clone(&runs), std::slice::from_ref(workflow), options).unwrap();
    let report = runs
        .wait(run, Duration::from_millis(10), Duration::from_secs(60))
        .unwrap()
        .expect("the run ends within a minute");
    worker.stop();
    report
}

fn one_thread(name: &str) -> WorkerOptions {
    WorkerOptions::new()
        .name(name)
        .threads(1)
        .batch(8)
        .poll(Duration::from_millis(20))
}

#[test]
fn async_nodes_of_a_batch_wait_together_on_one_thread() {
    let schema = Schema::new("async_overlap");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut b = Workflow::builder("async-overlap");
    b.node("root", |ctx| {
        ctx.set_output(1u64);
        Ok(())
    });
    for i in 0..6u64 {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        b.node_async(format!("wait{i}"), move |ctx| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = after(40).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let root = ctx.input_u64("root").unwrap_or(0);
                let base = ctx.fetch("base").and_then(|v| v.as_u64()).unwrap_or(0);
                ctx.put(&format!("seen{i}"), i)?;
                ctx.set_output(base + root + i);
                Ok(())
            }
        })
        .after(["root"]);
    }
    b.node("sum", |ctx| {
        let mut sum = 0;
        ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0));
        ctx.set_output(sum);
        Ok(())
    })
    .after((0..6).map(|i| format!("wait{i}")));
    let workflow = b.build().unwrap();
    let report = run(&schema, &workflow, one_thread("w"));
    assert_eq!(report.status, SharedStatus::Completed, "{report:?}");
    let sum = report
        .nodes
        .last()
        .unwrap()
        .output
        .as_ref()
        .and_then(Value::as_u64);
    assert_eq!(sum, Some((0..6).map(|i| 101 + i).sum()));
    assert!(report.context.iter().any(|(k, _)| k == "seen5"));
    // One worker thread: the six futures were pending at once, not run one after the other.
    assert!(most.load(Ordering::SeqCst) >= 2, "waits did not overlap");
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn an_async_node_past_its_timeout_is_dropped_and_fails_the_run() {
    let schema = Schema::new("async_timeout");
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&dropped);
    let mut b = Workflow::builder("async-timeout");
    b.node_async("hangs", move |_| {
        let guard = DropFlag(Arc::clone(&flag));
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<(), ActionError>(())
        }
    })
    .timeout(Duration::from_millis(50));
    b.node("later", |_| Ok(())).after(["hangs"]);
    let workflow = b.build().unwrap();
    let report = run(&schema, &workflow, one_thread("w"));
    assert_eq!(report.status, SharedStatus::Failed);
    assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
    let error = report.nodes[0].error.clone().unwrap_or_default();
    assert!(error.contains("TimedOut"), "{error}");
    assert_eq!(report.nodes[1].state, "skipped");
}

#[test]
fn tokio_timers_and_sockets_work_in_the_runtime_given() {
    let schema = Schema::new("async_tokio");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A loopback echo server on the runtime.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut b = Workflow::builder("async-tokio");
    for i in 0..4u64 {
        b.node_async(format!("echo{i}"), move |ctx| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut socket = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| ActionError::new(e.to_string()))?;
            let message = format!("node {i}");
            socket
                .write_all(message.as_bytes())
                .await
                .map_err(|e| ActionError::new(e.to_string()))?;
            let mut back = vec![0u8; message.len()];
            socket
                .read_exact(&mut back)
                .await
                .map_err(|e| ActionError::new(e.to_string()))?;
            ctx.set_output(String::from_utf8(back).unwrap());
            Ok(())
        });
    }
    let workflow = b.build().unwrap();
    let report = run(
        &schema,
        &workflow,
        one_thread("w").tokio(rt.handle().clone()),
    );
    assert_eq!(report.status, SharedStatus::Completed, "{report:?}");
    for (i, node) in report.nodes.iter().enumerate() {
        assert_eq!(
            node.output
                .as_ref()
                .and_then(|v| v.as_str().map(str::to_string)),
            Some(format!("node {i}"))
        );
    }
}

#[test]
fn a_tokio_future_without_a_runtime_fails_its_node_with_a_message() {
    let schema = Schema::new("async_no_rt");
    let mut b = Workflow::builder("async-no-runtime");
    b.node_async("sleeps", |_| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    });
    let workflow = b.build().unwrap();
    let report = run(&schema, &workflow, one_thread("w"));
    assert_eq!(report.status, SharedStatus::Failed);
    let error = report.nodes[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("runtime") || error.contains("reactor"),
        "{error}"
    );
}
