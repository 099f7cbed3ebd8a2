//! Each thread's memo of the pools it last reached its cache in: a pool's id and the address of this
//! thread's entry in the pool's `ThreadLocal`, in one of [`WAYS`] places picked by the id. A pool's acquire
//! and release look there first (a plain thread-local, no destructor, so no initialisation-state check: a
//! load and a compare), and go through `ThreadLocal::get` (std's thread-local state check, the thread id, a
//! bucket, a presence flag) only when another pool took the place since. Ids are never reused, so a memo
//! of a dropped pool matches no pool.
//!
//! [`entry`] is the one way the pools reach their thread caches.
//!
//! Measured with callgrind (`benches/examples/pool_use.rs`): an `ObjectPool` acquire + release beyond the
//! work on the object, 93 instructions through `ThreadLocal::get` twice, 74 through the memo.

use std::{
    cell::Cell,
    ptr,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use thread_local::ThreadLocal;

/// Ids of the pools of both kinds (object and buffer pools), from 1 (0 is no pool).
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// A new pool's id, unique in the process.
pub(crate) fn new_pool_id() -> u64 {
    NEXT_POOL_ID.fetch_add(1, Relaxed)
}

/// Places in the memo: pools whose ids differ in their last two bits never evict each other (a thread
/// that uses a buffer pool and an object pool or two in turn keeps them all).
const WAYS: usize = 4;

#[derive(Clone, Copy)]
struct Memo {
    pool: u64,
    entry: *const (),
}

thread_local! {
    static MEMO: [Cell<Memo>; WAYS] = const {
        [const {
            Cell::new(Memo {
                pool: 0,
                entry: ptr::null(),
            })
        }; WAYS]
    };
}

/// This thread's memo, through one non-generic function: `LocalKey::with` is generic over its closure and
/// not `#[inline]`, so a closure passed to it from an inlined function is an instantiation that a large
/// crate may place in another codegen unit than its caller, and not inline (seen with `ArenaPool`'s slot:
/// 6.0 ns a take and return in the bench binary against 3.9 once reached this way).
#[inline(always)]
fn memo(pool: u64) -> &'static Cell<Memo> {
    let memo: *const [Cell<Memo>; WAYS] = MEMO.with(ptr::from_ref);
    // SAFETY: `MEMO` has no destructor, so its storage stays valid for as long as this thread runs, and
    // the reference stays on this thread (`Cell` is not `Sync`).
    unsafe { &(*memo)[pool as usize % WAYS] }
}

/// This thread's entry of `local`, the `ThreadLocal` of the pool whose id is `pool`: the one remembered,
/// else `local`'s own (made by `create` on this thread's first use of the pool), remembered for next time.
///
/// # Safety
///
/// `local` must be the one `ThreadLocal` passed with `pool` in every call, and must never be cleared or
/// replaced while it lives (its entries then never move, and a remembered address stays valid as long as
/// `local` does).
#[inline(always)]
pub(crate) unsafe fn entry<T: Send>(
    pool: u64,
    local: &ThreadLocal<T>,
    create: impl FnOnce() -> T,
) -> &T {
    let memo = memo(pool).get();
    if memo.pool != pool {
        return remember(pool, local, create);
    }
    // SAFETY: only calls with `pool` remember an address under it (ids are never reused), each the address
    // of this thread's entry of `local` (the caller's promise), which lives as long as `local`, so at least as long as
    // this borrow of it.
    unsafe { &*memo.entry.cast::<T>() }
}

/// This thread's entry of `local`, made if it has none yet, and remembered under `pool`.
#[cold]
#[inline(never)]
fn remember<T: Send>(pool: u64, local: &ThreadLocal<T>, create: impl FnOnce() -> T) -> &T {
    let entry = local.get_or(create);
    memo(pool).set(Memo {
        pool,
        entry: ptr::from_ref(entry).cast(),
    });
    entry
}
