//! Touches every re-export of the facade, so that a re-export that goes missing under its feature fails here.

#[test]
#[cfg(feature = "alloc")]
fn alloc() {
    assert_eq!(flowmem::alloc::LAYER, 0);
    let arena = flowmem::alloc::Arena::new();
    assert_eq!(*arena.alloc(7u32), 7);
    let _ = flowmem::prelude::Counters::new(["x"]);
}

#[test]
#[cfg(feature = "jemalloc")]
fn jemalloc() {
    let _allocator: flowmem::alloc::Jemalloc = flowmem::alloc::Jemalloc;
}

#[test]
#[cfg(feature = "mimalloc")]
fn mimalloc() {
    let _allocator: flowmem::alloc::MiMalloc = flowmem::alloc::MiMalloc;
}

#[test]
#[cfg(feature = "intern")]
fn intern() {
    assert_eq!(flowmem::intern::LAYER, 1);
    let pool = flowmem::prelude::StringPool::new();
    let s: flowmem::prelude::Symbol = pool.intern("x");
    assert_eq!(pool.resolve(s), "x");
    assert_eq!(flowmem::intern::resolve(flowmem::intern::intern("y")), "y");
    assert_eq!(
        pool.freeze().resolve(flowmem::prelude::sym::RUNNING),
        "RUNNING"
    );
}

#[test]
#[cfg(feature = "pool")]
fn pool() {
    assert_eq!(flowmem::pool::LAYER, 2);
    let buffers = flowmem::prelude::BufferPool::new();
    assert!(buffers.get(100).capacity() >= 100);
    let objects = flowmem::prelude::ObjectPool::with_reset(
        Vec::<u8>::new,
        flowmem::prelude::PoolConfig::default(),
    );
    assert!(objects.acquire().is_empty());
    assert!(flowmem::pool::get_buffer(10).capacity() >= 10);
}

#[test]
#[cfg(feature = "store")]
fn store() {
    assert_eq!(flowmem::store::LAYER, 4);
    let dir = std::env::temp_dir().join(format!("flowmem-subcrates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.fms");
    let _ = std::fs::remove_file(&path);
    let mut writer = flowmem::prelude::StoreWriter::create(&path).unwrap();
    writer
        .append(&flowmem::prelude::Uuid::from_u128(1), b"x")
        .unwrap();
    writer.flush().unwrap();
    let store = flowmem::prelude::MmapStore::open(&path).unwrap();
    assert_eq!(store.len(), 1);
    let cache = flowmem::prelude::StoreCache::new();
    assert_eq!(cache.get_or_open(&path).unwrap().len(), 1);
    let _layout: flowmem::store::Layout = store.layout();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(feature = "zstd")]
fn zstd() {
    let _options = flowmem::store::WriterOptions::new().compression(3, 512);
}

#[test]
#[cfg(feature = "engine")]
fn engine() {
    assert_eq!(flowmem::engine::LAYER, 5);
    let mut builder = flowmem::engine::Workflow::builder("w");
    builder
        .node("a", |ctx: &mut flowmem::engine::NodeCtx<'_>| {
            ctx.set_output(1u64);
            Ok::<(), flowmem::engine::ActionError>(())
        })
        .retry(flowmem::engine::RetryPolicy::immediate(1));
    assert_eq!(builder.build().unwrap().len(), 1);
    assert_eq!(flowmem::engine::simd::sum_u64(&[1, 2]), 3);
    assert_eq!(flowmem::engine::Value::from(1u64).as_u64(), Some(1));
    let workflow = builder_built();
    let store = std::sync::Arc::new(flowmem::prelude::MemoryCheckpoints::new());
    let run = flowmem::prelude::RunId::named("subcrates");
    let report = flowmem::prelude::Executor::new(1)
        .run_durable(&workflow, store.clone(), run)
        .unwrap();
    assert_eq!(report.status, flowmem::prelude::RunStatus::Completed);
    use flowmem::prelude::CheckpointStore as _;
    assert_eq!(store.load(run).unwrap().unwrap().nodes.len(), 1);
    let dir = std::env::temp_dir().join(format!("flowmem-subcrates-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = flowmem::prelude::FileCheckpoints::open_with(
        dir.join("s.fms"),
        flowmem::engine::FileCheckpointsOptions::new().sync(flowmem::engine::SyncMode::Write),
    )
    .unwrap();
    let _stats: flowmem::engine::FileCheckpointsStats = file.stats();
    drop(file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "engine")]
fn builder_built() -> flowmem::prelude::Workflow {
    let mut b = flowmem::prelude::Workflow::builder("w2");
    b.node("a", |ctx: &mut flowmem::prelude::NodeCtx<'_>| {
        ctx.set_output(flowmem::prelude::Value::from(1u64));
        Ok::<(), flowmem::prelude::ActionError>(())
    });
    b.build().unwrap()
}

#[test]
#[cfg(feature = "map")]
fn map() {
    assert_eq!(flowmem::map::LAYER, 3);
    let map = flowmem::prelude::ConcurrentMap::new();
    map.insert(1, "one");
    assert_eq!(map.get(&1), Some("one"));
    let read: flowmem::prelude::ReadMap<u8, u8> = [(1, 2)].into_iter().collect();
    assert_eq!(read.get(&1), Some(2));
    let cache: flowmem::prelude::ArcCache<u8, u8> = flowmem::prelude::ArcCache::new(1);
    assert_eq!(*cache.get_or_create(&1, || 3), 3);
    let _stats: flowmem::map::ArcCacheStats = cache.stats();
    let _hasher = flowmem::map::DefaultHashBuilder::default();
}
