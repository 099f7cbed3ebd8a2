//! A ready node of a run ([`Task`]), and the reference to its run that a task holds ([`RunRef`]): no
//! reference count per task.
//!
//! One of the engine's two modules with `unsafe` (with `run/slot.rs`; the crate denies it elsewhere): a
//! task's reference to its run is a pointer, valid by the run's count of unfinished nodes rather than by
//! a count of references. Its tests are the engine's, run under valgrind memcheck by `cargo xtask
//! valgrind`.
#![allow(
    unsafe_code,
    reason = "tasks refer to their run by pointer; the validity argument is on `RunRef`"
)]

use std::{ops::Deref, ptr::NonNull, sync::Arc};

use crate::run::RunState;

/// A node of a run, ready to execute.
pub(crate) struct Task {
    pub(crate) run: RunRef,
    pub(crate) node: u32,
    /// Nodes of the run finished before this one on the same worker and not yet taken off the run's
    /// count of unfinished nodes: a worker going from a node to the dependent it made ready carries the
    /// count along (the run cannot end while this task's node is unfinished), and takes it off once, when
    /// the chain of such next tasks ends, rather than once per node on a line both workers write.
    pub(crate) carried: u32,
}

/// A run in flight, as its tasks refer to it.
///
/// A run in flight owns one count of its `Arc`, its *in-flight reference*: taken when it is launched
/// ([`RunRef::launch`]) and given back by the worker that counts its last node finished
/// ([`RunRef::release_in_flight`]). A task's node is unfinished until the task has been executed and its
/// node settled (or, for a retry or a parked async node, until its attempt ends), and a run cannot end
/// while a node is unfinished: so while a task of the run exists, the in-flight reference is held and the
/// state is alive. A `RunRef` is used only by the holder of such a task, before the task's node is counted
/// finished.
///
/// What it saves: a queued task used to hold an `Arc` of its run, so every ready node cost a count taken
/// by the worker that queued it and given back by the worker that ran it — two read-modify-writes per
/// node on a line both workers write.
#[derive(Clone, Copy)]
pub(crate) struct RunRef(NonNull<RunState>);

// SAFETY: a `RunRef` stands for a shared reference to a `RunState`, which is `Sync`; it is valid (see the
// type's doc) on whichever thread the task holding it is sent to.
unsafe impl Send for RunRef {}

impl RunRef {
    /// Takes `run`'s in-flight reference, at its launch, and returns the reference its tasks hold.
    pub(crate) fn launch(run: &Arc<RunState>) -> RunRef {
        let raw = Arc::into_raw(Arc::clone(run));
        RunRef(NonNull::from(
            // SAFETY: `Arc::into_raw` points to the live value of the count just taken.
            unsafe { &*raw },
        ))
    }

    /// The reference of a task of `run`, whose `Arc` the caller holds while a node of it is unfinished
    /// (an async node's poll, its waker).
    pub(crate) fn of(run: &Arc<RunState>) -> RunRef {
        RunRef(NonNull::from(&**run))
    }

    /// An `Arc` of the run, for what may outlive the task (an async attempt's context and future).
    pub(crate) fn to_arc(self) -> Arc<RunState> {
        let raw = self.0.as_ptr().cast_const();
        // SAFETY: the in-flight reference is held (see the type's doc), so `raw` is the value pointer of a
        // live `Arc` (`Arc::into_raw`'s, or `&**arc`'s, which is the same); a count is added before a
        // second `Arc` is made from it.
        unsafe {
            Arc::increment_strong_count(raw);
            Arc::from_raw(raw)
        }
    }

    /// Whether `self` and `other` refer to the same run state.
    pub(crate) fn ptr_eq(self, other: RunRef) -> bool {
        self.0 == other.0
    }

    /// Gives back the run's in-flight reference (the state may be freed, or recycled for another run).
    ///
    /// # Safety
    /// Called once per launch, by the worker that counted the run's last node finished, after its last use
    /// of the run through any `RunRef`: no task of the run is left to use one.
    pub(crate) unsafe fn release_in_flight(self) {
        // SAFETY: the count `launch` took, given back once (the caller's contract).
        drop(unsafe { Arc::from_raw(self.0.as_ptr().cast_const()) });
    }
}

impl Deref for RunRef {
    type Target = RunState;

    #[inline]
    fn deref(&self) -> &RunState {
        // SAFETY: the holder of a task of the run uses this before the task's node is counted finished, so
        // the in-flight reference is held and the state alive (see the type's doc).
        unsafe { self.0.as_ref() }
    }
}
