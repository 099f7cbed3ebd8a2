//! serde for every layer's stats types and the engine's reports (feature `serde`; this test's
//! dev-dependencies turn it on in every layer).

// The layer crates themselves (dev-dependencies with `serde`), so that the test builds with any feature
// set of the facade (`cargo xtask features`).
use flowmem_alloc as alloc;
use flowmem_engine as engine;
use flowmem_map as map;
use flowmem_pool as pool;
use flowmem_store as store;
use serde::{Serialize, de::DeserializeOwned};

/// `value` to JSON and back, and the JSON's field names.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: T,
) -> Vec<String> {
    let json = serde_json::to_value(&value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, value);
    json.as_object()
        .map_or_else(Vec::new, |o| o.keys().cloned().collect())
}

#[test]
fn every_layers_stats_round_trip_through_json() {
    let arena = alloc::Arena::new();
    arena.alloc(7u64);
    let fields = round_trip(arena.stats());
    assert!(fields.contains(&"bytes_used".to_string()), "{fields:?}");
    round_trip(alloc::AllocStats {
        allocations: 3,
        peak_bytes: 99,
        ..Default::default()
    });
    round_trip(alloc::ArenaPoolStats::default());
    let buffers = pool::BufferPool::new();
    drop(buffers.get(4096));
    let fields = round_trip(buffers.stats());
    assert!(fields.contains(&"hits".to_string()), "{fields:?}");
    round_trip(pool::PoolStats::default());
    let cache: map::ArcCache<u64, u64> = map::ArcCache::new(4);
    round_trip(cache.stats());
    round_trip(store::StoreStats::default());
    round_trip(engine::ExecutorStats::default());
    round_trip(engine::FileCheckpointsStats::default());
    round_trip(engine::NodeStatus::Skipped);
    round_trip(engine::RunStatus::Cancelled);
}

#[test]
fn a_run_report_serializes_with_outputs_errors_and_attempts() {
    #[derive(serde::Serialize)]
    struct Batch {
        ids: Vec<u32>,
    }
    let mut b = engine::Workflow::builder("reported");
    b.node("fetch", |ctx| {
        ctx.set_output_serde(&Batch { ids: vec![1, 2] })
    });
    b.node("count", |ctx| {
        ctx.set_output(2u64);
        Ok(())
    })
    .after(["fetch"]);
    b.node("broken", |_| {
        Err(engine::ActionError::permanent("bad row 7"))
    });
    let workflow = b.build().unwrap();
    let report = engine::Executor::new(1).run_with(
        &workflow,
        engine::RunOptions::new()
            .policy(engine::FailurePolicy::ContinueIndependent)
            .input("day", "monday")
            .record_attempts(true),
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["workflow"], "reported");
    assert_eq!(json["status"], "Failed");
    assert_eq!(json["id"], report.id.to_string());
    assert_eq!(json["nodes"][0]["output"]["ids"], serde_json::json!([1, 2]));
    assert_eq!(json["nodes"][1]["output"], 2);
    assert_eq!(
        json["nodes"][2]["error"],
        serde_json::json!({"kind": "Permanent", "message": "bad row 7"})
    );
    assert_eq!(json["context"]["day"], "monday");
    assert_eq!(json["attempts"].as_array().unwrap().len(), 3);
    assert!(json["duration_ns"].as_u64().unwrap() > 0);
}
