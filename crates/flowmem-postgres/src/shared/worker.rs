//! `SharedWorker`: threads that claim nodes of shared runs, run them, complete them, renew their leases,
//! and sleep on `LISTEN` between claims.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        Arc, Condvar, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use flowmem_engine::Workflow;
use postgres::{NoTls, fallible_iterator::FallibleIterator};

use super::{Claim, ClaimInputs, Completion, SharedError, SharedRuns};
use flowmem_engine::{Invocation, Invoked};

/// Options of a [`SharedWorker`].
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    name: String,
    threads: usize,
    batch: usize,
    lease: Duration,
    poll: Duration,
    #[cfg(feature = "tokio")]
    tokio: Option<tokio::runtime::Handle>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            name: format!(
                "{}-{}-{:08x}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
                std::process::id(),
                flowmem_engine::RunId::random().as_u128() as u32
            ),
            threads: 2,
            batch: 4,
            lease: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            #[cfg(feature = "tokio")]
            tokio: None,
        }
    }
}

impl WorkerOptions {
    /// The defaults: a unique name (host, process, random), 2 threads, batches of 4, 10 s leases, a poll
    /// every second when no notification comes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The worker's name: the lease owner and the `worker` a report names. Unique per worker.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Threads running nodes (each claims for itself; 0 is taken as 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Nodes a thread claims at once (0 is taken as 1): more saves round trips, fewer shares the work
    /// of a small run among more workers.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How long a claim holds a node without renewal (renewed every third of it while the node runs).
    /// A worker that stops renewing (killed, stalled, cut off) loses its nodes to others after this.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The tokio runtime whose context the worker threads run in, so that async nodes' futures may use
    /// tokio's timers and I/O (the runtime's own threads drive them; a multi-thread runtime, or a
    /// current-thread one driven elsewhere). Without it, a future that needs tokio panics at its first
    /// poll, which fails its attempt with a message saying so — never a hang.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio(mut self, handle: tokio::runtime::Handle) -> Self {
        self.tokio = Some(handle);
        self
    }

    /// How long an idle thread sleeps when no notification wakes it.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }
}

/// Counters of a [`SharedWorker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Nodes claimed.
    pub claimed: u64,
    /// Nodes completed.
    pub completed: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Nodes that failed for good.
    pub failed: u64,
    /// Completions refused because the lease had been lost (another worker took the node over).
    pub lease_lost: u64,
    /// Errors of the database the worker waited out (it goes on on a new connection).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    claimed: AtomicU64,
    completed: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    lease_lost: AtomicU64,
    errors: AtomicU64,
}

struct Shared {
    runs: Arc<SharedRuns>,
    workflows: HashMap<(String, u64), Workflow>,
    options: WorkerOptions,
    stop: AtomicBool,
    /// Leases held now (their tokens), renewed by the renewer.
    held: Mutex<HashSet<i64>>,
    /// Raised by a notification (or by stop): idle threads claim again.
    wake: (Mutex<u64>, Condvar),
    /// Signalled by stop, for the renewer's timed waits (notifications do not wake it).
    stopped: (Mutex<bool>, Condvar),
    /// Batches run and not yet completed, for the completer thread; signalled when one is added and
    /// when the completer took them (threads that wait for room).
    finished: (Mutex<Finished>, Condvar),
    counters: Counters,
    /// The last error, for `last_error`.
    last_error: Mutex<Option<String>>,
}

/// The batches the worker threads ran, waiting for the completer.
struct Finished {
    /// Each claim with what its attempt did.
    batches: Vec<Vec<(Claim, Invoked)>>,
    /// Worker threads still running (the completer ends when none is and nothing waits).
    running: usize,
}

/// A worker of shared runs: threads that claim ready nodes of runs of its workflows and run them, and
/// a completer thread that writes their completions (see [`SharedRuns`]): the completions of every
/// thread's batches go in one call while the threads claim again. A worker holds leases on at most
/// three batches per thread — the one each thread runs, up to one per thread waiting for the completer,
/// and those the completer is writing — which is what a killed worker can leave to be run again.
/// Dropping it (or [`stop`](Self::stop)) lets the nodes in hand finish, writes their completions and
/// stops.
pub struct SharedWorker {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for SharedWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedWorker")
            .field("name", &self.shared.options.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SharedWorker {
    /// Starts a worker on `runs` for `workflows` (a run is claimed only by workers that have its
    /// workflow, by name and fingerprint).
    ///
    /// # Errors
    /// [`SharedError::Db`] if a thread cannot be started.
    pub fn start(
        runs: Arc<SharedRuns>,
        workflows: &[Workflow],
        options: WorkerOptions,
    ) -> Result<SharedWorker, SharedError> {
        let threads_wanted = options.threads;
        let shared = Arc::new(Shared {
            runs,
            workflows: workflows
                .iter()
                .map(|w| ((w.name().to_string(), w.fingerprint()), w.clone()))
                .collect(),
            options,
            stop: AtomicBool::new(false),
            held: Mutex::new(HashSet::new()),
            wake: (Mutex::new(0), Condvar::new()),
            stopped: (Mutex::new(false), Condvar::new()),
            finished: (
                Mutex::new(Finished {
                    batches: Vec::new(),
                    running: threads_wanted,
                }),
                Condvar::new(),
            ),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        });
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| {
                    SharedError::Db(crate::PgError::Connect {
                        database: String::new(),
                        message: format!("cannot start a worker thread: {e}"),
                        source: Some(Box::new(e)),
                    })
                })
        };
        for i in 0..shared.options.threads {
            let s = Arc::clone(&shared);
            threads.push(spawn(
                format!("flowmem-pg-worker-{i}"),
                Box::new(move || s.run_loop()),
            )?);
        }
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "flowmem-pg-complete".into(),
            Box::new(move || s.complete_loop()),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "flowmem-pg-renew".into(),
            Box::new(move || s.renew_loop()),
        )?);
        let s = Arc::clone(&shared);
        threads.push(spawn(
            "flowmem-pg-listen".into(),
            Box::new(move || s.listen_loop()),
        )?);
        Ok(SharedWorker { shared, threads })
    }

    /// The worker's name (the lease owner).
    pub fn name(&self) -> &str {
        &self.shared.options.name
    }

    /// Its counters.
    pub fn stats(&self) -> WorkerStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            claimed: get(&c.claimed),
            completed: get(&c.completed),
            retried: get(&c.retried),
            failed: get(&c.failed),
            lease_lost: get(&c.lease_lost),
            errors: get(&c.errors),
        }
    }

    /// The last database error the worker waited out, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops: nodes in hand are finished and completed, then the threads end. Returns the counters.
    pub fn stop(mut self) -> WorkerStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.notify();
        let (lock, cv) = &self.shared.stopped;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SharedWorker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Wakes every idle thread (to stop).
    fn notify(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        cv.notify_all();
    }

    /// Wakes one idle thread: a notification may mean a single ready node, and every thread woken
    /// for it would make a claim of its own (mostly empty: load on the server for nothing). A thread
    /// whose claim came back full wakes the next (`run_loop`), so a burst of ready nodes still reaches
    /// every thread.
    fn wake_one(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        cv.notify_one();
    }

    /// Sleeps until a notification (or `poll`), unless one came since `seen`.
    fn idle(&self, seen: u64) {
        let (lock, cv) = &self.wake;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if *guard == seen && !self.stopping() {
            let _ = cv
                .wait_timeout(guard, self.options.poll)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn wake_count(&self) -> u64 {
        *self.wake.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, e: &SharedError) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }

    fn run_loop(&self) {
        /// Counts the thread out when it ends, however it ends (the completer waits for every thread).
        struct Ended<'a>(&'a (Mutex<Finished>, Condvar));
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                let (lock, cv) = self.0;
                lock.lock().unwrap_or_else(PoisonError::into_inner).running -= 1;
                cv.notify_all();
            }
        }
        let _ended = Ended(&self.finished);
        // Async nodes' futures are polled on this thread: in the runtime's context, if one was given.
        #[cfg(feature = "tokio")]
        let _runtime = self
            .options
            .tokio
            .as_ref()
            .map(tokio::runtime::Handle::enter);
        let workflows: Vec<&Workflow> = self.workflows.values().collect();
        while !self.stopping() {
            let seen = self.wake_count();
            let claims = match self.runs.claim_with_inputs(
                &self.options.name,
                &workflows,
                self.options.batch,
                self.options.lease,
            ) {
                Ok(c) => c,
                Err(e) => {
                    // The database is away (its errors were retried for `retry_for`): wait and go on.
                    self.error(&e);
                    self.idle(seen);
                    continue;
                }
            };
            if claims.is_empty() {
                self.idle(seen);
                continue;
            }
            if claims.len() == self.options.batch {
                // A full batch: more may be ready.
                self.wake_one();
            }
            self.counters
                .claimed
                .fetch_add(claims.len() as u64, Ordering::Relaxed);
            self.hold(claims.iter().map(|(c, _)| c.token), true);
            self.execute(claims);
        }
    }

    /// Adds (`on`) or removes the leases `tokens` from those the renewer renews.
    fn hold(&self, tokens: impl IntoIterator<Item = i64>, on: bool) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for token in tokens {
            if on {
                held.insert(token);
            } else {
                held.remove(&token);
            }
        }
    }

    /// The registered workflow a claim's run is of.
    fn workflow_of(&self, claim: &Claim) -> Option<&Workflow> {
        self.workflows
            .iter()
            .find(|((name, _), _)| *name == claim.workflow)
            .map(|(_, w)| w)
    }

    /// Runs a batch of claimed nodes (read with their inputs) one after the other and hands what they
    /// did to the completer thread, which writes the completions of every thread's batches together
    /// while this thread claims again. The leases stay held (and renewed) until their completions are
    /// written.
    fn execute(&self, claims: Vec<(Claim, ClaimInputs)>) {
        // One call per workflow in the batch (usually one): its sync nodes run one after the other, its
        // async nodes' waits overlap.
        let mut groups: Vec<(&Workflow, Vec<(Claim, ClaimInputs)>)> = Vec::new();
        for (claim, inputs) in claims {
            let Some(workflow) = self.workflow_of(&claim) else {
                self.error(&SharedError::UnknownWorkflow {
                    run: claim.run,
                    workflow: claim.workflow.clone(),
                });
                self.hold([claim.token], false);
                continue;
            };
            match groups.iter_mut().find(|(w, _)| std::ptr::eq(*w, workflow)) {
                Some((_, group)) => group.push((claim, inputs)),
                None => groups.push((workflow, vec![(claim, inputs)])),
            }
        }
        let mut ran: Vec<(Claim, Invoked)> = Vec::new();
        for (workflow, group) in groups {
            let (claims, calls): (Vec<Claim>, Vec<Invocation>) = group
                .into_iter()
                .map(|(claim, inputs)| {
                    let call = Invocation {
                        node: claim.name.clone(),
                        attempt: claim.attempt,
                        inputs: inputs.outputs,
                        context: inputs.context,
                    };
                    (claim, call)
                })
                .unzip();
            for (claim, result) in claims.into_iter().zip(workflow.invoke_all(calls)) {
                match result {
                    Ok(done) => ran.push((claim, done)),
                    Err(e) => {
                        // Its lease runs out and another claim takes it again.
                        self.error(&SharedError::Decode {
                            what: format!("node `{}`", claim.name),
                            message: e.to_string(),
                        });
                        self.hold([claim.token], false);
                    }
                }
            }
        }
        let (lock, cv) = &self.finished;
        let mut finished = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Room for a batch per thread: a thread waits while the completer is that far behind.
        while finished.batches.len() >= self.options.threads {
            finished = cv.wait(finished).unwrap_or_else(PoisonError::into_inner);
        }
        finished.batches.push(ran);
        cv.notify_all();
    }

    /// Writes the completions of the batches the threads ran: all that wait, in one call (one round
    /// trip, one commit), then releases their leases. Ends when the worker threads have ended and
    /// nothing waits.
    fn complete_loop(&self) {
        let (lock, cv) = &self.finished;
        loop {
            let batches = {
                let mut finished = lock.lock().unwrap_or_else(PoisonError::into_inner);
                while finished.batches.is_empty() && finished.running > 0 {
                    finished = cv.wait(finished).unwrap_or_else(PoisonError::into_inner);
                }
                if finished.batches.is_empty() {
                    return;
                }
                let batches = std::mem::take(&mut finished.batches);
                cv.notify_all();
                batches
            };
            let done: Vec<_> = batches
                .iter()
                .flatten()
                .filter_map(|(c, i)| Some((self.workflow_of(c)?, c, i)))
                .collect();
            match self.runs.complete_batch(&done) {
                Ok(completions) => {
                    for c in completions {
                        let counter = match c {
                            Completion::Done { .. } => &self.counters.completed,
                            Completion::Retrying => &self.counters.retried,
                            Completion::Failed => &self.counters.failed,
                            Completion::LeaseLost => &self.counters.lease_lost,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => self.error(&e),
            }
            self.hold(batches.iter().flatten().map(|(c, _)| c.token), false);
        }
    }

    /// Renews the leases in hand every third of the lease.
    fn renew_loop(&self) {
        let every = self.options.lease / 3;
        while !self.stopping() {
            let (lock, cv) = &self.stopped;
            let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if !*guard {
                let _ = cv
                    .wait_timeout(guard, every)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let tokens: Vec<i64> = self
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .collect();
            if let Err(e) = self
                .runs
                .renew(&self.options.name, &tokens, self.options.lease)
            {
                self.error(&e);
            }
        }
    }

    /// Listens on the schema's channel and wakes idle threads at each notification; reconnects when the
    /// connection goes (the poll covers the gap).
    fn listen_loop(&self) {
        let channel = self.runs.channel();
        while !self.stopping() {
            let mut client = match self.runs.db().config.connect(NoTls) {
                Ok(c) => c,
                Err(_) => {
                    std::thread::sleep(self.options.poll);
                    continue;
                }
            };
            if client.batch_execute(&format!("LISTEN {channel}")).is_err() {
                continue;
            }
            while !self.stopping() {
                let next = client
                    .notifications()
                    .timeout_iter(Duration::from_millis(200))
                    .next();
                match next {
                    Ok(Some(_)) => self.wake_one(),
                    Ok(None) if client.is_closed() => break,
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
    }
}
