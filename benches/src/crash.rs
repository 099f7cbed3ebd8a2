//! Crash trials of durable runs (target D2, and benches/tests/crash.rs): a child process runs a workflow
//! with a [`FileCheckpoints`] and is killed with SIGKILL at a random moment; this process then opens the store,
//! resumes the run and checks that no checkpointed node was lost, that no node ran again except those in
//! flight at the kill, and that the outputs equal an uninterrupted run's.
//!
//! The child is the `crash_child` binary, `crash_child STORE LOG SPIN_US` ([`child_main`]).
//! It appends `S <node>` to LOG when a node's action starts and `D <node>` once the node's checkpoint is
//! durable (each line one `write`, so it survives the kill).

use std::{
    collections::HashSet,
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flowmem_engine::{
    ActionError, CheckpointStore, Checkpoints, DurabilityError, Executor, FileCheckpoints, NodeCtx,
    RunId, RunStatus, Ticket, Value, Workflow,
};

/// The run id every trial uses (each trial has its own store file).
pub const RUN: RunId = RunId::from_u128(0x00D2_C0FF_EE00_0000_0000_0000_0000_0001);
/// Layers and width of the trial workflow.
const LAYERS: u32 = 8;
const WIDTH: u32 = 16;

/// Called when a node's action starts.
type OnStart = Arc<dyn Fn(u32) + Send + Sync>;

/// The trial workflow: `LAYERS` x `WIDTH` nodes, each depending on two of the layer before; each spins
/// for `spin` and outputs a hash of its index and its inputs (so outputs depend on the whole history).
pub fn workflow(spin: Duration, on_start: OnStart) -> Workflow {
    let mut b = Workflow::builder("crash-trial");
    for layer in 0..LAYERS {
        for k in 0..WIDTH {
            let index = layer * WIDTH + k;
            let on_start = Arc::clone(&on_start);
            let node = b.node(format!("n{index}"), move |ctx: &mut NodeCtx<'_>| {
                on_start(index);
                let until = Instant::now() + spin;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                let mut h = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(index);
                ctx.for_each_input(|_, v| {
                    h = (h ^ v.as_u64().unwrap_or(0)).wrapping_mul(0x0000_0100_0000_01B3);
                });
                ctx.set_output(h);
                Ok::<(), ActionError>(())
            });
            if layer > 0 {
                let prev = (layer - 1) * WIDTH;
                node.after([
                    format!("n{}", prev + k),
                    format!("n{}", prev + (k * 7 + 3) % WIDTH),
                ]);
            }
        }
    }
    b.build().expect("the trial workflow is valid")
}

/// A store that tells the log when checkpoints become durable: a witness thread waits for each batch of
/// tickets and then writes `D <node>` lines.
#[derive(Debug)]
struct Witness {
    inner: Arc<FileCheckpoints>,
    pending: Arc<Mutex<Vec<(Ticket, u32)>>>,
}

impl CheckpointStore for Witness {
    fn is_durable(&self) -> bool {
        true
    }
    fn begin(&self, run: RunId, workflow: &Workflow) -> Result<Checkpoints, DurabilityError> {
        self.inner.begin(run, workflow)
    }
    fn checkpoint(
        &self,
        run: RunId,
        node: u32,
        name: &str,
        output: &Value,
    ) -> Result<Ticket, DurabilityError> {
        let t = self.inner.checkpoint(run, node, name, output)?;
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((t, node));
        Ok(t)
    }
    fn put_context(&self, run: RunId, key: &str, value: &Value) -> Result<Ticket, DurabilityError> {
        self.inner.put_context(run, key, value)
    }
    fn wait_durable(&self, ticket: Ticket) -> Result<(), DurabilityError> {
        self.inner.wait_durable(ticket)
    }
    fn load(&self, run: RunId) -> Result<Option<Checkpoints>, DurabilityError> {
        self.inner.load(run)
    }
    fn forget(&self, run: RunId) -> Result<bool, DurabilityError> {
        self.inner.forget(run)
    }
}

fn log_line(log: &Mutex<File>, line: &str) {
    let mut f = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // One write per line: what reached the kernel survives the kill.
    let _ = f.write_all(line.as_bytes());
}

/// The child: `STORE LOG SPIN_US`. Runs the trial workflow durably and exits 0 when done.
pub fn child_main(args: &[String]) -> ! {
    let [store, log, spin] = args else {
        eprintln!("usage: crash_child STORE LOG SPIN_US");
        std::process::exit(2);
    };
    let spin = Duration::from_micros(spin.parse().expect("SPIN_US is a number"));
    let log = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening the log"),
    ));
    let file = Arc::new(FileCheckpoints::open(store).expect("opening the store"));
    let pending = Arc::new(Mutex::new(Vec::new()));
    {
        let (file, pending, log) = (Arc::clone(&file), Arc::clone(&pending), Arc::clone(&log));
        std::thread::spawn(move || {
            loop {
                let batch: Vec<(Ticket, u32)> = std::mem::take(
                    &mut *pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                let Some(max) = batch.iter().map(|(t, _)| *t).max() else {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                };
                if file.wait_durable(max).is_err() {
                    return;
                }
                let lines: String = batch.iter().map(|(_, n)| format!("D {n}\n")).collect();
                log_line(&log, &lines);
            }
        });
    }
    let on_start: OnStart = {
        let log = Arc::clone(&log);
        Arc::new(move |i| log_line(&log, &format!("S {i}\n")))
    };
    let w = workflow(spin, on_start);
    let store = Arc::new(Witness {
        inner: file,
        pending,
    });
    let report = Executor::new(2)
        .run_durable(&w, store, RUN)
        .expect("starting the run");
    if report.status != RunStatus::Completed {
        eprintln!("the trial run did not complete: {report:?}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

/// What the trials found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Trials made.
    pub trials: u32,
    /// Trials whose child was killed before it finished.
    pub killed_mid_run: u32,
    /// Nodes whose checkpoint the child saw durable but the store did not have after the kill, plus
    /// checkpointed nodes not restored on resume, plus outputs that differ from an uninterrupted run's.
    pub lost: u32,
    /// Executions on resume beyond one per node not checkpointed (a checkpointed node run again, a node
    /// run twice).
    pub extra: u32,
    /// Nodes started by the child but not checkpointed at the kill (in flight: they run again).
    pub in_flight: u32,
    /// Nodes checkpointed at the kill, over all trials.
    pub checkpointed: u32,
}

/// A small xorshift generator (no dependency; seeded from the clock).
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn spawn_child(exe: &Path, store: &Path, log: &Path, spin: Duration) -> std::process::Child {
    Command::new(exe)
        .arg(store)
        .arg(log)
        .arg(spin.as_micros().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()))
}

/// Runs `trials` crash trials with `exe` (the `crash_child` binary) as the child, in a fresh folder under `dir`.
///
/// # Panics
/// If the child cannot be started, or a child that was not killed fails.
pub fn trials(exe: &Path, dir: &Path, trials: u32) -> Summary {
    let spin = Duration::from_micros(1_000);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("creating the trial folder");
    let reference = Executor::new(2).run(&workflow(Duration::ZERO, Arc::new(|_| {})));
    assert_eq!(reference.status, RunStatus::Completed);

    // Uninterrupted children first: they must complete, and the quickest gives the time kills are spread
    // over (the quickest, so that a slow calibration under load does not send most kills past the end).
    let mut whole = Duration::MAX;
    for k in 0..3 {
        let started = Instant::now();
        let status = spawn_child(
            exe,
            &dir.join(format!("whole-{k}.fms")),
            &dir.join(format!("whole-{k}.log")),
            spin,
        )
        .wait()
        .expect("waiting for the child");
        assert!(status.success(), "an uninterrupted child failed: {status}");
        whole = whole.min(started.elapsed());
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut random = Random(seed);
    let mut summary = Summary::default();
    for trial in 0..trials {
        let store = dir.join(format!("trial-{trial}.fms"));
        let log = dir.join(format!("trial-{trial}.log"));
        let mut child = spawn_child(exe, &store, &log, spin);
        let delay = Duration::from_micros(random.below(whole.as_micros() as u64 * 11 / 10));
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("waiting for the child");
        summary.trials += 1;
        if !status.success() {
            summary.killed_mid_run += 1;
        }
        let found = check(&store, &log, &reference);
        summary.lost += found.lost;
        summary.extra += found.extra;
        summary.in_flight += found.in_flight;
        summary.checkpointed += found.checkpointed;
    }
    summary
}

/// Opens a killed child's store, resumes its run here, and counts what went wrong.
fn check(store: &PathBuf, log: &PathBuf, reference: &flowmem_engine::RunReport) -> Summary {
    let mut found = Summary::default();
    let n = (LAYERS * WIDTH) as usize;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut started = HashSet::new();
    let mut acknowledged = HashSet::new();
    // The last line may be cut short by the kill: only whole lines count.
    for line in text.lines().take(text.matches('\n').count()) {
        match line.split_once(' ') {
            Some(("S", i)) => {
                started.insert(i.parse::<u32>().expect("a node index"));
            }
            Some(("D", i)) => {
                acknowledged.insert(i.parse::<u32>().expect("a node index"));
            }
            _ => panic!("bad log line `{line}` in {}", log.display()),
        }
    }
    if !store.exists() {
        // Killed before the store was created: nothing ran.
        assert!(started.is_empty(), "nodes ran without a store");
        return found;
    }
    let file = Arc::new(FileCheckpoints::open(store).expect("reopening the killed child's store"));
    let checkpointed: HashSet<u32> = file
        .load(RUN)
        .expect("reading the run")
        .map(|c| c.nodes.iter().map(|(i, _)| *i).collect())
        .unwrap_or_default();
    found.checkpointed = checkpointed.len() as u32;
    found.lost += acknowledged.difference(&checkpointed).count() as u32;
    found.in_flight = started.difference(&checkpointed).count() as u32;

    let executions: Arc<Vec<std::sync::atomic::AtomicU32>> =
        Arc::new((0..n).map(|_| Default::default()).collect());
    let counter = Arc::clone(&executions);
    let w = workflow(
        Duration::ZERO,
        Arc::new(move |i| {
            counter[i as usize].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
    );
    let report = Executor::new(2)
        .run_durable(&w, file, RUN)
        .expect("resuming the run");
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    for i in 0..n {
        let ran = executions[i].load(std::sync::atomic::Ordering::SeqCst);
        let allowed = u32::from(!checkpointed.contains(&(i as u32)));
        found.extra += ran.saturating_sub(allowed);
        let node = &report.nodes[i];
        if checkpointed.contains(&(i as u32)) && !node.restored {
            found.lost += 1;
        }
        if node.output != reference.nodes[i].output {
            found.lost += 1;
        }
    }
    found
}
