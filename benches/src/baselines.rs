//! The DAG schedulers a competent user writes with tokio and with rayon: the engine benches' baselines
//! (E1, E3, E4, E6, E8), and the `node_cost` example's comparison.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::{dags::Dag, keep};

/// One run on tokio as a competent tokio user writes a DAG scheduler: a task spawned when a node's last
/// dependency finishes (atomic in-degree counters; no per-node channel, no task waiting on another), each
/// running the node's work (a no-op, or awaiting a timer for E6); the run ends when its last node does.
pub async fn tokio_run(dag: Arc<Dag>, dependents: Arc<Vec<Vec<u32>>>, wait: Option<Duration>) {
    struct Run {
        dependents: Arc<Vec<Vec<u32>>>,
        remaining: Vec<AtomicU32>,
        left: AtomicUsize,
        done: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
        wait: Option<Duration>,
    }
    fn spawn_node(run: Arc<Run>, i: u32) {
        tokio::spawn(async move {
            match run.wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => keep(()), // the no-op action
            }
            for &d in &run.dependents[i as usize] {
                if run.remaining[d as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                    spawn_node(Arc::clone(&run), d);
                }
            }
            if run.left.fetch_sub(1, Ordering::AcqRel) == 1
                && let Some(tx) = run.done.lock().expect("not poisoned").take()
            {
                let _ = tx.send(());
            }
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = Arc::new(Run {
        remaining: dag
            .deps
            .iter()
            .map(|d| AtomicU32::new(d.len() as u32))
            .collect(),
        left: AtomicUsize::new(dag.len()),
        done: std::sync::Mutex::new(Some(tx)),
        dependents,
        wait,
    });
    for (i, deps) in dag.deps.iter().enumerate() {
        if deps.is_empty() {
            spawn_node(Arc::clone(&run), i as u32);
        }
    }
    rx.await.expect("the last node reports");
}

/// One run on rayon: a scope; each node, once run, spawns the dependents whose last dependency it was.
pub fn rayon_run(pool: &rayon::ThreadPool, dag: &Dag, dependents: &[Vec<u32>]) {
    let remaining: Vec<AtomicU32> = dag
        .deps
        .iter()
        .map(|d| AtomicU32::new(d.len() as u32))
        .collect();
    fn node<'s>(
        s: &rayon::Scope<'s>,
        i: u32,
        remaining: &'s [AtomicU32],
        dependents: &'s [Vec<u32>],
    ) {
        keep(()); // the no-op action
        for &d in &dependents[i as usize] {
            if remaining[d as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                s.spawn(move |s| node(s, d, remaining, dependents));
            }
        }
    }
    pool.scope(|s| {
        let remaining = &remaining;
        for (i, deps) in dag.deps.iter().enumerate() {
            if deps.is_empty() {
                s.spawn(move |s| node(s, i as u32, remaining, dependents));
            }
        }
    });
}
