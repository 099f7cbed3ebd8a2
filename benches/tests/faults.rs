//! The disk's failures injected into the store and durable runs (target R1 as a test; see
//! `flowmem_benches::faults`). Failpoints are process-wide: this file's tests take turns.

use std::sync::{Arc, Mutex, MutexGuard};

use flowmem_engine::{ActionError, Executor, FileCheckpoints, NodeCtx, RunId, RunStatus, Workflow};
use flowmem_store::{MmapStore, StoreWriter, Uuid, faults};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("flowmem-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn no_checkpoint_acknowledged_durable_is_lost_to_a_disk_fault() {
    let _t = turn();
    let d = dir("trials");
    let s = flowmem_benches::faults::trials(&d, 216);
    std::fs::remove_dir_all(&d).unwrap();
    println!("{s:?}");
    assert!(s.faults >= 200, "{s:?}");
    assert!(s.acknowledged > 1000, "{s:?}");
    assert_eq!(
        (
            s.lost,
            s.unreported,
            s.accepted_after_failure,
            s.refused_reopen
        ),
        (0, 0, 0, 0),
        "{s:?}"
    );
}

/// A failed `fdatasync` makes the writer refuse every later write (the kernel may have dropped the pages),
/// and opening the file again recovers what the last good sync made durable.
#[test]
fn a_writer_refuses_writes_after_a_failed_sync_and_reopening_recovers_the_synced_prefix() {
    let _t = turn();
    let d = dir("writer");
    let path = d.join("w.fms");
    let mut w = StoreWriter::create(&path).unwrap();
    w.append(&Uuid::from_u128(1), b"synced").unwrap();
    w.sync().unwrap();
    w.append(&Uuid::from_u128(2), b"lost with the pages")
        .unwrap();
    fail::cfg(faults::SYNC, "return(eio-drop)").unwrap();
    let err = w.sync().unwrap_err();
    fail::remove(faults::SYNC);
    assert!(err.to_string().contains("w.fms"), "{err}");
    let refused = w.append(&Uuid::from_u128(3), b"x").unwrap_err();
    assert!(
        refused.to_string().contains("fdatasync failed"),
        "{refused}"
    );
    assert!(w.sync().is_err());
    drop(w);
    let store = MmapStore::open(&path).unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(
        store.get(&Uuid::from_u128(1)).unwrap().as_deref(),
        Some(&b"synced"[..])
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A write cut short by a full disk leaves a torn record: the writer refuses more, the next open
/// truncates it, and everything synced before is there.
#[test]
fn a_full_disk_mid_write_leaves_a_torn_tail_that_the_next_open_truncates() {
    let _t = turn();
    let d = dir("enospc");
    let path = d.join("f.fms");
    let mut w = StoreWriter::create(&path).unwrap();
    w.append(&Uuid::from_u128(1), b"synced").unwrap();
    w.sync().unwrap();
    w.append(&Uuid::from_u128(2), &[7; 5000]).unwrap();
    fail::cfg(faults::WRITE, "return(partial-enospc)").unwrap();
    let err = w.flush().unwrap_err();
    fail::remove(faults::WRITE);
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(w.append(&Uuid::from_u128(3), b"x").is_err());
    drop(w);
    let w = StoreWriter::open(&path).unwrap();
    assert!(w.recovered().is_some(), "the cut record is reported");
    drop(w);
    assert_eq!(MmapStore::open(&path).unwrap().len(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A durable run whose store fails to sync reports the store's error and counts as failed; the same
/// run resumes from the reopened store.
#[test]
fn a_durable_run_reports_a_failed_sync_and_resumes_after_it() {
    let _t = turn();
    let d = dir("run");
    let path = d.join("runs.fms");
    let mut b = Workflow::builder("faulty-disk");
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    for i in 0..20 {
        let armed = Arc::clone(&armed);
        // The disk starts failing while n10 runs: how many syncs came before depends on how group
        // commit batched n0..n9, so the failpoint is set by the run itself, not after a count of syncs.
        let node = b.node(format!("n{i}"), move |_: &mut NodeCtx<'_>| {
            if i == 10 && armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                fail::cfg(faults::SYNC, "return(eio)").unwrap();
            }
            Ok::<(), ActionError>(())
        });
        if i > 0 {
            node.after([format!("n{}", i - 1)]);
        }
    }
    let w = b.build().unwrap();
    let run = RunId::named("faulty-disk");
    let report = Executor::new(2)
        .run_durable(&w, Arc::new(FileCheckpoints::open(&path).unwrap()), run)
        .unwrap();
    fail::remove(faults::SYNC);
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.store_error.as_ref().expect("the store's error");
    assert!(error.to_string().contains("runs.fms"), "{error}");
    let resumed = Executor::new(2)
        .run_durable(&w, Arc::new(FileCheckpoints::open(&path).unwrap()), run)
        .unwrap();
    assert_eq!(resumed.status, RunStatus::Completed);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A store that fails before a run's first checkpoint (here: a sync of another run's record fails while
/// the node runs) fails the run with the store's error, not only the node: the report says why.
#[test]
fn a_store_failing_before_the_first_checkpoint_is_the_runs_store_error() {
    let _t = turn();
    let d = dir("first");
    let path = d.join("first.fms");
    let store = Arc::new(FileCheckpoints::open(&path).unwrap());
    let mut b = Workflow::builder("fails-early");
    let held = Arc::clone(&store);
    b.node("a", move |ctx| {
        // Another run's record, whose sync fails: the store is failed, and this run has no record
        // waiting (its `begin` was synced), so only its next checkpoint can tell it.
        use flowmem_engine::CheckpointStore;
        // The failpoint goes first: the committer may commit a record as soon as it is appended. The
        // committer may also fail on this run's own header before the put: then the put fails too.
        fail::cfg(faults::SYNC, "return(eio)").unwrap();
        let other = RunId::named("another run");
        let put = held.put_context(other, "k", &1u64.into());
        let synced = held.sync();
        fail::remove(faults::SYNC);
        drop(put);
        if synced.is_ok() {
            return Err(ActionError::permanent(
                "the injected sync failure did not happen",
            ));
        }
        ctx.set_output(1u64);
        Ok(())
    });
    b.node("b", |_| Ok(())).after(["a"]);
    let w = b.build().unwrap();
    let report = Executor::new(1)
        .run_durable(&w, store, RunId::named("fails-early"))
        .unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report
        .store_error
        .as_ref()
        .expect("the store's error is the run's");
    assert!(error.to_string().contains("first.fms"), "{error}");
    let a = report.node("a").unwrap();
    assert_eq!(a.status, flowmem_engine::NodeStatus::Failed);
    std::fs::remove_dir_all(&d).unwrap();
}
