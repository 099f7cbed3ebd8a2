//! Where the pool keeps its objects: each on cache lines of its own, so that threads using two objects
//! at once never write the same line (false sharing between boxes the allocator placed side by side made
//! two threads slower than one).

use flowmem_alloc::CachePadded;
use flowmem_pool::{ObjectPool, PoolConfig};

/// The size and alignment of a padded block (128 bytes on x86-64: a line and the one prefetched with it).
fn block() -> usize {
    std::mem::align_of::<CachePadded<u8>>()
}

/// Checks that the objects at `addresses` each start a block and are a block apart at least.
fn assert_apart(mut addresses: Vec<usize>) {
    for a in &addresses {
        assert_eq!(a % block(), 0, "an object at {a:#x} does not start a block");
    }
    addresses.sort_unstable();
    for pair in addresses.windows(2) {
        assert!(
            pair[1] - pair[0] >= block(),
            "objects at {:#x} and {:#x} share a block",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn objects_lent_at_once_sit_on_lines_of_their_own() {
    // Eight-byte objects: boxed plainly, the allocator puts them 16 or 32 bytes apart.
    let pool = ObjectPool::new(|| 0u64, |n| *n = 0, PoolConfig::default());
    let lent: Vec<_> = (0..64).map(|_| pool.acquire()).collect();
    assert_apart(lent.iter().map(|o| &**o as *const u64 as usize).collect());
    drop(lent);
    // The same once they come back and go out again, and for objects released from outside.
    pool.release(7u64);
    let again: Vec<_> = (0..65).map(|_| pool.acquire()).collect();
    assert_apart(again.iter().map(|o| &**o as *const u64 as usize).collect());
}

#[test]
fn objects_lent_to_two_threads_sit_on_lines_of_their_own() {
    let pool = ObjectPool::new(|| 0u64, |n| *n = 0, PoolConfig::default());
    let both_hold = std::sync::Barrier::new(2);
    let addresses: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let held: Vec<_> = (0..16).map(|_| pool.acquire()).collect();
                    let at: Vec<usize> = held.iter().map(|o| &**o as *const u64 as usize).collect();
                    // Every object stays lent until both threads hold theirs.
                    both_hold.wait();
                    at
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("no panic"))
            .collect()
    });
    assert_apart(addresses);
}
