//! Run states recycled between runs of a workflow (the `pooled_node_state` memory option).
//!
//! A recycled state holds its workflow's graph, so the pool must not outlive the workflow's use: the
//! graph knows the pools that keep states for it, and when its last `Workflow` handle is dropped it has
//! them [`forget`](StatePool::forget) it (a run in flight keeps its state until it ends, then frees it).

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{
    RunId, Workflow,
    definition::Graph,
    run::{RunSettings, RunState},
};

use super::Executor;

/// The most run states kept per workflow (`pooled_node_state`): as many runs of one workflow as are
/// usually in flight at once.
const STATES_PER_WORKFLOW: usize = 64;
/// How long a submission waits, at most, for a state whose ended run is still being let go of by a
/// worker (normally a few instructions; longer only when the OS preempted that worker).
const STATE_WAIT: Duration = Duration::from_millis(5);
/// The most run states kept in all.
const STATES_IN_ALL: usize = 4096;

/// An executor's recycled run states, by workflow graph (its address: a kept state holds its graph, so
/// the address is not reused while the entry exists).
#[derive(Default)]
pub(crate) struct StatePool {
    states: Mutex<RecycledStates>,
}

#[derive(Default)]
struct RecycledStates {
    by_graph: std::collections::HashMap<usize, Vec<Arc<RunState>>, foldhash::fast::FixedState>,
    total: usize,
}

impl StatePool {
    fn lock(&self) -> std::sync::MutexGuard<'_, RecycledStates> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the states kept for `graph` (its last handle is gone).
    pub(crate) fn forget(&self, graph: &Graph) {
        let removed = {
            let mut states = self.lock();
            let removed = states.by_graph.remove(&(graph as *const Graph as usize));
            states.total -= removed.as_ref().map_or(0, Vec::len);
            removed
        };
        // Dropped outside the lock: a state's drop returns its context to the executor's pool.
        drop(removed);
    }

    /// How many states are kept.
    pub(super) fn len(&self) -> usize {
        self.lock().total
    }

    /// Drops every kept state.
    pub(super) fn clear(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }
}

impl Executor {
    /// A run state for `workflow`: a recycled one whose last run is over and unreferenced
    /// (`pooled_node_state`), or a new one.
    pub(super) fn acquire_state(
        &self,
        id: RunId,
        workflow: &Workflow,
        options: RunSettings,
    ) -> Arc<RunState> {
        let shared = &self.shared;
        let fresh = || self.new_state(id, workflow, options);
        if !shared.memory.pooled_node_state {
            return fresh();
        }
        let mut states = shared.states.lock();
        let RecycledStates { by_graph, total } = &mut *states;
        let key = Arc::as_ptr(&workflow.graph) as usize;
        if let Some(list) = by_graph.get_mut(&key) {
            // A run that has just ended may still be referenced by a worker that settled one of its nodes,
            // for a few instructions (or a time slice, if the OS preempted it there): wait for that, up to
            // STATE_WAIT, rather than allocate a duplicate state.
            let mut waited_since = None;
            for round in 0.. {
                let mut lingering = false;
                for state in list.iter_mut() {
                    if let Some(idle) = Arc::get_mut(state) {
                        debug_assert!(idle.is_for(workflow));
                        idle.reset(id, options, &shared.memory);
                        return Arc::clone(state);
                    }
                    lingering |= state.is_being_let_go();
                }
                if !lingering
                    || waited_since.get_or_insert_with(Instant::now).elapsed() >= STATE_WAIT
                {
                    break;
                }
                if round > 16 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        let state = fresh();
        if *total < STATES_IN_ALL {
            let list = by_graph.entry(key).or_insert_with(|| {
                workflow.graph.add_recycler(&shared.states);
                Vec::new()
            });
            if list.len() < STATES_PER_WORKFLOW {
                list.push(Arc::clone(&state));
                *total += 1;
            }
        }
        state
    }

    /// A new run state (not recycled).
    pub(super) fn new_state(
        &self,
        id: RunId,
        workflow: &Workflow,
        options: RunSettings,
    ) -> Arc<RunState> {
        Arc::new(RunState::new(
            id,
            workflow,
            options,
            &self.shared.memory,
            &self.shared.contexts,
        ))
    }

    /// Drops the recycled run states of workflows (all of them: they are made again on demand), freeing
    /// their memory. (Dropping a workflow drops its own.)
    pub fn clear_recycled(&self) {
        self.shared.states.clear();
    }
}
