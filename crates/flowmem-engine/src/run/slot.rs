//! The state of one node in a run, in one cache line: its dependency counter, status, attempts, time and
//! output. A node's worker touches its own line and its dependents' counters, and nothing a neighbour's
//! worker writes (per-field arrays put eight nodes' statuses in one line, shared by both workers).

use std::{
    cell::UnsafeCell,
    mem::MaybeUninit,
    sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering},
};

use crate::Value;

/// One node of a run.
#[repr(align(64))]
pub(crate) struct NodeSlot {
    /// Dependencies not finished yet.
    pub(crate) remaining: AtomicU32,
    /// Attempts started.
    pub(crate) attempts: AtomicU32,
    /// Time spent in its action, nanoseconds (all attempts).
    pub(crate) nanos: AtomicU64,
    /// Its `NodeStatus` (or restored), as a byte.
    pub(crate) status: AtomicU8,
    /// Its output, once it completed.
    pub(crate) output: OutputCell,
}

impl NodeSlot {
    pub(crate) fn new(remaining: u32) -> Self {
        NodeSlot {
            remaining: AtomicU32::new(remaining),
            attempts: AtomicU32::new(0),
            nanos: AtomicU64::new(0),
            status: AtomicU8::new(0),
            output: OutputCell::new(),
        }
    }

    /// Ready for another run (the caller has the state to itself).
    pub(crate) fn reset(&mut self, remaining: u32) {
        *self.remaining.get_mut() = remaining;
        *self.attempts.get_mut() = 0;
        *self.nanos.get_mut() = 0;
        *self.status.get_mut() = 0;
        drop(self.output.take());
    }
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const SET: u8 = 2;

/// A value written at most once, then read by any thread (a `OnceLock` without its general machinery:
/// one compare-and-swap to write, one load to read).
pub(crate) struct OutputCell {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<Value>>,
}

// SAFETY: the value is written once, by the one thread that moved `state` from EMPTY to WRITING, before it
// publishes SET with Release; readers read it only after seeing SET with Acquire, and never mutably.
// `Value` is `Send + Sync`, so sharing `&Value` between threads is sound.
unsafe impl Sync for OutputCell {}

impl OutputCell {
    pub(crate) const fn new() -> Self {
        OutputCell {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` if the cell is empty; gives it back otherwise.
    pub(crate) fn set(&self, value: Value) -> Result<(), Value> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: this thread won the EMPTY -> WRITING transition, so it is the only writer, and no reader
        // looks before SET.
        unsafe { (*self.value.get()).write(value) };
        self.state.store(SET, Ordering::Release);
        Ok(())
    }

    /// The value, once set.
    pub(crate) fn get(&self) -> Option<&Value> {
        if self.state.load(Ordering::Acquire) == SET {
            // SAFETY: SET is stored (Release) only after the value was written, and the value is not
            // written again while the cell is shared (only `take`, through `&mut`, empties it).
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// Empties the cell, returning its value.
    pub(crate) fn take(&mut self) -> Option<Value> {
        if *self.state.get_mut() != SET {
            // EMPTY, or WRITING left by a writer that panicked between its CAS and its write (none can:
            // `write` does not panic) — nothing initialised either way.
            *self.state.get_mut() = EMPTY;
            return None;
        }
        *self.state.get_mut() = EMPTY;
        // SAFETY: the state was SET, so the value is initialised; the state is EMPTY again, so it is read
        // out exactly once.
        Some(unsafe { (*self.value.get()).assume_init_read() })
    }
}

impl Drop for OutputCell {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_written_once_and_read_by_many_threads() {
        let cell = OutputCell::new();
        assert!(cell.get().is_none());
        std::thread::scope(|s| {
            let cell = &cell;
            let writers: Vec<_> = (0..4u64)
                .map(|i| s.spawn(move || cell_set(cell, i)))
                .collect();
            let won: Vec<bool> = writers.into_iter().map(|w| w.join().unwrap()).collect();
            assert_eq!(won.iter().filter(|w| **w).count(), 1);
        });
        let first = cell.get().and_then(Value::as_u64).unwrap();
        assert!(first < 4);
        let mut cell = cell;
        assert_eq!(cell.take().and_then(|v| v.as_u64()), Some(first));
        assert!(cell.get().is_none());
        assert!(cell.set(Value::from("again")).is_ok());
        assert_eq!(cell.get().and_then(Value::as_str), Some("again"));
    }

    fn cell_set(cell: &OutputCell, i: u64) -> bool {
        cell.set(Value::from(i)).is_ok()
    }

    #[test]
    fn a_cell_drops_its_value() {
        let shared: std::sync::Arc<str> = "shared".into();
        let cell = OutputCell::new();
        cell.set(Value::Text(std::sync::Arc::clone(&shared)))
            .unwrap();
        assert_eq!(std::sync::Arc::strong_count(&shared), 2);
        drop(cell);
        assert_eq!(std::sync::Arc::strong_count(&shared), 1);
    }

    #[test]
    fn a_node_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<NodeSlot>(), 64);
    }
}
