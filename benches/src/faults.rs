//! The disk's own failures injected into durable runs (target R1): a failed `write`, a full disk, a failed
//! `fdatasync` (with the written pages kept, or lost as after a kernel dropped them), in the appends and
//! commits of a [`FileCheckpoints`] and in its compaction, through the store's failpoints
//! ([`flowmem_store::faults`], feature `fault-injection`).
//!
//! Each trial opens a new store, checkpoints the nodes of a run and waits for durability every few nodes,
//! noting which checkpoints were acknowledged durable; the fault hits at a chosen moment. Then it checks
//! what the store promises: the failure is reported, no later checkpoint is accepted, and after the store
//! is opened again every acknowledged checkpoint is there (the count R1 sums are the ones missing).

use std::path::Path;

use flowmem_engine::{
    ActionError, CheckpointStore, FileCheckpoints, NodeCtx, RunId, Value, Workflow,
};
use flowmem_store::faults;

/// What [`trials`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultSummary {
    /// Trials made.
    pub trials: u64,
    /// Faults injected (failpoint hits that returned an error).
    pub faults: u64,
    /// Checkpoints acknowledged durable, all trials.
    pub acknowledged: u64,
    /// Acknowledged checkpoints missing when the store was opened again (R1).
    pub lost: u64,
    /// Trials whose fault was never reported to the caller.
    pub unreported: u64,
    /// Trials where a checkpoint was accepted and acknowledged after the store had failed.
    pub accepted_after_failure: u64,
    /// Trials whose store could not be opened again.
    pub refused_reopen: u64,
}

/// Where and how a trial's fault hits.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// During the run's appends and commits: `point` fails with `arg` after `after` hits pass.
    Run {
        point: &'static str,
        arg: &'static str,
        after: u32,
    },
    /// During a compaction in the middle of the run.
    Compaction {
        point: &'static str,
        arg: &'static str,
    },
}

const NODES: u32 = 40;

fn workflow() -> Workflow {
    let mut b = Workflow::builder("faults");
    for i in 0..NODES {
        b.node(format!("n{i}"), |_: &mut NodeCtx<'_>| {
            Ok::<(), ActionError>(())
        });
    }
    b.build().expect("a valid workflow")
}

/// The fault of trial `i`: every kind in turn, at moments spread over the run.
fn fault(i: u64) -> Fault {
    const RUN: [(&str, &str); 6] = [
        (faults::WRITE, "eio"),
        (faults::WRITE, "partial-enospc"),
        (faults::WRITE, "enospc"),
        (faults::SYNC, "eio"),
        (faults::SYNC, "eio-drop"),
        (faults::SYNC, "enospc"),
    ];
    const COMPACTION: [(&str, &str); 3] = [
        (faults::WRITE, "partial-enospc"),
        (faults::SYNC, "eio"),
        (faults::SYNC, "eio-drop"),
    ];
    if i % 4 == 3 {
        let (point, arg) = COMPACTION[(i / 4) as usize % COMPACTION.len()];
        Fault::Compaction { point, arg }
    } else {
        let (point, arg) = RUN[i as usize % RUN.len()];
        Fault::Run {
            point,
            arg,
            after: (i / 6 % 7) as u32,
        }
    }
}

/// Checkpoints nodes `from..to`, waiting for durability every 4; the last node acknowledged durable, or
/// the first error.
fn checkpoint_nodes(
    store: &FileCheckpoints,
    run: RunId,
    from: u32,
    to: u32,
    acked: &mut Option<u32>,
) -> Result<(), String> {
    for node in from..to {
        let ticket = store
            .checkpoint(run, node, &format!("n{node}"), &Value::U64(u64::from(node)))
            .map_err(|e| e.to_string())?;
        if node % 4 == 3 || node + 1 == to {
            store.wait_durable(ticket).map_err(|e| e.to_string())?;
            *acked = Some(node);
        }
    }
    Ok(())
}

/// Runs `trials` trials in `dir` (fault injection is process-wide: nothing else in this process may write
/// a store meanwhile).
pub fn trials(dir: &Path, trials: u64) -> FaultSummary {
    std::fs::create_dir_all(dir).expect("create the trial directory");
    let workflow = workflow();
    let run = RunId::named("fault-trial");
    let mut s = FaultSummary::default();
    for i in 0..trials {
        let path = dir.join(format!("trial-{i}.fms"));
        let _ = std::fs::remove_file(&path);
        let injected_before = faults::injected();
        let store = FileCheckpoints::open(&path).expect("open a new store");
        store.begin(run, &workflow).expect("begin");
        let mut acked = None;
        let outcome = match fault(i) {
            Fault::Run { point, arg, after } => {
                fail::cfg(point, &format!("{after}*off->return({arg})")).expect("a failpoint");
                let r = checkpoint_nodes(&store, run, 0, NODES, &mut acked);
                fail::remove(point);
                r
            }
            Fault::Compaction { point, arg } => {
                checkpoint_nodes(&store, run, 0, NODES / 2, &mut acked)
                    .expect("no fault before the compaction");
                fail::cfg(point, &format!("return({arg})")).expect("a failpoint");
                let compacted = store.compact();
                fail::remove(point);
                match compacted {
                    // The old file is whole and still written: the run goes on and must be durable.
                    Err(_) => checkpoint_nodes(&store, run, NODES / 2, NODES, &mut acked)
                        .and(Err("compaction failed".to_string())),
                    Ok(_) => Ok(()),
                }
            }
        };
        let fired = faults::injected() > injected_before;
        s.trials += 1;
        s.faults += u64::from(fired);
        if fired && outcome.is_ok() {
            s.unreported += 1;
        }
        // A store whose run fault was reported takes no more checkpoints.
        if outcome.is_err() && matches!(fault(i), Fault::Run { .. }) {
            let late = store
                .checkpoint(run, 0, "n0", &Value::U64(0))
                .and_then(|t| store.wait_durable(t));
            if late.is_ok() {
                s.accepted_after_failure += 1;
            }
        }
        drop(store);
        s.acknowledged += acked.map_or(0, |n| u64::from(n) + 1);
        match FileCheckpoints::open(&path) {
            Err(e) => {
                eprintln!(
                    "fault trial {i} ({:?}): the store was refused: {e}",
                    fault(i)
                );
                s.refused_reopen += 1
            }
            Ok(reopened) => {
                let stored = reopened.load(run).ok().flatten().unwrap_or_default();
                let have: Vec<u32> = stored.nodes.iter().map(|(n, _)| *n).collect();
                let missing = (0..acked.map_or(0, |n| n + 1)).filter(|n| !have.contains(n));
                s.lost += missing.count() as u64;
            }
        }
        let _ = std::fs::remove_file(&path);
        let mut lock = path.into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
    s
}
