//! `FileCheckpoints`: run checkpoints in a flowmem-store file, made durable by a committer thread (group commit).

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use flowmem_store::{MmapStore, StoreError, StoreWriter, Uuid, WriterOptions};

use super::{
    CheckpointStore, Checkpoints, DurabilityError, RecordPlace, RunId, Ticket, check_workflow,
    encode::{self, KIND_CONTEXT, KIND_HEADER, KIND_NODE},
    slots::{ContextSlots, RunSlots},
};
use crate::{Value, Workflow};

/// What makes a checkpoint durable in a [`FileCheckpoints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Write and `fdatasync`: checkpoints survive a crash of the process and of the machine (power loss).
    /// The default.
    #[default]
    Fsync,
    /// Write to the operating system only: checkpoints survive a crash of the process (its written pages
    /// are the kernel's), not of the machine. Cheaper when syncs are slow.
    Write,
}

/// Options of a [`FileCheckpoints`].
#[derive(Debug, Clone)]
pub struct FileCheckpointsOptions {
    sync: SyncMode,
    commit_interval: Duration,
    writer: WriterOptions,
}

impl Default for FileCheckpointsOptions {
    fn default() -> Self {
        FileCheckpointsOptions {
            sync: SyncMode::Fsync,
            commit_interval: Duration::from_millis(1),
            writer: WriterOptions::default(),
        }
    }
}

impl FileCheckpointsOptions {
    /// The defaults: [`SyncMode::Fsync`], a commit interval of 1 ms, the store writer's defaults (torn
    /// tails truncated, no compression).
    pub fn new() -> Self {
        Self::default()
    }

    /// The least time between the starts of two commits while nobody waits for durability (a run's
    /// `wait` does not wait for it: a waiter is committed for at once). Longer: fewer, larger commits
    /// and less CPU taken from the workers, at the price of up to this much more completed work to redo
    /// after a crash. `Duration::ZERO`: commit as soon as the previous commit ends.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// What makes a checkpoint durable.
    pub fn sync(mut self, mode: SyncMode) -> Self {
        self.sync = mode;
        self
    }

    /// Options of the underlying [`StoreWriter`] (recovery, compression).
    pub fn writer(mut self, options: WriterOptions) -> Self {
        self.writer = options;
        self
    }
}

/// Counters of a [`FileCheckpoints`]: how well group commit batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FileCheckpointsStats {
    /// Records appended (run headers, checkpoints, context values, deletions).
    pub records: u64,
    /// Records made durable.
    pub durable: u64,
    /// Commits made (each one write and, with [`SyncMode::Fsync`], one `fdatasync`).
    pub commits: u64,
}

/// A [`CheckpointStore`] in a flowmem-store file: durable runs resume after the process (or, with
/// [`SyncMode::Fsync`], the machine) crashed.
///
/// Each record is one flowmem-store record (checksummed; a torn tail left by a crash is truncated when the
/// file is opened). A completed node's checkpoint is appended by the worker that ran it (no I/O wait: it
/// goes to a buffer) and made durable by the store's committer thread, which writes and syncs everything
/// appended since its last commit in one go: many completions share one `fdatasync` (group commit).
/// **The durability point:** a checkpoint is durable once the commit that covers it returns; a run's
/// `wait` returns only after all its checkpoints are durable. Records are made durable in the order they
/// were appended, and a node's checkpoint is appended before its dependents start, so what survives a crash
/// is always a set of completed nodes with all their dependencies. Dropping the store commits what is left.
///
/// One process at a time writes a file (others get [`StoreError::Locked`](flowmem_store::StoreError)).
///
/// ```
/// use std::sync::Arc;
/// use flowmem_engine::{ActionError, Executor, FileCheckpoints, NodeCtx, RunId, Workflow};
///
/// let dir = std::env::temp_dir().join(format!("flowmem-doc-filestore-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut b = Workflow::builder("etl");
/// b.node("extract", |ctx: &mut NodeCtx<'_>| {
///     ctx.set_output("rows.csv");
///     Ok::<(), ActionError>(())
/// });
/// let workflow = b.build()?;
/// let run = RunId::named("etl-2026-11-21");
/// {
///     let store = Arc::new(FileCheckpoints::open(dir.join("runs.fms"))?);
///     let report = Executor::new(2).run_durable(&workflow, store, run)?;
///     assert!(!report.node("extract").unwrap().restored);
/// }
/// // Another process (or this one, later) resumes the same run id: nothing runs again.
/// let store = Arc::new(FileCheckpoints::open(dir.join("runs.fms"))?);
/// let report = Executor::new(2).run_durable(&workflow, store, run)?;
/// assert!(report.node("extract").unwrap().restored);
/// assert_eq!(report.output("extract").and_then(|v| v.as_str()), Some("rows.csv"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileCheckpoints {
    inner: Arc<Inner>,
    committer: Option<JoinHandle<()>>,
}

struct Inner {
    path: PathBuf,
    mode: SyncMode,
    interval: Duration,
    writer: Mutex<WriterSide>,
    /// Tickets handed out: records appended (incremented under the writer lock, so in file order).
    appended: AtomicU64,
    /// A reader of the file, for `begin` and `load` (refreshed each time).
    reader: Mutex<Option<MmapStore>>,
    /// The record index of each context key, per run (colliding hashes probe on).
    slots: Mutex<ContextSlots>,
    commit: Mutex<CommitState>,
    /// The committer is waiting for work: appenders must wake it.
    committer_idle: AtomicBool,
    /// Set once a write or sync failed: no more checkpoints.
    failed: AtomicBool,
    work: Condvar,
    durable: Condvar,
}

/// A stored run's workflow: name, fingerprint, node count.
type StoredWorkflow = (String, u64, u32);

struct WriterSide {
    writer: StoreWriter,
    scratch: Vec<u8>,
}

#[derive(Default)]
struct CommitState {
    durable: u64,
    /// Threads in `wait_durable`: the commit interval is skipped for them.
    waiters: usize,
    commits: u64,
    failure: Option<String>,
    shutdown: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FileCheckpoints {
    /// Opens the store file at `path`, creating it if missing, with the default options. A torn tail (a
    /// record cut short by a crash) is truncated; damage before the end is an error.
    ///
    /// # Errors
    /// [`StoreError::Locked`](flowmem_store::StoreError) if another writer holds the file, a corrupt or
    /// foreign file, an I/O error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DurabilityError> {
        Self::open_with(path, FileCheckpointsOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: FileCheckpointsOptions,
    ) -> Result<Self, DurabilityError> {
        let path = path.as_ref();
        let writer = StoreWriter::open_with(path, options.writer)?;
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            mode: options.sync,
            interval: options.commit_interval,
            writer: Mutex::new(WriterSide {
                writer,
                scratch: Vec::new(),
            }),
            appended: AtomicU64::new(0),
            reader: Mutex::new(None),
            slots: Mutex::new(ContextSlots::default()),
            commit: Mutex::new(CommitState::default()),
            committer_idle: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            work: Condvar::new(),
            durable: Condvar::new(),
        });
        let committer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("flowmem-store-committer".into())
                .spawn(move || inner.committer())
                .map_err(|e| StoreError::io(path, e))?
        };
        Ok(FileCheckpoints {
            inner,
            committer: Some(committer),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Its sync mode.
    pub fn sync_mode(&self) -> SyncMode {
        self.inner.mode
    }

    /// Waits until everything appended so far is durable.
    ///
    /// # Errors
    /// [`DurabilityError::Failed`] if a write or sync failed.
    pub fn sync(&self) -> Result<(), DurabilityError> {
        self.wait_durable(self.inner.appended.load(Ordering::SeqCst))
    }

    /// Its counters.
    pub fn stats(&self) -> FileCheckpointsStats {
        let c = lock(&self.inner.commit);
        FileCheckpointsStats {
            records: self.inner.appended.load(Ordering::SeqCst),
            durable: c.durable,
            commits: c.commits,
        }
    }

    /// Rewrites the file with only its live records (what forgotten runs and replaced context values left
    /// behind is dropped): see [`StoreWriter::compact`].
    ///
    /// # Errors
    /// As [`StoreWriter::compact`].
    pub fn compact(&self) -> Result<flowmem_store::CompactStats, DurabilityError> {
        self.sync()?;
        let mut w = lock(&self.inner.writer);
        Ok(w.writer.compact()?)
    }
}

impl Drop for FileCheckpoints {
    fn drop(&mut self) {
        {
            let mut c = lock(&self.inner.commit);
            c.shutdown = true;
            self.inner.work.notify_all();
        }
        if let Some(h) = self.committer.take() {
            let _ = h.join();
        }
    }
}

impl fmt::Debug for FileCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCheckpoints")
            .field("path", &self.inner.path)
            .field("sync", &self.inner.mode)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn check_usable(&self) -> Result<(), DurabilityError> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let message = lock(&self.commit)
            .failure
            .clone()
            .unwrap_or_else(|| "unknown".into());
        Err(DurabilityError::Failed {
            path: self.path.clone(),
            message,
        })
    }

    /// Appends one record whose payload `encode` writes; returns its ticket.
    fn append(
        &self,
        id: uuid::Uuid,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), DurabilityError>,
    ) -> Result<Ticket, DurabilityError> {
        self.write(|w| {
            w.scratch.clear();
            encode(&mut w.scratch)?;
            Ok(w.writer.append(&id, &w.scratch))
        })
    }

    /// Appends a tombstone for `id`; returns its ticket.
    fn delete(&self, id: uuid::Uuid) -> Result<Ticket, DurabilityError> {
        self.write(|w| Ok(w.writer.delete(&id)))
    }

    /// Runs one write under the writer lock and hands out its ticket (in file order). `op` fails with a
    /// `DurabilityError` before writing (an encoding error: nothing written), or returns the writer's
    /// result (a failure there leaves the file's end unknown: the store takes no more records).
    fn write(
        &self,
        op: impl FnOnce(&mut WriterSide) -> Result<flowmem_store::Result<()>, DurabilityError>,
    ) -> Result<Ticket, DurabilityError> {
        self.check_usable()?;
        let ticket = {
            let mut w = lock(&self.writer);
            if let Err(e) = op(&mut w)? {
                self.fail(e.to_string());
                return Err(e.into());
            }
            self.appended.fetch_add(1, Ordering::SeqCst) + 1
        };
        self.kick();
        Ok(ticket)
    }

    /// Wakes the committer if it waits for work.
    fn kick(&self) {
        if self.committer_idle.load(Ordering::SeqCst) {
            let _g = lock(&self.commit);
            self.work.notify_one();
        }
    }

    fn fail(&self, message: String) {
        let mut c = lock(&self.commit);
        c.failure.get_or_insert(message);
        self.failed.store(true, Ordering::Release);
        self.durable.notify_all();
    }

    /// The committer thread: whenever records were appended since the last commit, writes them and (with
    /// `Fsync`) syncs the file, then tells the waiters. Commits what is left before it exits.
    fn committer(&self) {
        let mut last_commit: Option<std::time::Instant> = None;
        loop {
            {
                let mut c = lock(&self.commit);
                if c.durable >= self.appended.load(Ordering::SeqCst) {
                    if c.shutdown || c.failure.is_some() {
                        return;
                    }
                    self.committer_idle.store(true, Ordering::SeqCst);
                    if c.durable >= self.appended.load(Ordering::SeqCst) {
                        // The timeout is a safety net only: appenders wake the committer.
                        c = self
                            .work
                            .wait_timeout(c, Duration::from_millis(100))
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    self.committer_idle.store(false, Ordering::SeqCst);
                    drop(c);
                    continue;
                }
                // Work is pending: gather more unless someone waits for it (or the store closes).
                let since = last_commit.map_or(self.interval, |t| t.elapsed());
                if since < self.interval && c.waiters == 0 && !c.shutdown {
                    drop(
                        self.work
                            .wait_timeout(c, self.interval - since)
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                    continue;
                }
            }
            last_commit = Some(std::time::Instant::now());
            // Write out what was appended, and take a handle to sync without holding the writer.
            let (target, handle) = {
                let mut w = lock(&self.writer);
                let target = self.appended.load(Ordering::SeqCst);
                let handle = w.writer.flush().and_then(|()| match self.mode {
                    SyncMode::Fsync => w.writer.sync_handle().map(Some),
                    SyncMode::Write => Ok(None),
                });
                (target, handle)
            };
            let synced = handle.and_then(|h| match h {
                Some(handle) => handle.sync(),
                None => Ok(()),
            });
            match synced {
                Ok(()) => {
                    let mut c = lock(&self.commit);
                    c.durable = c.durable.max(target);
                    c.commits += 1;
                    self.durable.notify_all();
                }
                Err(e) => {
                    // Not retried: after a failed fsync the kernel may have dropped the dirty pages.
                    self.fail(e.to_string());
                    return;
                }
            }
        }
    }

    /// Makes everything appended visible to the reader, and runs `f` with the refreshed reader.
    fn with_reader<R>(
        &self,
        f: impl FnOnce(&MmapStore) -> Result<R, DurabilityError>,
    ) -> Result<R, DurabilityError> {
        {
            let mut w = lock(&self.writer);
            if let Err(e) = w.writer.flush() {
                drop(w);
                self.fail(e.to_string());
                return Err(e.into());
            }
        }
        let mut reader = lock(&self.reader);
        let store = match reader.as_mut() {
            Some(r) => {
                r.refresh()?;
                r
            }
            None => reader.insert(MmapStore::open(&self.path)?),
        };
        f(store)
    }

    /// The context records of `run` in the file: (record index, key).
    fn context_records(&self, run: RunId) -> Result<Vec<(u64, String)>, DurabilityError> {
        self.with_reader(|r| {
            Ok(context_of(r, run)?
                .into_iter()
                .map(|(index, key, _)| (index, key))
                .collect())
        })
    }

    /// The header (workflow name, fingerprint, node count) and checkpoints of `run`, if the file has it.
    fn read_run(
        &self,
        run: RunId,
    ) -> Result<Option<(StoredWorkflow, Checkpoints)>, DurabilityError> {
        let key = encode::run_key(run);
        self.with_reader(|r| {
            let Some(bytes) = r.get(&encode::record_id(key, KIND_HEADER, 0))? else {
                return Ok(None);
            };
            let header_id = encode::record_id(key, KIND_HEADER, 0);
            let header =
                encode::decode_header(&bytes).map_err(undecodable(r, &header_id, "run header"))?;
            if header.run != run.as_u128() {
                return Err(DurabilityError::KeyCollision {
                    run,
                    other: RunId::from_u128(header.run),
                    key,
                });
            }
            let info = (
                header.workflow.to_string(),
                header.fingerprint,
                header.nodes,
            );
            let mut checkpoints = Checkpoints::default();
            for node in 0..header.nodes {
                let id = encode::record_id(key, KIND_NODE, u64::from(node));
                let Some(bytes) = r.get(&id)? else {
                    continue;
                };
                let (owner, index, value) =
                    encode::decode_node(&bytes).map_err(undecodable(r, &id, "node record"))?;
                if owner != run.as_u128() || index != node {
                    return Err(DurabilityError::Inconsistent {
                        run,
                        problem: format!(
                            "the record of node {node} names run {} node {index}",
                            RunId::from_u128(owner)
                        ),
                    });
                }
                checkpoints.nodes.push((node, value));
            }
            checkpoints.context = context_of(r, run)?
                .into_iter()
                .map(|(_, key, value)| (key, value))
                .collect();
            checkpoints.context.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some((info, checkpoints)))
        })
    }
}

/// The error of record `id` of `r`, which did not decode as `what`.
fn undecodable<'a>(
    r: &'a MmapStore,
    id: &'a Uuid,
    what: &'static str,
) -> impl FnOnce(postcard::Error) -> DurabilityError + 'a {
    move |e| DurabilityError::Decode {
        what,
        place: Some(RecordPlace {
            path: r.path().to_path_buf(),
            record: *id,
            offset: r.record(id).map_or(0, |rec| rec.offset),
        }),
        source: Box::new(e),
    }
}

/// The context records of `run` in `r`: (record index, key, value).
fn context_of(r: &MmapStore, run: RunId) -> Result<Vec<(u64, String, Value)>, DurabilityError> {
    let key = encode::run_key(run);
    let mut records = Vec::new();
    for id in r.ids() {
        if encode::kind_of(id, key) != Some(KIND_CONTEXT) {
            continue;
        }
        let Some(bytes) = r.get(id)? else { continue };
        let (owner, k, value) =
            encode::decode_context(&bytes).map_err(undecodable(r, id, "context record"))?;
        if owner == run.as_u128() {
            records.push((encode::index_of(id), k, value));
        }
    }
    Ok(records)
}

impl CheckpointStore for FileCheckpoints {
    fn is_durable(&self) -> bool {
        true
    }

    fn begin(&self, run: RunId, workflow: &Workflow) -> Result<Checkpoints, DurabilityError> {
        self.inner.check_usable()?;
        match self.inner.read_run(run)? {
            Some((info, checkpoints)) => {
                check_workflow(run, (&info.0, info.1, info.2), workflow)?;
                Ok(checkpoints)
            }
            None => {
                let key = encode::run_key(run);
                self.inner
                    .append(encode::record_id(key, KIND_HEADER, 0), |out| {
                        encode::encode_header(run, workflow, out)
                    })?;
                Ok(Checkpoints::default())
            }
        }
    }

    fn checkpoint(
        &self,
        run: RunId,
        node: u32,
        name: &str,
        output: &Value,
    ) -> Result<Ticket, DurabilityError> {
        let key = encode::run_key(run);
        self.inner
            .append(encode::record_id(key, KIND_NODE, u64::from(node)), |out| {
                encode::encode_node(run, node, name, output, out)
            })
    }

    fn put_context(&self, run: RunId, key: &str, value: &Value) -> Result<Ticket, DurabilityError> {
        let run_key = encode::run_key(run);
        // Held while appending, so two threads never probe to the same free index for different keys.
        let mut slots = lock(&self.inner.slots);
        let run_slots = match slots.get_mut(run_key) {
            Some(s) => s,
            None => {
                let stored = self.inner.context_records(run)?;
                slots.insert(run_key, RunSlots::from_records(stored))
            }
        };
        let index = run_slots.index_of(key, encode::context_index(key), encode::INDEX_MASK);
        let id = encode::record_id(run_key, KIND_CONTEXT, index);
        self.inner
            .append(id, |out| encode::encode_context(run, key, value, out))
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), DurabilityError> {
        let inner = &self.inner;
        let mut c = lock(&inner.commit);
        loop {
            if c.durable >= ticket {
                return Ok(());
            }
            if let Some(failure) = &c.failure {
                return Err(DurabilityError::Failed {
                    path: inner.path.clone(),
                    message: failure.clone(),
                });
            }
            // Tell the committer (idle, or gathering a batch) that someone waits.
            c.waiters += 1;
            inner.work.notify_one();
            c = inner
                .durable
                .wait_timeout(c, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            c.waiters -= 1;
        }
    }

    fn load(&self, run: RunId) -> Result<Option<Checkpoints>, DurabilityError> {
        Ok(self.inner.read_run(run)?.map(|(_, c)| c))
    }

    fn forget(&self, run: RunId) -> Result<bool, DurabilityError> {
        let key = encode::run_key(run);
        lock(&self.inner.slots).remove(key);
        let ids: Vec<uuid::Uuid> = self.inner.with_reader(|r| {
            Ok(r.ids()
                .filter(|id| encode::kind_of(id, key).is_some())
                .copied()
                .collect())
        })?;
        // The header last: a crash midway leaves a run that still resumes (with fewer checkpoints).
        let mut ticket = 0;
        let header = encode::record_id(key, KIND_HEADER, 0);
        for id in ids.iter().filter(|id| **id != header) {
            ticket = self.inner.delete(*id)?;
        }
        if ids.contains(&header) {
            ticket = self.inner.delete(header)?;
        }
        self.wait_durable(ticket)?;
        Ok(ids.contains(&header))
    }
}
