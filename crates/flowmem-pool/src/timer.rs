//! A timer thread that wakes futures at their deadlines, so that timeouts need no async runtime.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{Condvar, Mutex, OnceLock},
    task::Waker,
    time::Instant,
};

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Timer {
    queue: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    changed: Condvar,
}

static TIMER: OnceLock<&'static Timer> = OnceLock::new();

fn timer() -> &'static Timer {
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("flowmem-pool-timer".into())
            .spawn(move || run(timer))
            .expect("the pool timer thread starts");
        timer
    })
}

fn run(timer: &'static Timer) {
    let mut guard = timer.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while guard.0.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = guard.0.pop() {
                due.push(entry.waker);
            }
        }
        if !due.is_empty() {
            // Woken outside the lock, so a waker may set another timer; one that panics (its own bug)
            // does not stop the timer that every pool and executor shares.
            drop(guard);
            for waker in due {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
            }
            guard = timer.queue.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        guard = match guard.0.peek().map(|Reverse(e)| e.at) {
            Some(next) => {
                let wait = next.saturating_duration_since(Instant::now());
                timer
                    .changed
                    .wait_timeout(guard, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => timer.changed.wait(guard).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// Wakes `waker` at `at`, from one process-wide timer thread (started on first use): timeouts and
/// delays without an async runtime. The pool's `acquire_async` uses it for its timeout; the engine, for
/// retry back-off. A waker whose future has finished by then gets a spurious wake, which is harmless.
///
/// `wake` runs on the timer thread (not under its lock: a waker may call `wake_at` again); it should only
/// queue work, as wakers do, not do it.
///
/// ```
/// use std::{sync::{Arc, mpsc}, task::{Wake, Waker}, time::{Duration, Instant}};
///
/// struct Ping(mpsc::SyncSender<Instant>);
/// impl Wake for Ping {
///     fn wake(self: Arc<Self>) {
///         let _ = self.0.send(Instant::now());
///     }
/// }
///
/// let (tx, rx) = mpsc::sync_channel(1);
/// let due = Instant::now() + Duration::from_millis(5);
/// flowmem_pool::wake_at(due, Waker::from(Arc::new(Ping(tx))));
/// assert!(rx.recv().unwrap() >= due);
/// ```
pub fn wake_at(at: Instant, waker: Waker) {
    let timer = timer();
    let mut guard = timer.queue.lock().unwrap_or_else(|p| p.into_inner());
    let seq = guard.1;
    guard.1 += 1;
    guard.0.push(Reverse(Entry { at, seq, waker }));
    drop(guard);
    timer.changed.notify_one();
}
