//! What the workers of an executor share: the queues of ready nodes, the wake-up protocol, the counters.

use std::sync::{
    Arc, Condvar, Mutex, PoisonError,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_queue::ArrayQueue;
use flowmem_alloc::CachePadded;
use flowmem_pool::BufferPool;

use crate::{MemoryOptions, run::ContextPool};

use super::{COUNTERS, Task, recycle::StatePool, worker::Here};

/// The state an executor's workers share.
pub(super) struct Shared {
    /// Work from outside the workers (submissions, retries due): a preallocated ring first, so a steady
    /// stream of submissions allocates nothing; the growable injector when it is full.
    pub(super) ring: ArrayQueue<Task>,
    pub(super) overflow: Injector<Task>,
    pub(super) stealers: Vec<Stealer<Task>>,
    pub(super) sleeping: AtomicUsize,
    /// A wake-up was sent and its sleeper has not picked it up yet: further pushes need not send another.
    pub(super) wake_pending: AtomicBool,
    pub(super) sleep_lock: Mutex<()>,
    pub(super) wake: Condvar,
    pub(super) shutdown: AtomicBool,
    pub(super) runs_in_flight: AtomicUsize,
    pub(super) next_run: AtomicU64,
    /// The ids of this executor's runs that are not durable: this random UUID, its last 48 bits XORed
    /// with the run's number.
    pub(super) run_id_base: u128,
    /// The clock of node timings: the CPU's time-stamp counter, calibrated once per process against the
    /// OS clock (the OS clock where the counter is unreliable).
    pub(super) clock: quanta::Clock,
    /// Per-worker counters (one writer each, summed on read: no contended read-modify-write on the hot
    /// path). Every count is made on a worker: nodes are executed, settled and retried there only.
    pub(super) counters: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
    pub(super) memory: MemoryOptions,
    pub(super) buffers: BufferPool,
    /// Recycled run states by workflow (`pooled_node_state`); shared with the workflows' graphs, which
    /// have it drop their states when their last handle goes.
    pub(super) states: Arc<StatePool>,
    pub(super) contexts: ContextPool,
    /// The tokio runtime async nodes are polled in.
    #[cfg(feature = "tokio")]
    pub(super) tokio: Option<tokio::runtime::Handle>,
}

impl Shared {
    /// The id of the next run that is not durable.
    pub(super) fn next_run_id(&self) -> crate::RunId {
        let n = self.next_run.fetch_add(1, Ordering::Relaxed);
        crate::RunId::from_u128(self.run_id_base ^ u128::from(n & 0xFFFF_FFFF_FFFF))
    }

    /// Runs `f` inside the executor's tokio runtime, if it has one (feature `tokio`).
    pub(super) fn in_runtime<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tokio")]
        if let Some(handle) = &self.tokio {
            let _entered = handle.enter();
            return f();
        }
        f()
    }

    /// Adds `n` (wrapping) to counter `i` of worker `here`'s row: its single writer, so a plain load and
    /// store.
    #[inline]
    pub(super) fn count(&self, here: Here<'_>, i: usize, n: u64) {
        let c = &self.counters[here.me][i];
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Queues work from outside a worker (or for any worker), and wakes one if some sleep.
    pub(super) fn push_external(&self, task: Task) {
        if let Err(task) = self.ring.push(task) {
            self.overflow.push(task);
        }
        self.notify();
    }

    /// Wakes one sleeping worker, if any sleeps (on every push of work to share: one load when none
    /// does).
    #[inline]
    pub(super) fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        let _g = self
            .sleep_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_one();
    }

    /// Queues a ready node on worker `here`'s own deque.
    ///
    /// A worker pushing onto an empty deque with no next task will pop the task itself next, so nobody is
    /// woken for it; a second task waiting there is work to share, and wakes a sleeper.
    #[inline]
    pub(super) fn push(&self, here: Here<'_>, task: Task) {
        let surplus = !here.deque.is_empty();
        here.deque.push(task);
        if surplus {
            self.notify();
        }
    }

    /// Queues a ready node that worker `here` will not get to next (it has a next task): work to share,
    /// so a sleeping worker is woken.
    #[inline]
    pub(super) fn push_to_share(&self, here: Here<'_>, task: Task) {
        here.deque.push(task);
        self.notify();
    }

    pub(super) fn find_task(&self, local: &Worker<Task>, me: usize) -> Option<Task> {
        if let Some(t) = local.pop() {
            return Some(t);
        }
        if let Some(t) = self.ring.pop() {
            return Some(t);
        }
        loop {
            let mut retry = false;
            match self.overflow.steal_batch_and_pop(local) {
                Steal::Success(t) => return Some(t),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.stealers.len();
            for k in 1..n {
                match self.stealers[(me + k) % n].steal_batch_and_pop(local) {
                    Steal::Success(t) => return Some(t),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    pub(super) fn has_external_work(&self) -> bool {
        !self.ring.is_empty()
            || !self.overflow.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
    }
}
