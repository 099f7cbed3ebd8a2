//! Durable runs: checkpoints in a memory or file store, resume, refusal of unpersistable values, store
//! errors. (The crash test with killed processes is in benches/tests/crash.rs, sharing its harness with the
//! D2 benchmark.)

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
};

use flowmem_engine::{
    ActionError, ActionErrorKind, CheckpointStore, Checkpoints, DurabilityError, Executor,
    FileCheckpoints, FileCheckpointsOptions, MemoryCheckpoints, NodeCtx, RunId, RunOptions,
    RunStatus, SyncMode, Ticket, Value, Workflow,
};

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowmem-durable-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Executions per node, and a node that fails while `fail` is set.
#[derive(Default)]
struct Probe {
    runs: Vec<AtomicU32>,
    fail: AtomicBool,
}

/// a -> b -> d, a -> c -> d, plus e (independent); `c` fails while the probe says so; outputs sum the
/// inputs plus the node's number; `b` puts a context value.
fn diamond(probe: &Arc<Probe>) -> Workflow {
    let mut b = Workflow::builder("durable-diamond");
    for (i, (name, deps)) in [
        ("a", &[][..]),
        ("b", &["a"][..]),
        ("c", &["a"][..]),
        ("d", &["b", "c"][..]),
        ("e", &[][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let p = Arc::clone(probe);
        b.node(name, move |ctx: &mut NodeCtx<'_>| {
            p.runs[i].fetch_add(1, Ordering::SeqCst);
            if ctx.node_name() == "c" && p.fail.load(Ordering::SeqCst) {
                return Err(ActionError::permanent("c is down"));
            }
            if ctx.node_name() == "b" {
                ctx.put("seen-by-b", "yes");
            }
            let mut sum = i as u64 + 1;
            ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0) * 10);
            ctx.set_output(sum);
            Ok(())
        })
        .after(deps.iter().copied());
    }
    b.build().unwrap()
}

fn probe(n: usize) -> Arc<Probe> {
    Arc::new(Probe {
        runs: (0..n).map(|_| AtomicU32::new(0)).collect(),
        fail: AtomicBool::new(false),
    })
}

fn runs(p: &Probe) -> Vec<u32> {
    p.runs.iter().map(|r| r.load(Ordering::SeqCst)).collect()
}

#[test]
fn a_failed_run_resumes_from_a_reopened_file_store_without_rerunning_completed_nodes() {
    let dir = temp_dir("resume");
    let path = dir.join("runs.fms");
    let p = probe(5);
    let w = diamond(&p);
    let run = RunId::named("resume-test");
    let executor = Executor::new(2);
    p.fail.store(true, Ordering::SeqCst);
    {
        let store = Arc::new(FileCheckpoints::open(&path).unwrap());
        let continue_independent =
            RunOptions::new().policy(flowmem_engine::FailurePolicy::ContinueIndependent);
        let first = executor
            .submit_durable(&w, store, run, continue_independent)
            .unwrap()
            .wait();
        assert_eq!(first.status, RunStatus::Failed);
        assert_eq!((first.id, first.durable), (run, true));
        assert_eq!(first.restored(), 0);
        assert_eq!(runs(&p), [1, 1, 1, 0, 1]);
    }
    p.fail.store(false, Ordering::SeqCst);
    let store = Arc::new(FileCheckpoints::open(&path).unwrap());
    let loaded = store.load(run).unwrap().unwrap();
    let done: Vec<u32> = loaded.nodes.iter().map(|(n, _)| *n).collect();
    assert_eq!(done, [0, 1, 4], "a, b and e completed");
    assert_eq!(
        loaded.context,
        [("seen-by-b".to_string(), Value::from("yes"))]
    );

    let second = executor.run_durable(&w, store.clone(), run).unwrap();
    assert_eq!(second.status, RunStatus::Completed);
    assert_eq!(
        runs(&p),
        [1, 1, 2, 1, 1],
        "only c (failed) and d (never ran) ran"
    );
    for (name, restored) in [
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", false),
        ("e", true),
    ] {
        assert_eq!(second.node(name).unwrap().restored, restored, "{name}");
    }
    // The same outputs as an uninterrupted run: a=1, b=2+10, c=3+10, d=4+120+130, e=5.
    let fresh = Executor::new(2).run(&diamond(&probe(5)));
    for name in ["a", "b", "c", "d", "e"] {
        assert_eq!(second.output(name), fresh.output(name), "{name}");
    }
    assert_eq!(second.output("d").unwrap().as_u64(), Some(254));

    // A third submission finds every node done: nothing runs, the run completes at once.
    let third = executor.run_durable(&w, store.clone(), run).unwrap();
    assert_eq!(third.status, RunStatus::Completed);
    assert_eq!(third.restored(), 5);
    assert_eq!(runs(&p), [1, 1, 2, 1, 1]);

    // Forgotten, it starts afresh.
    assert!(store.forget(run).unwrap());
    assert!(store.load(run).unwrap().is_none());
    let fourth = executor.run_durable(&w, store, run).unwrap();
    assert_eq!(fourth.restored(), 0);
    assert_eq!(runs(&p), [2, 2, 3, 2, 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_context_is_restored_on_resume() {
    let store = Arc::new(MemoryCheckpoints::new());
    let mut b = Workflow::builder("context");
    b.node("set", |ctx: &mut NodeCtx<'_>| {
        ctx.put("limit", 7u64);
        Ok::<(), ActionError>(())
    });
    let attempts = Arc::new(AtomicU32::new(0));
    let a = Arc::clone(&attempts);
    b.node("use", move |ctx: &mut NodeCtx<'_>| {
        if a.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ActionError::permanent("first attempt fails"));
        }
        ctx.set_output(ctx.fetch("limit").and_then(|v| v.as_u64()).unwrap_or(0));
        Ok(())
    })
    .after(["set"]);
    let w = b.build().unwrap();
    let executor = Executor::new(1);
    let run = RunId::random();
    assert_eq!(
        executor.run_durable(&w, store.clone(), run).unwrap().status,
        RunStatus::Failed
    );
    let resumed = executor.run_durable(&w, store.clone(), run).unwrap();
    assert!(resumed.node("set").unwrap().restored);
    assert_eq!(resumed.output("use").unwrap().as_u64(), Some(7));
    assert_eq!(store.runs(), 1);
}

#[test]
fn unpersistable_values_are_refused_by_a_durable_store_and_kept_by_a_memory_store() {
    let dir = temp_dir("opaque");
    let mut b = Workflow::builder("opaque");
    b.node("handle", |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(Value::Opaque(Arc::new(std::time::Instant::now())));
        Ok::<(), ActionError>(())
    });
    b.node("ctx", |ctx: &mut NodeCtx<'_>| {
        let refused = ctx.try_put("conn", Value::Opaque(Arc::new(1u8)));
        if ctx.fetch("mode").is_none() {
            // `put` defers the same refusal to the node's end.
            ctx.put("mode", Value::Opaque(Arc::new(2u8)));
        }
        ctx.set_output(refused.is_err());
        Ok::<(), ActionError>(())
    });
    let w = b.build().unwrap();
    let executor = Executor::new(2);
    let file = Arc::new(FileCheckpoints::open(dir.join("s.fms")).unwrap());
    let report = executor
        .submit_durable(
            &w,
            file,
            RunId::named("o"),
            RunOptions::new().policy(flowmem_engine::FailurePolicy::ContinueIndependent),
        )
        .unwrap()
        .wait();
    assert_eq!(report.status, RunStatus::Failed);
    let handle = report.node("handle").unwrap().error.clone().unwrap();
    assert_eq!(handle.kind(), ActionErrorKind::Persistence);
    assert!(!handle.is_retryable());
    assert!(
        handle.message().contains("the output of node `handle`")
            && handle.message().contains("opaque"),
        "{handle}"
    );
    let ctx = report.node("ctx").unwrap().error.clone().unwrap();
    assert!(ctx.message().contains("context value `mode`"), "{ctx}");

    let memory = Arc::new(MemoryCheckpoints::new());
    let report = executor.run_durable(&w, memory, RunId::named("o")).unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.output("ctx"), Some(&Value::Bool(false)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_id_does_not_resume_with_another_workflow() {
    let store = Arc::new(MemoryCheckpoints::new());
    let executor = Executor::new(1);
    let w = diamond(&probe(5));
    let run = RunId::named("shape");
    executor.run_durable(&w, store.clone(), run).unwrap();
    let mut b = Workflow::builder("other");
    b.node("a", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    let other = b.build().unwrap();
    let err = executor.run_durable(&other, store, run).unwrap_err();
    assert!(matches!(err, DurabilityError::WorkflowMismatch { .. }));
    let text = err.to_string();
    assert!(
        text.contains("durable-diamond") && text.contains("`other`"),
        "{text}"
    );
    assert_ne!(w.fingerprint(), other.fingerprint());
    assert_eq!(w.fingerprint(), diamond(&probe(5)).fingerprint());
}

/// Runs `w` durably in a new file store at `path`; the store's counters once `wait` returned, which must
/// find every record durable.
fn run_and_count(
    w: &Workflow,
    path: &std::path::Path,
    options: FileCheckpointsOptions,
) -> flowmem_engine::FileCheckpointsStats {
    let store = Arc::new(FileCheckpoints::open_with(path, options).unwrap());
    let report = Executor::new(2)
        .run_durable(w, store.clone(), RunId::random())
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    let stats = store.stats();
    assert_eq!(
        stats.durable, stats.records,
        "wait returned after the commit"
    );
    stats
}

#[test]
fn group_commit_shares_syncs_and_wait_returns_after_the_last_one() {
    let dir = temp_dir("group");
    let mut b = Workflow::builder("wide");
    for i in 0..2000u64 {
        b.node(format!("n{i}"), move |ctx: &mut NodeCtx<'_>| {
            ctx.set_output(i);
            Ok::<(), ActionError>(())
        });
    }
    let w = b.build().unwrap();
    for mode in [SyncMode::Fsync, SyncMode::Write] {
        let path = dir.join(format!("{mode:?}.fms"));
        let stats = run_and_count(&w, &path, FileCheckpointsOptions::new().sync(mode));
        assert_eq!(stats.records, 2001, "header and 2,000 checkpoints");
        assert!(
            stats.commits < stats.records / 4,
            "{mode:?}: {stats:?}: group commit must share commits"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_commit_interval_sets_how_often_the_store_commits() {
    let dir = temp_dir("interval");
    let mut b = Workflow::builder("chain");
    for i in 0..200u64 {
        let node = b.node(format!("c{i}"), move |ctx: &mut NodeCtx<'_>| {
            // Sleeping, not spinning: the committer gets the CPU meanwhile (also under valgrind, which
            // runs one thread at a time).
            std::thread::sleep(std::time::Duration::from_micros(100));
            ctx.set_output(i);
            Ok::<(), ActionError>(())
        });
        if i > 0 {
            node.after([format!("c{}", i - 1)]);
        }
    }
    let w = b.build().unwrap();
    let commits = |interval: std::time::Duration, name: &str| {
        let options = FileCheckpointsOptions::new().commit_interval(interval);
        run_and_count(&w, &dir.join(name), options).commits
    };
    // An hour between commits: one commit at the start, then only the one the run's `wait` asks for.
    let hour = commits(std::time::Duration::from_secs(3600), "hour.fms");
    assert!(hour <= 2, "{hour} commits");
    // None: the committer commits back to back during the chain (200 nodes of 100 µs or more).
    let none = commits(std::time::Duration::ZERO, "zero.fms");
    assert!(
        none > hour,
        "{none} commits without an interval, {hour} with an hour"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_file_store_refuses_a_second_writer_a_foreign_file_and_keeps_every_value_kind() {
    let dir = temp_dir("files");
    let path = dir.join("s.fms");
    let store = FileCheckpoints::open(&path).unwrap();
    let second = FileCheckpoints::open(&path).unwrap_err();
    assert!(second.to_string().contains("lock"), "{second}");

    let mut b = Workflow::builder("kinds");
    let values = [
        Value::Unit,
        Value::Bool(true),
        Value::U64(9),
        Value::I64(-9),
        Value::F64(1.5),
        Value::Symbol(flowmem_intern::intern("SYMBOL")),
        Value::from("text"),
        Value::from(vec![1u8, 2, 3]),
    ];
    for (i, v) in values.iter().enumerate() {
        let v = v.clone();
        b.node(format!("k{i}"), move |ctx: &mut NodeCtx<'_>| {
            ctx.set_output(v.clone());
            Ok::<(), ActionError>(())
        });
    }
    let w = b.build().unwrap();
    let run = RunId::from_u128(77);
    Executor::new(2)
        .run_durable(&w, Arc::new(store), run)
        .unwrap();
    let store = FileCheckpoints::open(&path).unwrap();
    let loaded = store.load(run).unwrap().unwrap();
    let got: Vec<Value> = loaded.nodes.into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, values);
    drop(store);

    std::fs::write(dir.join("foreign.fms"), b"not a store at all").unwrap();
    let err = FileCheckpoints::open(dir.join("foreign.fms")).unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_tail_loses_only_the_unfinished_record_and_the_run_resumes() {
    let dir = temp_dir("torn");
    let path = dir.join("s.fms");
    let p = probe(5);
    let w = diamond(&p);
    let run = RunId::named("torn");
    Executor::new(2)
        .run_durable(&w, Arc::new(FileCheckpoints::open(&path).unwrap()), run)
        .unwrap();
    // Cut the last record (the last checkpoint) short, as a crash mid-write would.
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);
    let store = Arc::new(FileCheckpoints::open(&path).unwrap());
    assert_eq!(store.load(run).unwrap().unwrap().nodes.len(), 4);
    let report = Executor::new(2).run_durable(&w, store, run).unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.restored(), 4);
    assert_eq!(runs(&p).iter().sum::<u32>(), 6, "one node ran again");

    // Damage before the end is an error, not silent loss.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let err = FileCheckpoints::open(&path).unwrap_err();
    assert!(err.to_string().contains("offset"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store that hands out fixed checkpoints (for what a custom store might return).
#[derive(Debug)]
struct Fixed(Mutex<Checkpoints>);

impl CheckpointStore for Fixed {
    fn is_durable(&self) -> bool {
        false
    }
    fn begin(&self, _: RunId, _: &Workflow) -> Result<Checkpoints, DurabilityError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn checkpoint(&self, _: RunId, _: u32, _: &str, _: &Value) -> Result<Ticket, DurabilityError> {
        Ok(0)
    }
    fn put_context(&self, _: RunId, _: &str, _: &Value) -> Result<Ticket, DurabilityError> {
        Ok(0)
    }
    fn wait_durable(&self, _: Ticket) -> Result<(), DurabilityError> {
        Ok(())
    }
    fn load(&self, _: RunId) -> Result<Option<Checkpoints>, DurabilityError> {
        Ok(None)
    }
    fn forget(&self, _: RunId) -> Result<bool, DurabilityError> {
        Ok(false)
    }
}

#[test]
fn a_checkpoint_whose_dependency_is_missing_runs_again_and_bad_indices_are_refused() {
    let p = probe(5);
    let w = diamond(&p);
    // `d` checkpointed without `c`: `d` must run again after `c`.
    let fixed = Arc::new(Fixed(Mutex::new(Checkpoints {
        nodes: vec![
            (0, Value::U64(1)),
            (1, Value::U64(12)),
            (3, Value::U64(999)),
        ],
        context: vec![],
    })));
    let report = Executor::new(2)
        .run_durable(&w, fixed.clone(), RunId::from_u128(5))
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(runs(&p), [0, 0, 1, 1, 1]);
    assert_eq!(report.output("d").unwrap().as_u64(), Some(254));

    fixed.0.lock().unwrap().nodes = vec![(17, Value::Unit)];
    let err = Executor::new(1)
        .run_durable(&w, fixed, RunId::from_u128(5))
        .unwrap_err();
    assert!(err.to_string().contains("node 17"), "{err}");
}

#[test]
fn run_ids_parse_and_refuse_garbage() {
    let id = RunId::named("x");
    assert_eq!(id.to_string().parse::<RunId>().unwrap(), id);
    let err = "not-a-uuid".parse::<RunId>().unwrap_err();
    assert!(err.to_string().contains("not-a-uuid"), "{err}");
    assert_eq!(RunId::from_u128(9).as_u128(), 9);
    assert!(format!("{id:?}").starts_with("RunId("));
}

/// Issue 14, bug 3: `k88da5313ac169f` and `k6cd427445599da` have the same 56 low bits of FNV-1a, the bits a
/// context record's id holds. Neither may overwrite the other: not in one store's life, not after it is
/// opened again (when the slots in use are read back from the file).
#[test]
fn context_keys_whose_hashes_collide_keep_their_own_values() {
    let (k1, k2) = ("k88da5313ac169f", "k6cd427445599da");
    let fnv = |s: &str| {
        s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    let low56 = (1u64 << 56) - 1;
    assert_eq!(fnv(k1) & low56, fnv(k2) & low56, "the pair collides");
    let dir = temp_dir("collide");
    let path = dir.join("runs.fms");
    let mut one = Workflow::builder("collide");
    one.node("a", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    let w = one.build().unwrap();
    let run = RunId::named("collide");
    let context = |store: &FileCheckpoints| {
        let mut c = store.load(run).unwrap().unwrap().context;
        c.sort_by(|a, b| a.0.cmp(&b.0));
        c
    };
    {
        let store = FileCheckpoints::open(&path).unwrap();
        store.begin(run, &w).unwrap();
        store.put_context(run, k1, &Value::U64(1)).unwrap();
        let t = store.put_context(run, k2, &Value::U64(2)).unwrap();
        store.wait_durable(t).unwrap();
        assert_eq!(
            context(&store),
            [
                (k2.to_string(), Value::U64(2)),
                (k1.to_string(), Value::U64(1))
            ]
        );
    }
    let store = FileCheckpoints::open(&path).unwrap();
    store.begin(run, &w).unwrap();
    let t = store.put_context(run, k2, &Value::U64(22)).unwrap();
    store.wait_durable(t).unwrap();
    let t = store.put_context(run, k1, &Value::U64(11)).unwrap();
    store.wait_durable(t).unwrap();
    assert_eq!(
        context(&store),
        [
            (k2.to_string(), Value::U64(22)),
            (k1.to_string(), Value::U64(11))
        ]
    );
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint record that does not decode (written by something else, with a valid checksum) is an
/// error that names the file, the record and its offset, with the decoder's error as its source.
#[test]
fn an_undecodable_checkpoint_names_its_file_record_and_offset() {
    let dir = temp_dir("undecodable");
    let path = dir.join("runs.fms");
    let mut b = Workflow::builder("two");
    b.node("a", |ctx| {
        ctx.set_output(1u64);
        Ok(())
    });
    b.node("b", |_| Ok(())).after(["a"]);
    let workflow = b.build().unwrap();
    let run = RunId::named("undecodable");
    let store = Arc::new(FileCheckpoints::open(&path).unwrap());
    let report = Executor::new(1).run_durable(&workflow, store, run).unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    // A node checkpoint's record (kind 1 in byte 8 of its id), superseded by bytes that are no record of
    // the engine's: 0xff is no valid postcard varint start for the record's fields.
    let node_record = *flowmem_store::MmapStore::open(&path)
        .unwrap()
        .ids()
        .find(|id| id.as_bytes()[8] == 1)
        .expect("a node record");
    let mut writer = flowmem_store::StoreWriter::open(&path).unwrap();
    writer.append(&node_record, &[0xff; 24]).unwrap();
    writer.sync().unwrap();
    drop(writer);
    let offset = flowmem_store::MmapStore::open(&path)
        .unwrap()
        .record(&node_record)
        .unwrap()
        .offset;
    let store = FileCheckpoints::open(&path).unwrap();
    let error = store.load(run).unwrap_err();
    let DurabilityError::Decode {
        what,
        place: Some(place),
        ..
    } = &error
    else {
        panic!("not a decode error with its place: {error:?}");
    };
    assert_eq!(*what, "node record");
    assert_eq!(
        (place.path.as_path(), place.record, place.offset),
        (path.as_path(), node_record, offset)
    );
    let text = error.to_string();
    assert!(
        text.contains("runs.fms") && text.contains(&offset.to_string()),
        "{text}"
    );
    assert!(std::error::Error::source(&error).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}
