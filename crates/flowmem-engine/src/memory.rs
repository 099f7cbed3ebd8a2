//! The executor's memory options: each one recycles a kind of per-run or per-node memory instead of
//! allocating it again, and each can be turned off to see (in allocation counts) what it saves.

use std::{collections::HashMap, fmt};

use flowmem_intern::Symbol;

use crate::Value;

/// Which memory the executor recycles. All on by default; [`MemoryOptions::NONE`] allocates everything
/// afresh, as a plain executor would. `cargo xtask bench` reports the allocations per run with each option
/// off in turn (target E2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryOptions {
    /// Actions' scratch memory ([`NodeCtx::scratch_str`](crate::NodeCtx::scratch_str)) comes from an arena
    /// of the worker running the node, reset when the node is done (scratch memory lives as long as the
    /// node's context) and keeping its blocks, so a warm worker allocates nothing for it. Off: each node
    /// that uses scratch memory gets a new arena, allocated and freed around it.
    pub arena: bool,
    /// The block size of the actions' scratch arenas, in bytes (default 64 KiB,
    /// [`flowmem_alloc::DEFAULT_BLOCK_SIZE`]; at least [`flowmem_alloc::MIN_BLOCK_SIZE`]): Flow
    /// Orchestrator's `ArenaSize`. Larger blocks mean fewer allocations for nodes that use much scratch
    /// memory (a warm worker's arena keeps its blocks either way) and more memory held per worker.
    pub arena_block_size: usize,
    /// A key of the run's context ([`NodeCtx::put`](crate::NodeCtx::put)) that the process-wide string
    /// pool already holds (the well-known `flowmem_intern::sym::*`, or a key the program interned once,
    /// as a constant of its domain) is kept as its 4-byte symbol: a `put` allocates nothing for it. Other
    /// keys are owned by the run and freed with it; the engine never interns a key itself (generated keys
    /// would stay for the life of the process). Off: every key is an owned string, allocated by the
    /// first `put` of each run.
    pub interned_names: bool,
    /// The run's context map is cleared and reused by the next run (its table keeps its capacity). Off: each
    /// run builds a new map.
    pub pooled_contexts: bool,
    /// The per-node state of a run (dependency counters, statuses, attempts, times, outputs) is kept per
    /// workflow and reset for the next run. Off: each run allocates it.
    pub pooled_node_state: bool,
    /// [`NodeCtx::buffer`](crate::NodeCtx::buffer) hands out byte buffers from the executor's
    /// `BufferPool`. Off: a new `Vec` each time.
    pub pooled_buffers: bool,
}

/// One of the [`MemoryOptions`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryOption {
    /// [`MemoryOptions::arena`].
    Arena,
    /// [`MemoryOptions::interned_names`].
    InternedNames,
    /// [`MemoryOptions::pooled_contexts`].
    PooledContexts,
    /// [`MemoryOptions::pooled_node_state`].
    PooledNodeState,
    /// [`MemoryOptions::pooled_buffers`].
    PooledBuffers,
}

impl MemoryOption {
    /// Every option.
    pub const ALL: [MemoryOption; 5] = [
        MemoryOption::Arena,
        MemoryOption::InternedNames,
        MemoryOption::PooledContexts,
        MemoryOption::PooledNodeState,
        MemoryOption::PooledBuffers,
    ];

    /// The option's field name.
    pub fn name(self) -> &'static str {
        match self {
            MemoryOption::Arena => "arena",
            MemoryOption::InternedNames => "interned_names",
            MemoryOption::PooledContexts => "pooled_contexts",
            MemoryOption::PooledNodeState => "pooled_node_state",
            MemoryOption::PooledBuffers => "pooled_buffers",
        }
    }
}

impl fmt::Display for MemoryOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl MemoryOptions {
    /// Everything recycled (the default).
    pub const ALL: MemoryOptions = MemoryOptions {
        arena: true,
        arena_block_size: flowmem_alloc::DEFAULT_BLOCK_SIZE,
        interned_names: true,
        pooled_contexts: true,
        pooled_node_state: true,
        pooled_buffers: true,
    };

    /// Nothing recycled.
    pub const NONE: MemoryOptions = MemoryOptions {
        arena: false,
        arena_block_size: flowmem_alloc::DEFAULT_BLOCK_SIZE,
        interned_names: false,
        pooled_contexts: false,
        pooled_node_state: false,
        pooled_buffers: false,
    };

    /// These options with scratch arenas of `bytes`-byte blocks (see [`arena_block_size`](Self::arena_block_size)).
    ///
    /// ```
    /// use flowmem_engine::{Executor, MemoryOptions};
    ///
    /// let executor = Executor::with_memory(2, MemoryOptions::ALL.with_arena_block_size(1 << 20));
    /// assert_eq!(executor.memory().arena_block_size, 1 << 20);
    /// ```
    pub const fn with_arena_block_size(mut self, bytes: usize) -> Self {
        self.arena_block_size = bytes;
        self
    }

    /// These options with `option` set to `on`.
    ///
    /// ```
    /// use flowmem_engine::{MemoryOption, MemoryOptions};
    ///
    /// let options = MemoryOptions::ALL.with(MemoryOption::PooledBuffers, false);
    /// assert!(!options.pooled_buffers && options.arena);
    /// ```
    pub fn with(mut self, option: MemoryOption, on: bool) -> Self {
        match option {
            MemoryOption::Arena => self.arena = on,
            MemoryOption::InternedNames => self.interned_names = on,
            MemoryOption::PooledContexts => self.pooled_contexts = on,
            MemoryOption::PooledNodeState => self.pooled_node_state = on,
            MemoryOption::PooledBuffers => self.pooled_buffers = on,
        }
        self
    }
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions::ALL
    }
}

type Fast = foldhash::fast::FixedState;

/// A run's context: values by key, shared by its nodes. Keys are the run's own (freed with the context),
/// except that with `interned_names` a key the process-wide pool already holds is kept as its 4-byte
/// symbol (no allocation). The engine never adds a key to the pool: that would keep generated keys for
/// the life of the process.
#[derive(Default)]
pub(crate) struct ContextMap {
    /// Whether keys already in the process-wide pool are kept as symbols (`interned_names`).
    intern_known: bool,
    /// Values under keys kept as symbols.
    known: HashMap<Symbol, Value, Fast>,
    /// Values under keys the run owns.
    owned: HashMap<Box<str>, Value, Fast>,
}

impl ContextMap {
    /// Sets whether keys already interned are kept as symbols (for the next run: the map is empty).
    pub(crate) fn intern_known_keys(&mut self, on: bool) {
        debug_assert!(self.known.is_empty() && self.owned.is_empty());
        self.intern_known = on;
    }

    fn symbol(&self, key: &str) -> Option<Symbol> {
        if self.intern_known {
            flowmem_intern::get(key)
        } else {
            None
        }
    }

    pub(crate) fn put(&mut self, key: &str, value: Value) -> Option<Value> {
        if let Some(symbol) = self.symbol(key) {
            // A key interned since a value was put under it as an owned key moves to the symbols.
            let earlier = if self.owned.is_empty() {
                None
            } else {
                self.owned.remove(key)
            };
            return self.known.insert(symbol, value).or(earlier);
        }
        match self.owned.get_mut(key) {
            // A key already there is not allocated again.
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => self.owned.insert(key.into(), value),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        if let Some(symbol) = self.symbol(key)
            && let Some(value) = self.known.get(&symbol)
        {
            return Some(value);
        }
        self.owned.get(key)
    }

    pub(crate) fn clear(&mut self) {
        self.known.clear();
        self.owned.clear();
    }

    /// Every key and a clone of its value, sorted by key.
    pub(crate) fn entries(&self) -> Vec<(String, Value)> {
        let mut all: Vec<(String, Value)> = self
            .known
            .iter()
            .map(|(k, v)| (flowmem_intern::resolve(*k).to_string(), v.clone()))
            .chain(self.owned.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.known.len() + self.owned.len()
    }
}
