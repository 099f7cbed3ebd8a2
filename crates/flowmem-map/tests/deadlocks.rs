//! The deadlocks of lock-based maps that hand out guards, shown to deadlock on raw dashmap (a peer in the
//! bench) and shown unreachable through `ConcurrentMap`, whose table is also lock-based (the same code
//! completes, or a nested call is refused with a panic instead of hanging).

use std::{
    sync::{Arc, Barrier, mpsc},
    time::Duration,
};

use dashmap::DashMap;
use flowmem_map::{ConcurrentMap, ReadMap};

/// Runs `f` on its own thread; `true` if it ends (returns or panics) within `limit`. A thread that does not
/// end is left blocked: it is the deadlock being demonstrated, and the test process exits past it.
fn ends_within(limit: Duration, f: impl FnOnce() + Send + 'static) -> bool {
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let _signal_even_on_panic = Signal(done);
        f();
    });
    ended.recv_timeout(limit).is_ok()
}

struct Signal(mpsc::Sender<()>);

impl Drop for Signal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

const HANG: Duration = Duration::from_millis(500);
const FINISH: Duration = Duration::from_secs(30);

/// Two keys that dashmap puts in different shards.
fn keys_in_two_shards(map: &DashMap<u64, u64>) -> (u64, u64) {
    let a = 0;
    let b = (1..)
        .find(|k| map.determine_map(k) != map.determine_map(&a))
        .unwrap();
    (a, b)
}

#[test]
fn raw_dashmap_deadlocks_holding_a_ref_while_writing_the_same_shard() {
    let hung = !ends_within(HANG, || {
        let map = DashMap::new();
        map.insert(1u64, 1u64);
        let held = map.get(&1).unwrap();
        map.insert(1, *held + 1); // waits forever for the write lock `held` keeps
    });
    assert!(hung, "the raw dashmap pattern was expected to deadlock");
}

#[test]
fn concurrent_map_for_each_may_write_the_map_it_walks() {
    assert!(ends_within(FINISH, || {
        let map: ConcurrentMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
        map.for_each(|k, v| {
            map.insert(k + 1000, v + 1);
            map.update(k, |v| *v *= 2);
        });
        assert_eq!(map.len(), 2000);
        assert_eq!(map.get(&999), Some(1998));
        assert_eq!(map.get(&1999), Some(1000));
    }));
}

#[test]
fn raw_dashmap_deadlocks_with_two_shards_taken_in_opposite_orders() {
    let map = Arc::new(DashMap::new());
    let (a, b) = keys_in_two_shards(&map);
    map.insert(a, 0);
    map.insert(b, 0);
    let barrier = Arc::new(Barrier::new(2));
    let run = |first: u64, second: u64| {
        let (map, barrier) = (Arc::clone(&map), Arc::clone(&barrier));
        move || {
            let mut held = map.get_mut(&first).unwrap();
            barrier.wait();
            *held += *map.get(&second).unwrap(); // each thread waits for the other's shard
        }
    };
    let one = ends_within(HANG, run(a, b));
    let other = ends_within(HANG, run(b, a));
    assert!(
        !one && !other,
        "the raw dashmap pattern was expected to deadlock"
    );
}

#[test]
fn concurrent_map_two_threads_combining_two_keys_complete() {
    // The same intent — each thread adds the other key's value to its own — written with this API: the
    // read and the write are separate calls, so no thread ever holds two bucket locks.
    let map = Arc::new(ConcurrentMap::<u64, u64>::new());
    map.insert(0, 1);
    map.insert(1, 1);
    let barrier = Arc::new(Barrier::new(2));
    let run = |mine: u64, other: u64| {
        let (map, barrier) = (Arc::clone(&map), Arc::clone(&barrier));
        move || {
            barrier.wait();
            for _ in 0..10_000 {
                let theirs = map.get(&other).unwrap();
                map.update(&mine, |v| *v = v.wrapping_add(theirs));
            }
        }
    };
    let one = std::thread::spawn(run(0, 1));
    let other = std::thread::spawn(run(1, 0));
    assert!(ends_within(FINISH, move || {
        one.join().unwrap();
        other.join().unwrap();
    }));
}

#[test]
fn a_nested_call_under_a_lock_panics_instead_of_deadlocking_and_the_map_recovers() {
    let map = Arc::new(ConcurrentMap::<u64, u64>::new());
    map.insert(1, 1);
    let inner = Arc::clone(&map);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.update(&1, |v| {
            *v = inner.get(&1).unwrap_or(0) + 1; // same bucket: would deadlock on a raw lock
        })
    }));
    let message = *outcome.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("ConcurrentMap::get") && message.contains("ConcurrentMap::update"),
        "{message}"
    );
    // The lock was released by the unwinding; the value is unchanged and the map works on every thread.
    assert_eq!(map.get(&1), Some(1));
    let other = Arc::clone(&map);
    assert!(ends_within(FINISH, move || {
        other.insert(2, 2);
    }));
    assert_eq!(map.len(), 2);
}

#[test]
fn nested_read_map_writes_panic_and_reads_inside_writes_work() {
    let map = Arc::new(ReadMap::<u64, u64>::new());
    map.insert(1, 10);
    let inner = Arc::clone(&map);
    // Reads are lock-free: allowed inside a write.
    map.update(&1, |v| *v += inner.get(&1).unwrap());
    assert_eq!(map.get(&1), Some(20));
    let inner = Arc::clone(&map);
    let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.update_batch(|m| {
            m.insert(2, 2);
            inner.insert(3, 3);
        })
    }));
    assert!(nested.is_err());
    // All or nothing: the batch that panicked published nothing; writes work afterwards.
    assert_eq!((map.get(&2), map.get(&3)), (None, None));
    map.insert(4, 4);
    assert_eq!(map.len(), 2);
}
