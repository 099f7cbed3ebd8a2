//! The named targets of the issues: each a ratio of two benchmarks of the same run.

use serde::Serialize;

use crate::report::{BenchResult, CountResult, PairedResult};

/// How a ratio is formed from the two benchmarks' time per element.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// numerator time / denominator time (lower is better for the numerator).
    Time,
    /// numerator throughput / denominator throughput (higher is better for the numerator).
    Throughput,
    /// the value of the numerator, a count or size from `benches/src/bin/counts.rs` (no denominator).
    Count,
    /// the numerator's own time per element in nanoseconds (no denominator).
    NsPerElement,
    /// the median ratio of the numerator, a `paired/...` measurement of `benches/src/bin/paired.rs`
    /// (alternating runs of the two sides under the target's allocator; no denominator).
    Paired,
}

/// Targets that need data the repository does not carry (`../shared/wfcommons`): a run without it leaves
/// them unmeasured, and that is not an error. (The E4 targets, one per WfCommons trace, exist only for
/// the traces measured: see [`trace_targets`].)
pub(crate) const NEED_EXTERNAL_DATA: &[&str] = &["D3"];

/// Targets that need a service or a tool the machine may lack, and the variable that makes its absence
/// an error (as in CI) rather than a skip announced by the counts: a PostgreSQL server, valgrind's
/// callgrind.
const NEED_SERVICE: &[(&[&str], &str)] = &[
    (&["X1", "X2", "X3", "X3.trials"], "FLOWMEM_REQUIRE_PG"),
    (&["A7"], "FLOWMEM_REQUIRE_VALGRIND"),
];

/// Whether target `id` may go unmeasured here: its service or tool may be absent and is not required.
pub(crate) fn may_be_skipped(id: &str) -> bool {
    NEED_SERVICE
        .iter()
        .any(|(ids, required)| ids.contains(&id) && std::env::var_os(required).is_none())
}

/// The goal a ratio must meet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtMost(x) => ratio <= x,
            Goal::AtLeast(x) => ratio >= x,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(x) => format!("<= {x}"),
            Goal::AtLeast(x) => format!(">= {x}"),
        }
    }
}

/// One target of an issue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetSpec {
    pub(crate) id: &'static str,
    /// The bench file (layer) both benchmarks are in.
    pub(crate) layer: &'static str,
    pub(crate) what: &'static str,
    pub(crate) numerator: &'static str,
    pub(crate) denominator: &'static str,
    pub(crate) measure: Measure,
    pub(crate) goal: Goal,
    /// The allocator runs it is measured under; with more than one, each gets an id suffixed `.allocator`.
    pub(crate) allocators: &'static [&'static str],
}

const SYSTEM: &[&str] = &["system"];

/// Every target, in the order of the report.
pub(crate) const TARGETS: &[TargetSpec] = &[
    TargetSpec {
        id: "F1",
        layer: "alloc",
        what: "two threads incrementing their own counter: CachePadded slots / adjacent slots, throughput",
        numerator: "false_sharing/padded",
        denominator: "false_sharing/adjacent",
        measure: Measure::Throughput,
        goal: Goal::AtLeast(2.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A1",
        layer: "alloc",
        what: "Arena::alloc(u64) / Box::new(u64) + drop, system allocator, time",
        numerator: "alloc_u64/arena",
        denominator: "alloc_u64/box",
        measure: Measure::Time,
        goal: Goal::AtMost(0.2),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A2",
        layer: "alloc",
        what: "Arena::alloc(u64) / raw bumpalo::Bump::alloc(u64), time",
        numerator: "alloc_u64/arena",
        denominator: "alloc_u64/bumpalo",
        measure: Measure::Time,
        goal: Goal::AtMost(1.1),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A3.1t",
        layer: "alloc",
        what: "SyncArena::alloc / Arena::alloc, one thread, time",
        numerator: "sync_arena/sync_arena_1t",
        denominator: "sync_arena/arena_1t",
        measure: Measure::Time,
        goal: Goal::AtMost(3.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A3.2t",
        layer: "alloc",
        what: "SyncArena::alloc, two threads' total throughput / one thread's",
        numerator: "sync_arena/sync_arena_2t",
        denominator: "sync_arena/sync_arena_1t",
        measure: Measure::Throughput,
        goal: Goal::AtLeast(1.6),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A4.1t",
        layer: "alloc",
        what: "Tracking<System> / System, Box-sized alloc + free, one thread, time, median of alternating runs",
        numerator: "paired/tracking/1t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(1.25),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A4.2t",
        layer: "alloc",
        what: "Tracking<System> / System, Box-sized alloc + free, two threads, time, median of alternating runs",
        numerator: "paired/tracking/2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(1.3),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A5",
        layer: "alloc",
        what: "ArenaPool take + return of a 64 KiB arena / creating and dropping a new arena, time",
        numerator: "arena_pool/take_return",
        denominator: "arena_pool/new_drop",
        measure: Measure::Time,
        goal: Goal::AtMost(0.1),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A7",
        layer: "alloc",
        what: "instructions per Arena::alloc(u64) on the fast path / bumpalo's Bump::alloc, loop subtracted, counted by callgrind (aim: 8 instructions)",
        numerator: "arena_instructions/flowmem_per_bumpalo",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "A6",
        layer: "alloc",
        what: "blocks an Arena::with_capacity(1 MiB) holds after 20 allocations of 20 KiB (its reserve serves them all)",
        numerator: "arena_with_capacity/blocks",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "T1",
        layer: "alloc_sites",
        what: "an allocation-heavy loop (10k Vec buffers of 16 B to 1 KiB, each replacing one of 64 live), Tracking as the global allocator: with site sampling at the default rate (2 MiB) / without, time",
        numerator: "alloc_sites/sampled",
        denominator: "alloc_sites/tracking",
        measure: Measure::Time,
        goal: Goal::AtMost(1.2),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "T3",
        layer: "alloc",
        what: "site sampling at the default rate on three functions allocating 60/30/10 % of 2 GB: largest absolute error of an estimated share",
        numerator: "sites/max_share_error",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.05),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I1",
        layer: "intern",
        what: "StringPool::intern of an existing string / raw lasso ThreadedRodeo::get_or_intern (SipHash), time, median of alternating runs",
        numerator: "paired/intern_hit/lasso",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I2",
        layer: "intern",
        what: "StringPool::resolve / raw lasso resolve, time",
        numerator: "resolve/flowmem",
        denominator: "resolve/lasso",
        measure: Measure::Time,
        goal: Goal::AtMost(1.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I3",
        layer: "intern",
        what: "FrozenPool::get / StringPool::get, time, median of alternating runs",
        numerator: "paired/lookup/frozen_get",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(0.7),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I4",
        layer: "intern",
        what: "two threads interning a 10k-word vocabulary (hits) / one thread, total throughput, median of alternating runs",
        numerator: "paired/intern_threads/2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(1.8),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I5",
        layer: "intern",
        what: "heap bytes held by the pool / bytes of the strings, 100k distinct 16-byte strings",
        numerator: "pool_memory/flowmem",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(2.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "I7",
        layer: "intern",
        what: "StringPool::intern of an existing string / string-interner's StringInterner<BufferBackend>::get_or_intern (one thread, its default hasher), time, median of alternating runs",
        numerator: "paired/intern_hit/string_interner_buffer",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "P6",
        layer: "pool",
        what: "producer/consumer pipeline of 64 KiB buffers (a byte written in every page, freed on the consumer thread): BufferPool / Vec::with_capacity, time, median of alternating runs",
        numerator: "paired/buffer_pipeline/pool_64k",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(0.7),
        allocators: &["system", "jemalloc", "mimalloc"],
    },
    TargetSpec {
        id: "P3",
        layer: "pool",
        what: "ObjectPool acquire + release of a map (capacity 32, 8 entries) / build + drop of the same, time",
        numerator: "object_ctx/pool",
        denominator: "object_ctx/build",
        measure: Measure::Time,
        goal: Goal::AtMost(0.33),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "P7",
        layer: "pool",
        what: "ObjectPool acquire + fill + release of a map / the object-pool crate's Pool doing the same, one thread, time, median of alternating runs (lockfree-object-pool and opool in the object_ctx group)",
        numerator: "paired/object_ctx/object_pool_crate",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "P4",
        layer: "pool",
        what: "BufferPool get + put, two threads' total throughput / one thread's",
        numerator: "buffer_threads/2t",
        denominator: "buffer_threads/1t",
        measure: Measure::Throughput,
        goal: Goal::AtLeast(1.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "P5",
        layer: "pool",
        what: "most pooled bytes seen under a two-thread churn / the configured bound",
        numerator: "churn/max_pooled_over_bound",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M1",
        layer: "map",
        what: "ConcurrentMap / RwLock<HashMap> (std hasher), ReadHeavy, two threads, throughput, median of alternating runs",
        numerator: "paired/read_heavy/rwlock_std_2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(2.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M2",
        layer: "map",
        what: "ConcurrentMap / raw DashMap (std hasher), ReadHeavy, one thread, throughput, median of alternating runs",
        numerator: "paired/read_heavy/dashmap_std_1t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(1.3),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M3.exchange",
        layer: "map",
        what: "ConcurrentMap / raw DashMap (std hasher), Exchange, two threads, throughput, median of alternating runs",
        numerator: "paired/exchange/dashmap_std_2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M3.rapid_grow",
        layer: "map",
        what: "ConcurrentMap / raw DashMap (std hasher), RapidGrow, two threads, throughput, median of alternating runs",
        numerator: "paired/rapid_grow/dashmap_std_2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M4",
        layer: "map",
        what: "ReadMap / ConcurrentMap, read-only lookups, two threads, throughput, median of alternating runs",
        numerator: "paired/read_only/read_map_2t",
        denominator: "",
        measure: Measure::Paired,
        goal: Goal::AtLeast(1.3),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "M5",
        layer: "map",
        what: "ReadMap: update_batch of 1,000 inserts / 1,000 single inserts, on a 10k-entry map, time",
        numerator: "read_map_batch/update_batch_1000",
        denominator: "read_map_batch/single_inserts_1000",
        measure: Measure::Time,
        goal: Goal::AtMost(0.05),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "S1",
        layer: "store",
        what: "MmapStore::open (validate + index) of 100k records of 1 KiB / fs::read + parse into HashMap<Uuid, Vec<u8>>, time",
        numerator: "open_100k/mmap_store",
        denominator: "open_100k/read_parse_hashmap",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "S2",
        layer: "store",
        what: "MmapStore::get by id / HashMap<Uuid, Vec<u8>>::get (std hasher), 100k records, time",
        numerator: "get_100k/mmap_store",
        denominator: "get_100k/hashmap",
        measure: Measure::Time,
        goal: Goal::AtMost(2.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "S3",
        layer: "store",
        what: "StoreWriter: 100k appends of 1 KiB + one sync / write_all of the same bytes + fsync, time",
        numerator: "append_100k/store_writer",
        denominator: "append_100k/write_all_fsync",
        measure: Measure::Time,
        goal: Goal::AtMost(1.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "S4",
        layer: "store",
        what: "MmapStore::open of a file whose one 32 MiB record (u64-like bytes) has a damaged payload / the same file undamaged, time",
        numerator: "open_damaged_32mib/damaged_payload",
        denominator: "open_damaged_32mib/undamaged",
        measure: Measure::Time,
        goal: Goal::AtMost(3.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "R2",
        layer: "store",
        what: "crash-shaped store files (every cut of a last record whose payload embeds records or whole store files) refused or served other than their durable prefix, reader and writer",
        numerator: "crash_shaped/refused_or_wrong",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "R2.files",
        layer: "store",
        what: "crash-shaped files opened for R2",
        numerator: "crash_shaped/files",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(10000.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.chain.rayon",
        layer: "engine",
        what: "Executor run of a no-op chain of 10k nodes, 2 workers / a rayon scope spawning each node at in-degree zero, 2 threads, time",
        numerator: "dag_chain/flowmem",
        denominator: "dag_chain/rayon",
        measure: Measure::Time,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.chain.tokio",
        layer: "engine",
        what: "Executor run of a no-op chain of 10k nodes, 2 workers / tokio tasks spawned at in-degree zero, 2 workers, time",
        numerator: "dag_chain/flowmem",
        denominator: "dag_chain/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.fan_out.rayon",
        layer: "engine",
        what: "Executor run of a no-op fan-out DAG of 10k nodes, 2 workers / a rayon scope spawning each node at in-degree zero, 2 threads, time",
        numerator: "dag_fan_out/flowmem",
        denominator: "dag_fan_out/rayon",
        measure: Measure::Time,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.fan_out.tokio",
        layer: "engine",
        what: "Executor run of a no-op fan-out DAG of 10k nodes, 2 workers / tokio tasks spawned at in-degree zero, 2 workers, time",
        numerator: "dag_fan_out/flowmem",
        denominator: "dag_fan_out/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.layered.rayon",
        layer: "engine",
        what: "Executor run of a no-op layered DAG of 10k nodes (10 x 1,000, in-degree 2), 2 workers / a rayon scope spawning each node at in-degree zero, 2 threads, time",
        numerator: "dag_layered/flowmem",
        denominator: "dag_layered/rayon",
        measure: Measure::Time,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.layered.tokio",
        layer: "engine",
        what: "Executor run of a no-op layered DAG of 10k nodes (10 x 1,000, in-degree 2), 2 workers / tokio tasks spawned at in-degree zero, 2 workers, time",
        numerator: "dag_layered/flowmem",
        denominator: "dag_layered/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.montage_like.rayon",
        layer: "engine",
        what: "Executor run of the no-op montage-like mosaic (fan-ins of hundreds), 2 workers / a rayon scope spawning each node at in-degree zero, 2 threads, time",
        numerator: "dag_montage_like/flowmem",
        denominator: "dag_montage_like/rayon",
        measure: Measure::Time,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.montage_like.tokio",
        layer: "engine",
        what: "Executor run of the no-op montage-like mosaic (fan-ins of hundreds), 2 workers / tokio tasks spawned at in-degree zero, 2 workers, time",
        numerator: "dag_montage_like/flowmem",
        denominator: "dag_montage_like/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.fan_out.ns",
        layer: "engine",
        what: "Executor, no-op fan-out DAG of 10k nodes, 2 workers: nanoseconds per node",
        numerator: "dag_fan_out/flowmem",
        denominator: "",
        measure: Measure::NsPerElement,
        goal: Goal::AtMost(100.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E1.layered.ns",
        layer: "engine",
        what: "Executor, no-op layered DAG of 10k nodes, 2 workers: nanoseconds per node",
        numerator: "dag_layered/flowmem",
        denominator: "",
        measure: Measure::NsPerElement,
        goal: Goal::AtMost(100.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E8",
        layer: "engine",
        what: "a 10-node workflow (2 x 5) run alone, submission to end: Executor / tokio tasks spawned at in-degree zero, time",
        numerator: "run_alone_10/flowmem",
        denominator: "run_alone_10/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E2",
        layer: "engine",
        what: "heap allocations per node in steady state, every memory option on (the per-option table is in the counts)",
        numerator: "memory_options/all_on_per_node",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E2.tracing",
        layer: "engine",
        what: "heap allocations per node in steady state as E2, the engine built with its `tracing` feature and no subscriber (with a fmt subscriber: `tracing/fmt_subscriber_per_node` in the counts)",
        numerator: "tracing/no_subscriber_per_node",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E7",
        layer: "engine",
        what: "heap in use after building, running and dropping 100k workflows with generated names and keys / before",
        numerator: "names_freed/heap_after_over_before",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(1.05),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E3",
        layer: "engine",
        what: "10k concurrent runs of a 10-node workflow: nodes per second, Executor / tokio tasks spawned at in-degree zero",
        numerator: "concurrent_10k_x10/flowmem",
        denominator: "concurrent_10k_x10/tokio",
        measure: Measure::Throughput,
        goal: Goal::AtLeast(2.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E6",
        layer: "engine",
        what: "I/O-bound DAG, 10 layers x 1,000 nodes, in-degree 2, each awaiting a 1 ms tokio timer, 2 workers: async nodes / tokio tasks spawned at in-degree zero, makespan",
        numerator: "io_dag_10x1000_1ms/flowmem",
        denominator: "io_dag_10x1000_1ms/tokio",
        measure: Measure::Time,
        goal: Goal::AtMost(1.1),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E6.alloc",
        layer: "engine",
        what: "heap allocations per async node in steady state (a future that parks once; aim 0, bar 1)",
        numerator: "async_nodes/allocations_per_node",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(1.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "D1",
        layer: "engine",
        what: "1,000 nodes each spinning 50 µs on 2 workers: durable run with a FileCheckpoints (fdatasync group commit) / no store, time",
        numerator: "durable_1000x50us/file_store",
        denominator: "durable_1000x50us/no_store",
        measure: Measure::Time,
        goal: Goal::AtMost(1.3),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "D2",
        layer: "engine",
        what: "crash trials (child killed with SIGKILL, run resumed): checkpointed nodes lost + executions beyond those in flight, summed over all trials",
        numerator: "crash_trials/lost_plus_extra",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "X1",
        layer: "postgres",
        what: "shared runs, 800 nodes (4 layers of 200) awaiting 2 ms each (I/O-bound): throughput of 2 worker processes / 1 (4 threads each, batches of 8; best of 3, 1 in --quick)",
        numerator: "shared_throughput/x1_speedup",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(1.8),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "X2",
        layer: "postgres",
        what: "shared runs, 2,000 no-op nodes on 2 threads: nodes per second, SharedWorker / a naive queue (one transaction per claim and one per completion, no batching, polling)",
        numerator: "shared_throughput/x2_speedup",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(3.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "X3",
        layer: "postgres",
        what: "shared-run crash trials (3 worker processes on PostgreSQL, one killed with SIGKILL): runs wrong or incomplete + executions beyond what the killed worker had in hand, summed over all trials",
        numerator: "shared_crash/wrong_plus_extra",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "X3.trials",
        layer: "postgres",
        what: "shared-run crash trials made for X3 (8 in --quick, 20 in a full run)",
        numerator: "shared_crash/trials",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(8.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "D2.trials",
        layer: "engine",
        what: "crash trials made for D2 (24 in --quick, 60 in a full run)",
        numerator: "crash_trials/trials",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(20.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "R1",
        layer: "engine",
        what: "disk faults injected into a FileCheckpoints (failed write, full disk, failed fdatasync with pages kept or dropped; in appends, commits and compactions): checkpoints acknowledged durable and then missing on reopen, summed",
        numerator: "disk_faults/acknowledged_then_missing",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtMost(0.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "R1.faults",
        layer: "engine",
        what: "faults injected for R1",
        numerator: "disk_faults/faults",
        denominator: "",
        measure: Measure::Count,
        goal: Goal::AtLeast(200.0),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "D3",
        layer: "engine",
        what: "import of WfCommons montage-chameleon-dss-15d (2,122 tasks) / serde_json::from_slice into a Value, time",
        numerator: "import_montage_dss/flowmem_import",
        denominator: "import_montage_dss/serde_json_value",
        measure: Measure::Time,
        goal: Goal::AtMost(1.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.count",
        layer: "engine",
        what: "simd::pattern_count (one byte in four matches) / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/count",
        denominator: "simd_10k/count_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.any",
        layer: "engine",
        what: "simd::pattern_any (no match: a full scan) / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/any",
        denominator: "simd_10k/any_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.filter",
        layer: "engine",
        what: "simd::pattern_filter (one match in 64) / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/filter",
        denominator: "simd_10k/filter_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.sum",
        layer: "engine",
        what: "simd::sum_u64 / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/sum",
        denominator: "simd_10k/sum_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.max",
        layer: "engine",
        what: "simd::max_u64 / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/max",
        denominator: "simd_10k/max_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.average",
        layer: "engine",
        what: "simd::average_u64 (exact) / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/average",
        denominator: "simd_10k/average_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
    TargetSpec {
        id: "E5.variance",
        layer: "engine",
        what: "simd::variance_u64 / a plain one-element loop, 10k elements, time",
        numerator: "simd_10k/variance",
        denominator: "simd_10k/variance_scalar",
        measure: Measure::Time,
        goal: Goal::AtMost(0.5),
        allocators: SYSTEM,
    },
];

/// A target as measured (or not) in one run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetResult {
    pub(crate) id: String,
    pub(crate) layer: String,
    pub(crate) what: String,
    /// `null` when a benchmark it needs was not run (filtered out, or its allocator not selected).
    pub(crate) ratio: Option<f64>,
    pub(crate) goal: String,
    pub(crate) pass: Option<bool>,
    pub(crate) allocator: String,
    pub(crate) numerator: String,
    pub(crate) denominator: String,
    /// Others' CPU use (cores) during the measurement of one of its figures, when that made it
    /// disturbed: the target is then not judged (`pass` is `None`).
    pub(crate) disturbed: Option<f64>,
}

/// Marks every target one of whose figures is disturbed (`BenchResult::disturbed`,
/// `PairedResult::disturbed`): not judged.
pub(crate) fn mark_disturbed(
    targets: &mut [TargetResult],
    results: &[BenchResult],
    paired: &[PairedResult],
) {
    let disturbed = results
        .iter()
        .filter(|r| r.disturbed())
        .map(|r| (&r.allocator, &r.id, r.others_cores))
        .chain(
            paired
                .iter()
                .filter(|p| p.disturbed())
                .map(|p| (&p.allocator, &p.id, p.others_cores)),
        );
    for (allocator, id, cores) in disturbed {
        let Some(cores) = cores else { continue };
        for t in targets
            .iter_mut()
            .filter(|t| t.allocator == *allocator && (t.numerator == *id || t.denominator == *id))
        {
            t.disturbed = Some(t.disturbed.map_or(cores, |m| m.max(cores)));
            t.pass = None;
        }
    }
}

/// Evaluates every target against the results of a run.
pub(crate) fn evaluate(
    results: &[BenchResult],
    counts: &[CountResult],
    paired: &[PairedResult],
) -> Vec<TargetResult> {
    let mut out = Vec::new();
    for spec in TARGETS {
        for allocator in spec.allocators {
            let id = if spec.allocators.len() > 1 {
                format!("{}.{allocator}", spec.id)
            } else {
                spec.id.to_string()
            };
            out.push(evaluate_one(
                spec,
                allocator,
                id,
                spec.what.to_string(),
                (results, counts, paired),
            ));
        }
    }
    out.extend(trace_targets(results));
    out.push(dhat_target(results));
    out.push(intern_memory_target(counts));
    out.extend(map_peer_targets(paired));
    out.push(map_scaling_target(paired));
    out.push(credibility_target(
        results,
        "I8",
        "intern",
        &["intern_threads/"],
    ));
    out.push(credibility_target(
        results,
        "P9",
        "pool",
        &["object_threads/", "buffer_threads/"],
    ));
    out.push(object_pool_threads_target(paired));
    // E5 again on the native build (`--native`): E5.native.<helper>.
    for spec in TARGETS.iter().filter(|t| t.id.starts_with("E5.")) {
        let helper = spec.id.trim_start_matches("E5.");
        out.push(evaluate_one(
            spec,
            NATIVE,
            format!("E5.native.{helper}"),
            format!("{}, both built with -C target-cpu=native", spec.what),
            (results, counts, paired),
        ));
    }
    out
}

/// The build of `cargo xtask bench --native`: the system allocator, `-C target-cpu=native`. Its results
/// carry this name where the other runs carry their allocator's.
pub(crate) const NATIVE: &str = "native";

/// The bench groups the native build runs (the E5 helpers).
pub(crate) const NATIVE_GROUPS: &str = "^simd_";

/// Whether a target is one of the native build's (measured only with `--native`).
pub(crate) fn is_native(id: &str) -> bool {
    id.starts_with("E5.native.")
}

/// `spec` measured under `allocator` (or the native build), reported as `id`.
fn evaluate_one(
    spec: &TargetSpec,
    allocator: &str,
    id: String,
    what: String,
    (results, counts, paired): (&[BenchResult], &[CountResult], &[PairedResult]),
) -> TargetResult {
    let find = |id: &str| {
        results
            .iter()
            .find(|r| r.allocator == allocator && r.layer == spec.layer && r.id == id)
    };
    let ratio = match spec.measure {
        Measure::Count => counts
            .iter()
            .find(|c| c.allocator == allocator && c.layer == spec.layer && c.id == spec.numerator)
            .map(|c| c.value),
        Measure::NsPerElement => find(spec.numerator).map(|n| n.ns_per_element),
        Measure::Paired => {
            find_paired(paired, allocator, spec.layer, spec.numerator).map(|p| p.median)
        }
        Measure::Time | Measure::Throughput => {
            match (find(spec.numerator), find(spec.denominator)) {
                (Some(n), Some(d)) if matches!(spec.measure, Measure::Time) => {
                    Some(n.ns_per_element / d.ns_per_element)
                }
                (Some(n), Some(d)) => Some(d.ns_per_element / n.ns_per_element),
                _ => None,
            }
        }
    };
    TargetResult {
        id,
        layer: spec.layer.to_string(),
        what,
        ratio,
        goal: spec.goal.text(),
        pass: ratio.map(|r| spec.goal.met(r)),
        allocator: allocator.to_string(),
        numerator: spec.numerator.to_string(),
        denominator: spec.denominator.to_string(),
        disturbed: None,
    }
}

impl TargetResult {
    /// A target computed from the system allocator's run (the targets made by a function rather than a
    /// [`TargetSpec`]).
    fn from_system_run(
        id: String,
        layer: &str,
        what: String,
        ratio: Option<f64>,
        goal: Goal,
        numerator: String,
        denominator: String,
    ) -> TargetResult {
        TargetResult {
            id,
            layer: layer.into(),
            what,
            ratio,
            goal: goal.text(),
            pass: ratio.map(|r| goal.met(r)),
            allocator: "system".into(),
            numerator,
            denominator,
            disturbed: None,
        }
    }
}

/// The benchmark `id` of `layer` measured with the system allocator, if it ran.
fn system_result<'a>(results: &'a [BenchResult], layer: &str, id: &str) -> Option<&'a BenchResult> {
    results
        .iter()
        .find(|r| r.allocator == "system" && r.layer == layer && r.id == id)
}

/// Target P8: two threads sharing a pool (acquire + fill + release): ObjectPool's total throughput /
/// the best peer's (object-pool, lockfree-object-pool's linear pool, opool), goal >= 2.5. Each peer runs
/// alternately with ours (`paired/object_threads/<peer>_2t`, system allocator); the best peer is the one
/// whose ratio is lowest. (The criterion group `object_threads` stays as information: its two-thread
/// figures, taken minutes apart, once read ours at 8.4 M uses/s in a full run where the alternating
/// example of the same pools gave 20–22.)
fn object_pool_threads_target(paired: &[PairedResult]) -> TargetResult {
    let goal = Goal::AtLeast(2.5);
    let best = paired
        .iter()
        .filter(|p| {
            p.allocator == "system"
                && p.layer == "pool"
                && p.id.starts_with("paired/object_threads/")
        })
        .min_by(|a, b| a.median.total_cmp(&b.median));
    TargetResult::from_system_run(
        "P8".into(),
        "pool",
        match best {
            Some(p) => format!(
                "two threads sharing a pool, acquire + fill + release: ObjectPool / the best peer ({}), total throughput, median of {} alternating runs (quartiles {:.3}–{:.3})",
                p.id.trim_start_matches("paired/object_threads/")
                    .trim_end_matches("_2t"),
                p.rounds,
                p.low,
                p.high
            ),
            None => "two threads sharing a pool, acquire + fill + release: ObjectPool / the best peer, total throughput (not measured)".into(),
        },
        best.map(|p| p.median),
        goal,
        best.map_or(String::new(), |p| p.id.clone()),
        String::new(),
    )
}

/// The paired measurement `id` of `layer` under `allocator`, if it ran.
fn find_paired<'a>(
    paired: &'a [PairedResult],
    allocator: &str,
    layer: &str,
    id: &str,
) -> Option<&'a PairedResult> {
    paired
        .iter()
        .find(|p| p.allocator == allocator && p.layer == layer && p.id == id)
}

/// The layers with a target taken from alternating runs under `allocator` (the `Measure::Paired` specs;
/// M6, made by [`map_peer_targets`], is in the map layer with M1).
pub(crate) fn paired_layers(allocator: &str) -> Vec<&'static str> {
    let mut layers: Vec<&'static str> = Vec::new();
    for spec in TARGETS
        .iter()
        .filter(|t| matches!(t.measure, Measure::Paired) && t.allocators.contains(&allocator))
    {
        if !layers.contains(&spec.layer) {
            layers.push(spec.layer);
        }
    }
    layers
}

/// Targets `M6.<workload>.<peer>`: ConcurrentMap's throughput / a peer's (papaya, scc, both with
/// foldhash as ours), conc-map-bench workload, two threads, goal >= 0.9. The ratio is the median of
/// alternating runs (`paired/<workload>/<peer>_2t`, `benches/src/bin/paired.rs`), not the quotient of two
/// criterion figures: those are taken up to a minute apart, and on this shared machine the same code's
/// M6.exchange.scc quotient read 0.98 in one quick tour and 2.97 in the next.
fn map_peer_targets(paired: &[PairedResult]) -> Vec<TargetResult> {
    let goal = Goal::AtLeast(0.9);
    let mut out = Vec::new();
    for workload in ["read_heavy", "exchange", "rapid_grow"] {
        for peer in ["papaya", "scc"] {
            let id = format!("paired/{workload}/{peer}_2t");
            let found = find_paired(paired, "system", "map", &id);
            out.push(TargetResult::from_system_run(
                format!("M6.{workload}.{peer}"),
                "map",
                format!(
                    "ConcurrentMap / {peer} (foldhash, as ours), {workload}, two threads, throughput: median of {}",
                    found.map_or("alternating runs (not measured)".to_string(), |p| format!(
                        "{} alternating runs (quartiles {:.3}–{:.3})",
                        p.rounds, p.low, p.high
                    ))
                ),
                found.map(|p| p.median),
                goal,
                // One figure, already a ratio: no criterion benchmark whose disturbance would unjudge it.
                id,
                String::new(),
            ));
        }
    }
    out
}

/// Target M7: whether the map figures the targets divide can be believed. Every map whose two-thread
/// runs give M1, M3 or M6 their figure runs each workload on two threads and on one, alternating
/// (`paired/scaling/<workload>/<map>`); the ratio is the highest median of two-thread throughput / (2 x
/// one-thread throughput), goal <= 1.25 (two cores, with a margin for the second core's cache). The
/// criterion two-thread map figures stay in the report as information; they are taken a minute from their
/// one-thread siblings, and on this shared machine their quotient depends on the minute (a full run read
/// 1.445 for ConcurrentMap's ReadHeavy while the alternating runs of the same run put it near 1).
fn map_scaling_target(paired: &[PairedResult]) -> TargetResult {
    let worst = paired
        .iter()
        .filter(|p| {
            p.allocator == "system" && p.layer == "map" && p.id.starts_with("paired/scaling/")
        })
        .max_by(|a, b| a.median.total_cmp(&b.median));
    TargetResult::from_system_run(
        "M7".into(),
        "map",
        match worst {
            Some(p) => format!(
                "credibility: the highest two-thread / (2 x one-thread) throughput of a map whose two-thread runs give a target its figure, median of {} alternating runs ({}: quartiles {:.3}–{:.3})",
                p.rounds,
                p.id.trim_start_matches("paired/scaling/"),
                p.low,
                p.high
            ),
            None => "credibility: the highest two-thread / (2 x one-thread) throughput of a map whose two-thread runs give a target its figure (not measured)".into(),
        },
        worst.map(|p| p.median),
        Goal::AtMost(1.25),
        worst.map_or(String::new(), |p| p.id.clone()),
        String::new(),
    )
}

/// Targets I8 and P9: whether a layer's two-thread figures can be believed. No two-thread throughput
/// may be much above twice the same bench's one-thread throughput (what two cores can do at most, with a
/// margin for the second core's cache); the ratio is the highest two-thread / (2 x one-thread) over every
/// `..2t` bench of the layer's `groups` that has a `..1t` sibling, goal <= 1.25. A short run timed by a
/// thread that was not running when the workers started once gave map figures 5x too high, and a slow
/// one-thread sample once gave I4 3.5 in a quick tour; these rows catch that.
fn credibility_target(
    results: &[BenchResult],
    id: &str,
    layer: &str,
    groups: &[&str],
) -> TargetResult {
    let goal = Goal::AtMost(1.25);
    let mut worst: Option<(f64, String)> = None;
    for r in results
        .iter()
        .filter(|r| r.allocator == "system" && r.layer == layer)
    {
        let Some(stem) = r.id.strip_suffix("2t") else {
            continue;
        };
        if !groups.iter().any(|g| stem.starts_with(g)) {
            continue;
        }
        let Some(one) = system_result(results, layer, &format!("{stem}1t")) else {
            continue;
        };
        // Time per operation: one thread's over the two threads' (total operations / wall time).
        let scaling = one.ns_per_element / (2.0 * r.ns_per_element);
        if worst.as_ref().is_none_or(|(w, _)| scaling > *w) {
            worst = Some((scaling, stem.to_string()));
        }
    }
    TargetResult::from_system_run(
        id.into(),
        layer,
        format!(
            "credibility: the highest two-thread / (2 x one-thread) throughput over every {layer} bench on two threads ({})",
            worst.as_ref().map_or("not measured", |(_, s)| s.as_str())
        ),
        worst.as_ref().map(|(w, _)| *w),
        goal,
        worst
            .as_ref()
            .map_or(String::new(), |(_, s)| format!("{s}2t")),
        worst
            .as_ref()
            .map_or(String::new(), |(_, s)| format!("{s}1t")),
    )
}

/// The interning peers whose memory per string byte the counts measure (`pool_memory/<peer>`).
const INTERN_PEERS: &[&str] = &[
    "lasso",
    "lasso_rodeo",
    "string_interner_buffer",
    "ustr",
    "hashmap",
];

/// Target I6: the StringPool's heap bytes per string byte / the smallest peer's, 100k distinct 16-byte
/// strings, goal <= 1.
fn intern_memory_target(counts: &[CountResult]) -> TargetResult {
    let goal = Goal::AtMost(1.0);
    let value = |id: &str| {
        counts
            .iter()
            .find(|c| c.allocator == "system" && c.layer == "intern" && c.id == id)
            .map(|c| c.value)
    };
    let smallest = INTERN_PEERS
        .iter()
        .filter_map(|p| value(&format!("pool_memory/{p}")).map(|v| (*p, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let ratio = match (value("pool_memory/flowmem"), smallest) {
        (Some(ours), Some((_, peer))) => Some(ours / peer),
        _ => None,
    };
    TargetResult::from_system_run(
        "I6".into(),
        "intern",
        format!(
            "heap bytes per string byte, 100k distinct 16-byte strings: StringPool / the smallest peer ({})",
            smallest.map_or("not measured", |(p, _)| p)
        ),
        ratio,
        goal,
        "pool_memory/flowmem".into(),
        smallest.map_or(String::new(), |(p, _)| format!("pool_memory/{p}")),
    )
}

/// Target T2: the loop of T1 with our site sampling at the default rate / under dhat's heap profiler (a
/// bench of its own, `alloc_dhat`: dhat must be the global allocator), time, goal <= 0.05.
fn dhat_target(results: &[BenchResult]) -> TargetResult {
    let goal = Goal::AtMost(0.05);
    let (numerator, denominator) = ("alloc_sites/sampled", "alloc_sites/dhat");
    let find = |layer: &str, id: &str| {
        results
            .iter()
            .find(|r| r.allocator == "system" && r.layer == layer && r.id == id)
    };
    let ratio = match (
        find("alloc_sites", numerator),
        find("alloc_dhat", denominator),
    ) {
        (Some(n), Some(d)) => Some(n.ns_per_element / d.ns_per_element),
        _ => None,
    };
    TargetResult::from_system_run(
        "T2".into(),
        "alloc_sites",
        "the loop of T1: our site sampling at the default rate / dhat's heap profiler (a backtrace and a global lock per allocation), time".into(),
        ratio,
        goal,
        numerator.into(),
        denominator.into(),
    )
}

/// Target E4, one per WfCommons trace measured (`wf_<trace>` groups of the engine bench): the no-op run of
/// the trace, Executor / the rayon scheduler, time, goal <= 1.
fn trace_targets(results: &[BenchResult]) -> Vec<TargetResult> {
    let goal = Goal::AtMost(1.0);
    let mut out = Vec::new();
    for n in results
        .iter()
        .filter(|r| r.layer == "engine" && r.id.starts_with("wf_") && r.id.ends_with("/flowmem"))
    {
        let group = n.id.trim_end_matches("/flowmem");
        let trace = group.trim_start_matches("wf_");
        let denominator = format!("{group}/rayon");
        let d = results
            .iter()
            .find(|r| r.allocator == n.allocator && r.layer == "engine" && r.id == denominator);
        let ratio = d.map(|d| n.ns_per_element / d.ns_per_element);
        out.push(TargetResult {
            id: format!("E4.{trace}.rayon"),
            layer: "engine".into(),
            what: format!(
                "no-op run of WfCommons {trace} ({} tasks): Executor / the rayon scheduler, 2 threads, time",
                n.elements
            ),
            ratio,
            goal: goal.text(),
            pass: ratio.map(|r| goal.met(r)),
            allocator: n.allocator.clone(),
            numerator: n.id.clone(),
            denominator,
            disturbed: None,
        });
    }
    out
}

/// The allocators under which the criterion groups of the selected layers run, beyond those asked for:
/// every allocator a target of those layers names, or with `paired_only_aside` only those of targets that
/// divide criterion figures (a `Measure::Paired` target takes its figure from the paired binary built for
/// its allocator, not from the bench groups).
pub(crate) fn allocators_needed(layers: &[String], paired_only_aside: bool) -> Vec<&'static str> {
    let mut needed: Vec<&'static str> = Vec::new();
    for spec in TARGETS.iter().filter(|t| {
        layers.iter().any(|l| l == t.layer)
            && !(paired_only_aside && matches!(t.measure, Measure::Paired))
    }) {
        for a in spec.allocators {
            if !needed.contains(a) {
                needed.push(a);
            }
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, ns: f64) -> BenchResult {
        BenchResult {
            allocator: "system".into(),
            layer: "alloc".into(),
            id: id.into(),
            median_ns: ns * 2.0,
            mean_ns: ns * 2.0,
            std_dev_ns: 0.0,
            elements: 2,
            ns_per_element: ns,
            others_cores: None,
        }
    }

    #[test]
    fn credibility_takes_the_worst_two_thread_figure_of_the_layer() {
        let in_layer = |id: &str, ns: f64, layer: &str| BenchResult {
            layer: layer.into(),
            ..result(id, ns)
        };
        let results = [
            // 1t 10 ns, 2t 5.5 ns an operation: 0.909 of twice one thread.
            in_layer("intern_threads/1t", 10.0, "intern"),
            in_layer("intern_threads/2t", 5.5, "intern"),
            // A slow one-thread sample: two threads seem 3.5x one.
            in_layer("intern_threads/frozen_1t", 35.0, "intern"),
            in_layer("intern_threads/frozen_2t", 10.0, "intern"),
            // Another layer's impossible figure does not count.
            in_layer("exchange/scc_1t", 50.0, "map"),
            in_layer("exchange/scc_2t", 1.0, "map"),
            // Nor a group the row does not name.
            in_layer("intern_hit/1t", 90.0, "intern"),
            in_layer("intern_hit/2t", 1.0, "intern"),
        ];
        let row = credibility_target(&results, "I8", "intern", &["intern_threads/"]);
        assert_eq!(row.ratio, Some(1.75));
        assert_eq!(row.pass, Some(false));
        assert_eq!(row.numerator, "intern_threads/frozen_2t");
        assert_eq!(row.denominator, "intern_threads/frozen_1t");
        let row = credibility_target(&results[..2], "I8", "intern", &["intern_threads/"]);
        assert_eq!(row.pass, Some(true));
        let none = credibility_target(&results, "P9", "pool", &["object_threads/"]);
        assert_eq!((none.ratio, none.pass), (None, None));
    }

    #[test]
    fn a_target_of_a_disturbed_figure_is_not_judged() {
        let mut results = vec![
            result("false_sharing/padded", 1.0),
            result("false_sharing/adjacent", 5.0),
        ];
        let judged = |results: &[BenchResult]| {
            let mut t = evaluate(results, &[], &[]);
            mark_disturbed(&mut t, results, &[]);
            t.into_iter().find(|t| t.id == "F1").unwrap()
        };
        let f1 = judged(&results);
        assert_eq!((f1.pass, f1.disturbed), (Some(true), None));
        results[0].others_cores = Some(0.05); // the services' idle hum: not disturbed
        assert_eq!(judged(&results).pass, Some(true));
        results[1].others_cores = Some(0.9);
        let f1 = judged(&results);
        assert_eq!(
            (f1.ratio, f1.pass, f1.disturbed),
            (Some(5.0), None, Some(0.9))
        );
    }

    /// A ratio of 21 alternating rounds, quartiles 0.1 either side of its median.
    fn paired_result(allocator: &str, layer: &str, id: &str, median: f64) -> PairedResult {
        PairedResult {
            allocator: allocator.into(),
            layer: layer.into(),
            id: id.into(),
            median,
            low: median - 0.1,
            high: median + 0.1,
            rounds: 21,
            first_ms: 20.0,
            second_ms: 20.0 * median,
            what: String::new(),
            others_cores: None,
        }
    }

    #[test]
    fn p8_is_ours_against_the_best_peer_of_the_alternating_runs() {
        let ratio = |peer: &str, median: f64, allocator: &str| {
            paired_result(
                allocator,
                "pool",
                &format!("paired/object_threads/{peer}_2t"),
                median,
            )
        };
        let p8 = |paired: &[PairedResult]| {
            evaluate(&[], &[], paired)
                .into_iter()
                .find(|t| t.id == "P8")
                .unwrap()
        };
        let mut paired = vec![
            ratio("object_pool_crate", 2.8, "system"),
            ratio("lockfree_linear", 4.4, "system"),
            ratio("opool", 2.6, "system"),
            // Another allocator's run is information, not P8.
            ratio("opool", 1.2, "jemalloc"),
        ];
        let t = p8(&paired);
        assert_eq!((t.ratio, t.pass), (Some(2.6), Some(true)));
        assert_eq!(t.numerator, "paired/object_threads/opool_2t");
        assert!(t.what.contains("best peer (opool)"), "{}", t.what);
        paired[0].median = 2.2;
        let t = p8(&paired);
        assert_eq!((t.ratio, t.pass), (Some(2.2), Some(false)));
        assert!(t.what.contains("(object_pool_crate)"), "{}", t.what);
        let none = p8(&[]);
        assert_eq!((none.ratio, none.pass), (None, None));
    }

    #[test]
    fn a_target_of_a_disturbed_paired_ratio_is_not_judged() {
        let mut pipeline =
            paired_result("mimalloc", "pool", "paired/buffer_pipeline/pool_64k", 0.5);
        pipeline.others_cores = Some(0.05);
        let mut on_system = pipeline.clone();
        on_system.allocator = "system".into();
        let judged = |p: &PairedResult, allocator: &str| {
            let both = [p.clone(), on_system.clone()];
            let mut t = evaluate(&[], &[], &both);
            mark_disturbed(&mut t, &[], &both);
            t.into_iter()
                .find(|t| t.id.starts_with("P6") && t.allocator == allocator)
                .unwrap()
        };
        let p6 = judged(&pipeline, "mimalloc");
        assert_eq!(
            (p6.ratio, p6.pass, p6.disturbed),
            (Some(0.5), Some(true), None)
        );
        pipeline.others_cores = Some(0.8);
        let p6 = judged(&pipeline, "mimalloc");
        assert_eq!(
            (p6.ratio, p6.pass, p6.disturbed),
            (Some(0.5), None, Some(0.8))
        );
        // The same id under another allocator is another figure.
        let p6 = judged(&pipeline, "system");
        assert_eq!((p6.pass, p6.disturbed), (Some(true), None));
    }

    #[test]
    fn ratios_follow_the_measure_and_goal() {
        let results = [
            result("false_sharing/padded", 1.0),
            result("false_sharing/adjacent", 5.0),
            result("alloc_u64/arena", 2.0),
            result("alloc_u64/box", 20.0),
        ];
        let counts = [CountResult {
            allocator: "system".into(),
            layer: "intern".into(),
            id: "pool_memory/flowmem".into(),
            value: 2.5,
            unit: "x".into(),
        }];
        let targets = evaluate(&results, &counts, &[]);
        let i5 = targets.iter().find(|t| t.id == "I5").unwrap();
        assert_eq!((i5.ratio, i5.pass), (Some(2.5), Some(false)));
        let f1 = targets.iter().find(|t| t.id == "F1").unwrap();
        assert_eq!((f1.ratio, f1.pass), (Some(5.0), Some(true)));
        let a1 = targets.iter().find(|t| t.id == "A1").unwrap();
        assert_eq!((a1.ratio, a1.pass), (Some(0.1), Some(true)));
        let a2 = targets.iter().find(|t| t.id == "A2").unwrap();
        assert_eq!(
            (a2.ratio, a2.pass),
            (None, None),
            "bumpalo was not measured"
        );
    }

    #[test]
    fn the_paired_layers_are_alloc_interner_and_maps_under_the_system_allocator_and_the_pool_under_each()
     {
        assert_eq!(paired_layers("system"), ["alloc", "intern", "pool", "map"]);
        assert_eq!(paired_layers("jemalloc"), ["pool"]);
        assert_eq!(paired_layers("mimalloc"), ["pool"]);
    }

    #[test]
    fn m6_is_the_median_of_alternating_runs_not_a_quotient_of_criterion_figures() {
        // Criterion's figures would say 4.0 (exchange) and 0.25 (read_heavy): M6 ignores them.
        let mut results = vec![
            result("exchange/concurrent_map_2t", 1.0),
            result("exchange/scc_2t", 4.0),
            result("read_heavy/concurrent_map_2t", 4.0),
            result("read_heavy/papaya_2t", 1.0),
        ];
        for r in &mut results {
            r.layer = "map".into();
        }
        let paired = |id: &str, median: f64| paired_result("system", "map", id, median);
        let targets = evaluate(
            &results,
            &[],
            &[
                paired("paired/exchange/scc_2t", 0.85),
                paired("paired/exchange/scc_1t", 2.0),
            ],
        );
        let find = |id: &str| targets.iter().find(|t| t.id == id).unwrap();
        let exchange = find("M6.exchange.scc");
        assert_eq!((exchange.ratio, exchange.pass), (Some(0.85), Some(false)));
        assert!(
            exchange
                .what
                .contains("median of 21 alternating runs (quartiles 0.750–0.950)"),
            "{}",
            exchange.what
        );
        let read_heavy = find("M6.read_heavy.papaya");
        assert_eq!(
            (read_heavy.ratio, read_heavy.pass),
            (None, None),
            "no paired figure, no judgement"
        );
    }

    #[test]
    fn m7_is_the_worst_scaling_of_the_alternating_runs_not_of_criterion_figures() {
        // Criterion's ReadHeavy figures would say 4 / (2 x 1) = 2.0: M7 ignores them.
        let mut results = vec![
            result("read_heavy/concurrent_map_1t", 4.0),
            result("read_heavy/concurrent_map_2t", 1.0),
        ];
        for r in &mut results {
            r.layer = "map".into();
        }
        let scaling = |id: &str, median: f64, allocator: &str| PairedResult {
            allocator: allocator.into(),
            layer: "map".into(),
            id: id.into(),
            median,
            low: median - 0.05,
            high: median + 0.05,
            rounds: 11,
            first_ms: 10.0,
            second_ms: 10.0 * median,
            what: String::new(),
            others_cores: None,
        };
        let m7 = |paired: &[PairedResult]| {
            evaluate(&results, &[], paired)
                .into_iter()
                .find(|t| t.id == "M7")
                .unwrap()
        };
        let target = m7(&[
            scaling("paired/scaling/read_heavy/concurrent_map", 0.98, "system"),
            scaling("paired/scaling/exchange/scc", 1.10, "system"),
            // Another allocator's run and a ratio that is not a scaling do not count.
            scaling("paired/scaling/exchange/papaya", 3.0, "jemalloc"),
            scaling("paired/exchange/scc_2t", 0.8, "system"),
        ]);
        assert_eq!((target.ratio, target.pass), (Some(1.10), Some(true)));
        assert_eq!(target.numerator, "paired/scaling/exchange/scc");
        assert!(
            target
                .what
                .contains("11 alternating runs (exchange/scc: quartiles 1.050–1.150)"),
            "{}",
            target.what
        );
        let too_fast = m7(&[scaling("paired/scaling/rapid_grow/papaya", 1.3, "system")]);
        assert_eq!(too_fast.pass, Some(false));
        let none = m7(&[]);
        assert_eq!((none.ratio, none.pass), (None, None));
    }

    #[test]
    fn each_measured_trace_is_an_e4_target_against_rayon() {
        let mut results = vec![
            result("wf_blast-1/flowmem", 2.0),
            result("wf_blast-1/rayon", 4.0),
        ];
        results.push(result("wf_seismology-2/flowmem", 3.0));
        for r in &mut results {
            r.layer = "engine".into();
        }
        let targets = evaluate(&results, &[], &[]);
        let blast = targets.iter().find(|t| t.id == "E4.blast-1.rayon").unwrap();
        assert_eq!((blast.ratio, blast.pass), (Some(0.5), Some(true)));
        let seismology = targets
            .iter()
            .find(|t| t.id == "E4.seismology-2.rayon")
            .unwrap();
        assert_eq!(seismology.ratio, None, "its rayon run is missing");
    }

    #[test]
    fn the_native_build_measures_e5_again_under_its_own_name() {
        let mut results = vec![
            result("simd_10k/sum", 1.0),
            result("simd_10k/sum_scalar", 1.25),
            result("simd_10k/sum", 1.0),
            result("simd_10k/sum_scalar", 4.0),
        ];
        for (i, r) in results.iter_mut().enumerate() {
            r.layer = "engine".into();
            if i >= 2 {
                r.allocator = NATIVE.into();
            }
        }
        let targets = evaluate(&results, &[], &[]);
        let plain = targets.iter().find(|t| t.id == "E5.sum").unwrap();
        assert_eq!((plain.ratio, plain.pass), (Some(0.8), Some(false)));
        let native = targets.iter().find(|t| t.id == "E5.native.sum").unwrap();
        assert_eq!((native.ratio, native.pass), (Some(0.25), Some(true)));
        assert!(is_native(&native.id) && !is_native(&plain.id));
        let e5 = TARGETS.iter().filter(|t| t.id.starts_with("E5.")).count();
        assert_eq!(targets.iter().filter(|t| is_native(&t.id)).count(), e5);
        assert!(
            !allocators_needed(&["engine".to_string()], false).contains(&NATIVE),
            "the native build runs only with --native"
        );
    }

    #[test]
    fn the_pool_groups_run_under_every_allocator_unless_only_paired_targets_need_them() {
        let pool = ["pool".to_string()];
        assert_eq!(
            allocators_needed(&pool, false),
            ["system", "jemalloc", "mimalloc"]
        );
        // P6 under jemalloc and mimalloc is a paired ratio: the criterion groups need only the system run.
        assert_eq!(allocators_needed(&pool, true), ["system"]);
        assert!(paired_layers("jemalloc").contains(&"pool"));
    }

    #[test]
    fn every_target_names_a_known_layer_and_unique_id() {
        for (i, t) in TARGETS.iter().enumerate() {
            // A bench file is a layer's (`alloc`) or a part of one (`alloc_sites`).
            let layer = t.layer.split('_').next().unwrap();
            assert!(crate::layers::LAYERS.contains(&format!("flowmem-{layer}").as_str()));
            assert!(TARGETS[..i].iter().all(|u| u.id != t.id), "{} twice", t.id);
        }
    }
}
